"""Sustained load past what a small twin serves, read back from the results JSON's ``load`` entries:
the waiting queue, TTFT and goodput across a rate sweep, and preemptions when the KV cache is small."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"


def _profile(
    *,
    max_num_seqs: int,
    max_model_len: int,
    kv_cache_tokens: int | None,
    input_tokens: int,
    max_tokens: int,
    time_scale: float,
) -> str:
    """A small twin decoding 50 tok/s alone."""
    kv = "" if kv_cache_tokens is None else f"kv_cache_tokens = {kv_cache_tokens}\n"
    return f"""
[profile]
name = "kv-load"

[deployment]
served_model_name = "kv-model"
max_model_len = {max_model_len}
max_num_seqs = {max_num_seqs}

[twin]
prefill_tps = 4000.0
decode_tps = 50.0
time_scale = {time_scale!r}
{kv}
[perf]
input_tokens = {input_tokens}
max_tokens = {max_tokens}
"""


def _run(pytester: pytest.Pytester, profile_text: str, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    profile = pytester.path / "kv-load.toml"
    profile.write_text(profile_text)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider", *args
    )
    doc: dict[str, Any] = json.loads(out.read_text())
    return result, doc


def test_a_rate_sweep_past_capacity_queues_and_loses_goodput(pytester: pytest.Pytester) -> None:
    """One request at a time, 300 + 32 tokens in about 0.7 s of the twin's time: it serves about
    1.4 req/s. Constant arrivals at 0.5, 1 and 4 req/s for 4 s of its time, the first second's left out: well under, under and
    well over. The queue the server reports grows, the median TTFT rises, and fewer requests a
    second meet a 2 s TTFT."""
    result, doc = _run(
        pytester,
        _profile(
            max_num_seqs=1,
            max_model_len=8192,
            kv_cache_tokens=None,
            input_tokens=300,
            max_tokens=32,
            # The server's queue is scraped every half second of wall: 5 times real time gives the
            # overloaded point a few scrapes while its queue is long.
            time_scale=5.0,
        ),
        "--gx10-load-mode=rate",
        "--gx10-rate=0.5,1,4",
        "--gx10-arrival=constant",
        "--gx10-duration=4",
        "--gx10-warmup=1",
        "--gx10-slo=ttft=2s",
    )
    result.assert_outcomes(passed=3)
    points = sorted(doc["load"], key=lambda p: float(p["level"]))
    assert [p["level"] for p in points] == [0.5, 1.0, 4.0]
    waiting = [p["peak_waiting"] for p in points]
    ttft = [p["ttft_p50_s"] for p in points]
    goodput = [p["goodput_rps"] for p in points]
    print(f"peak waiting {waiting}, median TTFT {ttft}, goodput {goodput}")
    assert all(p["telemetry"]["reason"] is None for p in points)
    assert all(p["ok_requests"] == p["measured"] > 0 for p in points)
    assert not any(p["failed_requests"] for p in points)
    assert waiting[0] == 0  # each request is done before the next arrives
    assert waiting[0] <= waiting[1] < waiting[2]
    assert waiting[2] >= 3  # 16 arrive in 4 s, about 6 are served meanwhile
    assert ttft[0] < ttft[2]
    assert ttft[1] < ttft[2]
    assert ttft[0] < 1.0 < 2.0 < ttft[2]
    assert goodput[2] < goodput[1]
    assert goodput[2] < goodput[0]
    assert points[0]["attainment"] == 1.0
    assert points[2]["attainment"] < 0.5
    assert all(p["preemptions"] == 0 for p in points)  # the default pool holds 2.1 full contexts


def test_a_small_kv_cache_preempts_under_load(pytester: pytest.Pytester) -> None:
    """Four requests of 128 + 256 tokens at a time need 96 blocks at their end; a 512-token pool has
    32. Every request still completes with all its tokens, and the point's telemetry says the server
    preempted."""
    result, doc = _run(
        pytester,
        _profile(
            max_num_seqs=4,
            max_model_len=512,
            kv_cache_tokens=512,
            input_tokens=128,
            max_tokens=256,
            time_scale=20.0,
        ),
        "--gx10-load-mode=concurrency",
        "--gx10-concurrency=4",
        "--gx10-duration=20",
        "--gx10-warmup=1",
    )
    result.assert_outcomes(passed=1)
    (point,) = doc["load"]
    print(f"preemptions {point['preemptions']}, peak KV usage {point['peak_kv_usage']}")
    assert point["ok_requests"] == point["measured"] > 0
    assert not point["failed_requests"]
    assert all(r["completion_tokens"] == 256 for r in point["requests"])
    assert point["preemptions"] > 0
    assert point["preempted"] is True
    assert max(point["telemetry"]["preemptions_total"]) == point["preemptions"]
    assert point["peak_kv_usage"] > 0
    # The terminal says it too, under the table.
    result.stdout.fnmatch_lines([f"concurrency 4: *{point['preemptions']:g} preemption*"])
