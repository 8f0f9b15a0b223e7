"""Fail fast, lose nothing: an engine that dies mid-run ends the run in one line per later test.

The twin is killed from inside the run (its whole process group, as a crashed container would go);
the sentinel sees /health refused, the test that meets the dead engine fails with the verdict first,
every later test that needs the engine errors at once with the same line, and figures recorded
before the death stay in the JSON. With ``--gx10-relaunch-on-crash`` the twin is started again once,
on the same URL, the relaunch is recorded, and the run goes on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

KILLS_TWIN = """
import os
import signal

import pytest

from pytest_gx10.state import GX10_STATE


def test_1_before(gx10_client, gx10_record):
    gx10_record("sweep", {"concurrency": 1, "agg_decode_tps": 40.0})
    assert gx10_client.health() == 200


def test_2_kills_the_twin(pytestconfig, gx10_client):
    twin = pytestconfig.stash[GX10_STATE].launcher
    os.killpg(twin._proc.pid, signal.SIGKILL)
    assert gx10_client.health() == 200  # refused: this test meets the dead engine


@pytest.mark.parametrize("i", range(4))
def test_3_later(gx10_client, i):
    assert gx10_client.health() == 200


def test_4_needs_no_engine():
    assert True
"""


def test_dead_engine_errors_later_tests_at_once_and_keeps_figures(pytester: pytest.Pytester) -> None:
    """One failure naming the death, four errors with the same line, the figure before it kept."""
    pytester.makepyfile(test_kill=KILLS_TWIN)
    out = pytester.path / "out.json"
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        f"--gx10-json={out}",
        "--gx10-timeout=5",
        "-p",
        "no:cacheprovider",
        "-vv",  # -vv: summary lines whole
    )
    elapsed = time.monotonic() - start
    result.assert_outcomes(passed=2, failed=1, errors=4)
    result.stdout.fnmatch_lines(
        ["FAILED *test_2_kills_the_twin - engine dead since ??:??:??: /health connection refused | *"]
    )
    errors = [line for line in result.stdout.lines if line.startswith("ERROR ")]
    assert len(errors) == 4
    assert all("engine dead since" in line and "/health connection refused" in line for line in errors)
    doc = json.loads(out.read_text())
    assert doc["sweep"] == [{"concurrency": 1, "agg_decode_tps": 40.0}]
    assert doc["engine"]["state"] == "dead"
    assert "connection refused" in doc["engine"]["cause"]
    # Not a speed figure: four tests each waiting out a 5 s timeout would take over 20 s.
    assert elapsed < 60


def test_relaunch_on_crash_starts_the_twin_again_once(pytester: pytest.Pytester) -> None:
    """The first test after the death relaunches the twin on the same URL; the run passes on."""
    pytester.makepyfile(test_kill=KILLS_TWIN)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        f"--gx10-json={out}", "--gx10-relaunch-on-crash", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=6, failed=1)
    doc = json.loads(out.read_text())
    (relaunch,) = doc["relaunches"]
    assert relaunch["after"]["state"] == "dead"
    assert relaunch["url"] == doc["target"]


FROZEN = """
[profile]
name = "frozen"

[deployment]
served_model_name = "SmolLM2-135M-Instruct"
max_model_len = 8192

[twin]
prefill_tps = 100.0
decode_tps = 25.0
time_scale = 10.0

# The engine freezes at once: /health stays 200, a stream opens, then nothing.
[[twin.faults]]
kind = "zombie"
"""


def test_frozen_engine_is_called_hung_in_seconds_not_minutes(pytester: pytest.Pytester) -> None:
    """The health suite's small requests should take a second: the sentinel waits 15 s, not 5 minutes.

    The profile's fixed waits stay the ceiling (crash.hung_after_s 300 s, canary 60 s); the
    deployment's speed (its [twin] table) and the open requests' size bring them down.
    """
    profile = pytester.path / "frozen.toml"
    profile.write_text(FROZEN)
    health = Path(__file__).resolve().parents[2] / "suites" / "health"
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        str(health), f"--gx10-profile={profile}", "-p", "no:cacheprovider", timeout=300
    )
    elapsed = time.monotonic() - start
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(
        [
            "*engine hung since ??:??:??: /health answers 200 but no token was generated for 1? s with "
            "1 request(s) running, and the canary did not finish within *"
        ]
    )
    assert elapsed < 120, f"the suite took {elapsed:.0f} s against a frozen engine"
