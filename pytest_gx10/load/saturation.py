"""Saturation search: the highest load level whose SLO attainment holds a target, found by bisection.

A *level* is a rate in requests/s (the ``rate`` mode) or a number of requests kept in flight (the
``concurrency`` mode; the burst mode searches concurrency too). A *probe* runs one sustained load
point at a level (the caller's ``run``, returning the point's ``load`` figures) and passes when its
``attainment`` (the share of measured requests meeting every objective) is at least the target.

The walk, in order:

1. the low bound: if it fails, no level passes and the answer is None ("low bound fails");
2. the high bound: if it passes, the answer is the high bound and the true one is at least that
   ("high bound passes");
3. bisection between the highest passing level and the lowest failing one, at their geometric
   mean (levels span orders of magnitude, 0.5 to 64 req/s, so halving the ratio finds the scale
   in as few probes as halving the gap finds the digits), rounded to a whole number in the
   concurrency mode;

until the lowest failing level is within ``resolution`` (a fraction) of the highest passing one, or
no whole number lies between them ("converged"), ``max_steps`` probes were made ("step bound"), the
next probe would end past ``max_time_s`` of wall time judged by the longest probe so far ("time
bound"), a probe left the engine dead ("engine dead") or could not run at all ("probe error"). Every
probe made is kept, in the order walked, whatever stopped the search. No pytest here, no network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_gx10.bisection import walk
from pytest_gx10.load.points import PointStatus
from pytest_gx10.profiles import SaturationSpec

__all__ = [
    "DEFAULT_BOUNDS",
    "STOPS",
    "Probe",
    "SaturationPlan",
    "SaturationResult",
    "next_level",
    "plan_search",
    "search",
]

# Bounds when the level list gives no span (a single level, or the built-in default list).
DEFAULT_BOUNDS = {"rate": (0.5, 64.0), "concurrency": (1.0, 64.0)}

# Why a search stopped: the code in the results, and the words the report says it in.
STOPS = {
    "converged": "converged",
    "step_bound": "step bound",
    "time_bound": "time bound",
    "low_fails": "low bound fails",
    "high_passes": "high bound passes",
    "engine_dead": "engine dead",
    "probe_error": "probe error",
}


@dataclass(frozen=True)
class SaturationPlan:
    """What to search: the mode, the attainment target, the bounds and the limits of the walk."""

    mode: str  # "rate" or "concurrency"
    target: float
    low: float
    high: float
    max_steps: int = 6
    max_time_s: float = 1800.0
    resolution: float = 0.1
    floor: float | None = None
    bounds_from: str = "default"  # where low and high came from, for the report

    def unit(self) -> str:
        """The level's unit: ``req/s`` or ``in flight``."""
        return "req/s" if self.mode == "rate" else "in flight"

    def level_text(self, level: float | None) -> str:
        """``2.5 req/s`` or ``8 in flight``; ``none`` for None."""
        if level is None:
            return "none"
        shown = f"{level:.3g}" if self.mode == "rate" else f"{int(level)}"
        return f"{shown} {self.unit()}"


def plan_search(
    load_mode: str,
    levels: Sequence[float],
    spec: SaturationSpec,
    *,
    levels_given: bool,
) -> SaturationPlan:
    """The plan for a run: rate levels in the rate mode, concurrency in the others (burst included).

    Bounds: the profile's ``low`` / ``high`` where given; else the smallest and largest of the
    mode's level list when that list was given (by option, environment, ini or profile) and holds
    two levels or more; else :data:`DEFAULT_BOUNDS`.
    """
    mode = "rate" if load_mode == "rate" else "concurrency"
    default_low, default_high = DEFAULT_BOUNDS[mode]
    spread = levels_given and len(set(levels)) > 1
    low = spec.low if spec.low is not None else (min(levels) if spread else default_low)
    high = spec.high if spec.high is not None else (max(levels) if spread else default_high)
    if spec.low is not None and spec.high is None and high <= low:
        high = max(default_high, low * 2)
    if spec.high is not None and spec.low is None and low >= high:
        low = min(default_low, high / 2)
    if mode == "concurrency":
        low, high = float(max(1, math.floor(low))), float(max(2, math.ceil(high)))
    source = "profile perf.saturation" if spec.low is not None or spec.high is not None else ""
    source = source or ("the level list" if spread else "default")
    return SaturationPlan(
        mode=mode,
        target=spec.attainment,
        low=low,
        high=high,
        max_steps=spec.max_steps,
        max_time_s=spec.max_time_s,
        resolution=spec.resolution,
        floor=spec.floor,
        bounds_from=source,
    )


@dataclass(frozen=True)
class Probe:
    """One probe of the walk: its level, the figures that decide it, and its verdict."""

    step: int
    level: float
    point: str
    attainment: float | None
    goodput_rps: float | None
    goodput_tps: float | None
    output_tps: float | None
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    tpot_p50_ms: float | None
    tpot_p99_ms: float | None
    status: str
    passed: bool
    elapsed_s: float

    @classmethod
    def of(
        cls, step: int, level: float, figures: Mapping[str, Any], target: float, elapsed_s: float
    ) -> Probe:
        """The probe of a point's ``load`` figures: passed when attainment reaches ``target``."""

        def number(name: str) -> float | None:
            value = figures.get(name)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        attainment = number("attainment")
        status = str(figures.get("status") or PointStatus.OK)
        return cls(
            step=step,
            level=level,
            point=str(figures.get("point") or level),
            attainment=attainment,
            goodput_rps=number("goodput_rps"),
            goodput_tps=number("goodput_tps"),
            output_tps=number("output_tps"),
            ttft_p50_s=number("ttft_p50_s"),
            ttft_p99_s=number("ttft_p99_s"),
            tpot_p50_ms=number("tpot_p50_ms"),
            tpot_p99_ms=number("tpot_p99_ms"),
            status=status,
            passed=attainment is not None and attainment >= target and status != PointStatus.ENGINE_DEAD,
            elapsed_s=elapsed_s,
        )


@dataclass
class SaturationResult:
    """Where a search got to: every probe in the order walked, the answer, and why it stopped."""

    plan: SaturationPlan
    slo: Mapping[str, float]
    probes: list[Probe] = field(default_factory=list)
    stopped: str = ""
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def answer(self) -> float | None:
        """The highest level that passed; None when none did."""
        passed = [p.level for p in self.probes if p.passed]
        return max(passed) if passed else None

    @property
    def lowest_failing(self) -> float | None:
        """The lowest level that failed above the answer; None when none did."""
        answer = self.answer
        failed = [p.level for p in self.probes if not p.passed and (answer is None or p.level > answer)]
        return min(failed) if failed else None

    def why(self) -> str:
        """Why the search stopped, in a sentence naming the levels."""
        plan, text = self.plan, self.plan.level_text
        last = self.probes[-1] if self.probes else None
        if self.stopped == "converged":
            return (
                f"converged: {text(self.answer)} passes, {text(self.lowest_failing)} fails "
                f"(within the resolution of {plan.resolution:.0%} or one step)"
            )
        if self.stopped == "step_bound":
            return f"step bound: {plan.max_steps} probes made"
        if self.stopped == "time_bound":
            return (
                f"time bound: the next probe would end past {plan.max_time_s:g} s "
                f"({self.elapsed_s:.0f} s spent)"
            )
        if self.stopped == "low_fails":
            return f"the low bound {text(plan.low)} fails: no level reaches {plan.target:.0%} attainment"
        if self.stopped == "high_passes":
            return f"the high bound {text(plan.high)} passes: the answer is at least {text(plan.high)}"
        if self.stopped == "engine_dead":
            at = text(last.level) if last else "the first probe"
            return f"the engine died during the probe at {at}: the probes before it are kept"
        if self.stopped == "probe_error":
            at = text(last.level) if last else "the first probe"
            return f"a probe could not run ({self.error})" + (f"; last probe at {at}" if last else "")
        return "not run"

    def summary(self) -> str:
        """The answer in one line, said plainly when there is none."""
        plan = self.plan
        if self.answer is None:
            if not self.probes:
                return f"no answer: {self.why()}"
            return f"no answer: no level probed reaches {plan.target:.0%} SLO attainment ({self.why()})"
        above = self.lowest_failing
        bound = f", {plan.level_text(above)} fails" if above is not None else ""
        at_least = "at least " if self.stopped == "high_passes" else ""
        return f"saturation at {at_least}{plan.level_text(self.answer)} ({plan.target:.0%} SLO attainment{bound})"

    def as_entry(self) -> dict[str, Any]:
        """The ``saturation`` section's entry (JSON-ready)."""
        plan = self.plan
        return {
            "mode": plan.mode,
            "target": plan.target,
            "slo": dict(self.slo),
            "low": plan.low,
            "high": plan.high,
            "bounds_from": plan.bounds_from,
            "max_steps": plan.max_steps,
            "max_time_s": plan.max_time_s,
            "resolution": plan.resolution,
            "floor": plan.floor,
            "answer": self.answer,
            "lowest_failing": self.lowest_failing,
            "summary": self.summary(),
            "stopped": self.stopped,
            "why": self.why(),
            "error": self.error or None,
            "steps": len(self.probes),
            "elapsed_s": self.elapsed_s,
            "probes": [asdict(p) for p in self.probes],
        }


def _converged(plan: SaturationPlan, passing: float, failing: float) -> bool:
    if plan.mode == "concurrency" and failing - passing <= 1:
        return True
    return (failing - passing) / passing <= plan.resolution


def next_level(plan: SaturationPlan, passing: float, failing: float) -> float | None:
    """The level between the highest passing and the lowest failing one; None when converged."""
    if _converged(plan, passing, failing):
        return None
    middle = math.sqrt(passing * failing)
    if plan.mode == "concurrency":
        return float(min(max(round(middle), int(passing) + 1), int(failing) - 1))
    return middle


def search(
    plan: SaturationPlan,
    run: Callable[[float], Mapping[str, Any]],
    *,
    slo: Mapping[str, float],
    clock: Callable[[], float] = time.monotonic,
    on_probe: Callable[[Probe], None] | None = None,
) -> SaturationResult:
    """Walk the levels (see the module's docstring); ``run(level)`` measures one load point.

    An exception from ``run`` ends the search as a probe error (the probes made are kept, the
    exception's text is in the result); it never escapes, so a caller records what was measured.
    """
    result = SaturationResult(plan=plan, slo=dict(slo))
    start = clock()
    longest = 0.0

    def judge(level: float) -> bool | None:
        nonlocal longest
        began = clock()
        try:
            figures = run(level)
        except Exception as exc:  # a dead server's refusals and the like: end the walk, keep the probes
            result.stopped, result.error = "probe_error", f"{type(exc).__name__}: {exc}"
            return None
        took = clock() - began
        longest = max(longest, took)
        found = Probe.of(len(result.probes) + 1, level, figures, plan.target, took)
        result.probes.append(found)
        if on_probe is not None:
            on_probe(found)
        if found.status == PointStatus.ENGINE_DEAD:
            result.stopped = "engine_dead"
            return None
        return found.passed

    def bound() -> str | None:
        if len(result.probes) >= plan.max_steps:
            return "step_bound"
        if clock() - start + longest > plan.max_time_s:
            return "time_bound"
        return None

    try:
        reason = walk(plan.low, plan.high, judge, lambda p, f: next_level(plan, p, f), bound)
        if reason is not None:
            result.stopped = reason
        return result
    finally:
        result.elapsed_s = clock() - start
