"""Every test of ours has exactly one tier marker (what it needs to run), and -m selects by it.

The tiers are the markers pyproject.toml registers; tests/conftest.py gives each test its tier.
A pytest run collects tests/ with a small plugin that writes down, per test, its tier markers and
the fixtures it asks for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, os

def pytest_collection_finish(session):
    tiers = set(os.environ["TIERS_PROBE_TIERS"].split(","))
    seen = {
        item.nodeid: {
            "tiers": sorted({mark.name for mark in item.iter_markers() if mark.name in tiers}),
            "fixtures": sorted(getattr(item, "fixturenames", [])),
        }
        for item in session.items
    }
    with open(os.environ["TIERS_PROBE_OUT"], "w") as out:
        json.dump(seen, out)
"""


def _registered() -> dict[str, str]:
    """The markers pyproject.toml registers, name to description."""
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return dict(line.split(":", 1) for line in ini["markers"])


TIERS = sorted(_registered())


def _collect(tmp_path: Path, *args: str) -> dict[str, dict[str, list[str]]]:
    """Collect tests/ as ``python -m pytest --collect-only`` does here; per test, its tiers and fixtures."""
    (tmp_path / "tiers_probe.py").write_text(PROBE)
    out = tmp_path / f"seen{len(list(tmp_path.glob('seen*')))}.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "TIERS_PROBE_TIERS": ",".join(TIERS),
        "TIERS_PROBE_OUT": str(out),
    }
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "tiers_probe"]
    done = subprocess.run(
        [*argv, "-p", "no:cacheprovider", *args, "tests"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    seen: dict[str, dict[str, list[str]]] = json.loads(out.read_text())
    return seen


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    return _collect(tmp_path_factory.mktemp("tiers"))


def _tier(seen: dict[str, list[str]]) -> str:
    (tier,) = seen["tiers"]
    return tier


def _in(collected: dict[str, Any], tier: str) -> set[str]:
    return {nodeid for nodeid, seen in collected.items() if seen["tiers"] == [tier]}


def test_the_tiers_are_registered() -> None:
    """pyproject.toml registers the six tiers, each saying what it needs (--strict-markers is on)."""
    assert TIERS == ["browser", "docker", "install", "real", "twin", "unit"]
    assert all(description.strip() for description in _registered().values())


def test_every_test_has_exactly_one_tier(collected: dict[str, dict[str, list[str]]]) -> None:
    """No test is left without a tier, none has two."""
    assert len(collected) > 100
    wrong = {nodeid: seen["tiers"] for nodeid, seen in collected.items() if len(seen["tiers"]) != 1}
    assert not wrong, wrong
    assert {_tier(seen) for seen in collected.values()} == set(TIERS)


def test_tiers_follow_what_a_test_needs(collected: dict[str, dict[str, list[str]]]) -> None:
    """Real, browser and install tests by their place; docker by the engine; unit never runs pytest."""
    for nodeid, seen in collected.items():
        tier, path = _tier(seen), nodeid.split("::")[0]
        if path.startswith("tests/real/"):
            assert tier == "real", nodeid
        if path.startswith("tests/browser/"):
            assert tier == "browser", nodeid
        if path == "tests/test_install.py":
            assert tier == "install", nodeid
        if "docker_engine" in seen["fixtures"]:
            assert tier == "docker", nodeid
        if tier == "unit":
            assert "pytester" not in seen["fixtures"], nodeid
    # The launch tier's real-server test keeps its own mark; a process-launched twin needs no engine.
    assert (
        _tier(
            collected["tests/launch/test_launch_real.py::test_health_suite_against_the_launched_cpu_server"]
        )
        == "real"
    )
    assert (
        _tier(collected["tests/launch/test_launch_plugin.py::test_xdist_starts_exactly_one_target[docker]"])
        == "docker"
    )
    assert (
        _tier(collected["tests/launch/test_launch_plugin.py::test_xdist_starts_exactly_one_target[process]"])
        == "twin"
    )
    # In a file of pure tests, one that starts the twin (through a fixture or pytester) is not unit.
    needle = "tests/unit/test_needle_prompt.py::"
    assert _tier(collected[needle + "test_codes_are_seeded_and_shaped_like_the_posts"]) == "unit"
    assert _tier(collected[needle + "test_prompt_is_exactly_the_requested_tokens[120]"]) == "twin"
    assert _tier(collected[needle + "test_lengths_beyond_max_model_len_are_skipped"]) == "twin"
    # A tier a test sets itself is kept: the README's main job runs the suites against the twin.
    assert _tier(collected["tests/test_readme.py::test_main_job_passes_against_the_twin"]) == "twin"
    assert _tier(collected["tests/test_readme.py::test_quick_start_is_two_commands"]) == "unit"


def test_minus_m_selects_by_tier(collected: dict[str, dict[str, list[str]]], tmp_path: Path) -> None:
    """`-m "unit or twin"` (the loop that needs nothing outside Python) selects exactly those tiers."""
    selected = _collect(tmp_path, "-m", "unit or twin")
    assert set(selected) == _in(collected, "unit") | _in(collected, "twin")
    assert _in(collected, "unit")
    assert _in(collected, "twin")
    assert len(selected) < len(collected)
