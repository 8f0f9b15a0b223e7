"""Workloads on the twin: length distributions, a ShareGPT file in every load mode, shared prefixes
against the server's prefix cache, and the mistakes refused before a request is sent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.workload.dataset import write_sharegpt_sample

pytestmark = pytest.mark.twin

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(str(PERF), *args, f"--gx10-json={out}", "-p", "no:cacheprovider")
    return result, json.loads(out.read_text()) if out.exists() else {}


def test_lengths_follow_their_distributions(pytester: pytest.Pytester) -> None:
    """uniform input and output lengths: each request's prompt is its drawn length exactly (the
    server's count), each decodes what it asked, and the lengths differ between requests."""
    result, doc = _run(
        pytester, "--gx10-input-len=uniform:300:900", "--gx10-output-len=uniform:8:32", "--gx10-concurrency=6"
    )
    assert result.ret == 0, result.stdout.str()
    assert doc["workload"]["input_len"] == "uniform:300:900"
    (point,) = doc["sweep"]
    prompts = [r["prompt_tokens"] for r in point["requests"]]
    outputs = [r["completion_tokens"] for r in point["requests"]]
    assert all(300 <= p <= 900 for p in prompts), prompts
    assert all(8 <= o <= 32 for o in outputs), outputs
    assert len(set(prompts)) > 1
    assert len(set(outputs)) > 1


@pytest.mark.parametrize("mode", ["burst", "concurrency", "rate"])
def test_a_sharegpt_file_runs_in_every_mode(pytester: pytest.Pytester, mode: str) -> None:
    """50 conversations written here (no download): sent as they are, the file's name and hash in the
    results, every request answered."""
    data = write_sharegpt_sample(pytester.path / "chats.json", 50, seed=3)
    result, doc = _run(
        pytester,
        f"--gx10-dataset={data}",
        "--gx10-output-len=32",
        f"--gx10-load-mode={mode}",
        "--gx10-concurrency=4",
        "--gx10-rate=4",
        "--gx10-requests=12",
        "--gx10-warmup=0",
    )
    assert result.ret == 0, result.stdout.str()
    facts = doc["workload"]
    assert facts["kind"] == "dataset"
    assert facts["dataset"]["file"] == "chats.json"
    assert facts["dataset"]["entries"] == 50
    assert facts["dataset"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    points = doc["sweep"] if mode == "burst" else doc["load"]
    (point,) = points
    assert point["workload"] == "dataset"
    sent = 4 if mode == "burst" else 12
    assert len(point["requests"]) == sent
    assert all(r["completion_tokens"] == 32 for r in point["requests"])
    # Conversations differ in length: the prompts are the file's, not filler of one size.
    assert len({r["prompt_tokens"] for r in point["requests"]}) > 1


def test_shared_prefixes_hit_the_twins_prefix_cache_as_the_workload_allows(pytester: pytest.Pytester) -> None:
    """Four groups sharing a 256-token system prompt, two in flight: the twin's /metrics count the
    hits the workload makes possible; filler of the same lengths shares nothing."""
    args = ["--gx10-input-len=600", "--gx10-output-len=16", "--gx10-load-mode=concurrency"]
    args += ["--gx10-concurrency=2", "--gx10-requests=24", "--gx10-warmup=0"]
    result, doc = _run(pytester, "--gx10-workload=shared-prefix", *args)
    assert result.ret == 0, result.stdout.str()
    (shared,) = doc["load"]
    assert shared["workload"] == "shared-prefix"
    # 24 requests of 600 tokens, 4 groups: 20 of them find the 256-token prefix cached.
    assert shared["expected_prefix_hit_rate"] == pytest.approx(20 * 256 / (24 * 600))
    assert shared["prefix_cache_hit_rate"] == pytest.approx(shared["expected_prefix_hit_rate"], abs=0.10)
    result, doc = _run(pytester, "--gx10-workload=filler", *args)
    (filler,) = doc["load"]
    assert "expected_prefix_hit_rate" not in filler
    assert filler["prefix_cache_hit_rate"] < 0.05


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--gx10-input-len=triangle:1:2"], "input_len from --gx10-input-len"),
        (["--gx10-workload=dataset"], "needs a file; give --gx10-dataset=PATH"),
        (["--gx10-dataset=missing.jsonl"], "missing.jsonl"),
        (["--gx10-workload=shared-prefix", "--gx10-dataset=x.jsonl"], "a file for --gx10-workload=dataset"),
    ],
    ids=["length", "no-file", "missing-file", "file-and-other-workload"],
)
def test_workload_mistakes_are_refused_before_any_request(
    pytester: pytest.Pytester, args: list[str], said: str
) -> None:
    (pytester.path / "x.jsonl").write_text('{"prompt": "hello"}\n')
    result = pytester.runpytest_subprocess(str(PERF), *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert said in result.stderr.str()
