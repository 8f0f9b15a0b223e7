"""Replay measured sweep points through the twin's own scheduler and keep every step's work.

A burst point's schedule (which prompt chunks and decodes share each step) follows from the token
counts, the token budget, ``max_num_seqs``, the KV pool and the partial-prefill setting, not from how
long steps take. So the fit runs the twin's engine once with a step-time model that only records
what each step computes; each request's TTFT and decode time are then sums over known steps, and
those sums are linear in the step-time constants (:mod:`pytest_gx10.fit.solve`).

The engine is the twin's, on a time scale high enough to take no time. Each point starts from an
idle engine with its requests arriving together, or (``split``) with only those the measurement
shows in the first step (the first TTFT group) arriving before that step and the others during it:
an engine starts a step as soon as a request lands, and the rest of a burst may land while it runs.
With ``twin.max_num_partial_prefills`` the engine takes only the first request out of idle anyway.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_gx10.fake.engine import Engine, RequestStream, SamplingParams, StepStats
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.steptime import StepWork
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.fit.inputs import MeasuredPoint
from pytest_gx10.profiles import Profile

__all__ = ["Replay", "ReplayedRequest", "replay"]

_NOMINAL_STEP_S = 1e-3
_TIME_SCALE = 1e9


@dataclass(frozen=True)
class ReplayedRequest:
    """Where a request's first visible token and its last token came out (indices into ``steps``)."""

    point: int  # index of its point in the run
    first_step: int  # the point's first step
    ttft_step: int
    last_step: int


@dataclass(frozen=True)
class Replay:
    """Every step of one run's replay; requests in each point's order (sorted by measured TTFT)."""

    steps: tuple[StepWork, ...]
    requests: tuple[tuple[ReplayedRequest, ...], ...]  # per point


class _Recorder:
    """A step-time model that records each step's work, and counts steps as they end."""

    def __init__(self) -> None:
        self.works: list[StepWork] = []
        self.ended = 0

    def step_s(self, work: StepWork) -> float:
        self.works.append(work)
        return _NOMINAL_STEP_S

    def on_step(self, stats: StepStats) -> None:
        if stats.step_s > 0:  # aborts report an empty step
            self.ended += 1


def _prompt(tok: Tokenizer, n: int, salt: int) -> list[int]:
    """``n`` filler token ids of their own (no prefix shared with another request's)."""
    rng = random.Random(salt)
    words = tok.word_ids
    return [rng.choice(words) for _ in range(n)]


async def _replay(profile: Profile, points: Sequence[MeasuredPoint], reasoning: bool, split: bool) -> Replay:
    tok = Tokenizer()
    recorder = _Recorder()
    engine = Engine(profile, tok, time_scale=_TIME_SCALE, step_time=recorder)
    engine.observers.append(recorder)
    engine.start()
    replayed: list[tuple[ReplayedRequest, ...]] = []

    def submit(name: str, ids: list[int], completion: int) -> RequestStream:
        script = write_script(tok, ids, "", kind="chat", reasoning=reasoning)
        params = SamplingParams(max_tokens=completion, ignore_eos=True)
        return engine.add_request(name, ids, script, params)

    async def one(p: int, first: int, stream: RequestStream) -> ReplayedRequest:
        ttft_step = last_step = -1
        async for out in stream:
            # The outputs of a step reach the stream after the step's observers ran.
            if ttft_step < 0 and out.text.replace("<think>", ""):
                ttft_step = recorder.ended - 1
            last_step = recorder.ended - 1
        if ttft_step < 0:
            ttft_step = last_step
        return ReplayedRequest(p, first, ttft_step, last_step)

    try:
        for p, point in enumerate(points):
            first = len(recorder.works)
            tasks = []
            for i, request in enumerate(point.requests):
                if split and i == point.first_group:
                    # The rest of the burst lands while the first step runs.
                    while len(recorder.works) == first:
                        await asyncio.sleep(0)
                ids = _prompt(tok, request.prompt_tokens, 1000 * p + i)
                stream = submit(f"p{p}-{i}", ids, request.completion_tokens)
                tasks.append(asyncio.ensure_future(one(p, first, stream)))
            replayed.append(tuple(await asyncio.gather(*tasks)))
            while engine.num_running or engine.num_waiting:
                await asyncio.sleep(0)
    finally:
        await engine.stop()
    return Replay(tuple(recorder.works), tuple(replayed))


def replay(
    profile: Profile, points: Sequence[MeasuredPoint], *, reasoning: bool, split: bool = False
) -> Replay:
    """Run the points, in order, through a fresh engine of ``profile``; record every step."""
    return asyncio.run(_replay(profile, points, reasoning, split))
