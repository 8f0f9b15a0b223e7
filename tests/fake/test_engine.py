"""The simulated scheduler: token budget, max_num_seqs, chunked prefill, MTP acceptance, timing model."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pytest_gx10.fake.engine import Engine, Output, SamplingParams, StepStats
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.steptime import LinearStepTime, mean_tokens_per_decode_step
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import load_profile

REFERENCE = load_profile("qwen3.5-397b-fp8-mtp2-gx10x4")
CPU = load_profile("smollm2-cpu")
TOK = Tokenizer()


class Recorder:
    """Keeps every step's stats; ``elapsed_s`` is simulated time from the step-time model."""

    def __init__(self) -> None:
        self.steps: list[StepStats] = []

    def on_step(self, stats: StepStats) -> None:
        if stats.step_s:
            self.steps.append(stats)

    @property
    def elapsed_s(self) -> float:
        return sum(s.step_s for s in self.steps)


def prompt(n: int, salt: int = 0) -> list[int]:
    words = TOK.word_ids
    return [words[(i * 7 + salt * 13) % len(words)] for i in range(n)]


async def run(
    profile_name: str, prompts: Sequence[Sequence[int]], params: SamplingParams, seed: int = 0
) -> tuple[list[list[tuple[Output, float]]], Recorder]:
    """Run requests released together; each output is paired with the simulated time it arrived."""
    profile = REFERENCE if profile_name == "ref" else CPU
    engine = Engine(profile, TOK, time_scale=1e6, seed=seed)
    recorder = Recorder()
    engine.observers.append(recorder)
    engine.start()

    async def one(i: int, ids: Sequence[int]) -> list[tuple[Output, float]]:
        script = write_script(TOK, ids, "", kind="completion", reasoning=False)
        return [(out, recorder.elapsed_s) async for out in engine.add_request(f"r{i}", ids, script, params)]

    try:
        results = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    finally:
        await engine.stop()
    return list(results), recorder


def test_one_request_alone_matches_the_profile_rates() -> None:
    params = SamplingParams(max_tokens=1024, ignore_eos=True)
    (outs,), _ = asyncio.run(run("ref", [prompt(9818)], params))
    ttft_s = outs[0][1]
    end_s = outs[-1][1]
    n_out = sum(len(o.token_ids) for o, _ in outs)
    assert n_out == 1024
    assert ttft_s == pytest.approx(9818 / 1830.0, rel=0.03)
    assert n_out / (end_s - ttft_s) == pytest.approx(40.3, rel=0.06)


def test_mtp_emits_multi_token_batches_at_the_profile_acceptance() -> None:
    params = SamplingParams(max_tokens=3000, ignore_eos=True)
    (outs,), recorder = asyncio.run(run("ref", [prompt(100)], params))
    sizes = [len(o.token_ids) for o, _ in outs]
    assert max(sizes) == 3
    assert set(sizes) <= {1, 2, 3}
    drafts = sum(s.num_drafts for s in recorder.steps)
    per_pos = [sum(s.accepted_per_pos[i] for s in recorder.steps if s.accepted_per_pos) for i in range(2)]
    assert sum(s.num_draft_tokens for s in recorder.steps) == 2 * drafts
    assert per_pos[0] / drafts == pytest.approx(0.889, abs=0.03)
    assert per_pos[1] / drafts == pytest.approx(0.889 * 0.833, abs=0.04)
    mean_len = 1 + sum(s.num_accepted_tokens for s in recorder.steps) / drafts
    assert mean_len == pytest.approx(mean_tokens_per_decode_step((0.889, 0.833)), abs=0.06)


def test_runs_are_reproducible() -> None:
    params = SamplingParams(max_tokens=200, ignore_eos=True)
    first, _ = asyncio.run(run("ref", [prompt(50, 1), prompt(60, 2)], params))
    second, _ = asyncio.run(run("ref", [prompt(50, 1), prompt(60, 2)], params))
    assert [[o for o, _ in r] for r in first] == [[o for o, _ in r] for r in second]


def test_max_num_seqs_and_token_budget_hold() -> None:
    params = SamplingParams(max_tokens=20, ignore_eos=True)
    results, recorder = asyncio.run(run("ref", [prompt(3000, i) for i in range(20)], params))
    assert all(sum(len(o.token_ids) for o, _ in r) == 20 for r in results)
    assert max(s.num_running for s in recorder.steps) == 16
    assert max(s.num_waiting for s in recorder.steps) >= 1
    assert max(s.num_scheduled_tokens for s in recorder.steps) <= 8192
    # 20 x 3000 prompt tokens cannot fit in fewer than 60000 / 8192 steps.
    prefill_steps = sum(1 for s in recorder.steps if s.num_scheduled_tokens > 16 * 3)
    assert prefill_steps >= 60000 // 8192


def test_concurrent_requests_share_steps() -> None:
    params = SamplingParams(max_tokens=256, ignore_eos=True)
    _alone, rec1 = asyncio.run(run("ref", [prompt(500)], params))
    _together, rec8 = asyncio.run(run("ref", [prompt(500, i) for i in range(8)], params))
    # Batching: 8 streams take longer than one, but far less than 8 times as long.
    assert rec1.elapsed_s < rec8.elapsed_s < 3 * rec1.elapsed_s


def test_prefix_cache_hits_on_a_repeated_prompt() -> None:
    async def twice() -> Recorder:
        engine = Engine(CPU, TOK, time_scale=1e6)
        recorder = Recorder()
        engine.observers.append(recorder)
        engine.start()
        ids = prompt(1000)
        for i in range(2):
            script = write_script(TOK, ids, "", kind="completion", reasoning=False)
            async for _ in engine.add_request(f"r{i}", ids, script, SamplingParams(max_tokens=4)):
                pass
        await engine.stop()
        return recorder

    recorder = asyncio.run(twice())
    assert sum(s.prefix_cache_queries for s in recorder.steps) == 2000
    assert sum(s.prefix_cache_hits for s in recorder.steps) == 992  # whole 16-token blocks


def test_abort_finishes_the_stream() -> None:
    async def scenario() -> list[Output]:
        engine = Engine(CPU, TOK, time_scale=1.0)
        engine.start()
        ids = prompt(10)
        script = write_script(TOK, ids, "", kind="completion", reasoning=False)
        stream = engine.add_request("r", ids, script, SamplingParams(max_tokens=1000, ignore_eos=True))
        outs = [await stream.__anext__()]
        engine.abort("r")
        outs += [o async for o in stream]
        await engine.stop()
        return outs

    outs = asyncio.run(scenario())
    assert outs[-1].finish_reason == "abort"


def test_linear_step_time_from_profile() -> None:
    model = LinearStepTime.from_profile(REFERENCE)
    lone_step_s = mean_tokens_per_decode_step((0.889, 0.833)) / 40.3
    assert model.step_s(0, 1, 3) == pytest.approx(lone_step_s)
    assert model.step_s(8192, 0, 8192) == pytest.approx(8192 / 1830.0)
    assert model.step_s(0, 16, 48) < 16 * model.step_s(0, 1, 3) / 2
