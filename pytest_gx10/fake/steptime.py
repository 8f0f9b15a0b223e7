"""How long one engine step takes: the twin's only performance model, kept small so it can be swapped.

A step's cost is linear: a fixed part (kernel launches, the MoE all-reduce over TP, sampling), a part per
prefill token and a part per decoding sequence. The constants come from a profile's single-request
figures so that one request alone prefills at ``twin.prefill_tps`` and decodes at ``twin.decode_tps``
(counting accepted draft tokens). Most of a decode step is the fixed part, as on the reference cluster
where 16 concurrent streams still decode at a third of the single-stream rate each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pytest_gx10.profiles import Profile

__all__ = ["LinearStepTime", "StepTimeModel", "mean_tokens_per_decode_step"]

# Share of a lone decode step that does not grow with the batch (fitted to the reference post's
# median per-request decode rates at N = 1, 2, 8, 16: about 0.057 s + 0.0094 s per sequence).
_FIXED_SHARE = 0.85


class StepTimeModel(Protocol):
    """Anything that prices a step (a later calibration replaces the linear model)."""

    def step_s(self, num_prefill_tokens: int, num_decode_seqs: int, num_scheduled_tokens: int) -> float:
        """Simulated seconds for one step."""
        ...


def mean_tokens_per_decode_step(acceptance_per_position: tuple[float, ...]) -> float:
    """1 + expected accepted drafts, each position accepted only after the previous one."""
    mean, survive = 1.0, 1.0
    for rate in acceptance_per_position:
        survive *= rate
        mean += survive
    return mean


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

    def step_s(self, num_prefill_tokens: int, num_decode_seqs: int, num_scheduled_tokens: int) -> float:
        """Simulated seconds for one step."""
        del num_scheduled_tokens
        return self.base_s + self.prefill_token_s * num_prefill_tokens + self.decode_seq_s * num_decode_seqs
