"""Workloads against the real CPU vLLM server: shared prefixes meet its prefix cache, and a ShareGPT
file of 50 conversations runs in every load mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.workload.dataset import write_sharegpt_sample

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"
OUT = Path(__file__).resolve().parents[2] / "out"


def _run(
    pytester: pytest.Pytester, url: str, out: Path, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={url}",
        "--gx10-profile=smollm2-cpu",
        f"--gx10-json={out}",
        *args,
        "-p",
        "no:cacheprovider",
    )
    return result, json.loads(out.read_text()) if out.exists() else {}


def test_shared_prefixes_hit_the_real_prefix_cache_and_cut_ttft(
    pytester: pytest.Pytester, real_vllm: str
) -> None:
    """Four groups sharing a 256-token system prompt, one request at a time: vLLM's prefix cache hits
    within ten points of what the workload makes possible, and the median TTFT is below the same
    lengths' without sharing (measured in the same run, one after the other)."""
    args = ["--gx10-input-len=600", "--gx10-output-len=16", "--gx10-load-mode=concurrency"]
    args += ["--gx10-concurrency=1", "--gx10-requests=16", "--gx10-warmup=0"]
    result, doc = _run(
        pytester, real_vllm, OUT / "real-shared-prefix.json", "--gx10-workload=shared-prefix", *args
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    (shared,) = doc["load"]
    result, doc = _run(pytester, real_vllm, OUT / "real-filler.json", "--gx10-workload=filler", *args)
    assert result.ret == 0, result.stdout.str()[-3000:]
    (filler,) = doc["load"]
    seen = {
        name: {k: p.get(k) for k in ("expected_prefix_hit_rate", "prefix_cache_hit_rate", "ttft_p50_s")}
        for name, p in (("shared", shared), ("filler", filler))
    }
    assert shared["prefix_cache_hit_rate"] == pytest.approx(shared["expected_prefix_hit_rate"], abs=0.10), (
        seen
    )
    assert shared["expected_prefix_hit_rate"] > 0.25, seen
    assert filler["prefix_cache_hit_rate"] < 0.10, seen
    assert shared["ttft_p50_s"] < filler["ttft_p50_s"], seen


@pytest.mark.parametrize("mode", ["burst", "concurrency", "rate"])
def test_a_sharegpt_file_runs_on_the_real_server(
    pytester: pytest.Pytester, real_vllm: str, mode: str
) -> None:
    """The 50 conversations the tests write, sent as they are in each mode: every request answered
    with the tokens it asked, the prompts the server counted as the client did."""
    data = write_sharegpt_sample(pytester.path / "chats.json", 50, seed=5)
    result, doc = _run(
        pytester,
        real_vllm,
        OUT / f"real-sharegpt-{mode}.json",
        f"--gx10-dataset={data}",
        "--gx10-output-len=16",
        f"--gx10-load-mode={mode}",
        "--gx10-concurrency=4",
        "--gx10-rate=1",
        "--gx10-requests=8",
        "--gx10-warmup=0",
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    assert doc["workload"]["dataset"]["entries"] == 50
    (point,) = doc["sweep"] if mode == "burst" else doc["load"]
    assert point["workload"] == "dataset"
    assert len(point["requests"]) == (4 if mode == "burst" else 8)
    assert all(r["completion_tokens"] == 16 for r in point["requests"])


@pytest.mark.parametrize("mode", ["burst", "concurrency"])
def test_conversations_meet_the_real_prefix_cache_turn_by_turn(
    pytester: pytest.Pytester, real_vllm: str, mode: str
) -> None:
    """Two four-turn conversations: vLLM's prefix cache serves each turn's history, within ten points
    of what it makes possible, and so a late turn's prompt is prefilled faster per token than the
    first's (both measured in this run)."""
    result, doc = _run(
        pytester,
        real_vllm,
        OUT / f"real-multi-turn-{mode}.json",
        "--gx10-workload=multi-turn",
        "--gx10-turns=4",
        "--gx10-input-len=200",
        "--gx10-output-len=32",
        f"--gx10-load-mode={mode}",
        "--gx10-concurrency=2",
        "--gx10-requests=8",
        "--gx10-warmup=0",
    )
    assert result.ret == 0, result.stdout.str()[-3000:]
    (point,) = doc["sweep"] if mode == "burst" else doc["load"]
    turns = point["turns"]
    assert [(t["turn"], t["ok"]) for t in turns] == [(1, 2), (2, 2), (3, 2), (4, 2)], turns
    first, last = turns[0], turns[-1]
    assert last["mean_input_tokens"] > 3 * first["mean_input_tokens"], turns
    assert last["expected_hit_rate_min"] > 0.5, turns
    if mode == "burst":  # each turn a burst of its own: the server's hit rate per turn
        for t in turns[1:]:
            low, high = t["expected_hit_rate_min"], t["expected_hit_rate_max"]
            assert low - 0.10 <= t["prefix_cache_hit_rate"] <= high + 0.10, t
    else:
        low, high = point["expected_prefix_hit_rate"], point["expected_prefix_hit_rate_max"]
        assert low - 0.10 <= point["prefix_cache_hit_rate"] <= high + 0.10, point
    assert last["median_prefill_tps"] > first["median_prefill_tps"], turns
