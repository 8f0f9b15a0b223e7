"""suites/perf's sustained load modes through the plugin against a small twin: the ``load`` section's
figures, the warm-up, the send lag, goodput against throughput, attainment under objectives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"


def _run(pytester: pytest.Pytester, *args: str, extra: str = "") -> tuple[pytest.RunResult, dict]:  # type: ignore[type-arg]
    profile = pytester.path / "tiny.toml"
    profile.write_text(tiny_profile() + extra)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider", *args
    )
    return result, json.loads(out.read_text())


def test_rate_sweep_under_capacity_delivers_the_offered_rate(pytester: pytest.Pytester) -> None:
    """Constant arrivals at 2 and 4 req/s for 4 s, 1 s of warm-up: each point completes about what was
    offered (the window adds one request's latency to the arrivals' span), leaves the warm-up's
    requests out, reports its send lag, and with objectives every request meets, goodput is
    throughput and attainment is 1."""
    result, doc = _run(
        pytester,
        "--gx10-load-mode=rate",
        "--gx10-rate=2,4",
        "--gx10-arrival=constant",
        "--gx10-duration=4",
        "--gx10-warmup=1",
        "--gx10-slo=ttft=10s,e2e=30s",
    )
    result.assert_outcomes(passed=2)  # the load points only: the burst sweep is not collected
    result.stdout.fnmatch_lines(["load points (sustained*", "*rate 2/s*", "*rate 4/s*"])
    assert "sweep" not in doc
    assert [(p["mode"], p["level"], p["point"]) for p in doc["load"]] == [
        ("rate", 2.0, "rate 2/s"),
        ("rate", 4.0, "rate 4/s"),
    ]
    for point in doc["load"]:
        rate = point["level"]
        assert point["sent"] == 4 * rate  # constant: one every 1/R s from 0 until 4 s
        assert point["warmup_requests"] == rate  # sent in the first second
        assert point["measured"] == point["ok_requests"] == 3 * rate
        assert all(r["send_s"] >= 1.0 for r in point["requests"] if r["measured"])
        assert all(r["send_s"] < 1.0 for r in point["requests"] if not r["measured"])
        assert point["window_start_s"] == pytest.approx(1.0, abs=0.05)
        assert point["request_throughput_rps"] == pytest.approx(rate, rel=0.25)
        assert point["request_throughput_rps"] < rate * 1.05  # the window's tail only lowers it
        assert point["output_tps"] == pytest.approx(point["request_throughput_rps"] * 32)
        assert point["input_tps"] == pytest.approx(point["request_throughput_rps"] * 300)
        lags = [r["lag_ms"] for r in point["requests"]]
        assert all(lag is not None and lag >= 0 for lag in lags)
        assert point["send_lag_max_ms"] == pytest.approx(max(lags[int(rate) :]))
        assert point["send_lag_p50_ms"] <= point["send_lag_p99_ms"] <= point["send_lag_max_ms"]
        assert point["send_lag_p99_ms"] < 100  # an idle client keeps to its schedule
        for stat in ("mean", "p50", "p90", "p99"):
            assert 0 < point[f"ttft_{stat}_s"] < point[f"e2e_{stat}_s"]
            assert point[f"tpot_{stat}_ms"] > 0
        assert point["slo"] == {"ttft": 10.0, "e2e": 30.0}
        assert point["goodput_rps"] <= point["request_throughput_rps"]
        assert point["goodput_rps"] == pytest.approx(point["request_throughput_rps"])
        assert point["attainment"] == 1.0


def test_an_impossible_objective_drops_attainment_to_zero(pytester: pytest.Pytester) -> None:
    """A 1 ms TTFT no request can meet: the requests still complete, goodput is 0 and attainment 0;
    an attainment floor from the profile then fails the point with the floor's message."""
    result, doc = _run(
        pytester,
        "--gx10-load-mode=rate",
        "--gx10-rate=3",
        "--gx10-duration=2",
        "--gx10-warmup=0.5",
        "--gx10-slo=ttft=1ms",
        extra='\n[perf.load_floors.rate."3"]\nattainment = 0.5\n',
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*rate 3/s SLO attainment 0.0  < floor 0.5*"])
    (point,) = doc["load"]
    assert point["arrival"] == "poisson"
    assert point["ok_requests"] == point["measured"] > 0
    assert point["request_throughput_rps"] > 0
    assert point["goodput_rps"] == 0
    assert point["goodput_tps"] == 0
    assert point["attainment"] == 0
    assert not any(r["meets_slo"] for r in point["requests"])


def test_concurrency_mode_keeps_n_in_flight(pytester: pytest.Pytester) -> None:
    """N=2 for 3 s: requests follow one another on two slots (each slot's next send after its last
    end), and more than the two slots' worth are sent."""
    result, doc = _run(
        pytester,
        "--gx10-load-mode=concurrency",
        "--gx10-concurrency=2",
        "--gx10-duration=3",
        "--gx10-warmup=0.5",
    )
    result.assert_outcomes(passed=1)
    (point,) = doc["load"]
    assert (point["mode"], point["level"], point["point"]) == ("concurrency", 2, "concurrency 2")
    assert point["sent"] >= 6
    assert point["warmup_requests"] >= 2
    assert point["send_lag_max_ms"] is None
    requests = point["requests"]
    in_flight = [
        sum(1 for o in requests if o["sent_unix_s"] <= r["sent_unix_s"] < o["ended_unix_s"]) for r in requests
    ]
    assert max(in_flight) <= 2
    assert point["request_throughput_rps"] > 0
    assert point["attainment"] == 1.0  # no objectives: every completed request counts


def test_request_counts_ramp_up_and_warmup_by_count(pytester: pytest.Pytester) -> None:
    """``--gx10-requests`` bounds each point by count instead of the duration (the rate schedule's
    first N arrivals; N through the closed loop), ``--gx10-ramp-up`` spaces the first arrivals wider
    than the rate, and ``--gx10-warmup-requests`` leaves the first sends out of the figures."""
    result, doc = _run(
        pytester,
        "--gx10-load-mode=rate",
        "--gx10-rate=4",
        "--gx10-arrival=constant",
        "--gx10-requests=9",
        "--gx10-ramp-up=2",
        "--gx10-warmup=0",
        "--gx10-warmup-requests=3",
    )
    result.assert_outcomes(passed=1)
    (point,) = doc["load"]
    assert (point["sent"], point["warmup_requests"], point["measured"]) == (9, 3, 6)
    assert (point["ramp_up_s"], point["warmup_count"]) == (2.0, 3)
    scheduled = [r["scheduled_s"] - point["requests"][0]["scheduled_s"] for r in point["requests"]]
    # R t² / 2S arrivals by t in the ramp: the k-th is due at sqrt(2 S k / R) = sqrt(k) s.
    assert scheduled[:5] == pytest.approx([k**0.5 for k in range(5)], abs=0.01)
    assert scheduled[8] == pytest.approx(8 / 4 + 2 / 2, abs=0.01)  # after the ramp: k / R + S / 2
    assert [r["measured"] for r in point["requests"]] == [False] * 3 + [True] * 6

    result, doc = _run(
        pytester,
        "--gx10-load-mode=concurrency",
        "--gx10-concurrency=2",
        "--gx10-requests=5",
        "--gx10-warmup=0",
    )
    result.assert_outcomes(passed=1)
    (point,) = doc["load"]
    assert (point["sent"], point["measured"], point["ok_requests"]) == (5, 5, 5)
