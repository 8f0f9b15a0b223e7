"""A load point run K times: the median of each figure, its spread, and what the noise allows.

``--gx10-repeat K`` runs each concurrency point K times. The point keeps, in each figure's usual key,
the median over the repeats (so floors, tables and the baseline gate compare medians), each
repeat's own figures under ``repeats``, and for every gated figure its spread under ``spread``:
the fewest and most, the mean, and from three repeats on a 95 % confidence interval.

The interval is the mean's (Student's t, K-1 degrees of freedom), not the median's: a
distribution-free interval of the median from order statistics cannot reach 95 % below six
repeats (the range of five covers 93.75 %), and K is 3 to 5 in practice. The mean of a few
repeats of one point is a fair stand-in for where its median sits; the t interval is wide with
K=3 (t = 4.30), which is honest about what three repeats can tell. With fewer than three repeats
there is no interval.

Whether a change is beyond the noise (:func:`beyond_noise`): the change of the medians is set
against the combined half-widths of the run's interval and, when the baseline has one, the
baseline's, combined as independent errors (the root of the sum of squares). No pytest here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

__all__ = [
    "MIN_INTERVAL_REPEATS",
    "STATUS_ORDER",
    "Spread",
    "beyond_noise",
    "combine_repeats",
    "noise_words",
    "spread_of",
    "t_975",
    "worst_status",
]

MIN_INTERVAL_REPEATS = 3  # fewer repeats give no interval

# Student's t, two-sided 95 % (the 0.975 quantile), by degrees of freedom.
_T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip

# A point's statuses from best to worst (the words of pytest_gx10.load.points.PointStatus); the
# worst repeat's is the point's.
STATUS_ORDER = ("ok", "zero-token", "failed", "engine dead", "not attempted")


def t_975(df: int) -> float:
    """Student's t quantile 0.975 for ``df`` degrees of freedom (the normal's 1.96 plus a correction past 30)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be 1 or more, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Spread:
    """How one figure varied over a point's repeats."""

    n: int  # repeats that measured it
    median: float
    low: float  # the fewest
    high: float  # the most
    mean: float
    ci_low: float | None = None  # 95 % interval of the mean; None with fewer than 3 repeats
    ci_high: float | None = None

    @property
    def half_width(self) -> float | None:
        """Half the 95 % interval; None without one."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_high - self.ci_low) / 2

    @property
    def shown_half(self) -> float:
        """The ``±`` a table shows: half the interval, or half the range with two repeats."""
        half = self.half_width
        return half if half is not None else (self.high - self.low) / 2

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "n": self.n,
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "mean": self.mean,
            "ci95": None if self.ci_low is None else [self.ci_low, self.ci_high],
            "half_width": self.half_width,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Spread | None:
        """The inverse of :meth:`as_dict`; None for anything malformed (a hand-edited file)."""
        try:
            ci = data.get("ci95")
            low, high = (float(ci[0]), float(ci[1])) if ci is not None else (None, None)
            return cls(
                n=int(data["n"]),
                median=float(data["median"]),
                low=float(data["min"]),
                high=float(data["max"]),
                mean=float(data["mean"]),
                ci_low=low,
                ci_high=high,
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None


def spread_of(values: Sequence[float]) -> Spread | None:
    """The spread of one figure's values over the repeats; None when no repeat measured it."""
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None
    mean = statistics.fmean(numbers)
    ci_low = ci_high = None
    if len(numbers) >= MIN_INTERVAL_REPEATS:
        half = t_975(len(numbers) - 1) * statistics.stdev(numbers) / math.sqrt(len(numbers))
        ci_low, ci_high = mean - half, mean + half
    return Spread(
        n=len(numbers),
        median=statistics.median(numbers),
        low=min(numbers),
        high=max(numbers),
        mean=mean,
        ci_low=ci_low,
        ci_high=ci_high,
    )


def worst_status(statuses: Sequence[str]) -> str:
    """The worst of the repeats' statuses (a word not in :data:`STATUS_ORDER` ranks as failed)."""

    def rank(status: str) -> int:
        return STATUS_ORDER.index(status) if status in STATUS_ORDER else STATUS_ORDER.index("failed")

    return max(statuses, key=rank) if statuses else "ok"


_COUNTS = ("ok_requests", "failed_requests")


def combine_repeats(repeats: Sequence[Mapping[str, Any]], gated: Sequence[str]) -> dict[str, Any]:
    """One point from its repeats (each a point's figures, as ``PointFigures.as_dict()``).

    Every numeric figure is the median over the repeats that measured it (None when none did);
    request counts and outcomes are summed over the repeats, the status is the worst repeat's, the
    ``requests`` are the last repeat's (each repeat keeps its own under ``repeats``), and each
    figure named in ``gated`` gets its spread under ``spread``. One repeat is returned unchanged.
    """
    if not repeats:
        raise ValueError("a point needs at least one repeat")
    if len(repeats) == 1:
        return dict(repeats[0])
    last = repeats[-1]
    point: dict[str, Any] = {}
    for key, value in last.items():
        values = [r.get(key) for r in repeats]
        if key in _COUNTS:
            point[key] = sum(v for v in values if isinstance(v, int))
        elif key == "outcomes":
            totals: dict[str, int] = {}
            for outcomes in values:
                for name, count in (outcomes or {}).items():
                    totals[name] = totals.get(name, 0) + count
            point[key] = totals
        elif key == "status":
            point[key] = worst_status([str(v) for v in values if v is not None])
        elif all(v == value for v in values):
            point[key] = value  # the same in every repeat (the concurrency): kept exact
        elif any(_numeric(v) for v in values):
            point[key] = statistics.median([float(v) for v in values if _numeric(v)])
        else:
            point[key] = value  # the requests: the last repeat's
    point["repeats"] = [dict(r) for r in repeats]
    spreads = {}
    for name in gated:
        spread = spread_of([float(v) for r in repeats if _numeric(v := r.get(name))])
        if spread is not None:
            spreads[name] = spread.as_dict()
    point["spread"] = spreads
    return point


def _numeric(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def beyond_noise(
    base: float, now: float, run: Spread | None, baseline: Spread | None = None
) -> tuple[bool, float] | None:
    """Is the change of the medians ``now - base`` beyond the measured noise, and what is the noise?

    The noise is the run's 95 % half-width, combined with the baseline's when it has one (root of
    the sum of squares: two independent measurements), as a fraction of ``base``. None when the
    run has no interval (fewer than 3 repeats) or the baseline is zero.
    """
    if run is None or run.half_width is None or not base:
        return None
    halves = [run.half_width]
    if baseline is not None and baseline.half_width is not None:
        halves.append(baseline.half_width)
    noise = math.sqrt(sum(h * h for h in halves))
    return abs(now - base) > noise, noise / abs(base)


def noise_words(change: float, noise: float, beyond: bool) -> str:
    """``-12.1 %, beyond the measured noise ±3.0 %`` or ``-1.2 %, within the measured noise ±3.0 %``."""
    where = "beyond" if beyond else "within"
    return f"{change * 100:+.1f} %, {where} the measured noise ±{noise * 100:.1f} %"
