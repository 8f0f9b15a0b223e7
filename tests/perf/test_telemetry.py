"""The sweep's server telemetry against a small twin: samples, peaks, the server's token count, the report."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"
MAX_TOKENS = 32  # the tiny profile's


def test_each_burst_point_records_what_the_server_saw(pytester: pytest.Pytester) -> None:
    """A slow decode (32 tokens at 20 tok/s, over a second and a half a point) so scrapes land mid-burst.

    The twin runs every request of a burst at once (max_num_seqs 8 >= N), so its peak running
    count is N; with ignore_eos its generated-token counter moves by exactly N x max_tokens.
    """
    profile, out, md = pytester.path / "tiny.toml", pytester.path / "out.json", pytester.path / "out.md"
    profile.write_text(tiny_profile((1, 4), decode_tps=20.0))
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", f"--gx10-markdown={md}",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    doc = json.loads(out.read_text())
    assert [p["concurrency"] for p in doc["sweep"]] == [1, 4]
    for point in doc["sweep"]:
        n, series = point["concurrency"], point["telemetry"]
        assert series["layout"] == "columns"
        assert series["reason"] is None
        assert series["gaps"] == 0, series["gap_errors"]
        t_s = series["t_s"]
        assert len(t_s) >= 2, t_s
        assert all(len(series[name]) == len(t_s) for name in ("running", "waiting", "kv_usage"))
        spacing = [b - a for a, b in itertools.pairwise(t_s)]
        # 0.5 s is the schedule; the shared CI cores may wake the thread a little late.
        assert max(spacing) <= 0.6, spacing
        assert t_s[-1] >= point["wall_s"] * 0.9, (
            t_s,
            point["wall_s"],
        )  # from before the sends to after the ends
        assert point["peak_running"] == n, series["running"]
        assert point["peak_waiting"] == 0
        assert 0 < point["peak_kv_usage"] < 1
        assert point["server_generation_tokens"] == n * MAX_TOKENS
        assert point["client_completion_tokens"] == n * MAX_TOKENS
        assert series["generation_tokens"][0] == 0
        assert series["generation_tokens"][-1] == n * MAX_TOKENS
        assert point["preemptions"] == 0
        assert point["kv_full"] is False
        assert point["preempted"] is False
        assert point["prefix_cache_hit_rate"] is not None
        assert 0 <= point["prefix_cache_hit_rate"] < 0.5  # every prompt has a header of its own
    markdown = md.read_text()
    assert "Server telemetry" in markdown
    assert (pytester.path / "out-telemetry-n4.svg").read_text().count("<polyline") >= 2
    # The sweep's points on the latency-throughput plot: one marker per point on each line.
    curve = (pytester.path / "out-latency-throughput.svg").read_text()
    for series in ("TTFT p50", "TTFT p90", "TTFT p99", "TPOT p50", "TPOT p99"):
        assert curve.count(f'class="gx10-point" data-series="{series}"') == 2, series
    assert "vs goodput" not in curve  # no objectives in a burst
