"""Floors and ceilings on a sweep point's figures, from the profile.

Which way a limit points follows from the figure's unit: rates (``_tps``) and rates of acceptance
must reach their floor; times (``_s``, ``_ms``) must stay under their ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LABELS", "check_limits", "higher_is_better"]

LABELS: dict[str, tuple[str, str]] = {  # figure -> (words, unit)
    "agg_decode_tps": ("aggregate decode", "tok/s"),
    "agg_prefill_tps": ("aggregate prefill", "tok/s"),
    "median_decode_tps": ("median decode", "tok/s"),
    "median_ttft_s": ("median TTFT", "s"),
    "p90_ttft_s": ("p90 TTFT", "s"),
    "p99_ttft_s": ("p99 TTFT", "s"),
    "wall_s": ("wall", "s"),
    "itl_p50_ms": ("median inter-token latency", "ms"),
    "itl_p90_ms": ("p90 inter-token latency", "ms"),
    "itl_p99_ms": ("p99 inter-token latency", "ms"),
    "dispatch_skew_ms": ("dispatch skew", "ms"),
}


def higher_is_better(metric: str) -> bool:
    """True for rates (floors), False for times (ceilings)."""
    return not metric.endswith(("_s", "_ms"))


def check_limits(concurrency: int, figures: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
    """Every miss, each as ``N=8 aggregate decode 121.3 tok/s < floor 134.5 tok/s``."""
    misses = []
    for metric, limit in sorted(limits.items()):
        words, unit = LABELS.get(metric, (metric, ""))
        value = figures.get(metric)
        if value is None:
            misses.append(f"N={concurrency} {words} not measured (limit {limit:g} {unit})".rstrip())
        elif higher_is_better(metric) and value < limit:
            misses.append(f"N={concurrency} {words} {value:.1f} {unit} < floor {limit:.1f} {unit}")
        elif not higher_is_better(metric) and value > limit:
            misses.append(f"N={concurrency} {words} {value:.2f} {unit} > ceiling {limit:.2f} {unit}")
    return misses
