"""Floors and ceilings on an entry's figures (a sweep point's, from the profile's ``perf.floors``).

Which way a limit points is the figure's declared direction (:mod:`pytest_gx10.figures`): a figure
better higher must reach its floor, one better lower must stay under its ceiling. A limit on a
figure the section does not declare, or declares without a direction, is itself a miss.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_gx10.figures import HIGHER, LOWER, Section

__all__ = ["check_limits"]


def check_limits(section: Section, entry: Mapping[str, Any], limits: Mapping[str, float]) -> list[str]:
    """Every miss, each as ``N=8 aggregate decode 121.3 tok/s < floor 134.5 tok/s``."""
    where = section.label_of(entry) or section.name
    misses = []
    for metric, limit in sorted(limits.items()):
        figure = section.figure(metric)
        if figure is None or figure.better not in (HIGHER, LOWER):
            known = ", ".join(f.name for f in section.figures if f.better in (HIGHER, LOWER))
            why = "is not a figure of" if figure is None else "has no better direction in"
            misses.append(f"{where} limit on {metric}: {metric} {why} {section.name} (limits take: {known})")
            continue
        words, unit = figure.label, figure.unit
        value = entry.get(metric)
        if value is None:
            misses.append(f"{where} {words} not measured (limit {limit:g} {unit})".rstrip())
        elif figure.better == HIGHER and value < limit:
            misses.append(f"{where} {words} {value:.1f} {unit} < floor {limit:.1f} {unit}")
        elif figure.better == LOWER and value > limit:
            misses.append(f"{where} {words} {value:.2f} {unit} > ceiling {limit:.2f} {unit}")
    return misses
