"""When the rate mode's requests are due: open-loop arrival times, seeded. No pytest, no network.

``constant``: one every 1/R seconds. ``poisson``: exponential gaps of mean 1/R. ``gamma``: gamma
gaps of mean 1/R and shape ``burstiness`` (1 is poisson; under 1 burstier, over 1 smoother). The
first request is due at 0 in every kind; the schedule ends before ``duration_s``.
"""

from __future__ import annotations

import random

__all__ = ["arrival_times"]


def arrival_times(
    rate: float, duration_s: float, kind: str = "poisson", *, seed: int = 0, burstiness: float = 1.0
) -> list[float]:
    """Send offsets in seconds from the point's start, ascending, all under ``duration_s``."""
    if not rate > 0 or not duration_s > 0:
        raise ValueError(f"rate and duration must be positive, got {rate} req/s for {duration_s} s")
    if kind not in ("constant", "poisson", "gamma"):
        raise ValueError(f"unknown arrival process {kind!r}: constant, poisson or gamma")
    if kind == "gamma" and not burstiness > 0:
        raise ValueError(f"burstiness must be positive, got {burstiness}")
    rng = random.Random(f"{seed}:{kind}:{rate}")
    times: list[float] = []
    t = 0.0
    while t < duration_s:
        times.append(t)
        if kind == "constant":
            t = len(times) / rate  # no drift from summing gaps
        elif kind == "poisson":
            t += rng.expovariate(rate)
        else:
            t += rng.gammavariate(burstiness, 1.0 / (rate * burstiness))
    return times
