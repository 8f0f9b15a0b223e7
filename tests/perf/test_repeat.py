"""``--gx10-repeat K`` through the plugin against a small twin: repeats, medians and spreads in the JSON,
``±`` in the tables, and a gate that weighs each change against the measured noise."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"
AGGREGATE = ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps")


def test_three_repeats_record_medians_of_the_repeats_and_their_spread(pytester: pytest.Pytester) -> None:
    profile, out, md = pytester.path / "tiny.toml", pytester.path / "out.json", pytester.path / "out.md"
    profile.write_text(tiny_profile((1, 2)))
    baseline = pytester.path / "base.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", "--gx10-repeat=3", f"--gx10-json={out}",
        f"--gx10-markdown={md}", f"--gx10-save-baseline={baseline}", "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    doc = json.loads(out.read_text())
    assert [p["concurrency"] for p in doc["sweep"]] == [1, 2]
    for point in doc["sweep"]:
        n, repeats = point["concurrency"], point["repeats"]
        assert len(repeats) == 3
        for figure in AGGREGATE:
            values = [r[figure] for r in repeats]
            assert all(isinstance(v, float) and v > 0 for v in values), (n, figure, values)
            assert point[figure] == pytest.approx(statistics.median(values)), (n, figure)
            spread = point["spread"][figure]
            assert (spread["n"], spread["min"], spread["max"]) == (3, min(values), max(values))
            half = 4.303 * statistics.stdev(values) / math.sqrt(3)
            assert spread["half_width"] == pytest.approx(half), (n, figure)
            assert spread["ci95"] == pytest.approx(
                [statistics.fmean(values) - half, statistics.fmean(values) + half]
            )
        assert "dispatch_skew_ms" not in point["spread"]  # kept, never gated: no spread
        assert (point["ok_requests"], point["failed_requests"], point["status"]) == (3 * n, 0, "ok")
        assert point["requests"] == repeats[-1]["requests"]
        for repeat in repeats:
            assert len(repeat["requests"]) == n
            assert {(r["prompt_tokens"], r["completion_tokens"]) for r in repeat["requests"]} == {(300, 32)}
        # Each repeat's requests saw prompts of their own (their TTFT is not a prefix-cache hit's):
        # with 300 prompt tokens at 4000 tok/s, a cold prefill takes 75 ms of the twin's time.
        ttfts = [r["ttft_s"] for repeat in repeats for r in repeat["requests"]]
        assert min(ttfts) > 0.05, ttfts
    text = result.stdout.str()
    assert "gx10 repeat: each sweep point 3 times, figures are medians [--gx10-repeat]" in text
    assert "ok/N·K" in text
    assert "median of 3 repeats per point; ± half the 95 % interval of the mean" in text
    n1 = doc["sweep"][0]
    decode = f"{n1['agg_decode_tps']:.1f} ±{n1['spread']['agg_decode_tps']['half_width']:.1f}"
    assert decode in text
    markdown = md.read_text()
    assert f"| {decode} |" in markdown

    # Held to itself, the gate weighs every gated figure against the measured noise and says so.
    again = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", "--gx10-repeat=3", f"--gx10-json={out}",
        f"--gx10-baseline={baseline}", "-p", "no:cacheprovider",
    )  # fmt: skip
    doc = json.loads(out.read_text())
    rows = doc["gate"]["figures"]
    assert len(rows) == 10  # 5 figures x 2 points
    for row in rows:
        assert isinstance(row["noise"], float), row
        assert row["noise"] >= 0, row
        assert isinstance(row["beyond_noise"], bool), row
        assert row["beyond_noise"] == (abs(row["value"] - row["baseline"]) > row["noise"] * row["baseline"])
    again.stdout.fnmatch_lines(
        ["*measured noise (95 % interval over 3 repeats, combined with the baseline's)*"]
    )


def test_two_repeats_show_half_the_range_and_a_bad_k_is_refused(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile, out = pytester.path / "tiny.toml", pytester.path / "out.json"
    profile.write_text(tiny_profile((1,)))
    monkeypatch.setenv("GX10_REPEAT", "2")
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    (point,) = json.loads(out.read_text())["sweep"]
    values = [r["agg_decode_tps"] for r in point["repeats"]]
    assert len(values) == 2
    assert point["agg_decode_tps"] == pytest.approx(sum(values) / 2)
    assert point["spread"]["agg_decode_tps"]["ci95"] is None
    result.stdout.fnmatch_lines(
        ["*median of 2 repeats per point; ± half their range (no interval below 3 repeats)*"]
    )
    shown = f"{point['agg_decode_tps']:.1f} ±{(max(values) - min(values)) / 2:.1f}"
    assert shown in result.stdout.str()

    bad = pytester.runpytest_subprocess(str(PERF), f"--gx10-profile={profile}", "--gx10-repeat=0")  # over env
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*repeat = '0' from --gx10-repeat: each point runs at least once*"])
