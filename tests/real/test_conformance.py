"""The twin against the real server: the same requests must get the same answers, up to the values.

Every case of the table goes once to the real vLLM CPU server (``real_vllm``) and once to the twin of
its profile (``FakeServer("smollm2-cpu")``). The two answers must agree on the status, the content
type and the ``server``/``vary`` headers, the JSON shape (keys in their order and value types,
recursively; a ``null`` on the real side admits any value on the twin's), the SSE framing and the chunk
shapes, and exactly on what is not model output: ``object``, ``model``, ``role``, ``index``,
``max_model_len``, the id and fingerprint formats, error types, codes, params and messages (first the
part before vLLM's `` (parameter=...)`` suffix, then the whole), and whatever a case lists in ``exact``.
Text, token ids and token counts differ (the twin has its own tokenizer and writes its own words), and
so do ``created``, the random ids and the fingerprint's config hash.

Where the twin differs on purpose, the case says why and asserts the documented difference instead.
The requests are plain ``requests`` calls: nothing here is shared with the code under test.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from pytest_gx10.fake.server import FakeServer

pytestmark = pytest.mark.real

MODEL = "SmolLM2-135M-Instruct"
MAX_MODEL_LEN = 8192
TIMEOUT_S = 120.0
JSON = "application/json"

# Keys whose values are not model output: they must be equal wherever they occur.
EXACT_KEYS = frozenset(
    {"object", "model", "owned_by", "max_model_len", "role", "index", "version", "server_load"}
)
# Lists whose items are maps keyed by model output: completions' top_logprobs (token -> logprob) and
# prompt_logprobs (token id -> {logprob, rank, decoded_token}).
MAP_LISTS = frozenset({"top_logprobs", "prompt_logprobs"})
# Keys whose values must be equal once their random or config-dependent part is masked.
MASKED_KEYS: dict[str, tuple[re.Pattern[str], str]] = {
    "id": (re.compile(r"^(cmpl|chatcmpl|modelperm)-[0-9a-f]{16}$"), r"\1-<hex16>"),
    "system_fingerprint": (re.compile(r"^vllm-(\d+\.\d+\.\d+)-[0-9a-f]{8}$"), r"vllm-\1-<hex8>"),
}


@dataclass(frozen=True)
class Raw:
    """A request body sent as these exact bytes."""

    data: bytes


@dataclass(frozen=True)
class Reply:
    """What a server answered."""

    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Case:
    """One request and what must hold of the two answers.

    ``status`` is what the real server answers (checked, so the table documents it). ``exact`` lists
    dotted paths whose values must be equal; for a stream they index the summary of :func:`_stream`
    (``finish_reason``, ``stop_reason``, ``completion_tokens``, ``text``). ``clamped`` also checks, through
    ``vllm:request_params_max_tokens``, that both servers ran the request with max_tokens clamped to the
    context that is left. ``twin_differs`` documents a deliberate difference, asserted by ``check``.
    """

    id: str
    method: str
    path: str
    body: Any = None
    content_type: str | None = JSON
    status: int = 200
    exact: tuple[str, ...] = ()
    clamped: bool = False
    twin_differs: str | None = None
    check: Callable[[Reply, Reply], None] | None = None


def _completion(**extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": "The capital of France is", "temperature": 0, "max_tokens": 4, **extra}


def _chat(**extra: Any) -> dict[str, Any]:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0,
        "max_tokens": 4,
    }
    return {**body, **extra}


USAGE = {"stream": True, "stream_options": {"include_usage": True}}
LONG_PROMPT = " hello" * 9000  # 9000 tokens on both tokenizers, over the 8192 context


def _n_choices_only_on_real(real: Reply, twin: Reply) -> None:
    assert real.status == 200, real.body
    assert [c["index"] for c in real.json()["choices"]] == [0, 1]
    assert twin.status == 400, twin.body
    error = twin.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("BadRequestError", 400, "n")
    assert error["message"].startswith("The pytest-gx10 twin supports only n=1.")


def _batch_only_on_real(real: Reply, twin: Reply) -> None:
    assert real.status == 200, real.body
    assert [c["index"] for c in real.json()["choices"]] == [0, 1]
    assert twin.status == 400, twin.body
    error = twin.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("BadRequestError", 400, "prompt")
    assert error["message"].startswith("The pytest-gx10 twin supports one prompt per request.")


CASES = [
    # --- liveness and metadata
    Case("health", "GET", "/health"),
    Case("health-head-405", "HEAD", "/health", status=405),
    Case("health-post-405", "POST", "/health", status=405),
    Case("ping", "GET", "/ping"),
    Case("ping-post", "POST", "/ping"),
    Case("version", "GET", "/version"),
    Case("models", "GET", "/v1/models"),
    Case("load", "GET", "/load"),
    # --- tokenizer endpoints
    Case("tokenize-prompt", "POST", "/tokenize", {"model": MODEL, "prompt": "Hello, world!"}),
    Case(
        "tokenize-prompt-token-strs",
        "POST",
        "/tokenize",
        {"prompt": "Hello, world!", "return_token_strs": True, "add_special_tokens": False},
    ),
    Case(
        "tokenize-chat-token-strs",
        "POST",
        "/tokenize",
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Hello, world!"}],
            "return_token_strs": True,
        },
    ),
    Case(
        "tokenize-chat-no-generation-prompt",
        "POST",
        "/tokenize",
        {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": False},
    ),
    Case("tokenize-unknown-model", "POST", "/tokenize", {"model": "gpt-4", "prompt": "Hi"}, status=404),
    Case("detokenize", "POST", "/detokenize", {"model": MODEL, "tokens": [19556, 28, 905, 17]}),
    Case("detokenize-out-of-vocab", "POST", "/detokenize", {"tokens": [999999]}, exact=("prompt",)),
    # --- completions
    Case("completion", "POST", "/v1/completions", _completion()),
    Case(
        "completion-no-model", "POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0}
    ),
    Case(
        "completion-ignore-eos",
        "POST",
        "/v1/completions",
        _completion(prompt="Hi", ignore_eos=True),
        exact=("choices.0.finish_reason", "usage.completion_tokens"),
    ),
    Case(
        "completion-stop",
        "POST",
        "/v1/completions",
        _completion(stop=[" "]),
        exact=(
            "choices.0.text",
            "choices.0.finish_reason",
            "choices.0.stop_reason",
            "usage.completion_tokens",
        ),
    ),
    Case(
        "completion-max-tokens-clamped",
        "POST",
        "/v1/completions",
        _completion(max_tokens=MAX_MODEL_LEN, stop=[" "]),
        exact=("choices.0.text", "choices.0.finish_reason", "choices.0.stop_reason"),
        clamped=True,
    ),
    Case(
        "completion-stream-usage",
        "POST",
        "/v1/completions",
        _completion(ignore_eos=True, **USAGE),
        exact=("finish_reason", "completion_tokens"),
    ),
    Case(
        "completion-stream",
        "POST",
        "/v1/completions",
        _completion(ignore_eos=True, stream=True),
        exact=("finish_reason",),
    ),
    Case(
        "completion-stream-usage-false",
        "POST",
        "/v1/completions",
        _completion(max_tokens=2, stream=True, stream_options={"include_usage": False}),
    ),
    Case(
        "completion-stream-stop",
        "POST",
        "/v1/completions",
        _completion(stop=[" "], stream=True),
        exact=("finish_reason", "stop_reason", "text"),
    ),
    # --- chat completions
    Case("chat", "POST", "/v1/chat/completions", _chat()),
    Case(
        "chat-ignore-eos",
        "POST",
        "/v1/chat/completions",
        _chat(ignore_eos=True, max_completion_tokens=3),
        exact=("choices.0.finish_reason", "usage.completion_tokens"),
    ),
    Case(
        "chat-stop",
        "POST",
        "/v1/chat/completions",
        _chat(stop=[" "], max_tokens=8),
        exact=("choices.0.finish_reason", "choices.0.stop_reason"),
    ),
    Case(
        "chat-stream-usage",
        "POST",
        "/v1/chat/completions",
        _chat(ignore_eos=True, **USAGE),
        exact=("finish_reason", "completion_tokens"),
    ),
    Case(
        "chat-stream",
        "POST",
        "/v1/chat/completions",
        _chat(ignore_eos=True, stream=True),
        exact=("finish_reason",),
    ),
    # --- requests vLLM refuses before it reads them
    Case("invalid-json", "POST", "/v1/completions", Raw(b'{"model":'), status=400),
    Case("body-is-a-list", "POST", "/v1/completions", [{"model": MODEL, "prompt": "Hi"}], status=400),
    Case("no-content-type", "POST", "/v1/completions", _completion(), content_type=None, status=400),
    Case(
        "content-type-text", "POST", "/v1/completions", _completion(), content_type="text/plain", status=400
    ),
    Case(
        "content-type-form",
        "POST",
        "/v1/chat/completions",
        _chat(),
        content_type="application/x-www-form-urlencoded",
        status=400,
    ),
    Case("chat-no-messages", "POST", "/v1/chat/completions", {"model": MODEL, "max_tokens": 4}, status=400),
    Case(
        "stream-options-without-stream",
        "POST",
        "/v1/completions",
        _completion(stream_options={"include_usage": True}),
        status=400,
    ),
    # --- requests it refuses for their values
    Case("max-tokens-0", "POST", "/v1/completions", _completion(max_tokens=0), status=400),
    Case("max-tokens-minus-1", "POST", "/v1/completions", _completion(max_tokens=-1), status=400),
    Case("chat-max-tokens-0", "POST", "/v1/chat/completions", _chat(max_tokens=0), status=400),
    Case(
        "max-tokens-over-context",
        "POST",
        "/v1/completions",
        _completion(max_tokens=MAX_MODEL_LEN + 1),
        status=400,
    ),
    Case(
        "chat-max-completion-tokens-over-context",
        "POST",
        "/v1/chat/completions",
        _chat(max_completion_tokens=9000),
        status=400,
    ),
    Case("temperature-minus-1", "POST", "/v1/completions", _completion(temperature=-1), status=400),
    Case("temperature-3", "POST", "/v1/chat/completions", _chat(temperature=3), status=400),
    Case(
        "temperature-before-max-tokens",
        "POST",
        "/v1/completions",
        _completion(temperature=-1, max_tokens=0),
        status=400,
    ),
    Case("min-tokens-over-max-tokens", "POST", "/v1/completions", _completion(min_tokens=8), status=400),
    Case("n-0", "POST", "/v1/completions", _completion(n=0), status=400),
    Case("n-2-greedy", "POST", "/v1/completions", _completion(n=2), status=400),
    Case("unknown-model", "POST", "/v1/completions", _completion(model="gpt-4"), status=404),
    Case("chat-unknown-model", "POST", "/v1/chat/completions", _chat(model="gpt-4"), status=404),
    Case(
        "unknown-model-before-empty-messages",
        "POST",
        "/v1/chat/completions",
        _chat(model="gpt-4", messages=[]),
        status=404,
    ),
    Case("prompt-over-context", "POST", "/v1/completions", _completion(prompt=LONG_PROMPT), status=400),
    Case(
        "chat-prompt-over-context",
        "POST",
        "/v1/chat/completions",
        _chat(messages=[{"role": "user", "content": LONG_PROMPT}]),
        status=400,
    ),
    Case("empty-prompt", "POST", "/v1/completions", _completion(prompt=""), status=400),
    Case("no-prompt", "POST", "/v1/completions", {"model": MODEL, "max_tokens": 4}, status=400),
    Case("empty-messages", "POST", "/v1/chat/completions", _chat(messages=[]), status=400),
    Case(
        "max-tokens-over-context-before-empty-messages",
        "POST",
        "/v1/chat/completions",
        _chat(messages=[], max_tokens=9000),
        status=400,
    ),
    # --- a streaming request refused up front gets a plain JSON error, not SSE
    Case(
        "stream-max-tokens-0", "POST", "/v1/completions", _completion(max_tokens=0, stream=True), status=400
    ),
    Case(
        "chat-stream-unknown-model",
        "POST",
        "/v1/chat/completions",
        _chat(model="gpt-4", stream=True),
        status=404,
    ),
    Case(
        "stream-prompt-over-context",
        "POST",
        "/v1/completions",
        _completion(prompt=LONG_PROMPT, **USAGE),
        status=400,
    ),
    # --- routing
    Case("unknown-path", "GET", "/v1/nope", status=404),
    Case("completions-get-405", "GET", "/v1/completions", status=405),
    Case("models-post-405", "POST", "/v1/models", {}, status=405),
    # --- deliberate differences
    Case(
        "n-2-sampled",
        "POST",
        "/v1/completions",
        _completion(prompt="Hi", n=2, temperature=0.7, max_tokens=2),
        twin_differs="the twin writes one deterministic answer per prompt, so it refuses n>1 (greedy n>1 is "
        "refused by vLLM too, with vLLM's message: case n-2-greedy)",
        check=_n_choices_only_on_real,
    ),
    Case(
        "batch-prompt",
        "POST",
        "/v1/completions",
        _completion(prompt=["Hi", "Hello"], max_tokens=2),
        twin_differs="the twin serves one prompt per request",
        check=_batch_only_on_real,
    ),
]


# --- one case or more per request field (tests/helpers/conformance_fields.py lists them) -------------

ECHO_MESSAGES = [
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "The colour is"},
]
CONTINUE = {"messages": ECHO_MESSAGES, "add_generation_prompt": False, "continue_final_message": True}
CONTINUOUS = {"stream": True, "stream_options": {"include_usage": True, "continuous_usage_stats": True}}
REQUEST_ID = "0123456789abcdef"  # the id vLLM then answers with: chatcmpl-/cmpl- and this

# Fields that change sampling only: each alone, with a valid value, the answer's shape unchanged.
SAMPLING_FIELDS: dict[str, Any] = {
    "n": 1,
    "frequency_penalty": 0.5,
    "presence_penalty": 0.5,
    "repetition_penalty": 1.2,
    "top_p": 0.9,
    "top_k": 5,
    "min_p": 0.1,
    "length_penalty": 1.0,
    "logit_bias": {"28": 1.5},
    "allowed_token_ids": [28, 905, 17, 2],
    "bad_words": ["Paris"],
    "stop_token_ids": [28],
    "skip_special_tokens": False,
    "spaces_between_special_tokens": False,
    "user": "conformance",
    "priority": 0,
    "session_id": "conformance-session",
    "cache_salt": "conformance-salt",
    "add_special_tokens": True,
    "response_format": {"type": "json_object"},
    "structured_outputs": {"choice": ["yes", "no"]},
}


def _field_cases() -> list[Case]:
    cases: list[Case] = []
    for name, value in SAMPLING_FIELDS.items():
        slug = name.replace("_", "-")
        cases.append(Case(f"chat-{slug}", "POST", "/v1/chat/completions", _chat(**{name: value})))
        cases.append(Case(f"completion-{slug}", "POST", "/v1/completions", _completion(**{name: value})))
    for kind, path, body in (
        ("chat", "/v1/chat/completions", _chat),
        ("completion", "/v1/completions", _completion),
    ):
        cases += [
            Case(f"{kind}-seed", "POST", path, body(seed=1234, temperature=0.7)),
            Case(f"{kind}-response-format-text", "POST", path, body(response_format={"type": "text"})),
            Case(
                f"{kind}-min-tokens",
                "POST",
                path,
                body(min_tokens=3),
            ),
            Case(
                f"{kind}-include-stop-str",
                "POST",
                path,
                body(stop=[" "], include_stop_str_in_output=True, max_tokens=8),
                exact=(
                    "choices.0.finish_reason",
                    "choices.0.stop_reason",
                )
                + (("choices.0.text",) if kind == "completion" else ()),
            ),
            Case(
                f"{kind}-include-stop-str-stream",
                "POST",
                path,
                body(stop=[" "], include_stop_str_in_output=True, max_tokens=8, stream=True),
                exact=("finish_reason", "stop_reason") + (("text",) if kind == "completion" else ()),
            ),
            Case(
                f"{kind}-truncate-prompt-tokens",
                "POST",
                path,
                body(truncate_prompt_tokens=3),
                exact=("usage.prompt_tokens",),
            ),
            Case(
                f"{kind}-truncation-side-right",
                "POST",
                path,
                body(truncate_prompt_tokens=3, truncation_side="right"),
                exact=("usage.prompt_tokens",),
            ),
            Case(f"{kind}-prompt-logprobs", "POST", path, body(prompt_logprobs=2)),
            Case(f"{kind}-return-token-ids", "POST", path, body(return_token_ids=True)),
            Case(f"{kind}-return-token-ids-stream", "POST", path, body(return_token_ids=True, **USAGE)),
            Case(
                f"{kind}-request-id",
                "POST",
                path,
                body(request_id=REQUEST_ID),
                exact=("id",),
            ),
            Case(
                f"{kind}-stream-continuous-usage",
                "POST",
                path,
                body(ignore_eos=True, **CONTINUOUS),
                exact=("finish_reason", "completion_tokens"),
            ),
            Case(f"{kind}-stream-interval", "POST", path, body(ignore_eos=True, stream_interval=2, **USAGE)),
        ]
    cases += [
        # chat logprobs: content[] of token, logprob, bytes, top_logprobs[]
        Case("chat-logprobs", "POST", "/v1/chat/completions", _chat(logprobs=True)),
        Case("chat-top-logprobs", "POST", "/v1/chat/completions", _chat(logprobs=True, top_logprobs=3)),
        Case(
            "chat-top-logprobs-stream",
            "POST",
            "/v1/chat/completions",
            _chat(logprobs=True, top_logprobs=3, ignore_eos=True, **USAGE),
        ),
        Case(
            "chat-logprobs-as-token-ids",
            "POST",
            "/v1/chat/completions",
            _chat(logprobs=True, top_logprobs=2, return_tokens_as_token_ids=True),
        ),
        Case(
            "chat-max-tokens-and-completion-tokens",
            "POST",
            "/v1/chat/completions",
            _chat(max_tokens=9, max_completion_tokens=3, ignore_eos=True),
            exact=("usage.completion_tokens",),
        ),
        Case("chat-echo", "POST", "/v1/chat/completions", _chat(echo=True, **CONTINUE)),
        Case("chat-echo-stream", "POST", "/v1/chat/completions", _chat(echo=True, **CONTINUE, **USAGE)),
        Case(
            "chat-no-generation-prompt",
            "POST",
            "/v1/chat/completions",
            _chat(add_generation_prompt=False),
        ),
        Case(
            "chat-template-kwargs",
            "POST",
            "/v1/chat/completions",
            _chat(chat_template_kwargs={"enable_thinking": False}),
        ),
        Case("chat-include-reasoning-false", "POST", "/v1/chat/completions", _chat(include_reasoning=False)),
        Case("chat-return-prompt-text", "POST", "/v1/chat/completions", _chat(return_prompt_text=True)),
        Case(
            "chat-return-prompt-text-stream",
            "POST",
            "/v1/chat/completions",
            _chat(return_prompt_text=True, **USAGE),
        ),
        Case(
            "chat-documents",
            "POST",
            "/v1/chat/completions",
            _chat(documents=[{"title": "Colours", "text": "The sky is blue."}]),
        ),
        # completions logprobs: tokens, token_logprobs, top_logprobs{}, text_offset
        Case("completion-logprobs-0", "POST", "/v1/completions", _completion(logprobs=0)),
        Case("completion-logprobs", "POST", "/v1/completions", _completion(logprobs=3)),
        Case(
            "completion-logprobs-stream",
            "POST",
            "/v1/completions",
            _completion(logprobs=3, ignore_eos=True, **USAGE),
        ),
        Case(
            "completion-logprobs-as-token-ids",
            "POST",
            "/v1/completions",
            _completion(logprobs=2, return_tokens_as_token_ids=True),
        ),
        Case("completion-echo", "POST", "/v1/completions", _completion(echo=True)),
        Case("completion-echo-stream", "POST", "/v1/completions", _completion(echo=True, **USAGE)),
        Case("completion-echo-logprobs", "POST", "/v1/completions", _completion(echo=True, logprobs=2)),
        Case("completion-suffix", "POST", "/v1/completions", _completion(suffix="!"), status=400),
    ]
    return cases


CASES += _field_cases()


# --- fixtures and transport ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twin() -> Iterator[str]:
    """The twin standing in for the real server, 20 times faster than real time."""
    with FakeServer("smollm2-cpu", time_scale=20) as server:
        yield server.url


def _send(base: str, case: Case) -> Reply:
    headers: dict[str, str] = {}
    data: bytes | None = None
    if case.body is not None:
        data = case.body.data if isinstance(case.body, Raw) else json.dumps(case.body).encode()
        if case.content_type is not None:
            headers["Content-Type"] = case.content_type
    response = requests.request(case.method, base + case.path, data=data, headers=headers, timeout=TIMEOUT_S)
    with response:
        return Reply(
            response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content
        )


# --- comparison ----------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _masked(key: str, value: Any) -> Any:
    if key in MASKED_KEYS and isinstance(value, str):
        pattern, replacement = MASKED_KEYS[key]
        return pattern.sub(replacement, value)
    return value


def _compare(real: Any, twin: Any, path: str, problems: list[str]) -> None:
    """Collect where ``twin`` does not have the shape of ``real`` (a real null admits anything)."""
    if real is None:
        return
    if _type_name(real) != _type_name(twin):
        problems.append(f"{path}: real {_type_name(real)} {real!r:.80}, twin {_type_name(twin)} {twin!r:.80}")
        return
    if isinstance(real, dict):
        if set(real) != set(twin):
            problems.append(
                f"{path}: keys only on the real server {sorted(set(real) - set(twin))}, "
                f"only on the twin {sorted(set(twin) - set(real))}"
            )
        elif list(real) != list(twin):
            problems.append(f"{path}: key order real {list(real)}, twin {list(twin)}")
        for key in real.keys() & twin.keys():
            sub = f"{path}.{key}"
            pinned = key in EXACT_KEYS or key in MASKED_KEYS
            if pinned and _masked(key, real[key]) != _masked(key, twin[key]):
                problems.append(f"{sub}: real {real[key]!r}, twin {twin[key]!r}")
            _compare(real[key], twin[key], sub, problems)
    elif isinstance(real, list):
        if bool(real) != bool(twin):
            problems.append(f"{path}: real has {len(real)} items, twin {len(twin)}")
            return
        # Items have one shape: each of the twin's has the shape of the real server's first non-null.
        model = next((item for item in real if item is not None), None)
        if model is None:
            return
        keyed = path.rsplit(".", 1)[-1] in MAP_LISTS and isinstance(model, dict) and not _is_record(model)
        for i, item in enumerate(twin):
            if item is None:
                continue
            if keyed:
                _compare_map(model, item, f"{path}[{i}]", problems)
            else:
                _compare(model, item, f"{path}[{i}]", problems)


def _is_record(obj: dict[str, Any]) -> bool:
    """A chat top_logprobs entry (fixed keys), as opposed to a map keyed by tokens or token ids."""
    return "token" in obj and "logprob" in obj


def _compare_map(real: dict[str, Any], twin: dict[str, Any], path: str, problems: list[str]) -> None:
    """A map keyed by model output (a token, a token id): its values must have the real values' shape."""
    if not twin:
        problems.append(f"{path}: real has {len(real)} entries, twin none")
        return
    model = next(iter(real.values()))
    for key, value in twin.items():
        _compare(model, value, f"{path}[{key!r}]", problems)


def _assert_same_shape(real: Any, twin: Any, what: str) -> None:
    problems: list[str] = []
    _compare(real, twin, "$", problems)
    assert not problems, f"{what}: the twin differs from the real server:\n  " + "\n  ".join(problems)


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _check_exact(case: Case, real: Any, twin: Any) -> None:
    for dotted in case.exact:
        assert _get(real, dotted) == _get(twin, dotted), (
            f"{dotted}: real {_get(real, dotted)!r}, twin {_get(twin, dotted)!r}"
        )


def _check_usage(body: dict[str, Any], requested: Any, who: str) -> None:
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], (who, usage)
    if isinstance(requested, int):
        assert 1 <= usage["completion_tokens"] <= requested, (who, usage)


def _max_tokens(case: Case) -> Any:
    body = case.body if isinstance(case.body, dict) else {}
    return body.get("max_completion_tokens", body.get("max_tokens"))


# --- SSE -----------------------------------------------------------------------------------------------


def _stream(
    reply: Reply, chat: bool, include_usage: bool, who: str, continuous: bool = False
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Check one stream's framing; return its chunks by kind (role, delta, finish, usage) and a summary."""
    assert reply.content_type == "text/event-stream; charset=utf-8", (who, reply.headers)
    assert "content-length" not in reply.headers, (who, reply.headers)
    assert reply.headers.get("transfer-encoding") == "chunked", (who, reply.headers)
    text = reply.body.decode()
    assert text.endswith("data: [DONE]\n\n"), f"{who}: the stream must end with data: [DONE]: {text[-200:]!r}"
    events = text.split("\n\n")
    assert events[-1] == "", f"{who}: something after [DONE]"
    events = events[:-1]
    for event in events:
        assert re.fullmatch(r"data: [^\r\n]*", event), f"{who}: bad event {event!r}"
    payloads = [event.removeprefix("data: ") for event in events]
    assert payloads.count("[DONE]") == 1, f"{who}: [DONE] must come exactly once, last"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert chunks, f"{who}: no chunks"
    assert all("error" not in c for c in chunks), f"{who}: in-band error {chunks}"
    assert len({c["id"] for c in chunks}) == 1, f"{who}: one id per stream"
    assert len({c["created"] for c in chunks}) == 1, f"{who}: one created per stream"

    kinds: dict[str, list[Any]] = {"role": [], "delta": [], "finish": [], "usage": []}
    order: list[str] = []
    for i, chunk in enumerate(chunks):
        if not chunk["choices"]:
            kind = "usage"
        elif chat and i == 0:
            kind = "role"
            assert chunk["choices"][0]["delta"] == {"role": "assistant", "content": ""}, (who, chunk)
        elif chunk["choices"][0]["finish_reason"] is not None:
            kind = "finish"
        else:
            kind = "delta"
        if kind != "role" and chat and chunk["choices"]:
            assert "role" not in chunk["choices"][0]["delta"], f"{who}: role outside the first chunk: {chunk}"
        kinds[kind].append(chunk)
        order.append(kind)
    expected = "^" + ("role," if chat else "") + "(delta,)*finish" + (",usage" if include_usage else "") + "$"
    assert re.match(expected, ",".join(order)), f"{who}: chunk order {order}, expected {expected}"
    with_usage = [c for c in chunks if "usage" in c]
    with_fingerprint = [c for c in chunks if "system_fingerprint" in c]
    if continuous:
        # continuous_usage_stats: every chunk carries the usage so far, the last one the total.
        assert with_usage == chunks, f"{who}: a chunk without usage under continuous_usage_stats"
        assert with_fingerprint == kinds["usage"], f"{who}: the fingerprint goes on the usage chunk"
        with_usage = kinds["usage"]
    elif include_usage:
        assert len(with_usage) == 1, f"{who}: exactly one usage chunk"
        assert with_usage == kinds["usage"], f"{who}: the usage chunk has choices []"
        assert with_fingerprint == with_usage, f"{who}: the fingerprint goes on the usage chunk"
    else:
        assert not with_usage, f"{who}: usage without include_usage"
        assert with_fingerprint == kinds["finish"], f"{who}: the fingerprint goes on the finishing chunk"

    finish = kinds["finish"][0]["choices"][0]
    pieces = [
        c["choices"][0].get("text", c["choices"][0].get("delta", {}).get("content"))
        for c in chunks[:-1]
        if c["choices"]
    ]
    pieces.append(finish.get("text", finish.get("delta", {}).get("content")))
    usage = with_usage[0]["usage"] if with_usage else None
    if usage is not None:
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], (who, usage)
    summary = {
        "finish_reason": finish["finish_reason"],
        "stop_reason": finish.get("stop_reason"),
        "completion_tokens": usage["completion_tokens"] if usage else None,
        "text": "".join(p for p in pieces if p),
    }
    return kinds, summary


def _compare_streams(case: Case, real: Reply, twin: Reply) -> None:
    body = case.body
    chat = case.path.endswith("/chat/completions")
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage"))
    continuous = include_usage and bool(options.get("continuous_usage_stats"))
    real_kinds, real_summary = _stream(real, chat, include_usage, "real server", continuous)
    twin_kinds, twin_summary = _stream(twin, chat, include_usage, "twin", continuous)
    for kind, real_chunks in real_kinds.items():
        assert bool(real_chunks) == bool(twin_kinds[kind]), (
            f"{kind} chunks: real {len(real_chunks)}, twin {len(twin_kinds[kind])}"
        )
        # The i-th chunk of a kind has the shape of the real server's i-th (its last, past its count):
        # an echo chunk, say, comes first among the deltas on both.
        for i, chunk in enumerate(twin_kinds[kind]):
            _assert_same_shape(real_chunks[min(i, len(real_chunks) - 1)], chunk, f"{kind} chunk {i}")
    _check_exact(case, real_summary, twin_summary)


# --- metrics -------------------------------------------------------------------------------------------


@dataclass
class Family:
    """One metric family of a Prometheus text exposition."""

    type: str
    series: set[tuple[tuple[str, str], ...]] = field(default_factory=set)  # label sets, without "le"
    buckets: set[str] = field(default_factory=set)  # the "le" values of a histogram


_SAMPLE = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>.*)\})?\s+\S+")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _families(text: str) -> dict[str, Family]:
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            current = families.setdefault(name, Family(kind))
        elif line and not line.startswith("#") and current is not None:
            match = _SAMPLE.match(line)
            assert match, line
            labels = dict(_LABEL.findall(match["labels"] or ""))
            if "le" in labels:
                current.buckets.add(labels.pop("le"))
            current.series.add(tuple(sorted(labels.items())))
    return {name: fam for name, fam in families.items() if name.startswith("vllm:")}


def _metric_sum(base: str, sample: str) -> float:
    text = requests.get(base + "/metrics", timeout=TIMEOUT_S).text
    return sum(
        float(line.rsplit(maxsplit=1)[1]) for line in text.splitlines() if line.startswith(sample + "{")
    )


def _max_tokens_sum_after(base: str, before: float, deadline_s: float = 5.0) -> float:
    """vllm:request_params_max_tokens_sum once the request just answered has been counted."""
    end = time.monotonic() + deadline_s
    while True:
        now = _metric_sum(base, "vllm:request_params_max_tokens_sum")
        if now != before or time.monotonic() > end:
            return now
        time.sleep(0.05)


# --- the tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_twin_answers_like_real_vllm(case: Case, real_vllm: str, twin: str) -> None:
    """The real server and the twin give the same answer, up to model output, random ids and times."""
    if case.clamped:
        before = {base: _metric_sum(base, "vllm:request_params_max_tokens_sum") for base in (real_vllm, twin)}
    real = _send(real_vllm, case)
    twin_reply = _send(twin, case)
    if case.twin_differs is not None:
        assert case.check is not None
        case.check(real, twin_reply)
        return

    assert real.status == case.status, f"the real server answered {real.status}: {real.body[:500]!r}"
    assert twin_reply.status == real.status, f"twin {twin_reply.status}: {twin_reply.body[:500]!r}"
    assert twin_reply.content_type == real.content_type
    for name in ("server", "vary"):
        assert twin_reply.headers.get(name) == real.headers.get(name), name
    if real.status == 405:
        assert twin_reply.headers.get("allow") == real.headers.get("allow")
    if not real.body:
        assert not twin_reply.body, twin_reply.body
        return

    streaming = isinstance(case.body, dict) and case.body.get("stream") is True and real.status == 200
    if streaming:
        _compare_streams(case, real, twin_reply)
        return

    real_body, twin_body = real.json(), twin_reply.json()
    _assert_same_shape(real_body, twin_body, case.id)
    if "error" in real_body:
        r, t = real_body["error"], twin_body["error"]
        assert (t["type"], t["code"], t["param"]) == (r["type"], r["code"], r["param"])
        assert t["message"].split(" (parameter=")[0] == r["message"].split(" (parameter=")[0]
        assert t["message"] == r["message"]
    elif "detail" in real_body:
        assert twin_body == real_body
    _check_exact(case, real_body, twin_body)
    if real.status == 200 and "usage" in real_body:
        _check_usage(real_body, _max_tokens(case), "real server")
        _check_usage(twin_body, _max_tokens(case), "twin")
    if case.clamped:
        for base, body in ((real_vllm, real_body), (twin, twin_body)):
            ran_with = _max_tokens_sum_after(base, before[base]) - before[base]
            assert ran_with == MAX_MODEL_LEN - body["usage"]["prompt_tokens"], (base, ran_with)


def test_twin_metrics_exist_on_real_vllm(real_vllm: str, twin: str) -> None:
    """Every vllm: metric of the twin is on the real server, with the same type, series and buckets."""
    real_reply = requests.get(real_vllm + "/metrics", timeout=TIMEOUT_S)
    twin_reply = requests.get(twin + "/metrics", timeout=TIMEOUT_S)
    assert real_reply.status_code == twin_reply.status_code == 200
    assert twin_reply.headers["content-type"] == real_reply.headers["content-type"]
    real, mine = _families(real_reply.text), _families(twin_reply.text)
    assert mine, "the twin exposes no vllm: metrics"
    problems = []
    for name, fam in sorted(mine.items()):
        if name not in real:
            problems.append(f"{name} ({fam.type}) is not on the real server")
            continue
        if fam.type != real[name].type:
            problems.append(f"{name}: twin {fam.type}, real {real[name].type}")
        if not fam.series <= real[name].series:
            problems.append(
                f"{name}: series only on the twin {sorted(fam.series - real[name].series)}, "
                f"the real server's {sorted(real[name].series - fam.series)}"
            )
        if fam.buckets != real[name].buckets:
            problems.append(
                f"{name}: buckets twin {sorted(fam.buckets, key=float)}, real {sorted(real[name].buckets, key=float)}"
            )
    assert not problems, "\n".join(problems)


def _label_names(family: Family) -> set[str]:
    return {name for series in family.series for name, _ in series}


def test_twin_has_every_metric_family_of_real_vllm(real_vllm: str, twin: str) -> None:
    """After both served the table, the twin's vllm: families are the real server's: names, types, labels.

    Runs after the table (pytest keeps file order), so every family a request touches has samples.
    """
    real = _families(requests.get(real_vllm + "/metrics", timeout=TIMEOUT_S).text)
    mine = _families(requests.get(twin + "/metrics", timeout=TIMEOUT_S).text)
    assert len(real) > 20, sorted(real)
    problems = [
        f"{name} ({real[name].type}) is only on the real server" for name in sorted(real.keys() - mine.keys())
    ]
    problems += [
        f"{name} ({mine[name].type}) is only on the twin" for name in sorted(mine.keys() - real.keys())
    ]
    for name in sorted(real.keys() & mine.keys()):
        if real[name].type != mine[name].type:
            problems.append(f"{name}: real {real[name].type}, twin {mine[name].type}")
        if _label_names(real[name]) != _label_names(mine[name]):
            problems.append(
                f"{name}: labels real {sorted(_label_names(real[name]))}, twin {sorted(_label_names(mine[name]))}"
            )
    assert not problems, "\n".join(problems)
