"""Datasets from files: JSONL and ShareGPT (with its variants), skips, facts, errors, the written sample."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.workload.dataset import DatasetError, load_dataset, write_sharegpt_sample


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _sharegpt(tmp_path: Path, conversations: list[Any]) -> Path:
    return _write(tmp_path, "share.json", json.dumps(conversations))


def test_jsonl_prompts_and_messages(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "reqs.jsonl",
        '{"prompt": "Tell me a story.", "output_tokens": 40}\n'
        "\n"
        '{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}], "max_tokens": 7}\n'
        '   \n{"prompt": "No length."}\n',
    )
    data = load_dataset(path)
    assert [e.output_tokens for e in data.entries] == [40, 7, None]
    first, second, third = data.entries
    assert first.messages == [{"role": "user", "content": "Tell me a story."}]
    assert first.as_text() == "Tell me a story."
    assert second.messages[0] == {"role": "system", "content": "Be brief."}
    assert second.as_text() == "system: Be brief.\nuser: Hi"
    assert third.reference is None
    assert data.facts() == {
        "file": "reqs.jsonl",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "entries": 3,
        "skipped": 0,
        "format": "jsonl",
    }


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ('{"prompt": "a"}\n\n{"prompt": "b"\n', "line 3: not JSON"),
        ('{"prompt": "a"}\n[1, 2]\n', "line 2: expected an object"),
        ('{"text": "a"}\n', 'line 1: expected a "prompt" string'),
        ('{"messages": []}\n', 'line 1: expected a "prompt" string or a non-empty "messages"'),
        ('{"messages": [{"role": "user"}]}\n', 'line 1: each message needs a "role" and a "content"'),
        ('{"prompt": "a", "output_tokens": 0}\n', 'line 1: "output_tokens" must be a whole number'),
        ('{"prompt": "a", "max_tokens": "9"}\n', 'line 1: "max_tokens" must be a whole number'),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, lines: str, why: str) -> None:
    path = _write(tmp_path, "bad.jsonl", lines)
    with pytest.raises(DatasetError) as err:
        load_dataset(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ")
    assert why in message
    assert "\n" not in message


def test_sharegpt_request_is_turns_before_last_reply(tmp_path: Path) -> None:
    path = _sharegpt(
        tmp_path,
        [
            {
                "id": "a",
                "conversations": [
                    {"from": "system", "value": "You help."},
                    {"from": "human", "value": "Q1"},
                    {"from": "gpt", "value": "A1"},
                    {"from": "human", "value": "Q2"},
                    {"from": "gpt", "value": "The last answer."},
                ],
            }
        ],
    )
    data = load_dataset(path)
    (entry,) = data.entries
    assert entry.messages == [
        {"role": "system", "content": "You help."},
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"},
    ]
    assert entry.reference == "The last answer."
    assert entry.reference_chars == len("The last answer.")
    assert entry.output_tokens is None
    assert data.format == "sharegpt"


def test_sharegpt_variants_and_skips(tmp_path: Path) -> None:
    path = _sharegpt(
        tmp_path,
        [
            {
                "id": "roles",
                "conversations": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
            },
            {
                "id": "names",
                "conversations": [{"from": "user", "value": "Q"}, {"from": "assistant", "value": "A"}],
            },
            {
                "id": "messages-key",
                "messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
            },
            {"id": "no human", "conversations": [{"from": "gpt", "value": "Hello there."}]},
            {"id": "empty", "conversations": []},
            # A greeting before the question: the reply after the question is the reference.
            {
                "id": "greeting",
                "conversations": [{"from": "gpt", "value": "Hi!"}, {"from": "human", "value": "Q"}],
            },
            {
                "id": "unanswered",
                "conversations": [
                    {"from": "human", "value": "Q1"},
                    {"from": "human", "value": "Q2"},
                    {"from": "system", "value": "trailing"},
                ],
            },
        ],
    )
    data = load_dataset(path)
    assert data.skipped == 2
    assert len(data.entries) == 5
    for entry in data.entries[:3]:
        assert entry.messages == [{"role": "user", "content": "Q"}]
        assert entry.reference == "A"
    greeting, unanswered = data.entries[3:]
    assert greeting.messages == [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Q"}]
    assert greeting.reference is None
    assert [m["content"] for m in unanswered.messages] == ["Q1", "Q2"]
    assert data.facts()["skipped"] == 2
    assert data.facts()["entries"] == 5


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[{", "not JSON"),
        ("[1]", "conversation 0: expected an object"),
        ('[{"id": 1}]', 'conversation 0: expected a "conversations" list'),
        ('[{"conversations": [{"from": "human"}]}]', 'each turn needs "from" and "value"'),
        ('[{"conversations": [{"from": "bard", "value": "x"}]}]', "unknown speaker 'bard'"),
        ('[{"conversations": ["hi"]}]', "each turn to be an object"),
        ('[{"conversations": [{"from": "gpt", "value": "x"}]}]', "no requests in it (1 conversations"),
        ("[]", "no requests in it"),
    ],
)
def test_sharegpt_errors(tmp_path: Path, text: str, why: str) -> None:
    path = _write(tmp_path, "bad.json", text)
    with pytest.raises(DatasetError, match=str(path)) as err:
        load_dataset(path)
    assert why in str(err.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="empty file"):
        load_dataset(_write(tmp_path, "blank.jsonl", " \n\n"))
    (tmp_path / "latin.jsonl").write_bytes(b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match="not UTF-8"):
        load_dataset(tmp_path / "latin.jsonl")
    with pytest.raises(DatasetError, match="cannot be read"):
        load_dataset(tmp_path)
    assert issubclass(DatasetError, ValueError)


def test_written_sample_reads_back(tmp_path: Path) -> None:
    path = write_sharegpt_sample(tmp_path / "sample.json", 30, seed=4)
    data = load_dataset(path)
    assert data.format == "sharegpt"
    assert data.name == "sample.json"
    assert len(data.entries) == 30
    assert data.skipped == 0
    raw = json.loads(path.read_text())
    exchanges = {len(c["conversations"]) // 2 for c in raw}
    assert exchanges == {1, 2, 3}
    assert all(e.messages[-1]["role"] == "user" and e.reference for e in data.entries)
    lengths = {len(e.as_text()) for e in data.entries}
    assert len(lengths) > 20  # varied, not one size
    again = write_sharegpt_sample(tmp_path / "again.json", 30, seed=4)
    assert again.read_bytes() == path.read_bytes()
    other = write_sharegpt_sample(tmp_path / "other.json", 30, seed=5)
    assert load_dataset(other).sha256 != data.sha256
