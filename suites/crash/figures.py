"""The crash suite's figures, declared once, and its line on the terminal.

One entry, ``sustained``: the concurrent load, how its requests ended, and the engine after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.figures import LOWER, MISSING, Figure, Section, register
from pytest_gx10.report.terminal import wrap

__all__ = ["CRASH"]

_FIGURES = (
    Figure("requests", "requests"),
    Figure("elapsed_s", "elapsed", "s", LOWER),
    Figure("completion_tokens", "completion", "tokens"),
    Figure("health_after", "/health after the load"),
)


def terminal(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The load's outcomes, whether the canary came back the same, and crash lines in the log."""
    lines = []
    for e in entries:
        outcomes = ", ".join(f"{v} {k}" for k, v in sorted((e.get("outcomes") or {}).items())) or MISSING
        same = e.get("canary_before") is not None and e.get("canary_before") == e.get("canary_after")
        crash_lines = e.get("crash_lines")
        lines += wrap(
            f"crash load: {e.get('requests', MISSING)} requests ({outcomes}); canary "
            f"{'the same after' if same else 'CHANGED after' if e.get('canary_after') else MISSING}; "
            f"crash lines in the log: {len(crash_lines) if isinstance(crash_lines, list) else MISSING}"
        )
    return lines


CRASH = register(Section("crash", key="name", figures=_FIGURES, title="Crash", order=40, terminal=terminal))
