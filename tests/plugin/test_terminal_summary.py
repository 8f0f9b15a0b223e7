"""The gx10 section on the terminal: the figures a user came for, within 100 columns, also under -q."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

from pytest_gx10.report.terminal import WIDTH, summary_lines

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"

TINY = tiny_profile()


def test_sweep_table_is_on_the_terminal_under_q(pytester: pytest.Pytester) -> None:
    """Under -q the section holds one row per point, with the JSON's own figures."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(TINY)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-q", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    doc = json.loads(out.read_text())
    rows = {p["concurrency"]: p for p in doc["sweep"]}
    result.stdout.fnmatch_lines(
        [
            "*= gx10 =*",
            "tiny-model on http://127.0.0.1:* (twin, time scale 1), vLLM 0.32.0",
            "throughput sweep (N requests released together):",
            "N  wall s  agg prefill tok/s  agg decode tok/s  median TTFT s  median decode tok/s  ok/N",
            f"1 *{rows[1]['agg_decode_tps']:.1f} *{rows[1]['median_ttft_s']:.2f} *1/1",
            f"2 *{rows[2]['agg_decode_tps']:.1f} *{rows[2]['median_ttft_s']:.2f} *2/2",
            "each request: 300 tokens in, 32 out",
        ]
    )
    section = (
        result.stdout.str().split("= gx10 =", 1)[1].split("\ngx10: figures written", 1)[0].splitlines()[1:]
    )
    assert all(len(line) <= WIDTH for line in section), max(section, key=len)
    quiet = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", "--gx10-no-summary", "-q", "-p", "no:cacheprovider"
    )
    quiet.assert_outcomes(passed=2)
    assert "throughput sweep" not in quiet.stdout.str()


def test_summary_lines_wrap_and_say_what_went_wrong() -> None:
    """A dead engine, a failed request, a needle miss and a robustness 5xx all show, within 100 columns."""
    document = {
        "model": "m" * 60,
        "target": "http://head:8000",
        "target_label": "attach",
        "server_version": "0.32.0",
        "engine": {
            "state": "dead",
            "since": "16:13:25",
            "cause": "CUDA error: an illegal memory access " * 3,
        },
        "sweep": [
            {
                "concurrency": 8,
                "wall_s": 60.1,
                "agg_prefill_tps": 13000.0,
                "agg_decode_tps": 121.3,
                "median_ttft_s": 5.0,
                "median_decode_tps": 15.0,
                "ok_requests": 7,
                "outcomes": {"ok": 7, "cut": 1},
                "requests": [],
            },
        ],
        "needle": [
            {"case": "1000@0.50", "input_tokens": 1000, "ttft_s": 1.0, "retrieved": False, "answer": "no"}
        ],
        "robustness": [
            {"case": "structured-outputs-not-an-object", "status": 500},
            {"case": "max-tokens-0", "status": 400},
            {"case": "fuzz", "requests": 3, "statuses": {"400": 3}, "failure": ""},
        ],
    }
    lines = summary_lines(document)
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    text = "\n".join(lines)
    assert "ENGINE DEAD since 16:13:25: CUDA error" in text
    assert "N=8: 1 cut" in text
    assert "needle in a haystack: 0 of 1 retrieved" in text
    assert "robustness: 2 bad inputs, answered 1 x HTTP 400, 1 x HTTP 500" in text
    assert "5xx or no answer (see the failures and the findings): structured-outputs-not-an-object" in text
    assert summary_lines({"model": "m"}) == []
