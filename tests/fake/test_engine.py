"""The simulated scheduler: token budget, max_num_seqs, chunked prefill, MTP acceptance, timing model."""

from __future__ import annotations

import asyncio
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.fake.engine import Engine, Output, SamplingParams, StepStats
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.steptime import (
    CalibratedStepTime,
    LinearStepTime,
    StepWork,
    mean_tokens_per_decode_step,
    step_time_from_profile,
)
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import ProfileError, load_profile
from pytest_gx10.profiles.reference_post import AGGREGATE

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
    # On a fresh engine: the calibrated model's one-time warm-up is what makes a lone request this slow.
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
    # vLLM's per-position rates are unconditional: accepted at position i over all drafts.
    assert per_pos[1] / drafts == pytest.approx(0.833, abs=0.04)
    mean_len = 1 + sum(s.num_accepted_tokens for s in recorder.steps) / drafts
    assert mean_len == pytest.approx(2.722, abs=0.06)
    assert mean_tokens_per_decode_step((0.889, 0.833)) == pytest.approx(2.722)


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
    assert CPU.twin.block_size == 128
    assert sum(s.prefix_cache_hits for s in recorder.steps) == 896  # whole 128-token blocks: 7 of them


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
    assert model.step_s(StepWork(decode_seqs=1)) == pytest.approx(lone_step_s)
    assert model.step_s(StepWork(prefill_tokens=8192, prefill_seqs=1)) == pytest.approx(8192 / 1830.0)
    assert model.step_s(StepWork(decode_seqs=16)) < 16 * model.step_s(StepWork(decode_seqs=1)) / 2


def test_profiles_pick_their_step_time_model() -> None:
    assert isinstance(step_time_from_profile(REFERENCE), CalibratedStepTime)
    assert isinstance(step_time_from_profile(CPU), LinearStepTime)


def _model(**kw: float) -> CalibratedStepTime:
    args: dict[str, float] = {
        "prefill_token_s": 1e-4,
        "warmup_s": 3.0,
        "warmup_min_prefill_tokens": 1024,
        "cold_prefill_factor": 0.0,
        "cold_prefill_tokens": 0,
        **kw,
    }
    return CalibratedStepTime(
        decode_step_s=((1, 0.06), (2, 0.08), (4, 0.12), (16, 0.2)),
        prefill_token_s=args["prefill_token_s"],
        warmup_s=args["warmup_s"],
        warmup_min_prefill_tokens=int(args["warmup_min_prefill_tokens"]),
        cold_prefill_factor=args["cold_prefill_factor"],
        cold_prefill_tokens=int(args["cold_prefill_tokens"]),
    )


def test_decode_step_table_is_interpolated() -> None:
    model = _model()
    assert model.decode_s(1) == pytest.approx(0.06)
    assert model.decode_s(0) == pytest.approx(0.06)  # a prefill-only step still runs the forward pass
    assert model.decode_s(3) == pytest.approx(0.10)
    assert model.decode_s(10) == pytest.approx(0.16)
    assert model.decode_s(20) == pytest.approx(0.2 + 4 * (0.2 - 0.12) / 12)  # beyond the table: last slope
    assert model.step_s(StepWork(decode_seqs=2)) == pytest.approx(0.08)


def test_context_cost_grows_with_position() -> None:
    """The same chunk costs more deep in a prompt: attention over the context so far."""
    model = CalibratedStepTime(decode_step_s=((1, 0.06),), prefill_token_s=1e-5, prefill_context_s=1e-9)
    early = StepWork(prefill_tokens=100, prefill_seqs=1, prefill_context=100 * 49.5)
    late = StepWork(prefill_tokens=100, prefill_seqs=1, prefill_context=100 * (10_000 + 49.5))
    assert model.step_s(late) - model.step_s(early) == pytest.approx(1e-9 * 100 * 10_000)


def test_reference_twin_prefills_the_posts_needle_in_its_time() -> None:
    """Warm, 199 402 tokens in chunks of 8 192 take the post's 125.9 s; a sweep prompt keeps its cost."""
    model = step_time_from_profile(REFERENCE)
    assert isinstance(model, CalibratedStepTime)
    model.warm, model.long_prefill_tokens_seen = True, 10**9  # after the sweep, as in the post

    def prefill_s(tokens: int) -> float:
        seconds, done = 0.0, 0
        while done < tokens:
            n = min(8192, tokens - done)
            seconds += model.step_s(StepWork(n, 1, 0, prefill_context=n * (done + (n - 1) / 2)))
            done += n
        return seconds

    assert prefill_s(199_402) == pytest.approx(125.9, rel=0.02)
    per_token = (prefill_s(9818) - 2 * model.decode_s(1)) / 9818
    assert per_token == pytest.approx(5.3e-5, rel=0.02)  # the fitted cost of a sweep prompt (19k tok/s)


def test_warm_up_is_paid_once_on_the_first_long_prefill() -> None:
    model = _model()
    short = StepWork(prefill_tokens=200, prefill_seqs=1)
    assert model.step_s(short) == pytest.approx(0.06 + 0.02)  # a health check: no warm-up, none used up
    assert not model.warm
    long = StepWork(prefill_tokens=8192, prefill_seqs=1)
    assert model.step_s(long) == pytest.approx(0.06 + 0.8192 + 3.0)
    assert model.warm
    assert model.step_s(long) == pytest.approx(0.06 + 0.8192)
    assert model.step_s(StepWork(prefill_tokens=8192, prefill_seqs=5, decode_seqs=4)) == pytest.approx(
        0.12 + 0.8192
    )


def test_cold_prefill_surcharge_fades_with_long_prefill_tokens() -> None:
    model = _model(warmup_s=0.0, cold_prefill_factor=2.0, cold_prefill_tokens=16384)
    step = StepWork(prefill_tokens=8192, prefill_seqs=1)
    assert model.step_s(StepWork(prefill_tokens=500, prefill_seqs=1)) == pytest.approx(0.06 + 0.05)
    assert model.step_s(step) == pytest.approx(0.06 + 0.8192 * 3.0)  # untouched by the short step
    assert model.step_s(step) == pytest.approx(0.06 + 0.8192 * 2.0)  # half way
    assert model.step_s(step) == pytest.approx(0.06 + 0.8192)  # warm
    assert model.step_s(step) == pytest.approx(0.06 + 0.8192)


def test_decode_step_table_is_validated(tmp_path: Path) -> None:
    base = '[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n[twin]\n'
    for table, key in (
        ("[[1, 0.1], [1, 0.2]]", "twin.decode_step_s"),
        ("[[2, 0.1], [1, 0.2]]", "twin.decode_step_s"),
        ("[[0, 0.1]]", "twin.decode_step_s[0]"),
        ("[[1, -0.1]]", "twin.decode_step_s[0]"),
        ("[[1]]", "twin.decode_step_s[0]"),
    ):
        path = tmp_path / "p.toml"
        path.write_text(base + f"decode_step_s = {table}\n")
        with pytest.raises(ProfileError, match=re.escape(f"'{key}'")):
            load_profile(path)


async def _first_text_steps(n: int) -> list[int]:
    """Release ``n`` 9 818-token chat requests together on a fresh reference engine; for each, the
    step whose output first carries text (the first token, ``<think>``, carries none to a client)."""
    engine = Engine(REFERENCE, TOK, time_scale=1e6)
    recorder = Recorder()
    engine.observers.append(recorder)
    engine.start()
    params = SamplingParams(max_tokens=8, ignore_eos=True)

    async def one(i: int) -> int:
        ids = prompt(9818, i)
        script = write_script(TOK, ids, "", kind="chat", reasoning=True)
        async for out in engine.add_request(f"r{i}", ids, script, params):
            if out.text.replace("<think>", ""):
                return len(recorder.steps)
        raise AssertionError("no text")

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await engine.stop()


def test_partial_prefills_finish_in_groups_of_five() -> None:
    """The first request has the engine to itself for one step; then five prompts at a time share the
    budget and get their first token in the same step, as in the post's N=16 (0.91 s, then groups)."""
    steps = asyncio.run(_first_text_steps(16))
    groups = sorted(Counter(steps).items())
    assert [size for _, size in groups] == [1, 5, 5, 5]
    assert groups[0][0] == 3  # alone in step 1, its last 1 626 tokens in step 2, first text in step 3


def test_partial_prefills_respect_the_budget_and_the_limit() -> None:
    """At most five prompts mid-way (plus prompts finishing in the step), never over the budget."""
    chunks: list[list[tuple[int, int]]] = []  # per step: (prompt tokens done before, chunk)

    class Watched(Engine):
        def _schedule_partial_prefills(self, stats: StepStats) -> tuple[list[Any], list[Any]]:
            prefill, decode = super()._schedule_partial_prefills(stats)
            chunks.append([(seq.num_computed, n) for seq, n in prefill])
            assert sum(n for _, n in prefill) + sum(n for _, n in decode) <= 8192
            return prefill, decode

    async def scenario() -> None:
        engine = Watched(REFERENCE, TOK, time_scale=1e6)
        engine.start()
        params = SamplingParams(max_tokens=4, ignore_eos=True)

        async def one(i: int) -> None:
            ids = prompt(9818, i)
            script = write_script(TOK, ids, "", kind="completion", reasoning=False)
            async for _ in engine.add_request(f"r{i}", ids, script, params):
                pass

        await asyncio.gather(*(one(i) for i in range(12)))
        await engine.stop()

    asyncio.run(scenario())
    assert chunks[0] == [(0, 8192)]  # out of idle: the waking request alone, with the whole budget
    for step in chunks:
        still_partial = [done for done, n in step if done + n < 9818]
        assert len(still_partial) <= 5
    assert max(len(step) for step in chunks) >= 5


async def _sweep() -> dict[int, tuple[float, float, float, float, float]]:
    """The post's sweep on one fresh reference engine, timed by the step-time model alone."""
    engine = Engine(REFERENCE, TOK, time_scale=1e6)
    recorder = Recorder()
    engine.observers.append(recorder)
    engine.start()
    params = SamplingParams(max_tokens=1024, ignore_eos=True)
    figures: dict[int, tuple[float, float, float, float, float]] = {}

    async def one(name: str, ids: list[int], t0: float) -> tuple[float, float]:
        script = write_script(TOK, ids, "", kind="chat", reasoning=True)
        ttft = None
        async for out in engine.add_request(name, ids, script, params):
            if ttft is None and out.text.replace("<think>", ""):
                ttft = recorder.elapsed_s - t0
        assert ttft is not None
        return ttft, recorder.elapsed_s - t0

    try:
        for n in (1, 2, 4, 8, 16):
            t0 = recorder.elapsed_s
            runs = await asyncio.gather(*(one(f"n{n}-{i}", prompt(9818, 100 * n + i), t0) for i in range(n)))
            ttfts = [t for t, _ in runs]
            wall = max(d for _, d in runs)
            figures[n] = (
                wall,
                9818 * n / max(ttfts),
                1024 * n / (wall - min(ttfts)),
                statistics.median(ttfts),
                statistics.median(1024 / (d - t) for t, d in runs),
            )
    finally:
        await engine.stop()
    return figures


def test_reference_sweep_matches_the_post_within_tolerance() -> None:
    """Wall, aggregate and median decode within 10 %, TTFT and aggregate prefill within 35 %."""
    tolerances = (0.10, 0.35, 0.10, 0.35, 0.10)
    figures = asyncio.run(_sweep())
    for n, twin in figures.items():
        for name, value, post, tol in zip(
            ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps"),
            twin,
            AGGREGATE[n],
            tolerances,
            strict=True,
        ):
            assert value == pytest.approx(post, rel=tol), f"N={n} {name}"
