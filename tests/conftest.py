"""Our own tests: a per-tier time summary at the end of the run (CI prints how long each tier took)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

_TIER_SECONDS: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's duration to its tier (tests/<tier>/...)."""
    parts = Path(report.fspath).parts
    tier = parts[1] if len(parts) > 2 and parts[0] == "tests" else Path(report.fspath).stem
    _TIER_SECONDS[tier] += report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per tier, slowest first."""
    if not _TIER_SECONDS:
        return
    terminalreporter.section("time per tier")
    for tier, seconds in sorted(_TIER_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{tier:<20} {seconds:8.1f} s")
