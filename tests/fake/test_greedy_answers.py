"""The reference twin (qwen3 reasoning parser) answers the greedy prompt set with thinking turned off:
answers, not thinking, and no think tags in them, as vLLM's qwen3 parser returns them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.report.greedy import GREEDY_PROMPTS, LEGACY, collect_greedy


@pytest.fixture(scope="module")
def client(twin: FakeServer) -> Iterator[VllmClient]:
    with VllmClient(twin.url) as c:
        yield c


def test_reference_twin_greedy_outputs_are_answers(twin: FakeServer, client: VllmClient) -> None:
    """Every output is a non-empty answer with no think tag or reasoning, the same on a second run."""
    assert twin.profile.deployment.reasoning_parser == "qwen3"
    out = collect_greedy(lambda body: client.complete(body, chat=True))
    assert out.errors == (None,) * len(GREEDY_PROMPTS)
    assert all(out.outputs), out.outputs
    for answer in out.outputs:
        assert answer is not None
        assert "<think>" not in answer
        assert "</think>" not in answer
        assert "Thinking Process" not in answer
    assert out.reasoning == ("",) * len(GREEDY_PROMPTS)
    assert collect_greedy(lambda body: client.complete(body, chat=True)).outputs == out.outputs


def test_with_thinking_on_32_tokens_are_mostly_thinking(client: VllmClient) -> None:
    """What the gate judged before: asked the old way, the outputs open with the thinking."""
    old = collect_greedy(lambda body: client.complete(body, chat=True), judged=LEGACY)
    assert all(o is not None and o.startswith("\nThinking Process:") for o in old.outputs), old.outputs
    assert all(r for r in old.reasoning)


def test_streamed_chat_with_thinking_off_is_all_content(twin: FakeServer, client: VllmClient) -> None:
    """A stream asked not to think carries content deltas only (the prompt closed the think block)."""
    body = {
        "messages": [{"role": "user", "content": GREEDY_PROMPTS[0]}],
        "max_tokens": 32,
        "temperature": 0,
        "chat_template_kwargs": {"enable_thinking": False},
    }
    result = client.chat_stream(body)
    assert result.ok, result.describe()
    assert result.content
    assert result.reasoning == ""
    assert "<think>" not in result.content
