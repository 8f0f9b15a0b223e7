"""suites/perf through the plugin against a small, fast twin: floors, the JSON file, quiet progress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"

TINY = tiny_profile()


def _run(pytester: pytest.Pytester, profile_text: str) -> tuple[pytest.RunResult, dict]:  # type: ignore[type-arg]
    profile = pytester.path / "tiny.toml"
    profile.write_text(profile_text)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider"
    )
    return result, json.loads(out.read_text())


def test_sweep_records_every_point_with_exact_tokens(pytester: pytest.Pytester) -> None:
    """Both points pass; the JSON holds the run's facts and each request's figures."""
    result, doc = _run(pytester, TINY)
    result.assert_outcomes(passed=2)
    assert doc["schema_version"] == 1
    assert doc["model"] == "tiny-model"
    assert doc["profile"] == "tiny"
    assert doc["target_label"] == "twin, time scale 1"
    assert doc["server_version"] == "0.32.0"
    assert doc["started_at"]
    assert [p["concurrency"] for p in doc["sweep"]] == [1, 2]
    for point in doc["sweep"]:
        for key in (
            "wall_s",
            "agg_prefill_tps",
            "agg_decode_tps",
            "median_ttft_s",
            "median_decode_tps",
            "p90_ttft_s",
            "p99_ttft_s",
            "dispatch_skew_ms",
        ):
            assert point[key] is not None, key
        assert len(point["requests"]) == point["concurrency"]
        for request in point["requests"]:
            assert (request["prompt_tokens"], request["completion_tokens"]) == (300, 32)
            assert request["finish_reason"] == "length"
            assert request["error"] is None
    # Progress lines are for terminals only: none in captured output.
    assert "\x1b7" not in result.stdout.str()


def test_floor_just_above_the_twin_fails_exactly_that_point(pytester: pytest.Pytester) -> None:
    """Measure, set N=1's floor 10% above what the twin delivered: N=1 fails with the floor message, N=2
    (no floor) passes, and the JSON still holds both points. N=1 because a lone request's figures are
    the same from run to run; at N=2 the twin's batching depends on which request arrives first."""
    _, first = _run(pytester, TINY)
    delivered = first["sweep"][0]["agg_decode_tps"]
    floor = delivered * 1.10
    result, doc = _run(pytester, TINY + f"\n[perf.floors.1]\nagg_decode_tps = {floor}\n")
    assert result.parseoutcomes().get("failed") == 1, result.stdout.str()[-3000:]
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"*N=1 aggregate decode * tok/s < floor {floor:.1f} tok/s*"])
    result.stdout.fnmatch_lines(["FAILED *test_sweep_point[[]N=1[]]*"])
    assert [p["concurrency"] for p in doc["sweep"]] == [1, 2]
