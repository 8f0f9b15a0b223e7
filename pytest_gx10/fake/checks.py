"""vLLM's checks on request fields the twin does not otherwise use, in vLLM 0.32's words.

The twin samples nothing, so it has no use for top_k, logprobs, logit_bias, tools or structured
outputs; vLLM still refuses bad values of them with a 400, and the robustness suite sends exactly such
values. Each check here was read off vLLM 0.32.0's answers (the real CPU build): same status, same
sentence. A field of the wrong type is left alone (vLLM's schema would refuse it; the twin passes it).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pytest_gx10.fake.protocol import ApiError, bad_request, validation_error
from pytest_gx10.fake.tokenizer import Tokenizer

__all__ = ["check_fields", "check_prompt_chars", "check_text", "max_chars_per_token"]

_MAX_LOGPROBS = 20  # vLLM's default --max-logprobs
_MAX_N = 16384  # VLLM_MAX_N_SEQUENCES
_INT64_MAX = 2**63 - 1
_JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _integer(body: Mapping[str, Any], name: str) -> int | None:
    value = body.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sample_logprobs(requested: int, vocab_size: int) -> None:
    wanted = vocab_size if requested == -1 else requested
    if wanted > _MAX_LOGPROBS:
        raise bad_request(
            f"Requested sample logprobs of {wanted}, which is greater than max allowed: {_MAX_LOGPROBS}",
            "logprobs",
            wanted,
        )


def _token_ids(body: Mapping[str, Any], name: str, vocab_size: int) -> None:
    value = body.get(name)
    if name == "logit_bias":
        if not isinstance(value, Mapping):
            return
        try:
            ids = [int(key) for key in value]
        except ValueError:
            return
    elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        ids = value
    else:
        return
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise bad_request(
            f"token_id(s) {bad} in {name} contain out-of-vocab token ids. Vocabulary size: {vocab_size}",
            name,
            bad,
        )


def _tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise validation_error("list_type", ("body", "tools"), "Input should be a valid list", tools)
        for i, tool in enumerate(tools):
            if isinstance(tool, Mapping) and "function" not in tool:
                raise validation_error("missing", ("body", "tools", i, "function"), "Field required", tool)
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("none", "auto") and not tools:
        raise bad_request("When using `tool_choice`, `tools` must be set.", "tool_choice")


def _structured_outputs(body: Mapping[str, Any]) -> None:
    spec = body.get("structured_outputs")
    if spec is None:
        return
    if not isinstance(spec, Mapping):
        # A finding on vLLM 0.32.0 (docs/robustness-findings.md): its schema lets a non-object
        # through, and the sampling-parameter code calls .get on it: HTTP 500, the engine unharmed.
        raise ApiError(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            f"'{type(spec).__name__}' object has no attribute 'get'",
            "InternalServerError",
        )
    if sum(spec.get(k) is not None for k in ("json", "regex", "choice")) > 1:
        raise bad_request(
            "You can only use one kind of constraints for structured outputs ('json', 'regex' or 'choice').",
            "structured_outputs",
        )
    schema = spec.get("json")
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError:
            raise bad_request("Invalid JSON grammar specification.") from None
    if isinstance(schema, Mapping):
        for kind in _schema_types(schema):
            if kind not in _JSON_TYPES:
                raise bad_request(f"Grammar error: Invalid type: {kind}")
    regex = spec.get("regex")
    if isinstance(regex, str):
        try:
            re.compile(regex)
        except re.error as exc:
            raise bad_request(f'Grammar error: invalid regex "{regex}" (in regex): {exc}') from None
    if spec.get("choice") == []:
        raise bad_request("Choice '[]' cannot be an empty list")


def _schema_types(schema: Any) -> Iterable[str]:
    if isinstance(schema, Mapping):
        kind = schema.get("type")
        if isinstance(kind, str):
            yield kind
        for value in schema.values():
            yield from _schema_types(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _schema_types(value)


def check_fields(body: Mapping[str, Any], *, chat: bool, vocab_size: int) -> None:
    """Refuse what vLLM 0.32 refuses among the fields the twin otherwise ignores; raise ``ApiError``."""
    seed = _integer(body, "seed")
    if seed is not None and not -_INT64_MAX - 1 <= seed <= _INT64_MAX:
        bound, word = (_INT64_MAX, "less") if seed > 0 else (-_INT64_MAX - 1, "greater")
        raise validation_error(
            f"{word}_than_equal",
            ("body", "seed"),
            f"Input should be {word} than or equal to {bound}",
            str(seed),
            **{"le" if seed > 0 else "ge": str(bound)},
        )
    prompt = body.get("prompt")
    if isinstance(prompt, list) and any(
        isinstance(t, int) and not isinstance(t, bool) and t < 0 for t in prompt
    ):
        index = next(i for i, t in enumerate(prompt) if isinstance(t, int) and t < 0)
        raise validation_error(
            "greater_than_equal",
            ("body", "prompt", index),
            "Input should be greater than or equal to 0",
            str(prompt[index]),
            ge="0",
        )
    if chat:
        _tools(body)
    _structured_outputs(body)
    n = _integer(body, "n")
    if n is not None and n > _MAX_N:
        raise bad_request(
            f"n must be at most {_MAX_N}, got {n}. To increase this limit, set the VLLM_MAX_N_SEQUENCES "
            "environment variable."
        )
    top_k = _integer(body, "top_k")
    if top_k is not None and top_k < -1:
        raise bad_request(f"top_k must be 0 (disable), or at least 1, got {top_k}.")
    top_p = _number(body, "top_p")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise bad_request(f"top_p must be in (0, 1], got {float(top_p)}.", "top_p", float(top_p))
    min_p = _number(body, "min_p")
    if min_p is not None and not 0.0 <= min_p <= 1.0:
        raise bad_request(f"min_p must be in [0, 1], got {float(min_p)}.")
    penalty = _number(body, "repetition_penalty")
    if penalty is not None and not penalty > 0.0:
        raise bad_request(f"repetition_penalty must be greater than zero, got {float(penalty)}.")
    for name in ("presence_penalty", "frequency_penalty"):
        value = _number(body, name)
        if value is not None and not -2.0 <= value <= 2.0:
            raise bad_request(f"{name} must be in [-2, 2], got {float(value)}.")
    if chat:
        top = _integer(body, "top_logprobs")
        if top is not None and body.get("logprobs") is not True:
            raise bad_request("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs")
        if top is not None:
            _sample_logprobs(top, vocab_size)
    else:
        logprobs = _integer(body, "logprobs")
        if logprobs is not None:
            _sample_logprobs(logprobs, vocab_size)
    prompt_logprobs = _integer(body, "prompt_logprobs")
    if prompt_logprobs is not None:
        if prompt_logprobs < -1:
            raise bad_request(
                "`prompt_logprobs` must be a positive value or -1.", "prompt_logprobs", prompt_logprobs
            )
        wanted = vocab_size if prompt_logprobs == -1 else prompt_logprobs
        if wanted > _MAX_LOGPROBS:
            raise bad_request(
                f"Requested prompt logprobs of {wanted}, which is greater than max allowed: {_MAX_LOGPROBS}",
                "prompt_logprobs",
                wanted,
            )
    for name in ("logit_bias", "stop_token_ids"):
        _token_ids(body, name, vocab_size)


def check_text(text: str) -> None:
    """vLLM's tokenizer refuses text holding lone surrogates (they have no UTF-8 encoding)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(
            "TextEncodeInput must be Union[TextInputSequence, Tuple[InputSequence, InputSequence]]"
        ) from None


@functools.cache
def max_chars_per_token(tok: Tokenizer) -> int:
    """The longest text one token of the twin's vocabulary stands for (vLLM reads it off its tokenizer)."""
    return max(len(tok.decode([i])) for i in tok.word_ids)


def check_prompt_chars(text: str, max_model_len: int, max_chars_per_token: int) -> None:
    """vLLM refuses, before tokenizing, a prompt longer than max_model_len of its longest tokens."""
    limit = max_model_len * max_chars_per_token
    if len(text) > limit:
        raise bad_request(
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt "
            f"contains {len(text)} characters (more than {limit} characters, which is the upper bound "
            f"for {max_model_len} input tokens). Please reduce the length of the input prompt.",
            "input_text",
            len(text),
        )
