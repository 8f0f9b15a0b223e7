"""When the rate mode's requests are due: open-loop arrival times, seeded. No pytest, no network.

``constant``: one every 1/R seconds. ``poisson``: exponential gaps of mean 1/R. ``gamma``: gamma
gaps of mean 1/R and shape ``burstiness`` (1 is poisson; under 1 burstier, over 1 smoother). The
first request is due at 0 in every kind; the schedule ends before ``duration_s``, or after
``count`` arrivals, whichever comes first.

With a ramp-up of S seconds the rate climbs linearly from 0 to R over the first S seconds, then
holds R. The schedule is drawn in the ramp's own clock (the expected number of arrivals by time t,
``Λ(t)``: R t² / 2S during the ramp, R (t - S/2) after), where the gaps have mean 1 whatever the
rate, and mapped back to seconds through Λ's inverse: the same process, its rate following the ramp
(for ``poisson`` this is exactly an inhomogeneous Poisson process).
"""

from __future__ import annotations

import math
import random

__all__ = ["arrival_times"]

KINDS = ("constant", "poisson", "gamma")


def arrival_times(
    rate: float,
    duration_s: float | None,
    kind: str = "poisson",
    *,
    count: int | None = None,
    seed: int = 0,
    burstiness: float = 1.0,
    ramp_up_s: float = 0.0,
) -> list[float]:
    """Send offsets in seconds from the point's start, ascending, all under ``duration_s`` (if given),
    at most ``count`` of them (if given); one of the two bounds is needed."""
    if duration_s is None and count is None:
        raise ValueError("an arrival schedule needs a duration, a count or both")
    if not rate > 0 or (duration_s is not None and not duration_s > 0):
        raise ValueError(f"rate and duration must be positive, got {rate} req/s for {duration_s} s")
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if kind not in KINDS:
        raise ValueError(f"unknown arrival process {kind!r}: constant, poisson or gamma")
    if kind == "gamma" and not burstiness > 0:
        raise ValueError(f"burstiness must be positive, got {burstiness}")
    if ramp_up_s < 0:
        raise ValueError(f"ramp-up must be 0 or more seconds, got {ramp_up_s}")
    rng = random.Random(f"{seed}:{kind}:{rate}")
    ramp = ramp_up_s  # a ramp longer than the point is cut short, its slope kept

    def seconds(expected: float) -> float:
        """Λ⁻¹: when ``expected`` arrivals are due on average."""
        if ramp > 0 and expected < rate * ramp / 2:
            return math.sqrt(2 * ramp * expected / rate)
        return expected / rate + ramp / 2

    times: list[float] = []
    position = 0.0  # in expected arrivals (Λ)
    end = math.inf if duration_s is None else duration_s
    while (t := seconds(position)) < end and (count is None or len(times) < count):
        times.append(t)
        if kind == "constant":
            position = float(len(times))  # no drift from summing gaps
        elif kind == "poisson":
            position += rng.expovariate(1.0)
        else:
            position += rng.gammavariate(burstiness, 1.0 / burstiness)
    return times
