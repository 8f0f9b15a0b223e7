"""Our own tests: a per-tier time summary at the end of the run (CI prints how long each tier took),
and a check that the run leaves no child process behind (every process a test starts is waited for).
"""

from __future__ import annotations

import os
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


def _children() -> list[str]:
    """Live children of this process (zombies are waited-for leftovers too), as ``pid state cmdline``."""
    me, found = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if fields[1] != me:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        found.append(f"{entry.name} {fields[0]} {cmdline[:200]}")
    return found


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a test left a child process running (or unwaited-for) behind it."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # each worker checks itself only when it is the whole run
    left = _children()
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("processes left behind by the tests (pid, state, command):", red=True)
            for line in left:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
