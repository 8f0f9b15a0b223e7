"""Requests that share a system prompt, in groups, so that a prefix cache has something to serve.

Real chat traffic repeats itself: an application sends the same long system prompt before every user
turn. :class:`SharedPrefixPlan` makes K groups, each with its own system prompt of exactly P tokens;
request i belongs to group ``i % K`` (round robin, so a group's second request leaves K requests after
its first, and the first has usually been prefilled, and its blocks cached, by then). The plan covers
``K * M`` requests, M per group; requests past that keep the round robin.

The prefixes carry the plan's seed in their first line: give a run a seed of its own (a run nonce) when
an earlier run against the same server must not have warmed the cache.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_gx10.workload.filler import filler_sentences
from pytest_gx10.workload.prompts import fit_tokens

__all__ = ["BLOCK_SIZE", "SharedPrefixPlan", "cacheable_tokens"]

BLOCK_SIZE = 16  # vLLM's default KV cache block: only full blocks are cached and shared

# A word most tokenizers spell as one token, used to close the last gap exactly (as in prompts.py).
_PAD = " so"

TextCounter = Callable[[str], int]


def cacheable_tokens(prefix_tokens: int, block_size: int = BLOCK_SIZE) -> int:
    """The shared prefix rounded down to whole blocks: what a prefix cache can serve of it."""
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, got {block_size}")
    return prefix_tokens // block_size * block_size


@dataclass(frozen=True)
class SharedPrefixPlan:
    """K groups (``groups``) of M requests (``per_group``) sharing a P-token prefix (``prefix_tokens``)."""

    groups: int
    prefix_tokens: int
    per_group: int
    seed: int | str = 0
    _prefixes: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("groups", "prefix_tokens", "per_group"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"shared prefix: {name} must be a whole number of at least 1, got {value!r}")

    @property
    def requests(self) -> int:
        """How many requests the plan covers: K * M."""
        return self.groups * self.per_group

    def group_of(self, i: int) -> int:
        """The group of request ``i``: ``i % K``."""
        return i % self.groups

    def prefix_text(self, group: int, count: TextCounter) -> str:
        """Group ``group``'s system prompt: exactly P tokens as ``count`` says, the same bytes every call.

        The first call for a group sizes it (a handful of counts); later calls return the cached text,
        so one plan serves one endpoint: pass the counter of the form the prompt is sent in (for chat,
        a system message's count, template included).
        """
        if not 0 <= group < self.groups:
            raise ValueError(f"shared prefix: group {group} is not one of 0..{self.groups - 1}")
        with self._lock:
            if group not in self._prefixes:
                self._prefixes[group] = self._build(group, count)
            return self._prefixes[group]

    def _build(self, group: int, count: TextCounter) -> str:
        words: list[str] = []
        for sentence in itertools.islice(
            filler_sentences(f"{self.seed} shared prefix {group}"), max(16, self.prefix_tokens // 8)
        ):
            words.extend(sentence.split(" "))
        # The group's number comes first: groups must not share a cache block beyond the template's.
        header = f"{group + 1}/{self.groups}: shared notes, edition {self.seed}.\n\n"

        def render(units: int, pads: int) -> str:
            return f"{header}{' '.join(words[:units])}{_PAD * pads}"

        text, _ = fit_tokens(render, count, self.prefix_tokens, max_units=len(words))
        return text

    def expected_hit_rate(self, input_tokens: int | Sequence[int], block_size: int = BLOCK_SIZE) -> float:
        """The share of prompt tokens a prefix cache can serve, as vLLM's hits / queries counts it.

        ``input_tokens`` is each request's prompt length (request i at index i), or one length for all
        of the plan's K * M requests. Each group's first request misses; every later one hits the
        cacheable prefix C = block_size * floor(P / block_size), and nothing else::

            hit rate = C * (n - min(n, K)) / sum(L_i)

        which for K * M requests of L tokens each is ``(M - 1) / M * C / L``. Every L_i is above P
        (:class:`~pytest_gx10.workload.plan.Workload` refuses shorter ones). An estimate to a block or
        so: in chat form P is the server's count of the system message alone, template tokens included,
        and the shared run of tokens ends where the user turn starts to differ.
        """
        lengths = [input_tokens] * self.requests if isinstance(input_tokens, int) else list(input_tokens)
        total = sum(lengths)
        if total <= 0:
            return 0.0
        hits = cacheable_tokens(self.prefix_tokens, block_size) * (
            len(lengths) - min(len(lengths), self.groups)
        )
        return hits / total

    def as_dict(self) -> dict[str, Any]:
        """What a result records about the plan."""
        return {
            "groups": self.groups,
            "prefix_tokens": self.prefix_tokens,
            "per_group": self.per_group,
            "seed": self.seed,
            "assignment": "i % groups",
        }
