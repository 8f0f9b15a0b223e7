"""Our own tests: one tier marker per test (what it needs to run), a per-tier time summary at the end
of the run (CI prints how long each tier took), and a check that the run leaves no child process
behind (every process a test starts is waited for).

The tiers, registered in pyproject.toml and described in docs/development.md:

- ``unit``: pure functions, in this process; no server, no pytest run of its own;
- ``twin``: starts the embedded twin, or a pytest run (pytester, a subprocess) with the plugin;
- ``docker``: needs the container engine (``scripts/dockerd start``);
- ``real``: needs the real CPU vLLM server (``scripts/real-vllm setup``); selected with ``-m real``;
- ``browser``: needs Debian's chromium;
- ``install``: builds the wheel and installs it into a fresh venv.

A tier a test sets itself (``pytestmark = pytest.mark.real``) is kept; every other test gets one here.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "twin", "docker", "real", "browser", "install")

# Whole directories and files whose every test has the same tier.
_BY_PATH = {
    "real": "real",
    "browser": "browser",
    "test_install.py": "install",
}
# Files of pure tests: a test in them is `unit` unless it asks for pytester or one of our own
# fixtures (those start the twin: tests/unit/test_needle_prompt.py's `count`, for one).
_UNIT_FILES = {
    "unit",
    "fake/test_engine.py",
    "fake/test_fault_spec.py",
    "fake/test_tokenizer.py",
    "launch/test_recipe_schema.py",
    "test_readme.py",
}
# Fixtures that need the container engine (tests/launch/conftest.py builds the others on it).
_DOCKER_FIXTURES = {"docker_engine"}


def _under(relative: Path, places: set[str] | dict[str, str]) -> str | None:
    """The entry of ``places`` that is ``relative`` or one of its parents, if any."""
    for place in (relative.as_posix(), *(parent.as_posix() for parent in relative.parents)):
        if place in places:
            return place
    return None


def _uses_our_fixtures(item: pytest.Item) -> bool:
    """Whether the test asks for pytester or a fixture defined under tests/ (conftest or its module)."""
    if not isinstance(item, pytest.Function):
        return False
    if "pytester" in item.fixturenames:
        return True
    return any(
        definition.baseid != ""
        for definitions in item._fixtureinfo.name2fixturedefs.values()
        for definition in definitions
    )


def _needs_docker(item: pytest.Item) -> bool:
    """The test asks for the engine, or is the ``kind="docker"`` case of a launcher comparison."""
    if not isinstance(item, pytest.Function):
        return False
    if _DOCKER_FIXTURES & set(item.fixturenames):
        return True
    callspec = getattr(item, "callspec", None)
    return callspec is not None and callspec.params.get("kind") == "docker"


def tier_of(item: pytest.Item) -> str:
    """The tier a test of ours gets by where it lives and what it asks for."""
    relative = item.path.resolve().relative_to(TESTS)
    place = _under(relative, _BY_PATH)
    if place is not None:
        return _BY_PATH[place]
    if _needs_docker(item):
        return "docker"
    if _under(relative, _UNIT_FILES) is not None and not _uses_our_fixtures(item):
        return "unit"
    return "twin"


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the markers given here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every test under tests/ without a tier of its own the tier it needs."""
    for item in items:
        if not item.path.resolve().is_relative_to(TESTS):
            continue  # e.g. `pytest suites tests/unit`: the suites are no test of ours
        own = {mark.name for mark in item.iter_markers() if mark.name in TIERS}
        if not own:
            tier = tier_of(item)
            item.add_marker(tier)
        else:
            tier = own.pop() if len(own) == 1 else "several"  # tests/test_tiers.py fails on "several"
        # Travels on the reports, so the controller of an xdist run can sum time per tier.
        item.user_properties.append(("tier", tier))


_TIER_SECONDS: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's duration to its test's tier."""
    tier = dict(report.user_properties).get("tier")
    if tier is not None:
        _TIER_SECONDS[str(tier)] += report.duration


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
