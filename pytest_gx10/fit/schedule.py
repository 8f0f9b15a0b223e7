"""Replay measured points through the twin's own scheduler and keep every step's work.

A burst point's schedule (which prompt chunks and decodes share each step) follows from the token
counts, the token budget, ``max_num_seqs``, the KV pool and the partial-prefill setting, not from how
long steps take. So the fit runs the twin's engine once with a step-time model that only records
what each step computes; each request's TTFT and decode time are then sums over known steps, and
those sums are linear in the step-time constants (:mod:`pytest_gx10.fit.solve`).

An open-loop point's requests arrive at their recorded send times, and which step each one lands in
depends on how long the steps before it took: such points are replayed with a step-time model (the
fit's current guess, on the engine's virtual clock), and the fit iterates until the schedule holds
still. A request that wakes the idle engine waits for nothing: its TTFT is the steps from its first.
One sent while a step runs waits for the rest of that step, then its own: where in the step it landed
depends on every step since the engine woke, to a precision no measurement has (a server's steps
jitter), so its TTFT counts half the step it arrived in, the expected wait, and the steps after.

The engine is the twin's, on a time scale high enough to take no time. Each point starts from an
idle engine, its prefix cache holding what the server's served each request (``cached_tokens``: a
point's requests begin with one primer, as far as each was served, and its whole blocks are put in
the cache as each arrives, so it computes only the rest, as the server did). A burst's requests
arrive together, or (``split``) only those the measurement shows in the first step (the first TTFT
group) arrive before that step and the others during it: an engine starts a step as soon as a
request lands, and the rest of a burst may land while it runs. With
``twin.max_num_partial_prefills`` and no ``twin.idle_gather_s`` the engine takes only the first
request out of idle anyway.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_gx10.fake.engine import Engine, RequestStream, SamplingParams, StepStats
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.steptime import StepTimeModel, StepWork
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.fit.inputs import MeasuredPoint
from pytest_gx10.profiles import Profile

__all__ = ["Replay", "ReplayedRequest", "replay"]

_NOMINAL_STEP_S = 1e-3
_TIME_SCALE = 1e9
_POINT_GAP_S = 1e4  # idle virtual time between two points: each starts from an idle engine


@dataclass(frozen=True)
class ReplayedRequest:
    """Where a request's first visible token and its last token came out (indices into ``steps``).

    Its TTFT is the steps from ``first_step`` to ``ttft_step``, the first of them only half when it
    arrived while that step ran (``mid_step``), plus ``offset_s``: the engine's wake-up less the
    request's send, for a request that joined the first step out of idle after the one that woke it.
    ``ttft_s`` and ``duration_s`` are the replay's own, on its step-time model's clock (None without one).
    """

    point: int  # index of its point in the run
    first_step: int
    ttft_step: int
    last_step: int
    offset_s: float = 0.0
    index: int = 0  # its place in the point's requests
    mid_step: bool = False
    ttft_s: float | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class Replay:
    """Every step of one run's replay; requests in each point's order."""

    steps: tuple[StepWork, ...]
    requests: tuple[tuple[ReplayedRequest, ...], ...]  # per point
    timed: bool = False  # priced by a step-time model: each request's ttft_s and duration_s are set


class _Recorder:
    """Prices each step (nominally, or by a model) and records its work and when it started."""

    def __init__(self, model: StepTimeModel | None) -> None:
        self.model = model
        self.engine: Engine | None = None
        self.works: list[StepWork] = []
        self.starts: list[float] = []  # each step's start on the engine's virtual clock
        self.ended = 0

    def step_s(self, work: StepWork) -> float:
        assert self.engine is not None
        self.starts.append(self.engine.virtual_now_s())
        self.works.append(work)
        return self.model.step_s(work) if self.model is not None else _NOMINAL_STEP_S

    def on_step(self, stats: StepStats) -> None:
        if stats.step_s > 0:  # aborts report an empty step
            self.ended += 1


def _prompt(tok: Tokenizer, n: int, salt: int, cached: Sequence[int] = ()) -> list[int]:
    """``n`` token ids: ``cached`` (what the prefix cache served it), then filler of their own (no
    further prefix shared with another request's)."""
    rng = random.Random(salt)
    words = tok.word_ids
    return [*cached, *(rng.choice(words) for _ in range(n - len(cached)))]


async def _replay(
    profile: Profile,
    points: Sequence[MeasuredPoint],
    reasoning: bool,
    split: bool,
    model: StepTimeModel | None,
) -> Replay:
    tok = Tokenizer()
    recorder = _Recorder(model)
    engine = Engine(profile, tok, time_scale=_TIME_SCALE, step_time=recorder, gather_wall_s=0.0)
    recorder.engine = engine
    engine.observers.append(recorder)
    gather = profile.twin.idle_gather_s
    pending: deque[tuple[float, int, int]] = deque()  # (send, point, index) still to arrive
    sent: dict[tuple[int, int], tuple[float, int, bool]] = {}  # send, first step, mid-step
    tasks: list[asyncio.Future[ReplayedRequest]] = []  # the current point's, in submission order
    primers = [
        _prompt(tok, max((r.cached_tokens or 0 for r in pt.requests), default=0), -1 - p)
        for p, pt in enumerate(points)
    ]

    def submit(p: int, i: int, send: float, first: int, mid_step: bool = False) -> None:
        request = points[p].requests[i]
        # What the server's prefix cache served it, the engine's serves too: the point's requests
        # begin with the same primer, as far as each was served, so the cache holds it once (a copy
        # per request would push the oldest out of a small pool before they are scheduled).
        cached = primers[p][: request.cached_tokens or 0]
        engine.prime_prefix(cached)
        ids = _prompt(tok, request.prompt_tokens, 1000 * p + i, cached)
        script = write_script(tok, ids, "", kind="chat", reasoning=reasoning)
        params = SamplingParams(max_tokens=request.completion_tokens, ignore_eos=True)
        stream = engine.add_request(f"p{p}-{i}", ids, script, params, arrival_s=send)
        sent[p, i] = (send, first, mid_step)
        tasks.append(asyncio.ensure_future(one(p, i, stream)))

    class _Arrivals:
        """After each step, the requests sent while it ran arrive (the next schedule sees them)."""

        def on_step(self, stats: StepStats) -> None:
            while stats.step_s > 0 and pending and pending[0][0] <= engine.virtual_now_s():
                send, p, i = pending.popleft()
                submit(p, i, send, len(recorder.works) - 1, mid_step=True)

    engine.observers.append(_Arrivals())

    async def one(p: int, i: int, stream: RequestStream) -> ReplayedRequest:
        ttft_step = last_step = -1
        ttft_at = last_at = None
        async for out in stream:
            # The outputs of a step reach the stream after the step's observers ran.
            if ttft_step < 0 and out.text.replace("<think>", ""):
                ttft_step, ttft_at = recorder.ended - 1, out.t_s
            last_step, last_at = recorder.ended - 1, out.t_s
        if ttft_step < 0:
            ttft_step, ttft_at = last_step, last_at
        send, first, mid_step = sent[p, i]
        offset = 0.0 if mid_step else recorder.starts[first] - send
        ttft = duration = None
        if model is not None and ttft_at is not None and last_at is not None:
            ttft, duration = ttft_at - send, last_at - send
        return ReplayedRequest(p, first, ttft_step, last_step, offset, i, mid_step, ttft, duration)

    engine.start()
    replayed: list[tuple[ReplayedRequest, ...]] = []
    base = 0.0
    try:
        for p, point in enumerate(points):
            tasks = []
            if point.timed:
                pending.extend(sorted((base + r.send_s, p, i) for i, r in enumerate(point.requests)))
                while pending:
                    if engine.idle:
                        # The next send wakes the engine; what lands within the gathering window joins it.
                        send, q, i = pending.popleft()
                        first = len(recorder.works)
                        submit(q, i, send, first)
                        while pending and pending[0][0] <= send + gather:
                            later, q, i = pending.popleft()
                            submit(q, i, later, first)
                    await asyncio.sleep(0)
            else:
                first = len(recorder.works)
                for i in range(len(point.requests)):
                    if split and i == point.first_group:
                        # The rest of the burst lands while the first step runs.
                        while len(recorder.works) == first:
                            await asyncio.sleep(0)
                    submit(p, i, base, first)
            done = {r.index: r for r in await asyncio.gather(*tasks)}
            replayed.append(tuple(done[i] for i in range(len(point.requests))))
            while not engine.idle:
                await asyncio.sleep(0)
            base = engine.virtual_now_s() + _POINT_GAP_S
    finally:
        await engine.stop()
    return Replay(tuple(recorder.works), tuple(replayed), model is not None)


def replay(
    profile: Profile,
    points: Sequence[MeasuredPoint],
    *,
    reasoning: bool,
    split: bool = False,
    model: StepTimeModel | None = None,
) -> Replay:
    """Run the points, in order, through a fresh engine of ``profile``; record every step.

    ``model`` prices the steps (needed for open-loop points, whose arrivals fall between steps);
    without it every step takes a nominal millisecond, which serves bursts alone.
    """
    return asyncio.run(_replay(profile, points, reasoning, split, model))
