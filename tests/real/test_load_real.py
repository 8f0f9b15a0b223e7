"""Sustained load against the real vLLM server: a short rate sweep with the server's telemetry beside it.

The rates come from this machine's own measurement of one request (``real_speed``): one point well
under what one request alone takes, one just over it (requests always overlap) and one at twice it;
.ci/run fits a twin to the outer two and prints its prediction of the middle one. The workload is shorter than the sweep's (200
tokens in, 32 out) so that a 20-second point holds enough requests to say something.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from helpers import speed

from pytest_gx10.profiles import BUNDLED_DIR as BUNDLED

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"
OUT = Path(__file__).resolve().parents[2] / "out"
INPUT_TOKENS, MAX_TOKENS = 200, 32


def _profile(pytester: pytest.Pytester) -> Path:
    """The bundled CPU profile with the load test's shorter requests."""
    text = (BUNDLED / "smollm2-cpu.toml").read_text()
    assert "input_tokens = 1000" in text
    profile = pytester.path / "smollm2-cpu-load.toml"
    profile.write_text(
        text.replace("input_tokens = 1000", f"input_tokens = {INPUT_TOKENS}", 1).replace(
            "max_tokens = 64", f"max_tokens = {MAX_TOKENS}", 1
        )
    )
    return profile


def _service_s(real_speed: speed.MachineSpeed) -> float:
    """How long one request of the load test's shape takes alone on this machine."""
    return INPUT_TOKENS / real_speed.prefill_tps + MAX_TOKENS / real_speed.decode_tps


def test_rate_sweep_on_real_vllm(
    pytester: pytest.Pytester, real_vllm: str, real_speed: speed.MachineSpeed
) -> None:
    """Open-loop points at three rates: every request succeeds, the sends keep their schedule, the
    server keeps up with the lower rate, and its /metrics count the tokens the client received."""
    one = _service_s(real_speed)
    rates = [round(0.4 / one, 3), round(1.2 / one, 3), round(2.0 / one, 3)]
    # Long enough for six arrivals of the lower rate after the 3 s warm-up, however slow the machine.
    duration = max(20, math.ceil(3 + 6 / rates[0]))
    out = OUT / "real-load.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={_profile(pytester)}",
        "--gx10-load-mode=rate",
        f"--gx10-rate={','.join(map(str, rates))}",
        "--gx10-arrival=constant",
        f"--gx10-duration={duration}",
        "--gx10-warmup=3",
        f"--gx10-slo=ttft={max(4 * INPUT_TOKENS / real_speed.prefill_tps, 0.5):.2f}s",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    points: list[dict[str, Any]] = json.loads(out.read_text())["load"]
    summary = {
        p["level"]: {
            k: p[k]
            for k in (
                "measured",
                "request_throughput_rps",
                "ttft_p50_s",
                "send_lag_p50_ms",
                "send_lag_p99_ms",
            )
        }
        for p in points
    }
    assert result.ret == 0, f"one request alone takes {one:.2f} s; points: {summary}"
    result.assert_outcomes(passed=3)
    assert [p["level"] for p in points] == rates
    for p in points:
        assert p["mode"] == "rate"
        assert p["measured"] >= 4, summary
        assert p["failed_requests"] == 0
        assert all(r["prompt_tokens"] == INPUT_TOKENS for r in p["requests"])
        assert all(r["completion_tokens"] == MAX_TOKENS for r in p["requests"])
        # The client's sends keep the schedule (a late send is the client's fault, and reported):
        # the typical send on time, and none so late that it passes the next one's time. The server
        # shares this machine's two cores with the client, so a send can wait for the CPU.
        assert p["send_lag_p50_ms"] < 50, summary
        assert p["send_lag_p99_ms"] < 1000 / p["level"], summary
        # What the server saw: scraped every half second, its generated tokens the client's own.
        assert p["telemetry"]["scrapes"] >= 20
        assert p["peak_running"] >= 1
        assert p["server_generation_tokens"] == p["client_completion_tokens"] == p["sent"] * MAX_TOKENS
    low = points[0]
    # Under capacity, an open loop's throughput is its offered rate: the server keeps up.
    assert low["request_throughput_rps"] == pytest.approx(rates[0], rel=0.3), summary
    assert low["attainment"] is not None


def test_saturation_search_on_real_vllm(
    pytester: pytest.Pytester, real_vllm: str, real_speed: speed.MachineSpeed
) -> None:
    """A saturation search over concurrency 1 to 8 with a TPOT objective of twice one request's own:
    N=1 meets it (nothing else runs), prefills of the requests replacing finished ones stall the
    decodes of the others more the more run at once. Every level at or under the answer passed,
    every one above failed, and the search says why it stopped."""
    tpot_ms = 2 * 1000 / real_speed.decode_tps
    out = OUT / "real-saturation.json"
    profile = _profile(pytester)
    profile.write_text(profile.read_text() + "\n[perf.saturation]\nlow = 1\nhigh = 8\nmax_steps = 4\n")
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={profile}",
        "--gx10-load-mode=concurrency",
        "--gx10-saturate",
        "--gx10-duration=12",
        "--gx10-warmup=2",
        f"--gx10-slo=tpot={tpot_ms:.0f}ms",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    (search,) = json.loads(out.read_text())["saturation"]
    probes = search["probes"]
    table = [(p["level"], p["attainment"], p["passed"]) for p in probes]
    assert result.ret == 0, f"TPOT <= {tpot_ms:.0f} ms; probes {table}; {search['why']}"
    result.assert_outcomes(passed=1)
    assert [p["level"] for p in probes[:2]] == [1.0, 8.0]
    assert 2 <= len(probes) <= 4
    assert search["stopped"] in ("converged", "step_bound", "high_passes"), search["why"]
    answer = search["answer"]
    assert answer is not None, f"one request alone should meet twice its own TPOT: {table}"
    for level, attainment, passed in table:
        assert passed == (level <= answer), table
        assert passed == (attainment >= 0.9), table
