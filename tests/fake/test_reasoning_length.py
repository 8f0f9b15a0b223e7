"""The twin's reasoning trace is as long as the profile's ``twin.reasoning_tokens`` says; a malformed
value is refused naming the key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_gx10.fake import FakeServer
from pytest_gx10.profiles import ProfileError, load_profile

TIME_SCALE = 200.0  # as the other twins of these tests
PROFILE = """
[deployment]
served_model_name = "thinker"
max_model_len = 8192
reasoning_parser = "qwen3"

[twin]
{twin}
"""


def _profile(tmp_path: Path, twin: str) -> Path:
    path = tmp_path / "thinker.toml"
    path.write_text(PROFILE.format(twin=twin), encoding="utf-8")
    return path


def _reasoning_tokens(server: FakeServer, content: str, **extra: Any) -> int:
    body = {
        "model": server.served_model_name,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 2000,
        **extra,
    }
    response = requests.post(server.url + "/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["choices"][0]["message"]["content"], "the answer follows the trace"
    tokens: int = data["usage"]["completion_tokens_details"]["reasoning_tokens"]
    return tokens


@pytest.fixture(scope="module")
def thinker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeServer]:
    """A reasoning deployment's twin whose every <think> block is drawn as 200 tokens."""
    path = _profile(tmp_path_factory.mktemp("thinker"), "reasoning_tokens = [200, 200]")
    with FakeServer(path, time_scale=TIME_SCALE) as server:
        yield server


def test_the_trace_has_the_profiles_length(thinker: FakeServer) -> None:
    """The drawn 200 counts <think> and the fixed opening; the usage counts what lies between
    <think> and </think>: those 199 tokens and the closing "." and newline, 201, for every prompt."""
    assert thinker.profile.twin.reasoning_tokens == (200, 200)
    prompts = ["Say hello.", "Name three rivers.", "Why is the sky blue?"]
    assert [_reasoning_tokens(thinker, p) for p in prompts] == [201, 201, 201]
    assert _reasoning_tokens(thinker, "Say hello.", stream=False, seed=7) == 201


def test_the_default_range_is_kept(twin: FakeServer) -> None:
    """Without the key the reference twin draws from [24, 120]: 25 to 121 reasoning tokens, varied."""
    assert twin.profile.twin.reasoning_tokens == (24, 120)
    seen = {_reasoning_tokens(twin, f"Question number {i}: what is {i} squared?") for i in range(8)}
    assert all(25 <= n <= 121 for n in seen), seen
    assert len(seen) > 1, seen


@pytest.mark.parametrize(
    ("value", "key", "problem"),
    [
        ("[200, 100]", "twin.reasoning_tokens", "expected [min, max] with min <= max, got [200, 100]"),
        ("[10]", "twin.reasoning_tokens", "expected an array of 2 items"),
        ("[10, 20, 30]", "twin.reasoning_tokens", "expected an array of 2 items"),
        ("200", "twin.reasoning_tokens", "expected array"),
        ("[24.5, 120]", "twin.reasoning_tokens[0]", "expected integer"),
        ("[24, true]", "twin.reasoning_tokens[1]", "expected integer"),
        ("[-1, 120]", "twin.reasoning_tokens[0]", "must not be negative"),
    ],
)
def test_a_malformed_value_is_refused_naming_the_key(
    tmp_path: Path, value: str, key: str, problem: str
) -> None:
    with pytest.raises(ProfileError, match=re.escape(f"'{key}'")) as refused:
        load_profile(_profile(tmp_path, f"reasoning_tokens = {value}"))
    assert problem in str(refused.value)
