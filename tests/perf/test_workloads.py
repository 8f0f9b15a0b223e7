"""Workloads on the twin: length distributions, a ShareGPT file in every load mode, shared prefixes
against the server's prefix cache, and the mistakes refused before a request is sent."""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.profiles import BUNDLED_DIR
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


def _cached_profile(pytester: pytest.Pytester, block_size: int) -> Path:
    """The CPU twin's profile with per-request cache hits in the usage (vLLM's
    --enable-prompt-tokens-details) and KV blocks of ``block_size`` tokens (the CPU build's 128, or
    vLLM's GPU default 16)."""
    text = (BUNDLED_DIR / "smollm2-cpu.toml").read_text()
    text = text.replace("[deployment]\n", "[deployment]\nenable_prompt_tokens_details = true\n", 1)
    assert "\nblock_size = 128\n" in text
    text = text.replace("\nblock_size = 128\n", f"\nblock_size = {block_size}\n", 1)
    path = pytester.path / "cached.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("mode", "block_size"), [("burst", 16), ("concurrency", 128), ("rate", 16)])
def test_conversations_grow_turn_by_turn_in_every_mode(
    pytester: pytest.Pytester, mode: str, block_size: int
) -> None:
    """Four-turn conversations: every turn's prompt is the last one's, its answer and a new message;
    the twin's prefix cache serves at least the earlier prompts, within what the history allows in
    the server's own KV blocks."""
    profile = _cached_profile(pytester, block_size)
    result, doc = _run(
        pytester,
        f"--gx10-profile={profile}",
        "--gx10-workload=multi-turn",
        "--gx10-turns=4",
        "--gx10-input-len=150",
        "--gx10-output-len=24",
        f"--gx10-load-mode={mode}",
        "--gx10-concurrency=2",
        "--gx10-rate=2",
        "--gx10-requests=8" if mode == "concurrency" else "--gx10-requests=2",
        "--gx10-warmup=0",
    )
    assert result.ret == 0, result.stdout.str()
    assert doc["workload"]["kind"] == "multi-turn"
    assert doc["workload"]["turns"] == 4
    (point,) = doc["sweep"] if mode == "burst" else doc["load"]
    assert point["kv_block_size"] == block_size  # read from the twin's vllm:cache_config_info
    turns = point["turns"]
    assert [t["turn"] for t in turns] == [1, 2, 3, 4]
    assert all(t["requests"] == t["ok"] == 2 for t in turns), turns
    assert all(t["mean_new_tokens"] == 150 for t in turns)
    inputs = [t["mean_input_tokens"] for t in turns]
    # Each turn adds the last answer (24 tokens), the new message and the template's few tokens.
    assert all(150 + 24 < b - a < 150 + 24 + 16 for a, b in itertools.pairwise(inputs)), inputs
    assert turns[0]["expected_hit_rate_max"] == 0
    for t in turns[1:]:
        low, high = t["expected_hit_rate_min"], t["expected_hit_rate_max"]
        assert 0 < low <= high < 1, t
        # Whole blocks: the least the cache can serve is a multiple of the block size.
        assert low * t["mean_input_tokens"] / block_size == pytest.approx(
            round(low * t["mean_input_tokens"] / block_size), abs=1e-6
        ), t
        # The usage says what the cache served each request: at least the earlier prompt's blocks.
        assert t["mean_cached_tokens"] >= low * t["mean_input_tokens"] - 1e-6, t
        assert t["mean_cached_tokens"] <= high * t["mean_input_tokens"] + 1e-6, t
    assert turns[0]["mean_cached_tokens"] < 16, turns[0]  # nothing but the template is shared
    if mode == "burst":
        # Each turn was a burst of its own: the server's hit rate over that turn alone.
        for t in turns[1:]:
            assert t["expected_hit_rate_min"] - 0.02 <= t["prefix_cache_hit_rate"], t
            assert t["prefix_cache_hit_rate"] <= t["expected_hit_rate_max"] + 0.02, t
        # The point's own figures are its last burst's, the last turn, bounds and server alike.
        assert point["expected_prefix_hit_rate"] == pytest.approx(turns[-1]["expected_hit_rate_min"])
        assert point["expected_prefix_hit_rate_max"] == pytest.approx(turns[-1]["expected_hit_rate_max"])
        assert point["prefix_cache_hit_rate"] == pytest.approx(turns[-1]["prefix_cache_hit_rate"])
    else:
        assert all(t["prefix_cache_hit_rate"] is None for t in turns)
        low, high = point["expected_prefix_hit_rate"], point["expected_prefix_hit_rate_max"]
        assert low - 0.02 <= point["prefix_cache_hit_rate"] <= high + 0.02, point
