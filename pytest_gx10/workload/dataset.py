"""Requests read from a file: JSONL prompts or ShareGPT conversations, each one request.

Two formats, told apart by the first character of the file (``[`` is ShareGPT):

JSONL
    one JSON object per line, ``{"prompt": "..."}`` or ``{"messages": [{"role": ..., "content": ...}]}``,
    each with an optional output length, ``"output_tokens"`` or ``"max_tokens"``. Blank lines are skipped.

ShareGPT
    the JSON array as published: ``[{"id": ..., "conversations": [{"from": "human", "value": ...}, ...]}]``;
    ``"user"``/``"assistant"`` for ``"human"``/``"gpt"``, and ``role``/``content`` for ``from``/``value``,
    are read too (so is ``"messages"`` for ``"conversations"``). A conversation becomes one request: its
    turns up to, not including, its last assistant turn, and at least up to its first human turn; that
    last assistant reply is kept as the reference answer. A conversation with no human turn is skipped
    and counted.

Nothing is ever downloaded: :func:`write_sharegpt_sample` writes a small ShareGPT file from the filler.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from pytest_gx10.workload.filler import filler_sentences

__all__ = ["Dataset", "DatasetEntry", "DatasetError", "load_dataset", "write_sharegpt_sample"]

Message = dict[str, str]

_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "system": "system",
}


class DatasetError(ValueError):
    """A dataset file that cannot be read: one line naming the file and what is wrong."""


@dataclass(frozen=True)
class DatasetEntry:
    """One request: its messages in OpenAI form and what the file said about its answer.

    ``prompt`` is the raw text of a JSONL ``{"prompt": ...}`` line (sent as is on the completions
    endpoint); ``reference`` the answer a ShareGPT conversation gave, ``reference_chars`` its length.
    """

    messages: list[Message]
    output_tokens: int | None = None
    reference: str | None = None
    prompt: str | None = None

    @property
    def reference_chars(self) -> int | None:
        """The reference answer's length in characters (its tokens are for the server to count)."""
        return None if self.reference is None else len(self.reference)

    def as_text(self) -> str:
        """The request as one completion prompt: the raw prompt, else ``role: content`` lines."""
        if self.prompt is not None:
            return self.prompt
        return "\n".join(f"{m['role']}: {m['content']}" for m in self.messages)


@dataclass(frozen=True)
class Dataset:
    """The requests of one file, and what identifies the file."""

    name: str
    sha256: str
    format: str  # "jsonl" or "sharegpt"
    entries: list[DatasetEntry] = field(repr=False)
    skipped: int = 0

    def facts(self) -> dict[str, Any]:
        """What results record about the file."""
        return {
            "file": self.name,
            "sha256": self.sha256,
            "entries": len(self.entries),
            "skipped": self.skipped,
            "format": self.format,
        }


def _output_tokens(obj: dict[str, Any], fail: Callable[[str], DatasetError]) -> int | None:
    for key in ("output_tokens", "max_tokens"):
        if key in obj:
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise fail(f'"{key}" must be a whole number of at least 1, got {value!r}')
            return value
    return None


def _jsonl(path: Path, text: str) -> list[DatasetEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue

        def fail(why: str, number: int = number) -> DatasetError:
            return DatasetError(f"{path}: line {number}: {why}")

        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise fail(f"not JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise fail(f'expected an object with "prompt" or "messages", got {type(obj).__name__}')
        if isinstance(obj.get("prompt"), str):
            prompt = obj["prompt"]
            entries.append(
                DatasetEntry([{"role": "user", "content": prompt}], _output_tokens(obj, fail), prompt=prompt)
            )
        elif isinstance(obj.get("messages"), list) and obj["messages"]:
            messages = []
            for m in obj["messages"]:
                if not (
                    isinstance(m, dict)
                    and isinstance(m.get("role"), str)
                    and isinstance(m.get("content"), str)
                ):
                    raise fail(f'each message needs a "role" and a "content" string, got {str(m)[:80]}')
                messages.append({"role": m["role"], "content": m["content"]})
            entries.append(DatasetEntry(messages, _output_tokens(obj, fail)))
        else:
            raise fail('expected a "prompt" string or a non-empty "messages" list')
    return entries


def _turns(path: Path, k: int, conv: Any) -> list[Message]:
    def fail(why: str) -> DatasetError:
        return DatasetError(f"{path}: conversation {k}: {why}")

    if not isinstance(conv, dict):
        raise fail(f'expected an object with "conversations", got {type(conv).__name__}')
    turns = conv.get("conversations", conv.get("messages"))
    if not isinstance(turns, list):
        raise fail('expected a "conversations" list')
    out = []
    for t in turns:
        if not isinstance(t, dict):
            raise fail(f"expected each turn to be an object, got {str(t)[:80]}")
        who, said = t.get("from", t.get("role")), t.get("value", t.get("content"))
        if not isinstance(who, str) or not isinstance(said, str):
            raise fail(
                f'each turn needs "from" and "value" (or "role" and "content") strings, got {str(t)[:80]}'
            )
        role = _ROLES.get(who.lower())
        if role is None:
            raise fail(f"unknown speaker {who!r} (human, gpt, user, assistant or system)")
        out.append({"role": role, "content": said})
    return out


def _request(turns: list[Message]) -> DatasetEntry | None:
    """The request a conversation makes, or None when it has no human turn."""
    users = [i for i, t in enumerate(turns) if t["role"] == "user"]
    if not users:
        return None
    replies = [i for i, t in enumerate(turns) if t["role"] == "assistant" and i > users[0]]
    if replies:
        last = replies[-1]
        return DatasetEntry(turns[:last], reference=turns[last]["content"])
    # No answer after the first question: the conversation up to its last human turn, no reference.
    return DatasetEntry(turns[: users[-1] + 1])


def _sharegpt(path: Path, data: Any) -> tuple[list[DatasetEntry], int]:
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON array of conversations, got {type(data).__name__}")
    entries, skipped = [], 0
    for k, conv in enumerate(data):
        entry = _request(_turns(path, k, conv))
        if entry is None:
            skipped += 1
        else:
            entries.append(entry)
    return entries, skipped


def load_dataset(path: str | Path) -> Dataset:
    """Read a JSONL or ShareGPT file; :class:`DatasetError` naming the file and the problem otherwise."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{path}: not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise DatasetError(f"{path}: empty file")
    skipped = 0
    if text.lstrip().startswith("["):
        fmt = "sharegpt"
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None
        entries, skipped = _sharegpt(path, data)
    else:
        fmt = "jsonl"
        entries = _jsonl(path, text)
    if not entries:
        raise DatasetError(
            f"{path}: no requests in it ({skipped} conversations without a human turn skipped)"
        )
    return Dataset(path.name, hashlib.sha256(raw).hexdigest(), fmt, entries, skipped)


def _said(sentences: Iterator[str], rng: random.Random, low: int, high: int) -> str:
    return " ".join(islice(sentences, rng.randint(low, high)))


def write_sharegpt_sample(path: str | Path, n: int, seed: int | str = 0) -> Path:
    """Write ``n`` ShareGPT conversations of filler, 1-3 human/gpt exchanges each, of varied lengths.

    The same ``seed`` writes the same bytes. Returns the path.
    """
    rng = random.Random(seed)
    conversations = []
    for k in range(n):
        sentences = filler_sentences(f"{seed} conversation {k}")
        turns = []
        for _ in range(rng.randint(1, 3)):
            question = _said(sentences, rng, 1, 12)
            turns.append({"from": "human", "value": f"{question} What happened next?"})
            turns.append({"from": "gpt", "value": _said(sentences, rng, 1, 20)})
        conversations.append({"id": f"sample-{k}", "conversations": turns})
    path = Path(path)
    path.write_text(json.dumps(conversations, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
