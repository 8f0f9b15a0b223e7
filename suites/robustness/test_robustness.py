"""Bad inputs that have crashed vLLM servers in the field: each must be refused cleanly.

Every case sends one request and expects a 4xx (or a well-formed 200 where vLLM accepts the input),
never a 5xx and never a dropped connection. After each, /health must still be 200 and the canary (a
fixed greedy completion taken once before the first case) must answer exactly what it answered
before: an engine that survives a request but is left corrupted fails here, at the case that did it.
A hypothesis fuzz of request bodies (a bounded, derandomized number of examples) holds the same line.
Each case records its status and the start of the error message in the results section "robustness".
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from pytest_gx10.client import EndpointError, RawResponse, VllmClient
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import NotOffered, Server
from pytest_gx10.settings import Settings
from pytest_gx10.workload import CanaryResult, canary, sized_prompt

from .figures import ROBUSTNESS

COMPLETIONS = "/v1/completions"
CHAT = "/v1/chat/completions"
MAX_TOKENS = 4  # every request that could be accepted decodes at most this many tokens
SPECIAL_TOKENS = "<|endoftext|><|im_start|>system\n<|im_end|><s></s><think></think>[INST]<|eot_id|>"
BODY_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class Facts:
    """What the cases are built from: the served model and its limits, as the server reports them.

    An engine that does not give its context window or its tokenizer leaves the over-length facts
    None; the two cases built from them skip, saying which (``missing``).
    """

    model: str
    max_model_len: int | None
    token_id: int | None  # a token id the served vocabulary has
    over_length_text: str | None  # a prompt of exactly max_model_len + 1 tokens by the server's count
    large_body_mb: int
    huge_header_kb: int
    missing: str = ""

    def over_length(self) -> tuple[int, int, str]:
        """(max_model_len, a token id, the over-length text), or NotOffered naming what is missing."""
        if self.max_model_len is None or self.token_id is None or self.over_length_text is None:
            raise NotOffered(self.missing)
        return self.max_model_len, self.token_id, self.over_length_text


@dataclass(frozen=True)
class Request:
    """One raw request: the bytes to send and how."""

    path: str
    body: str
    content_type: str | None = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``POST /v1/completions {"prompt": ...`` for people, the body cut short."""
        body = self.body if len(self.body) <= 160 else f"{self.body[:160]}... ({len(self.body)} bytes)"
        return f"POST {self.path} {body}"


@dataclass(frozen=True)
class Case:
    """A bad input, named for the report, built against the served model's facts."""

    id: str
    build: Callable[[Facts], Request]


@dataclass(frozen=True)
class Finding:
    """A known bug of one engine (docs/robustness-findings.md, one entry each).

    On that engine, a failure of one of its ``cases`` is reported as the finding (xfail), not as news,
    and a server that fixed it passes; the fuzz leaves the bodies it ``meets`` to those cases and looks
    for new findings. Other engines are held to every case.
    """

    server: str  # the adapter's name (pytest_gx10.servers)
    says: str
    cases: tuple[str, ...]
    meets: Callable[[Mapping[str, Any]], bool] = lambda body: False


FINDINGS_DOC = "docs/robustness-findings.md"


def _has(value: Any, test: Callable[[Any], bool]) -> bool:
    """True when ``value`` or anything nested in it passes ``test``."""
    if test(value):
        return True
    if isinstance(value, Mapping):
        return any(_has(k, test) or _has(v, test) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has(v, test) for v in value)
    return False


def _not_json(body: Mapping[str, Any]) -> bool:
    """NaN or an infinity (JavaScript literals, not JSON), or a lone surrogate in a string."""

    def bad(v: Any) -> bool:
        if isinstance(v, float):
            return not math.isfinite(v)
        return isinstance(v, str) and any("\ud800" <= c <= "\udfff" for c in v)

    return _has(body, bad)


def _mistyped_message(value: Any) -> bool:
    """A chat message whose role, name or tool call id is not a string, or whose content is neither
    a string nor a list of parts."""
    if not isinstance(value, Mapping):
        return False
    if any(k in value and not isinstance(value[k], str) for k in ("role", "name", "tool_call_id")):
        return True
    return "content" in value and not isinstance(value["content"], str | list | None)


FINDINGS: tuple[Finding, ...] = (
    Finding(
        "vllm",
        "vLLM 0.32.0 answers HTTP 500 \"'str' object has no attribute 'get'\" (the engine stays healthy)",
        ("structured-outputs-not-an-object",),
        lambda body: "structured_outputs" in body and not isinstance(body["structured_outputs"], dict),
    ),
    Finding(
        "llama.cpp",
        "llama.cpp's server answers a body that is not JSON (malformed, NaN or an infinity, a lone "
        "surrogate) with HTTP 500 and its parser's message, where a client error is a 400",
        (
            "body-malformed-json",
            "logit-bias-nan",
            "logit-bias-infinities",
            "content-lone-surrogate",
            "prompt-lone-surrogate",
        ),
        _not_json,
    ),
    Finding(
        "llama.cpp",
        "llama.cpp's server answers a message field of the wrong type with HTTP 500 \"Failed to parse "
        'messages: [json.exception.type_error.302] type must be string"',
        ("message-name-not-a-string",),
        lambda body: _has(body.get("messages"), _mistyped_message),
    ),
    Finding(
        "llama.cpp",
        'llama.cpp\'s server answers tools without a function with HTTP 500 "Failed to parse tools"',
        ("tools-malformed",),
        lambda body: "tools" in body,
    ),
    Finding(
        "llama.cpp",
        "llama.cpp's server answers logprobs 10^6 with every vocabulary entry for every token: "
        "a 4-token completion of 18.7 MB, where vLLM refuses more than 20",
        ("logprobs-huge", "top-logprobs-huge"),
        lambda body: any(
            isinstance(body.get(k), int) and not isinstance(body.get(k), bool) and body[k] > 20
            for k in ("logprobs", "top_logprobs")
        ),
    ),
    Finding(
        "llama.cpp",
        "llama.cpp's server takes max_tokens -1 as no limit: sampled, a reply may run until the slot's "
        "context is full, minutes at CPU speed, where vLLM refuses it with a 400 (the case asks it "
        "greedily and passes; the fuzz's sampled bodies are left to this finding)",
        (),
        lambda body: any(
            isinstance(body.get(k), int) and not isinstance(body.get(k), bool) and body[k] < 0
            for k in ("max_tokens", "max_completion_tokens")
        ),
    ),
)


def known_finding(server: str, case: str) -> Finding | None:
    """The finding of ``server`` that ``case`` meets, if any."""
    return next((f for f in FINDINGS if f.server == server and case in f.cases), None)


def _dumps(body: Any) -> str:
    # NaN and the infinities go out as JavaScript literals, as clients that crashed servers sent them.
    return json.dumps(body, allow_nan=True)


def completion(**fields: Any) -> Callable[[Facts], Request]:
    """A completions request with a short prompt, small max_tokens and ``fields`` on top."""

    def build(facts: Facts) -> Request:
        body = {"model": facts.model, "prompt": "Hello", "max_tokens": MAX_TOKENS, **fields}
        return Request(COMPLETIONS, _dumps(body))

    return build


def chat(**fields: Any) -> Callable[[Facts], Request]:
    """A chat request with one short user message, small max_tokens and ``fields`` on top."""

    def build(facts: Facts) -> Request:
        messages = [{"role": "user", "content": "Hello"}]
        body = {"model": facts.model, "messages": messages, "max_tokens": MAX_TOKENS, **fields}
        return Request(CHAT, _dumps(body))

    return build


def raw(text: str, *, content_type: str | None = "application/json") -> Callable[[Facts], Request]:
    """These exact bytes to the completions endpoint."""
    return lambda facts: Request(COMPLETIONS, text, content_type)


def _no_content_type(facts: Facts) -> Request:
    body = _dumps({"model": facts.model, "prompt": "Hello", "max_tokens": MAX_TOKENS})
    return Request(COMPLETIONS, body, content_type=None)


def _over_length_ids(facts: Facts) -> Request:
    max_model_len, token_id, _ = facts.over_length()
    body = {"model": facts.model, "prompt": [token_id] * (max_model_len + 1), "max_tokens": 1}
    return Request(COMPLETIONS, _dumps(body))


def _over_length_text(facts: Facts) -> Request:
    body = {"model": facts.model, "prompt": facts.over_length()[2], "max_tokens": 1}
    return Request(COMPLETIONS, _dumps(body))


def _very_large_body(facts: Facts) -> Request:
    text = "All work and no play. " * (facts.large_body_mb * (1 << 20) // 22)
    return Request(COMPLETIONS, _dumps({"model": facts.model, "prompt": text, "max_tokens": MAX_TOKENS}))


def _huge_header(facts: Facts) -> Request:
    request = completion()(facts)
    return Request(request.path, request.body, headers={"X-Padding": "a" * (facts.huge_header_kb * 1024)})


def _user(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


NAN, INF = math.nan, math.inf
A_FUNCTION = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}

CASES: tuple[Case, ...] = (
    # Bodies that are not the object the endpoint expects.
    Case("completion-empty-prompt", completion(prompt="")),
    Case("chat-empty-messages", chat(messages=[])),
    Case("body-json-array", raw("[1, 2, 3]")),
    Case("body-json-string", raw('"hello"')),
    Case("body-json-null", raw("null")),
    Case("body-malformed-json", raw('{"prompt": "Hello", "max_tokens": ')),
    Case("body-without-content-type", _no_content_type),
    # Length limits.
    Case("prompt-max-model-len-plus-1-token-ids", _over_length_ids),
    Case("prompt-max-model-len-plus-1-text", _over_length_text),
    Case("max-tokens-0", completion(max_tokens=0)),
    # Greedy: an engine that takes -1 as "no limit" (llama.cpp) ends at the same place every run.
    Case("max-tokens-negative", completion(max_tokens=-1, temperature=0)),
    Case("max-tokens-huge", completion(max_tokens=2**63)),
    # Token ids outside the vocabulary.
    Case("prompt-token-id-out-of-vocabulary", completion(prompt=[10**9])),
    Case("prompt-token-id-negative", completion(prompt=[-1])),
    Case("logit-bias-out-of-vocabulary", completion(logit_bias={str(10**9): 5})),
    Case("logit-bias-nan", completion(logit_bias={"42": NAN})),
    Case("logit-bias-infinities", completion(logit_bias={"42": INF, "43": -INF})),
    Case("stop-token-ids-out-of-range-min-tokens-1", completion(stop_token_ids=[10**9], min_tokens=1)),
    # Sampling parameters at and past their edges.
    Case("top-k-below-minus-1", completion(top_k=-2)),
    Case("top-k-huge", completion(top_k=2**31)),
    Case("top-p-0", completion(top_p=0)),
    Case("top-p-above-1", completion(top_p=1.5)),
    Case("top-p-tiny", completion(top_p=1e-300)),
    Case("min-p-1", completion(min_p=1.0)),
    Case("min-p-above-1", completion(min_p=1.5)),
    Case("temperature-negative", completion(temperature=-1)),
    Case("temperature-tiny", completion(temperature=1e-9)),
    Case("temperature-huge", completion(temperature=1e308)),
    Case("repetition-penalty-0", completion(repetition_penalty=0)),
    Case("repetition-penalty-huge", completion(repetition_penalty=1e308)),
    Case("seed-2**64", completion(seed=2**64)),
    Case("n-huge", completion(n=10**6)),
    # Log probabilities.
    Case("logprobs-huge", completion(logprobs=10**6)),
    Case("logprobs-minus-1", completion(logprobs=-1)),
    Case("top-logprobs-huge", chat(logprobs=True, top_logprobs=10**6)),
    Case("prompt-logprobs-huge", completion(prompt_logprobs=10**6)),
    Case("echo-max-tokens-0-logprobs", completion(echo=True, max_tokens=0, logprobs=1)),
    # Tools and structured outputs (vLLM 0.32's "structured_outputs" field).
    Case("tools-malformed", chat(tools=[{"type": "function"}])),
    Case("tool-choice-required-without-tools", chat(tool_choice="required")),
    Case("structured-outputs-bad-json-schema", completion(structured_outputs={"json": {"type": "nonsense"}})),
    Case("structured-outputs-bad-regex", completion(structured_outputs={"regex": "(unclosed"})),
    Case(
        "structured-outputs-not-an-object",
        chat(structured_outputs="abc"),
    ),
    # Text the tokenizer and the chat template choke on.
    Case("content-lone-surrogate", chat(messages=_user("a\ud800b"))),
    Case("prompt-lone-surrogate", completion(prompt="a\udfffb")),
    Case("content-nul", chat(messages=_user("a\x00b\x00"))),
    Case("message-name-not-a-string", chat(messages=[{"role": "user", "content": "Hello", "name": False}])),
    Case("content-special-tokens", chat(messages=_user(SPECIAL_TOKENS))),
    Case("prompt-special-tokens", completion(prompt=SPECIAL_TOKENS)),
    # Transport.
    Case("body-very-large", _very_large_body),
    Case("header-huge", _huge_header),
)


# --- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def robustness_canary(gx10_client: VllmClient) -> CanaryResult:
    """The canary's answer before any bad input: what every later canary must repeat."""
    try:
        return canary(gx10_client)
    except EndpointError as exc:
        pytest.fail(f"the canary failed before any bad input was sent: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def robustness_facts(gx10_server: Server, gx10_model: str, gx10_profile: Profile) -> Facts:
    """The served model's name, its context window and a prompt one token too long for it.

    The over-length facts need the engine's context window and tokenizer (its adapter's); without
    them only the two over-length cases skip, naming what is missing.
    """
    spec = gx10_profile.robustness
    facts = Facts(gx10_model, None, None, None, spec.large_body_mb, spec.huge_header_kb)
    try:
        gx10_server.require("max_model_len")
        gx10_server.require("tokenize")
    except NotOffered as exc:
        return replace(facts, missing=str(exc))
    max_model_len = gx10_server.max_model_len(gx10_model)
    if max_model_len is None:
        pytest.fail(f"{gx10_server.label} gives no context window for {gx10_model!r}", pytrace=False)
    ids = gx10_server.tokenize("Hello", add_special_tokens=False)
    prompt = sized_prompt(gx10_server.count_tokens, max_model_len + 1, chat=False, instruction="")
    return replace(facts, max_model_len=max_model_len, token_id=int(ids[0]), over_length_text=prompt.text)


# --- checks -------------------------------------------------------------------------------------------


def _malformed_200(path: str, got: RawResponse) -> str | None:
    """None for a well-formed completion; otherwise what is wrong with this 200."""
    if got.truncated:
        return f"HTTP 200 with a body over {len(got.body_head.encode()) >> 10} KiB, too large to judge"
    try:
        data = json.loads(got.body_head)
    except ValueError:
        return f"HTTP 200 whose body is not JSON: {got.body_head[:200]!r}"
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return f"HTTP 200 without choices: {got.body_head[:200]!r}"
    first = choices[0]
    if path == CHAT and not isinstance(first.get("message"), dict):
        return f"HTTP 200 whose choice has no message: {got.body_head[:200]!r}"
    if path == COMPLETIONS and not isinstance(first.get("text"), str):
        return f"HTTP 200 whose choice has no text: {got.body_head[:200]!r}"
    return None


def answer_problem(path: str, got: RawResponse) -> str | None:
    """None when the answer is a 4xx or a well-formed 200; otherwise what was wrong with it."""
    if got.status is None:
        return f"no response ({got.dropped})"
    if got.status == 200:
        return _malformed_200(path, got)
    if 400 <= got.status < 500:
        return None
    return f"HTTP {got.status}: {got.error_message[:200]!r}"


def engine_problem(client: VllmClient, before: CanaryResult) -> tuple[int | None, str | None]:
    """(/health status, what is wrong with the engine now or None): health 200 and the same canary."""
    try:
        health = client.health()
    except EndpointError as exc:
        return None, f"/health: {exc.what}"
    if health != 200:
        return health, f"/health answered HTTP {health}"
    try:
        after = canary(client)
    except EndpointError as exc:
        return health, f"the canary failed: {exc.what}"
    return health, after.differs_from(before)


# --- the cases ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_cleanly(
    case: Case,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_settings: Settings,
    robustness_facts: Facts,
    robustness_canary: CanaryResult,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
) -> None:
    """The server answers a 4xx (or a well-formed 200) and stays healthy with the same canary."""
    request = case.build(robustness_facts)
    got = gx10_client.raw(
        "POST",
        request.path,
        request.body,
        content_type=request.content_type,
        headers=request.headers,
        timeout_s=max(gx10_settings.timeout_s, 30.0),
        max_body_bytes=BODY_READ_BYTES,
    )
    answer = answer_problem(request.path, got)
    health, engine = engine_problem(gx10_client, robustness_canary)
    gx10_record(
        ROBUSTNESS.name,
        {
            "case": case.id,
            "status": got.status,
            "dropped": got.dropped,
            "message": got.error_message[:200] if got.status != 200 else "",
            "health_after": health,
            "engine_after": engine or "ok",
            "problem": answer or "",
        },
    )
    problems = [p for p in (answer, engine and f"after it, {engine}") if p]
    finding = known_finding(gx10_server.name, case.id)
    if problems and finding is not None:
        pytest.xfail(f"known finding ({FINDINGS_DOC}): {finding.says}; got {'; '.join(problems)}")
    assert not problems, (
        f"{case.id}: {request.describe()} got {'; '.join(problems)} "
        f"(expected a 4xx or a well-formed 200, /health 200 and the same canary)"
    )


# --- the fuzz -----------------------------------------------------------------------------------------

_INTS = st.sampled_from([-(2**63) - 1, -(2**63), -2, -1, 0, 1, 2, 20, 21, 2**31, 2**63 - 1, 2**63, 2**64])
_FLOATS = st.sampled_from(
    [math.nan, math.inf, -math.inf, -1e308, -1.0, -0.0, 0.0, 1e-300, 0.5, 1.0, 2.5, 1e308]
)
_STRINGS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "\x00", "\ud800", "\udfff", SPECIAL_TOKENS, "(unclosed", "{not json", "é" * 40]),
)
_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _STRINGS)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(st.one_of(_INTS, _STRINGS), max_size=4),
    st.dictionaries(
        st.one_of(st.sampled_from(["42", "-1", "1000000000", "json", "regex"]), _STRINGS),
        _SCALARS,
        max_size=3,
    ),
)
# Never absent, never null, never large: an unset max_tokens would decode up to max_model_len.
_MAX_TOKENS = st.sampled_from([-(2**63), -1, 0, 1, MAX_TOKENS, 2**31, 2**63, 2**64, 1.5, "4", True, [4]])
_SAMPLING = [
    "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty",
    "seed", "n", "min_tokens", "logit_bias", "stop", "stop_token_ids", "ignore_eos", "skip_special_tokens",
    "allowed_token_ids", "bad_words", "structured_outputs", "response_format", "truncate_prompt_tokens",
    "prompt_logprobs", "include_stop_str_in_output", "stream_options", "user", "priority", "model",
]  # fmt: skip
_COMPLETION_ONLY = ["prompt", "echo", "logprobs", "suffix", "add_special_tokens"]
_CHAT_ONLY = [
    "messages", "logprobs", "top_logprobs", "tools", "tool_choice", "add_generation_prompt",
    "continue_final_message", "chat_template_kwargs", "documents", "max_completion_tokens",
]  # fmt: skip
_MESSAGES = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": st.one_of(
                st.sampled_from(["user", "system", "assistant", "tool", "developer"]), _STRINGS
            ),
            "content": st.one_of(
                _STRINGS,
                st.none(),
                st.lists(
                    st.dictionaries(st.sampled_from(["type", "text"]), _STRINGS, max_size=2), max_size=2
                ),
            ),
            "tool_calls": _VALUES,
            "name": _VALUES,
        },
    ),
    max_size=3,
)


@st.composite
def request_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(path, body): a completions or chat body with a few fields set to odd values."""
    is_chat = draw(st.booleans())
    path = CHAT if is_chat else COMPLETIONS
    names = _SAMPLING + (_CHAT_ONLY if is_chat else _COMPLETION_ONLY)
    body: dict[str, Any] = {"max_tokens": draw(_MAX_TOKENS)}
    body.update({"messages": [{"role": "user", "content": "Hello"}]} if is_chat else {"prompt": "Hello"})
    for name in draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True)):
        if name == "messages":
            body[name] = draw(_MESSAGES)
        elif name == "prompt":
            body[name] = draw(st.one_of(_STRINGS, st.lists(_INTS, max_size=4), _VALUES))
        elif name == "max_completion_tokens":
            body[name] = draw(_MAX_TOKENS)
        else:
            body[name] = draw(_VALUES)
    return path, body


def test_fuzzed_bodies_are_refused_cleanly(
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_settings: Settings,
    gx10_model: str,
    robustness_canary: CanaryResult,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
) -> None:
    """Fuzzed bodies (derandomized, ``--gx10-fuzz-examples`` of them) get a 4xx or a well-formed 200."""
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    known = [f for f in FINDINGS if f.server == gx10_server.name]

    @settings(
        max_examples=gx10_settings.fuzz_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: every example costs a canary
        suppress_health_check=list(HealthCheck),
    )
    @given(request_bodies())
    def send(drawn: tuple[str, dict[str, Any]]) -> None:
        path, body = drawn
        # The engine's known findings have cases of their own; the fuzz looks for new ones.
        assume(not any(f.meets(body) for f in known))
        body.setdefault("model", gx10_model)
        text = _dumps(body)
        got = gx10_client.raw("POST", path, text, timeout_s=max(gx10_settings.timeout_s, 30.0))
        statuses[str(got.status) if got.status is not None else "dropped"] += 1
        problem = answer_problem(path, got)
        _, engine = engine_problem(gx10_client, robustness_canary)
        problems = [p for p in (problem, engine and f"after it, {engine}") if p]
        if problems:
            failures.append(f"POST {path} {text[:300]} got {'; '.join(problems)}")
            raise AssertionError(failures[-1])

    try:
        send()
    finally:
        gx10_record(
            ROBUSTNESS.name,
            {
                "case": "fuzz",
                "requests": sum(statuses.values()),
                "statuses": dict(sorted(statuses.items())),
                "failure": failures[0] if failures else "",
            },
        )
