"""The request plan of a load run: what request i sends, and the facts a result records about it.

Three kinds of :class:`Workload`:

filler
    varied filler of an exact drawn length, with a header of its own per request (``Story 3, <point>,
    edition <edition>``), so that a prefix cache shares nothing beyond the chat template. With a fixed
    input length this is the perf suite's workload as it was.
shared-prefix
    a group's system prompt (:class:`~pytest_gx10.workload.shared.SharedPrefixPlan`, the same bytes for
    every request of the group) and a user message of filler sized so that the whole prompt is the
    drawn input length.
dataset
    entry ``i % len(entries)`` of a :class:`~pytest_gx10.workload.dataset.Dataset`, sent as it is.
multi-turn
    conversations of ``turns`` turns (:class:`~pytest_gx10.workload.conversation.Conversation`): each
    turn resends the history and a new user message of the drawn length. A turn's request depends on
    the previous turn's answer, so it is built by :meth:`Workload.conversation`, not :meth:`Workload.body`.

``count`` measures a prompt as the server does: given a string it counts a completion prompt, given a
list of messages it counts a chat with its template applied. The wiring passes, for example,
``lambda p: server.count_tokens(p) if isinstance(p, str) else server.count_tokens(messages=p)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from pytest_gx10.workload.conversation import USAGE_PER_CHUNK, Conversation
from pytest_gx10.workload.dataset import Dataset, DatasetEntry
from pytest_gx10.workload.facts import RequestFacts
from pytest_gx10.workload.lengths import LengthSpec
from pytest_gx10.workload.prompts import PromptSizeError, sized_prompt
from pytest_gx10.workload.shared import BLOCK_SIZE, SharedPrefixPlan

__all__ = ["WORKLOAD_KINDS", "BodyForm", "PromptCounter", "RequestFacts", "Workload"]

WORKLOAD_KINDS = ("filler", "dataset", "shared-prefix", "multi-turn")

Message = dict[str, str]
PromptCounter = Callable[[str | list[Message]], int]


class BodyForm(TypedDict):
    """How a run puts its requests, the keywords :meth:`Workload.body` and :meth:`Workload.conversation`
    take: the server's prompt counter, chat or completions, the point's label (in every header), the
    ``max_tokens`` of a request that draws none, ``ignore_eos``, and whether to ask for the usage in
    every streamed chunk (``usage_per_chunk``: each chunk's tokens counted, not estimated)."""

    count: PromptCounter
    chat: bool
    point: str
    max_tokens_default: int
    ignore_eos: bool
    usage_per_chunk: bool


@dataclass(frozen=True)
class Workload:
    """How a run's requests are made: the kind, the length distributions, the file or the sharing plan.

    ``output_len`` None asks every request for the caller's default ``max_tokens``; a dataset entry's
    own output length comes first. ``seed`` draws the lengths (input and output from streams of their
    own: request i's input length is ``input_len.draw(n, f"{seed} input")[i]``, its output length
    ``output_len.draw(n, f"{seed} output")[i]``, whichever order the requests are built in);
    ``edition`` goes into every filler header, so a run nonce keeps an earlier run's prompts out of
    the cache. A shared-prefix plan's own seed does the same for its prefixes.
    """

    kind: str
    input_len: LengthSpec
    output_len: LengthSpec | None = None
    dataset: Dataset | None = None
    shared: SharedPrefixPlan | None = None
    seed: int | str = 0
    edition: str = ""
    turns: int = 4
    block_size: int = BLOCK_SIZE
    _draws: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in WORKLOAD_KINDS:
            raise ValueError(f"workload kind {self.kind!r} is not one of {', '.join(WORKLOAD_KINDS)}")
        if (self.kind == "dataset") != (self.dataset is not None):
            raise ValueError("a dataset workload needs a dataset, and only it takes one")
        if (self.kind == "shared-prefix") != (self.shared is not None):
            raise ValueError("a shared-prefix workload needs a shared prefix plan, and only it takes one")
        if isinstance(self.turns, bool) or not isinstance(self.turns, int) or self.turns < 1:
            raise ValueError(f"a conversation needs at least 1 turn, got {self.turns!r}")

    def _drawn(self, which: str, spec: LengthSpec, i: int) -> int:
        with self._lock:
            drawn = self._draws.get(which, [])
            if i >= len(drawn):
                # Draws are sequential: a longer draw starts with the shorter one, so growing is safe.
                drawn = spec.draw(max(64, 2 * len(drawn), i + 1), f"{self.seed} {which}")
                self._draws[which] = drawn
            return drawn[i]

    def input_tokens(self, i: int) -> int:
        """Request ``i``'s drawn input length."""
        return self._drawn("input", self.input_len, i)

    def output_tokens(self, i: int, max_tokens_default: int, entry: DatasetEntry | None = None) -> int:
        """Request ``i``'s ``max_tokens``: the entry's own, else drawn, else ``max_tokens_default``."""
        if entry is not None and entry.output_tokens is not None:
            return entry.output_tokens
        if self.output_len is None:
            return max_tokens_default
        return self._drawn("output", self.output_len, i)

    def body(
        self,
        i: int,
        *,
        count: PromptCounter,
        chat: bool,
        point: str = "",
        max_tokens_default: int,
        ignore_eos: bool = False,
        usage_per_chunk: bool = False,
    ) -> tuple[dict[str, Any], RequestFacts]:
        """Request ``i``'s body (``messages`` for chat, ``prompt`` for completions) and its facts.

        Raises :class:`~pytest_gx10.workload.PromptSizeError` when a prompt of the drawn length cannot be
        built (below the fixed parts, or for a shared prefix not above the prefix).
        """
        if self.kind == "multi-turn":
            raise ValueError("a multi-turn workload's requests depend on earlier answers: use conversation()")
        entry: DatasetEntry | None = None
        group: int | None = None
        intended: int | None = None
        index: int | None = None
        if self.kind == "dataset":
            assert self.dataset is not None
            index = i % len(self.dataset.entries)
            entry = self.dataset.entries[index]
            fragment, counted = self._dataset_prompt(entry, count, chat)
        else:
            intended = self.input_tokens(i)
            if self.kind == "shared-prefix":
                assert self.shared is not None
                group = self.shared.group_of(i)
                fragment, counted = self._shared_prompt(i, group, intended, count, chat, point)
            else:
                fragment, counted = self._filler_prompt(i, intended, count, chat, point)
        output = self.output_tokens(i, max_tokens_default, entry)
        body = {
            **fragment,
            "max_tokens": output,
            "temperature": 0,
            **({"ignore_eos": True} if ignore_eos else {}),
            **(USAGE_PER_CHUNK if usage_per_chunk else {}),
        }
        return body, RequestFacts(i, self.kind, intended, counted, output, group, index)

    def conversation(
        self,
        index: int,
        *,
        count: PromptCounter,
        chat: bool,
        point: str = "",
        max_tokens_default: int,
        ignore_eos: bool = False,
        usage_per_chunk: bool = False,
    ) -> Conversation:
        """Conversation ``index`` of a multi-turn workload, at its first turn."""
        if self.kind != "multi-turn":
            raise ValueError(f"a {self.kind} workload has no conversations")
        return Conversation(
            self,
            index,
            count=count,
            chat=chat,
            point=point,
            max_tokens_default=max_tokens_default,
            ignore_eos=ignore_eos,
            usage_per_chunk=usage_per_chunk,
        )

    def header(self, word: str, i: int, point: str) -> str:
        """The first line of request (or conversation) ``i``'s own text: ``Story 3, N=4, edition e.``"""
        where = ", ".join(
            p for p in (f"{word} {i + 1}", point, f"edition {self.edition}" if self.edition else "") if p
        )
        return f"{where}.\n\n"

    def _filler_prompt(
        self, i: int, length: int, count: PromptCounter, chat: bool, point: str
    ) -> tuple[dict[str, Any], int]:
        def measure(text: str) -> int:
            return count([{"role": "user", "content": text}]) if chat else count(text)

        prompt = sized_prompt(
            measure, length, seed=f"{point} request {i}", chat=chat, header=self.header("Story", i, point)
        )
        return prompt.body(), prompt.tokens

    def _shared_prompt(
        self, i: int, group: int, length: int, count: PromptCounter, chat: bool, point: str
    ) -> tuple[dict[str, Any], int]:
        assert self.shared is not None
        if length <= self.shared.prefix_tokens:
            raise PromptSizeError(
                f"request {i}: input length {length} is not above the shared prefix of "
                f"{self.shared.prefix_tokens} tokens; draw input lengths with min={self.shared.prefix_tokens + 1} or more"
            )
        if chat:
            prefix = self.shared.prefix_text(group, lambda t: count([{"role": "system", "content": t}]))

            def measure(text: str) -> int:
                return count([{"role": "system", "content": prefix}, {"role": "user", "content": text}])

        else:
            prefix = self.shared.prefix_text(group, count) + "\n\n"

            def measure(text: str) -> int:
                return count(prefix + text)

        user = sized_prompt(
            measure, length, seed=f"{point} request {i}", chat=chat, header=self.header("Question", i, point)
        )
        if chat:
            messages = [{"role": "system", "content": prefix}, {"role": "user", "content": user.text}]
            return {"messages": messages}, user.tokens
        return {"prompt": prefix + user.text}, user.tokens

    @staticmethod
    def _dataset_prompt(entry: DatasetEntry, count: PromptCounter, chat: bool) -> tuple[dict[str, Any], int]:
        if chat:
            messages = [dict(m) for m in entry.messages]
            return {"messages": messages}, count(messages)
        text = entry.as_text()
        return {"prompt": text}, count(text)

    def expected_hit_rate(self) -> float | None:
        """For a shared prefix, the prefix cache's expected hit rate over the plan's K * M requests."""
        if self.shared is None:
            return None
        lengths = [self.input_tokens(i) for i in range(self.shared.requests)]
        return self.shared.expected_hit_rate(lengths, self.block_size)

    def facts(self) -> dict[str, Any]:
        """What results record: the kind, the lengths as written, the seed, the file, the sharing plan."""
        return {
            "kind": self.kind,
            "input_len": None if self.kind == "dataset" else self.input_len.text,
            "output_len": None if self.output_len is None else self.output_len.text,
            "seed": self.seed,
            "dataset": None if self.dataset is None else self.dataset.facts(),
            "shared": None if self.shared is None else self.shared.as_dict(),
            "turns": self.turns if self.kind == "multi-turn" else None,
            "expected_prefix_hit_rate": self.expected_hit_rate(),
        }
