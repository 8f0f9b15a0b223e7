"""Is the deployment up and speaking the OpenAI API (and its engine's own) as the profile says it should?

One check per test; every failure says what the server did. A check that needs a fact the engine does
not give (a version, a tokenizer endpoint) skips naming it.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_gx10.client import StreamEnd, StreamResult, VllmClient
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server

GREETING = [{"role": "user", "content": "Say hello in one short sentence."}]
COMPLETION_PROMPT = "The capital of France is"
SHORT_MAX_TOKENS = 16


def test_health_endpoint_is_200(gx10_client: VllmClient) -> None:
    """GET /health answers 200 (vLLM's 503 means the engine is dead, llama.cpp's that it is loading)."""
    status = gx10_client.health()
    assert status == 200, f"GET {gx10_client.base_url}/health answered HTTP {status}, expected 200"


def test_served_model_is_listed(gx10_client: VllmClient, gx10_model: str) -> None:
    """The model under test is among /v1/models."""
    names = [m.get("id") for m in gx10_client.models()]
    assert gx10_model in names, f"/v1/models lists {names}, not {gx10_model!r}"


def test_max_model_len_meets_profile(gx10_server: Server, gx10_model: str, gx10_profile: Profile) -> None:
    """The served context window is at least the profile's max_model_len."""
    gx10_server.require("max_model_len")
    served = gx10_server.max_model_len(gx10_model)
    expected = gx10_profile.deployment.max_model_len
    assert served is not None, f"{gx10_server.label} gives no context window for {gx10_model!r}"
    assert served >= expected, (
        f"{gx10_model} serves max_model_len {served}, below the profile's {expected} ({gx10_profile.name})"
    )


def test_version_matches_profile(gx10_server: Server, gx10_profile: Profile) -> None:
    """The server's version string (vLLM's /version, llama.cpp's build) matches the profile's pattern."""
    gx10_server.require("version")
    version = gx10_server.version()
    assert version, f"{gx10_server.label} answered an empty version"
    pattern = gx10_profile.deployment.server_version
    matches = gx10_profile.deployment.version_matches(version)  # the message states facts, no repr
    assert matches, f"the version is {version!r}, which does not match the profile's pattern {pattern!r}"


def test_tokenize_detokenize_round_trip(gx10_server: Server) -> None:
    """Text tokenized then detokenized (without special tokens) comes back unchanged."""
    gx10_server.require("tokenize")
    gx10_server.require("detokenize")
    text = "The quick brown fox jumps over the lazy dog. Ünïcödé, digits 0123 and punctuation!?"
    tokens = gx10_server.tokenize(text, add_special_tokens=False)
    assert tokens, "tokenize gave no tokens"
    back = gx10_server.detokenize(tokens)
    assert back == text, f"detokenize(tokenize(text)) gave {back!r}"


def test_short_greedy_chat_completion(gx10_client: VllmClient) -> None:
    """A short greedy chat completion returns text and finishes with stop or length."""
    reply = gx10_client.complete(
        {"messages": GREETING, "max_tokens": SHORT_MAX_TOKENS, "temperature": 0}, chat=True
    )
    choice = (reply.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    text = (message.get("content") or "") + (
        message.get("reasoning") or message.get("reasoning_content") or ""
    )
    assert text.strip(), f"chat completion returned no text: {reply}"
    assert choice.get("finish_reason") in ("stop", "length"), (
        f"finish_reason {choice.get('finish_reason')!r}, expected stop or length: {choice}"
    )


# --- the stream contract ------------------------------------------------------------------------


def _stream(client: VllmClient, endpoint: str) -> StreamResult:
    body: dict[str, Any] = {"max_tokens": SHORT_MAX_TOKENS, "temperature": 0}
    if endpoint == "chat":
        return client.chat_stream({**body, "messages": GREETING})
    return client.completion_stream({**body, "prompt": COMPLETION_PROMPT})


@pytest.fixture(scope="module", params=["chat", "completions"])
def streamed(request: pytest.FixtureRequest, gx10_client: VllmClient) -> StreamResult:
    """One short greedy stream per endpoint, with usage requested."""
    return _stream(gx10_client, request.param)


def test_stream_is_accepted(streamed: StreamResult) -> None:
    """The streaming request gets HTTP 200 and SSE."""
    assert streamed.status == 200, f"{streamed.describe()}"


@pytest.mark.parametrize("streamed", ["chat"], indirect=True)
def test_chat_stream_starts_with_role_chunk(streamed: StreamResult) -> None:
    """A chat stream opens with a role chunk: delta {"role": "assistant", "content": ""}."""
    assert streamed.role_chunk, f"first chat event was not a role chunk: {streamed.describe()}"


def test_stream_ends_with_done(streamed: StreamResult) -> None:
    """The stream ends with ``data: [DONE]`` and nothing after it."""
    assert streamed.ended == StreamEnd.DONE, f"stream did not end with [DONE]: {streamed.describe()}"
    assert streamed.events_after_done == 0, f"{streamed.events_after_done} events after [DONE]"


def test_stream_has_exactly_one_usage_chunk(streamed: StreamResult) -> None:
    """With include_usage, exactly one chunk carries usage."""
    assert streamed.usage_chunks == 1, f"expected 1 usage chunk: {streamed.describe()}"


def test_stream_finishes_with_stop_or_length(streamed: StreamResult) -> None:
    """The last content chunk carries finish_reason stop or length, and some text came."""
    assert streamed.finish_reason in ("stop", "length"), f"{streamed.describe()}"
    assert streamed.text, f"no text streamed: {streamed.describe()}"


def test_stream_prompt_tokens_match_tokenize(streamed: StreamResult, gx10_server: Server) -> None:
    """usage.prompt_tokens equals the tokenizer's count (chat form for chat)."""
    gx10_server.require("tokenize")
    if streamed.endpoint == "chat":
        expected = gx10_server.count_tokens(messages=GREETING)
    else:
        expected = gx10_server.count_tokens(COMPLETION_PROMPT)
    assert streamed.prompt_tokens == expected, (
        f"usage.prompt_tokens {streamed.prompt_tokens} but the tokenizer counts {expected}: {streamed.describe()}"
    )
