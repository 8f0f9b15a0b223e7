"""Request parsing and validation for the twin's OpenAI-compatible endpoints, with vLLM's errors.

vLLM validates bodies with pydantic (a failure is a 400 of type "Bad Request" whose message lists the
errors) and then checks sampling parameters itself (a 400 ``BadRequestError`` with a sentence such as
"max_tokens must be at least 1, got 0."). The twin reproduces both layers without pydantic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

__all__ = [
    "ApiError",
    "ChatRequest",
    "CommonParams",
    "CompletionRequest",
    "bad_request",
    "check_sampling",
    "parse_json_body",
    "unsupported_media_type",
    "validation_error",
]


_NO_VALUE: Any = object()
_MISSING = object()
_GREEDY_EPS = 1e-5  # vLLM's _SAMPLING_EPS: a temperature below it means greedy sampling


class ApiError(Exception):
    """An error response: ``{"error": {"message", "type", "param", "code"}}`` with an HTTP status."""

    def __init__(self, status: int, message: str, err_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body vLLM sends."""
        return {
            "error": {
                "message": self.message,
                "type": self.err_type,
                "param": self.param,
                "code": self.status,
            }
        }


def bad_request(message: str, param: str | None = None, value: Any = _NO_VALUE) -> ApiError:
    """vLLM's 400 for a request it understood but refuses (``BadRequestError``).

    vLLM 0.32 appends ``(parameter=..., value=...)`` to the sentence when it knows the parameter.
    """
    if param is not None:
        suffix = f"parameter={param}" if value is _NO_VALUE else f"parameter={param}, value={value}"
        message = f"{message} ({suffix})"
    return ApiError(HTTPStatus.BAD_REQUEST, message, "BadRequestError", param)


def _summary(value: Any) -> Any:
    # FastAPI shortens the offending input in its error list.
    if isinstance(value, dict):
        return f"<dict of {len(value)} items>"
    if isinstance(value, list):
        return f"<list of {len(value)} items>"
    return value


def validation_error(kind: str, loc: tuple[str | int, ...], msg: str, value: Any, **ctx: str) -> ApiError:
    """vLLM's 400 for a body that fails schema validation (FastAPI's RequestValidationError)."""
    where = ".".join(str(part) for part in loc)
    error: dict[str, Any] = {"type": kind, "loc": where, "msg": msg, "input": _summary(value)}
    if ctx:
        error["ctx"] = dict(ctx)
    return ApiError(
        HTTPStatus.BAD_REQUEST, f"1 validation error:\n  {error!r}", HTTPStatus.BAD_REQUEST.phrase, where
    )


def unsupported_media_type() -> ApiError:
    """What vLLM answers to a body that is not sent as ``application/json``."""
    message = "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed"
    return ApiError(HTTPStatus.BAD_REQUEST, message, HTTPStatus.BAD_REQUEST.phrase)


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or the validation error FastAPI would raise."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        pos = exc.pos if isinstance(exc, json.JSONDecodeError) else exc.start
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason
        raise validation_error("json_invalid", ("body", pos), "JSON decode error", {}, error=reason) from None
    if not isinstance(data, dict):
        raise validation_error(
            "model_attributes_type",
            ("body",),
            "Input should be a valid dictionary or object to extract fields from",
            data,
        )
    return data


# --- field checks (pydantic's words) ------------------------------------------------------------------


def _err(kind: str, field: str, msg: str, value: Any) -> ApiError:
    return validation_error(kind, ("body", field), msg, value)


def _opt_int(body: Mapping[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise _err("int_type", field, "Input should be a valid integer", value)
    return int(value)


def _opt_float(body: Mapping[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _err("float_type", field, "Input should be a valid number", value)
    return float(value)


def _bool(body: Mapping[str, Any], field: str, default: bool) -> bool:
    value = body.get(field, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _err("bool_type", field, "Input should be a valid boolean", value)
    return value


def _stop(body: Mapping[str, Any]) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise _err("string_type", "stop", "Input should be a valid string", value)


def _int_list(body: Mapping[str, Any], field: str) -> tuple[int, ...]:
    value = body.get(field)
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise _err("list_type", field, "Input should be a valid list", value)


@dataclass(frozen=True)
class CommonParams:
    """Fields shared by completions and chat completions."""

    model: str | None
    stream: bool
    include_usage: bool
    max_tokens: int | None
    max_tokens_param: str  # the field max_tokens came from (chat: max_completion_tokens or max_tokens)
    min_tokens: int
    ignore_eos: bool
    temperature: float | None
    seed: int | None
    n: int
    stop: tuple[str, ...]
    stop_token_ids: tuple[int, ...]
    include_stop_str_in_output: bool
    logprobs: int | None = None  # top logprobs per generated token; None: no logprobs
    prompt_logprobs: int | None = None  # top logprobs per prompt token; None: none
    return_token_ids: bool = False
    as_token_ids: bool = False  # return_tokens_as_token_ids
    continuous_usage: bool = False  # stream_options.continuous_usage_stats (with include_usage)
    truncate_prompt_tokens: int | None = None
    truncation_side: str = "left"
    request_id: str | None = None
    echo: bool = False


def _common(body: Mapping[str, Any], max_tokens_fields: tuple[str, ...]) -> CommonParams:
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise _err("string_type", "model", "Input should be a valid string", model)
    stream_options = body.get("stream_options")
    include_usage = continuous_usage = False
    if stream_options and not body.get("stream"):
        # vLLM checks this in a model validator that raises its own error: a BadRequestError, not a list.
        raise bad_request("Stream options can only be defined when `stream=True`.", "stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise _err("model_type", "stream_options", "Input should be a valid dictionary", stream_options)
        include_usage = _bool(stream_options, "include_usage", False)
        continuous_usage = include_usage and _bool(stream_options, "continuous_usage_stats", False)
    stream = _bool(body, "stream", False)
    max_tokens = None
    max_tokens_param = max_tokens_fields[-1]
    for field in max_tokens_fields:
        value = _opt_int(body, field)
        if value is not None:
            max_tokens, max_tokens_param = value, field
            break
    n = _opt_int(body, "n")
    min_tokens = _opt_int(body, "min_tokens") or 0
    params = CommonParams(
        model=model,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        max_tokens_param=max_tokens_param,
        min_tokens=min_tokens,
        ignore_eos=_bool(body, "ignore_eos", False),
        temperature=_opt_float(body, "temperature"),
        seed=_opt_int(body, "seed"),
        n=1 if n is None else n,
        stop=_stop(body),
        stop_token_ids=_int_list(body, "stop_token_ids"),
        include_stop_str_in_output=_bool(body, "include_stop_str_in_output", False),
        continuous_usage=continuous_usage,
        return_token_ids=_bool(body, "return_token_ids", False),
        as_token_ids=_bool(body, "return_tokens_as_token_ids", False),
        truncate_prompt_tokens=_opt_int(body, "truncate_prompt_tokens"),
        truncation_side=body.get("truncation_side") or "left",
        echo=_bool(body, "echo", False),
    )
    request_id = body.get("request_id")
    chat = len(max_tokens_fields) > 1
    if chat:
        logprobs = (_opt_int(body, "top_logprobs") or 0) if _bool(body, "logprobs", False) else None
    else:
        logprobs = _opt_int(body, "logprobs")
    prompt_logprobs = _opt_int(body, "prompt_logprobs")
    if prompt_logprobs is None and params.echo:
        # vLLM asks for the prompt's logprobs to echo them: top_logprobs (chat), logprobs (completions).
        prompt_logprobs = (_opt_int(body, "top_logprobs") or 0) if chat else logprobs
    return dataclasses.replace(
        params,
        logprobs=logprobs,
        prompt_logprobs=prompt_logprobs,
        request_id=request_id if isinstance(request_id, str) else None,
    )


def check_sampling(p: CommonParams) -> None:
    """vLLM's SamplingParams checks, in its order and words (some name their parameter, some do not)."""
    if p.n < 1:
        raise bad_request(f"n must be at least 1, got {p.n}.")
    if p.temperature is not None and p.temperature < 0.0:
        raise bad_request(
            f"temperature must be non-negative, got {p.temperature}.", "temperature", p.temperature
        )
    if p.temperature is not None and p.temperature > 2.0:
        raise bad_request(
            f"temperature must be in [0, 2], got {p.temperature}.", "temperature", p.temperature
        )
    if p.max_tokens is not None and p.max_tokens < 1:
        raise bad_request(f"max_tokens must be at least 1, got {p.max_tokens}.", "max_tokens", p.max_tokens)
    if p.min_tokens < 0:
        raise bad_request(f"min_tokens must be greater than or equal to 0, got {p.min_tokens}.")
    if p.max_tokens is not None and p.min_tokens > p.max_tokens:
        raise bad_request(
            f"min_tokens must be less than or equal to max_tokens={p.max_tokens}, got {p.min_tokens}."
        )
    if p.n > 1 and p.temperature is not None and p.temperature < _GREEDY_EPS:
        raise bad_request(f"n must be 1 when using greedy sampling, got {p.n}.")
    if p.n > 1:
        # The twin writes one deterministic answer per prompt; several choices would all be identical.
        raise bad_request("The pytest-gx10 twin supports only n=1.", "n", p.n)


@dataclass(frozen=True)
class CompletionRequest:
    """A parsed ``/v1/completions`` body."""

    common: CommonParams
    prompt: str | list[int]
    echo: bool


def parse_completion(body: Mapping[str, Any]) -> CompletionRequest:
    """Validate a completions body; the prompt is text or token ids (a one-element batch is unwrapped)."""
    no_prompt = "Either prompt or prompt_embeds must be provided and non-empty."
    prompt = body.get("prompt")
    if prompt is None or prompt == "" or prompt == []:
        raise bad_request(no_prompt, "prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if (isinstance(prompt, list) and prompt and all(isinstance(t, list) for t in prompt)) or (
        isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(t, str) for t in prompt)
    ):
        raise bad_request("The pytest-gx10 twin supports one prompt per request.", "prompt")
    if isinstance(prompt, list):
        if not all(type(t) is int for t in prompt):
            raise _err("list_type", "prompt", "Input should be a valid list", prompt)
        if not prompt:
            raise bad_request(no_prompt, "prompt")
    elif not isinstance(prompt, str):
        raise _err("string_type", "prompt", "Input should be a valid string", prompt)
    elif prompt == "":
        raise bad_request(no_prompt, "prompt")
    common = _common(body, ("max_tokens",))
    return CompletionRequest(common, prompt, common.echo)


@dataclass(frozen=True)
class ChatRequest:
    """A parsed ``/v1/chat/completions`` body."""

    common: CommonParams
    messages: list[dict[str, Any]]
    add_generation_prompt: bool
    continue_final_message: bool
    enable_thinking: bool
    include_reasoning: bool
    return_prompt_text: bool = False


def parse_chat(body: Mapping[str, Any]) -> ChatRequest:
    """Validate a chat completions body."""
    messages = body.get("messages", _MISSING)
    if messages is _MISSING:
        raise validation_error("missing", ("body", "messages"), "Field required", dict(body))
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise _err("list_type", "messages", "Input should be a valid list", messages)
    for i, message in enumerate(messages):
        # vLLM's message types: the role, a name and a tool call's id are strings where given.
        for field in ("role", "name", "tool_call_id"):
            if field in message and not isinstance(message[field], str):
                loc = ("body", "messages", i, field)
                raise validation_error("string_type", loc, "Input should be a valid string", message[field])
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise _err("dict_type", "chat_template_kwargs", "Input should be a valid dictionary", kwargs)
    thinking = kwargs.get("enable_thinking", True)
    return ChatRequest(
        common=_common(body, ("max_completion_tokens", "max_tokens")),
        messages=messages,
        add_generation_prompt=_bool(body, "add_generation_prompt", True),
        continue_final_message=_bool(body, "continue_final_message", False),
        enable_thinking=thinking is not False,
        include_reasoning=_bool(body, "include_reasoning", True),
        return_prompt_text=_bool(body, "return_prompt_text", False),
    )
