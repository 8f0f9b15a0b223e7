"""``deployment.enable_prompt_tokens_details``: the twin's usage says the prompt tokens its prefix
cache served, as vLLM's ``--enable-prompt-tokens-details`` does, and the client reads them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pytest_gx10.client import StreamResult, VllmClient, aio
from pytest_gx10.fake import FakeServer
from pytest_gx10.fake.logs import LogEmitter
from pytest_gx10.profiles import Profile, load_profile

CPU = load_profile("smollm2-cpu")
BLOCK = CPU.twin.block_size  # 128, as vLLM's CPU build
FAST = 200.0
PATHS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


def reporting(profile: Profile, on: bool = True) -> Profile:
    return replace(profile, deployment=replace(profile.deployment, enable_prompt_tokens_details=on))


def whole_blocks_before_the_last_token(prompt_tokens: int) -> int:
    """vLLM V1's hit on a fully cached prompt: at most prompt_tokens - 1 tokens, in whole blocks."""
    return (prompt_tokens - 1) // BLOCK * BLOCK


def text(salt: str) -> str:
    """A prompt of some 300 tokens, its own for each salt (it comes first)."""
    return salt + " " + " ".join(["the keeper of the lighthouse watched"] * 13)


def body(endpoint: str, prompt: str | list[int]) -> dict[str, Any]:
    if endpoint == "chat":
        return {"messages": [{"role": "user", "content": prompt}], "max_tokens": 4, "temperature": 0}
    return {"prompt": prompt, "max_tokens": 4, "temperature": 0}


@pytest.fixture
def server() -> Iterator[FakeServer]:
    """A fresh twin per test: its prefix cache holds nothing another test sent."""
    with FakeServer(reporting(CPU), time_scale=FAST) as twin:
        yield twin


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_repeated_prompt_streams_its_cached_blocks(server: FakeServer, endpoint: str) -> None:
    with VllmClient(server.url) as client:
        first, second = (client.stream(PATHS[endpoint], body(endpoint, text("s"))) for _ in range(2))
    assert first.ok, first.describe()
    assert second.ok, second.describe()
    assert first.prompt_tokens == second.prompt_tokens
    assert first.prompt_tokens is not None
    assert 280 <= first.prompt_tokens <= 400
    assert first.cached_tokens == 0
    assert second.cached_tokens == whole_blocks_before_the_last_token(first.prompt_tokens)
    assert second.summary()["cached_tokens"] == second.cached_tokens


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_repeated_prompt_answers_its_cached_blocks_whole(server: FakeServer, endpoint: str) -> None:
    with VllmClient(server.url) as client:
        first, second = (
            client.complete(body(endpoint, text("w")), chat=endpoint == "chat") for _ in range(2)
        )
    prompt_tokens = first["usage"]["prompt_tokens"]
    assert second["usage"]["prompt_tokens"] == prompt_tokens
    assert first["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    assert second["usage"]["prompt_tokens_details"] == {
        "cached_tokens": whole_blocks_before_the_last_token(prompt_tokens)
    }


def test_a_fully_cached_prompt_of_whole_blocks_computes_its_last_block_again(server: FakeServer) -> None:
    """384 tokens are 3 whole 128-token blocks, but the last token is computed for its logits: 2 hit."""
    assert BLOCK == 128
    with VllmClient(server.url) as client:
        ids = [client.post_json("/tokenize", {"prompt": "harbour"})["tokens"][0]] * 384
        first, second = (client.stream(PATHS["completions"], body("completions", ids)) for _ in range(2))
    assert (first.prompt_tokens, first.cached_tokens) == (384, 0)
    assert (second.prompt_tokens, second.cached_tokens) == (384, 256)


def test_a_shared_prefix_hits_up_to_where_the_prompts_part(server: FakeServer) -> None:
    with VllmClient(server.url) as client:
        tok = client.post_json("/tokenize", {"prompt": "lantern harbour"})["tokens"]
        shared = (tok * 150)[:300]  # 2 whole 128-token blocks and 44 tokens
        first = client.stream(PATHS["completions"], body("completions", [*shared, *tok * 20]))
        second = client.stream(PATHS["completions"], body("completions", [*shared, *reversed(tok * 20)]))
    assert first.cached_tokens == 0
    assert second.cached_tokens == 256


def test_the_event_loop_client_reads_it_too(server: FakeServer) -> None:
    with VllmClient(server.url) as client:
        threaded = client.stream(PATHS["completions"], body("completions", text("a")))
        looped: StreamResult = asyncio.run(
            aio.stream(client, PATHS["completions"], body("completions", text("a")))
        )
    assert threaded.cached_tokens == 0
    assert threaded.prompt_tokens is not None
    assert looped.cached_tokens == whole_blocks_before_the_last_token(threaded.prompt_tokens)


def test_off_the_usage_says_nothing_and_the_client_reads_none() -> None:
    with FakeServer(reporting(CPU, on=False), time_scale=FAST) as twin, VllmClient(twin.url) as client:
        streamed = [client.stream(PATHS["completions"], body("completions", text("o"))) for _ in range(2)]
        whole = client.complete(body("chat", text("o")), chat=True)
    assert [r.ok for r in streamed] == [True, True]
    assert [r.cached_tokens for r in streamed] == [None, None]
    assert streamed[1].summary()["cached_tokens"] is None
    assert whole["usage"]["prompt_tokens_details"] is None


def test_the_boot_log_names_the_flag_when_it_is_on() -> None:
    on = LogEmitter(reporting(CPU), io.StringIO()).non_default_args("127.0.0.1", 8000)
    off = LogEmitter(reporting(CPU, on=False), io.StringIO()).non_default_args("127.0.0.1", 8000)
    assert on.get("enable_prompt_tokens_details") is True
    assert "enable_prompt_tokens_details" not in off
