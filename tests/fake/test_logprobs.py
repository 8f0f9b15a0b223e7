"""The twin's logprobs: vLLM's shapes, and numbers that hang together."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
import requests

from pytest_gx10.fake.logprobs import LogprobWriter
from pytest_gx10.fake.server import FakeServer
from pytest_gx10.fake.tokenizer import Tokenizer

MODEL = "SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def writer() -> LogprobWriter:
    return LogprobWriter(Tokenizer(), b"prompt")


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with FakeServer("smollm2-cpu", time_scale=50) as server:
        yield server.url


def test_a_generated_token_tops_its_step(writer: LogprobWriter) -> None:
    ids = writer.tokenizer.encode(" the cat sat on the mat", add_special_tokens=False)
    content = writer.chat(ids, 0, 5)["content"]
    assert [entry["token"] for entry in content] == [writer.tokenizer.decode([i]) for i in ids]
    for entry in content:
        top = [t["logprob"] for t in entry["top_logprobs"]]
        assert len(top) == 5
        assert top == sorted(top, reverse=True)
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert entry["logprob"] == top[0]
        assert all(lp <= 0 for lp in top)
        assert sum(math.exp(lp) for lp in top) < 1.0
        assert entry["bytes"] == list(entry["token"].encode())
        assert len({t["token"] for t in entry["top_logprobs"]}) == 5


def test_same_request_same_numbers(writer: LogprobWriter) -> None:
    ids = [28, 905, 17]
    assert writer.chat(ids, 0, 3) == writer.chat(ids, 0, 3)
    other = LogprobWriter(writer.tokenizer, b"another prompt")
    assert other.chat(ids, 0, 3) != writer.chat(ids, 0, 3)
    # a stream's chunks are the whole answer's steps, position by position
    assert writer.chat(ids[1:], 1, 3)["content"] == writer.chat(ids, 0, 3)["content"][1:]


def test_completion_logprobs_with_echo(writer: LogprobWriter) -> None:
    tok = writer.tokenizer
    prompt = tok.encode("Hello there", add_special_tokens=False)
    out = tok.encode(" friend", add_special_tokens=False)
    body = writer.completion(out, 0, 2, prompt=prompt)
    assert body["tokens"] == [tok.decode([i]) for i in [*prompt, *out]]
    assert body["token_logprobs"][0] is None
    assert body["top_logprobs"][0] is None
    offsets = [0]
    for token in body["tokens"][:-1]:
        offsets.append(offsets[-1] + len(token))
    assert body["text_offset"] == offsets
    last = body["top_logprobs"][-1]
    assert max(last.values()) == body["token_logprobs"][-1]
    assert len(last) == 2
    assert all(lp <= 0 for lp in body["token_logprobs"][1:])


def test_prompt_logprobs_rank_and_order(writer: LogprobWriter) -> None:
    prompt = [28, 905, 17, 28, 905]
    entries = writer.prompt(prompt, 3)
    assert entries[0] is None
    for token_id, entry in zip(prompt[1:], entries[1:], strict=True):
        assert entry is not None
        first_key, first = next(iter(entry.items()))
        assert first_key == str(token_id)
        ranked = sorted(entry.values(), key=lambda v: v["rank"])
        assert [v["logprob"] for v in ranked] == sorted((v["logprob"] for v in ranked), reverse=True)
        assert 1 <= first["rank"] <= 4


def test_chat_answers_logprobs_streamed_and_whole(url: str) -> None:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "temperature": 0,
        "max_tokens": 5,
        "ignore_eos": True,
        "logprobs": True,
        "top_logprobs": 2,
    }
    whole = requests.post(url + "/v1/chat/completions", json=body, timeout=30).json()
    content = whole["choices"][0]["logprobs"]["content"]
    assert len(content) == whole["usage"]["completion_tokens"] == 5
    assert "".join(entry["token"] for entry in content) == whole["choices"][0]["message"]["content"]
    stream = requests.post(url + "/v1/chat/completions", json={**body, "stream": True}, timeout=30).text
    streamed = []
    for line in stream.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line.removeprefix("data: "))
            logprobs = chunk["choices"][0]["logprobs"] if chunk["choices"] else None
            if logprobs is not None:
                streamed += logprobs["content"]
    assert streamed == content


def test_completion_answers_token_ids_and_truncates(url: str) -> None:
    body = {"model": MODEL, "prompt": "one two three four", "max_tokens": 3, "temperature": 0}
    answer = requests.post(
        url + "/v1/completions",
        json={**body, "return_token_ids": True, "truncate_prompt_tokens": 2, "logprobs": 1},
        timeout=30,
    ).json()
    choice = answer["choices"][0]
    assert len(choice["prompt_token_ids"]) == answer["usage"]["prompt_tokens"] == 2
    assert len(choice["token_ids"]) == answer["usage"]["completion_tokens"]
    assert choice["logprobs"]["tokens"] == [Tokenizer().decode([i]) for i in choice["token_ids"]]
