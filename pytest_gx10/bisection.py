"""The walk both searches take: the low bound, the high bound, then bisection between the highest
passing and the lowest failing point. No pytest, no network.

The saturation search walks load levels (:mod:`pytest_gx10.load.saturation`), the ceiling search a
grid of deployment values (:mod:`pytest_gx10.matrix`); what a point is, how it is judged and
what bounds the walk are theirs, the order of the walk and its stopping rules are this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["walk"]

P = TypeVar("P")


def walk(
    low: P,
    high: P,
    judge: Callable[[P], bool | None],
    between: Callable[[P, P], P | None],
    bound: Callable[[], str | None],
) -> str | None:
    """Walk from ``low`` and ``high`` inwards; the reason it stopped, or None when ``judge`` ended it.

    ``judge(point)`` measures a point: True it passed, False it failed, None the walk must end (the
    caller keeps why). ``between(passing, failing)`` is the next point, None when they are close
    enough. ``bound()`` is the reason no further point may start (a step or time bound), else None.
    Reasons: ``low_fails``, ``high_passes``, ``converged``, or ``bound``'s.
    """
    passed = judge(low)
    if passed is None:
        return None
    if not passed:
        return "low_fails"
    if (reason := bound()) is not None:
        return reason
    passed = judge(high)
    if passed is None:
        return None
    if passed:
        return "high_passes"
    passing, failing = low, high
    while True:
        point = between(passing, failing)
        if point is None:
            return "converged"
        if (reason := bound()) is not None:
            return reason
        passed = judge(point)
        if passed is None:
            return None
        if passed:
            passing = point
        else:
            failing = point
