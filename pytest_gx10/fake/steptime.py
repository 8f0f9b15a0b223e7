"""How long one engine step takes: the twin's only performance model, kept small so it can be swapped.

The engine describes each step as a :class:`StepWork` (prefill tokens, prefilling and decoding
sequences) and asks a :class:`StepTimeModel` for its duration in simulated seconds.

Two models ship:

- :class:`LinearStepTime`: a fixed part, a part per prefill token and a part per decoding sequence,
  derived from a profile's single-request rates only (``twin.prefill_tps``, ``twin.decode_tps``).
  Profiles without a calibration use it.
- :class:`CalibratedStepTime`: what the reference profile uses, fitted to the reference post's
  concurrency sweep (see ``docs/twin-calibration.md``). A step costs the decode step of its batch size
  (a table by batch size, linearly interpolated) plus its prefill tokens at the warm per-token cost
  and, for attention over the context, a cost per token-position (a token deep in a long prompt costs
  more than one near its start).
  Two start-up effects sit on top, both tied to *long* prefill steps (steps with at least
  ``warmup_min_prefill_tokens`` prefill tokens) so that short requests (a health check) neither pay nor
  use them up: a one-time warm-up charged to the first long prefill step, and a surcharge on prefill
  tokens that fades linearly over the first ``cold_prefill_tokens`` long-prefill tokens. The model keeps
  that state, so use one instance per engine.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pytest_gx10.profiles import Profile

__all__ = [
    "CalibratedStepTime",
    "LinearStepTime",
    "StepTimeModel",
    "StepWork",
    "mean_tokens_per_decode_step",
    "step_time_from_profile",
]

# Share of a lone decode step that does not grow with the batch (LinearStepTime only).
_FIXED_SHARE = 0.85


@dataclass(frozen=True)
class StepWork:
    """What one step computes."""

    prefill_tokens: int = 0  # prompt tokens computed this step, over all prefilling sequences
    prefill_seqs: int = 0  # sequences with a prefill chunk in this step
    decode_seqs: int = 0  # sequences decoding (1 + draft tokens each)
    # Token-positions: each prefill chunk's tokens times their mean position in the prompt, summed.
    # Attention over the context grows with it: the 1 000th token of a prompt attends to 1 000 keys.
    prefill_context: float = 0.0


class StepTimeModel(Protocol):
    """Anything that prices a step."""

    def step_s(self, work: StepWork) -> float:
        """Simulated seconds for one step (may update the model's warm-up state)."""
        ...


def mean_tokens_per_decode_step(acceptance_per_position: tuple[float, ...]) -> float:
    """1 + expected accepted drafts: with vLLM's unconditional per-position rates, their sum."""
    return 1.0 + sum(acceptance_per_position)


@dataclass(frozen=True)
class LinearStepTime:
    """``base_s + prefill_token_s * prefill tokens + decode_seq_s * decoding sequences``."""

    base_s: float
    prefill_token_s: float
    decode_seq_s: float

    @classmethod
    def from_profile(cls, profile: Profile) -> LinearStepTime:
        """Constants reproducing the profile's single-request prefill and decode rates."""
        dep = profile.deployment
        rates = dep.speculative.acceptance_per_position if dep.speculative else ()
        lone_decode_step_s = mean_tokens_per_decode_step(rates) / profile.twin.decode_tps
        base_s = _FIXED_SHARE * lone_decode_step_s
        # A full prefill chunk pays the fixed part once; charge it back so long prompts hit prefill_tps.
        prefill_token_s = max(1.0 / profile.twin.prefill_tps - base_s / dep.max_num_batched_tokens, 1e-9)
        return cls(base_s, prefill_token_s, lone_decode_step_s - base_s)

    def step_s(self, work: StepWork) -> float:
        """Simulated seconds for one step."""
        return self.base_s + self.prefill_token_s * work.prefill_tokens + self.decode_seq_s * work.decode_seqs


@dataclass
class CalibratedStepTime:
    """Decode step by batch size (interpolated table) + prefill tokens, with start-up effects.

    ``decode_step_s`` maps a decode batch size to the seconds of a step decoding that many sequences
    (1 + draft tokens each); sizes between entries are interpolated linearly, beyond the last entry
    extrapolated from the last two. A step with no decoding sequence costs ``decode_step_s`` at 1 (the
    forward pass and the MoE all-reduce do not get cheaper without a decode).
    """

    decode_step_s: Sequence[tuple[int, float]]
    prefill_token_s: float
    prefill_context_s: float = 0.0  # seconds per token-position (attention over the context so far)
    warmup_s: float = 0.0
    warmup_min_prefill_tokens: int = 1
    cold_prefill_factor: float = 0.0
    cold_prefill_tokens: int = 0
    warm: bool = field(default=False, init=False)  # the one-time warm-up has been paid
    long_prefill_tokens_seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        table = sorted((int(n), float(s)) for n, s in self.decode_step_s)
        if not table or table[0][0] < 1 or any(s <= 0 for _, s in table):
            raise ValueError(f"decode_step_s needs (batch >= 1, seconds > 0) entries, got {table!r}")
        if len({n for n, _ in table}) != len(table):
            raise ValueError(f"decode_step_s has a batch size twice: {table!r}")
        self.decode_step_s = tuple(table)
        self._sizes = [n for n, _ in table]

    @classmethod
    def from_profile(cls, profile: Profile) -> CalibratedStepTime:
        """The model the profile's ``[twin]`` table describes (requires ``twin.decode_step_s``)."""
        twin = profile.twin
        if not twin.decode_step_s:
            raise ValueError(f"profile {profile.name} has no twin.decode_step_s table")
        return cls(
            decode_step_s=twin.decode_step_s,
            prefill_token_s=twin.prefill_token_s or 1.0 / twin.prefill_tps,
            prefill_context_s=twin.prefill_context_s,
            warmup_s=twin.warmup_s,
            warmup_min_prefill_tokens=twin.warmup_min_prefill_tokens,
            cold_prefill_factor=twin.cold_prefill_factor,
            cold_prefill_tokens=twin.cold_prefill_tokens,
        )

    def decode_s(self, batch: int) -> float:
        """Seconds of a step decoding ``batch`` sequences (interpolated from the table)."""
        table = self.decode_step_s
        batch = max(batch, 1)
        if len(table) == 1:
            return table[0][1]
        i = bisect.bisect_left(self._sizes, batch)
        if i < len(table) and table[i][0] == batch:
            return table[i][1]
        i = min(max(i, 1), len(table) - 1)  # interpolate inside, extrapolate from the end segments
        (n0, s0), (n1, s1) = table[i - 1], table[i]
        return max(s0 + (s1 - s0) * (batch - n0) / (n1 - n0), 1e-6)

    def is_long(self, work: StepWork) -> bool:
        """True for a step with enough prefill tokens to count as a long prefill."""
        return work.prefill_tokens >= self.warmup_min_prefill_tokens

    def cold_factor(self) -> float:
        """Current multiplier on the prefill token cost (1 once warm)."""
        if self.cold_prefill_tokens <= 0:
            return 1.0
        left = max(0.0, 1.0 - self.long_prefill_tokens_seen / self.cold_prefill_tokens)
        return 1.0 + self.cold_prefill_factor * left

    def step_s(self, work: StepWork) -> float:
        """Simulated seconds for one step; a long prefill step advances the warm-up state."""
        seconds = self.decode_s(work.decode_seqs)
        if work.prefill_tokens <= 0:
            return seconds
        prefill_s = self.prefill_token_s * work.prefill_tokens + self.prefill_context_s * work.prefill_context
        if not self.is_long(work):
            return seconds + prefill_s
        seconds += prefill_s * self.cold_factor()
        if not self.warm:
            seconds += self.warmup_s
            self.warm = True
        self.long_prefill_tokens_seen += work.prefill_tokens
        return seconds


def step_time_from_profile(profile: Profile) -> StepTimeModel:
    """The calibrated model when the profile has a ``twin.decode_step_s`` table, else the linear one."""
    if profile.twin.decode_step_s:
        return CalibratedStepTime.from_profile(profile)
    return LinearStepTime.from_profile(profile)
