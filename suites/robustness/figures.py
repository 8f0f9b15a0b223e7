"""The robustness suite's figures, declared once, and its lines on the terminal.

One entry per bad input (``robustness[max-tokens-0]``: the status it got, the engine after it) and
one for the fuzzed bodies (``fuzz``: how many, answered with what).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.figures import MISSING, Figure, Section, register
from pytest_gx10.report.terminal import wrap

__all__ = ["ROBUSTNESS"]

_FIGURES = (
    Figure("status", "HTTP status"),
    Figure("dropped", "connection dropped"),
    Figure("health_after", "/health after"),
    Figure("requests", "fuzzed bodies"),
)


def terminal(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the bad inputs were answered, which got a 5xx or nothing, and the fuzz tally."""
    cases = [e for e in entries if e.get("case") != "fuzz"]
    statuses = Counter(str(e.get("status")) for e in cases)
    bad = [e["case"] for e in cases if not isinstance(e.get("status"), int) or e["status"] >= 500]
    lines = wrap(
        f"robustness: {len(cases)} bad inputs, answered "
        + ", ".join(f"{n} x HTTP {s}" for s, n in sorted(statuses.items()))
    )
    if bad:
        lines += wrap("5xx or no answer (see the failures and the findings): " + ", ".join(bad))
    for e in entries:
        if e.get("case") == "fuzz":
            tally = ", ".join(f"{n} x {s}" for s, n in (e.get("statuses") or {}).items())
            lines += wrap(f"fuzz: {e.get('requests', MISSING)} bodies ({tally})")
            if e.get("failure"):
                lines += wrap(f"fuzz failure: {e['failure']}"[:400])
    return lines


ROBUSTNESS = register(
    Section("robustness", key="case", figures=_FIGURES, title="Robustness", order=50, terminal=terminal)
)
