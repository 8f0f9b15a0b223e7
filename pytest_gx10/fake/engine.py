"""The twin's engine: vLLM's V1 scheduler step loop, simulated on an asyncio event loop.

Each step has a token budget (``max_num_batched_tokens``). Running sequences are served first, in
order: a decoding sequence takes 1 + k tokens (k draft tokens with speculative decoding), a sequence
still in chunked prefill takes the next chunk; then waiting requests are admitted in arrival order while
fewer than ``max_num_seqs`` run and budget and KV blocks remain. With ``twin.max_num_partial_prefills``
(P > 0) prompts are chunked as vLLM's ``max_num_partial_prefills`` describes: decodes are served first;
a prompt whose rest fits in a slot (budget / P) finishes in this step; up to P other prompts (running
ones first, then waiting ones in arrival order) share the budget left equally, so a lone prompt takes
it all and five long prompts move in lockstep and get their first token in the same step. A step
started out of idle takes only the request that woke the engine, whatever the scheduler (``_alone``),
unless the profile's ``twin.idle_gather_s`` lets what lands with it join (vLLM's engine core drains its
input queue before it schedules).
The step lasts what the step-time model says (simulated seconds, slept for real divided by the time
scale); at its end the sequences that finished their prompt emit their first token and decoding
sequences emit 1 + accepted drafts. The profile's per-position rates are vLLM's: position i's
accepted count over the number of drafts, unconditional (the post's 2.72 = 1 + 0.889 + 0.833). A
draft token is only accepted after the one before it, so position i is tried with the conditional
rate rate[i] / rate[i - 1].

KV cache: a pool of ``kv_cache_tokens`` (the argument, else the profile's ``twin.kv_cache_tokens``, else
2.1 x max_model_len; never less than max_model_len, where vLLM would refuse to start) in blocks of
the profile's ``twin.block_size`` tokens (vLLM's default 16; its CPU build's 128). A request holds
ceil((computed context + outputs since) / block_size) blocks; the prefix cache keeps whole blocks only. Each step, as vLLM V1's
scheduler does it (first come, first served): a running request takes the blocks its tokens of the
step need (a decode step's 1 + k, a prefill chunk and its first output); when too few are free, the
request last in the running list is preempted (itself, if it is the last: then no request after it
runs either). A preempted request frees all its blocks, goes to the front of the waiting queue with
nothing computed and is counted in ``num_preemptions``; readmitted, it computes its prompt and the
outputs it had already sent again (its full blocks are still in the prefix cache, vLLM's cached free
list), then continues its stream where it stopped: the client sees the same tokens, only later. No
waiting request is admitted in a step that preempted; otherwise one is admitted while the blocks of
its first chunk are free. vLLM does not count a resumed request's prefix-cache lookup in its queries
and hits, nor its prompt twice; neither does the twin. A prompt longer than max_model_len is refused
at the API (HTTP 400), so one request always fits the pool.

The engine knows tokens, not HTTP: requests come in as token ids plus a :class:`Script` and leave as an
async iterator of :class:`Output` batches, one per step that produced tokens.

Faults (``pytest_gx10.fake.faults`` decides when) act here through three hooks: :meth:`Engine.die`
(every stream in flight raises :class:`EngineDeadError`, new requests are refused with it),
:meth:`Engine.freeze` (the step loop stops for good: no tokens, no counters), and ``finish_at`` on
:meth:`Engine.add_request` (the request finishes after exactly that many tokens with a given reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pytest_gx10.fake.model import Script
from pytest_gx10.fake.steptime import StepTimeModel, StepWork, step_time_from_profile
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import Profile

__all__ = [
    "BLOCK_SIZE",
    "Engine",
    "EngineDeadError",
    "EngineObserver",
    "FinishedRequest",
    "Output",
    "RequestStream",
    "SamplingParams",
    "StepStats",
    "kv_pool",
]

BLOCK_SIZE = 16  # vLLM's default KV block size, in tokens (the profile's twin.block_size says otherwise)
_MAX_PACE_DEBT_S = 0.05
# The least wall time an idle twin with ``twin.idle_gather_s`` waits for the rest of a burst: the time
# its HTTP layer may take to hand over a burst's requests on a busy host, however high the time scale.
GATHER_WALL_S = 0.01


class EngineDeadError(Exception):
    """The engine core died: vLLM's ``vllm.v1.engine.exceptions.EngineDeadError``, with its message."""

    def __init__(self) -> None:
        super().__init__("EngineCore encountered an issue. See stack trace (above) for the root cause.")


@dataclass(frozen=True)
class SamplingParams:
    """The parts of vLLM's SamplingParams the twin acts on."""

    max_tokens: int
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    include_stop_str_in_output: bool = False


@dataclass(frozen=True)
class Output:
    """Tokens one request produced in one step, with their text (special tokens skipped)."""

    token_ids: tuple[int, ...]
    text: str
    finish_reason: str | None = None  # "stop" | "length" | "abort"
    stop_reason: int | str | None = None
    # The engine's virtual time when the step that made it ended; not part of what was produced.
    t_s: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class FinishedRequest:
    """Timings (simulated seconds) and sizes of a finished request, for histograms."""

    finish_reason: str
    e2e_s: float
    queued_s: float
    prefill_s: float
    decode_s: float
    inference_s: float
    num_prompt_tokens: int
    num_generation_tokens: int
    max_tokens: int
    request_id: str = ""
    num_preemptions: int = 0
    num_cached_tokens: int = 0  # prompt tokens the prefix cache served at its first scheduling


@dataclass
class StepStats:
    """What one step did, as vLLM's SchedulerStats + IterationStats report it."""

    step_s: float = 0.0
    num_scheduled_tokens: int = 0
    num_running: int = 0
    num_waiting: int = 0
    kv_cache_usage: float = 0.0
    num_prompt_tokens: int = 0  # counted when a request's prefill completes, like vLLM
    num_generation_tokens: int = 0
    num_preemptions: int = 0
    prefix_cache_queries: int = 0
    prefix_cache_hits: int = 0
    num_drafts: int = 0
    num_draft_tokens: int = 0
    num_accepted_tokens: int = 0
    accepted_per_pos: list[int] = field(default_factory=list)
    ttfts_s: list[float] = field(default_factory=list)
    inter_token_latencies_s: list[float] = field(default_factory=list)
    finished: list[FinishedRequest] = field(default_factory=list)


class EngineObserver(Protocol):
    """Receives every step's stats (the /metrics registry, the periodic log line)."""

    def on_step(self, stats: StepStats) -> None:
        """Called once per engine step, on the event loop."""
        ...


class RequestStream:
    """Async iterator over one request's :class:`Output` batches; ends after the finishing batch."""

    def __init__(self, request_id: str, num_prompt_tokens: int, engine: Engine) -> None:
        self.request_id = request_id
        self.num_prompt_tokens = num_prompt_tokens
        self.num_cached_tokens = 0
        self.arrival_s = 0.0  # the engine's virtual time of its arrival (see Engine.virtual_now_s)
        self._queue: asyncio.Queue[Output] = asyncio.Queue()
        self._engine = engine
        self._done = False

    def __aiter__(self) -> RequestStream:
        return self

    async def __anext__(self) -> Output:
        if self._done:
            raise StopAsyncIteration
        out = await self._queue.get()
        if out is _DEAD:
            self._done = True
            raise EngineDeadError()
        if out.finish_reason is not None:
            self._done = True
        return out

    def abort(self) -> None:
        """Drop the request (client went away); no-op once finished."""
        if not self._done:
            self._done = True
            self._engine.abort(self.request_id)

    def _put(self, out: Output) -> None:
        self._queue.put_nowait(out)


_DEAD = Output((), "", "dead")  # put on a stream when the engine dies; never leaves the engine


@dataclass
class _Seq:
    request_id: str
    prompt_ids: Sequence[int]
    script: Script
    params: SamplingParams
    stream: RequestStream
    rng: random.Random
    arrival_s: float
    scheduled_s: float | None = None
    first_token_s: float | None = None
    last_token_s: float = 0.0
    num_computed: int = 0
    output_ids: list[int] = field(default_factory=list)
    text: str = ""  # output text so far (special tokens skipped), before any stop-string cut
    sent_chars: int = 0
    finished: bool = False
    block_hashes: list[int] = field(default_factory=list)
    finish_at: tuple[int, str] | None = None  # a fault: finish after this many tokens, with this reason
    # After a preemption the request computes its prompt and the outputs it had generated again.
    num_recomputed_outputs: int = 0
    num_preemptions: int = 0

    @property
    def context_len(self) -> int:
        """Tokens to compute before the next output: the prompt, and after a preemption its outputs."""
        return len(self.prompt_ids) + self.num_recomputed_outputs

    def context_ids(self) -> Sequence[int]:
        if not self.num_recomputed_outputs:
            return self.prompt_ids
        return [*self.prompt_ids, *self.output_ids[: self.num_recomputed_outputs]]

    @property
    def prefilling(self) -> bool:
        return self.num_computed < self.context_len

    @property
    def rest(self) -> int:
        """Context tokens still to compute."""
        return self.context_len - self.num_computed

    @property
    def held_tokens(self) -> int:
        """Tokens whose KV the request holds: computed context, then every output since."""
        if self.prefilling:
            return self.num_computed
        return self.num_computed + len(self.output_ids) - self.num_recomputed_outputs


@dataclass
class _Plan:
    """One step's schedule while it is being made: token budget, free KV blocks, what runs."""

    budget: int
    free_blocks: int
    prefill: list[tuple[_Seq, int]] = field(default_factory=list)
    decode: list[tuple[_Seq, int]] = field(default_factory=list)
    partial: list[_Seq] = field(default_factory=list)  # prompts sharing the budget (partial prefills)
    reserved: dict[int, int] = field(default_factory=dict)  # id(seq) -> blocks taken this step
    victims: set[int] = field(default_factory=set)  # id(seq) of the requests preempted this step
    preempted: bool = False


class Engine:
    """Simulated vLLM engine core. Create, :meth:`start` on a running loop, :meth:`add_request`."""

    def __init__(
        self,
        profile: Profile,
        tokenizer: Tokenizer,
        *,
        time_scale: float = 1.0,
        step_time: StepTimeModel | None = None,
        kv_cache_tokens: int | None = None,
        seed: int = 0,
        gather_wall_s: float = GATHER_WALL_S,
    ) -> None:
        dep = profile.deployment
        self.profile = profile
        self.tokenizer = tokenizer
        self.time_scale = time_scale
        self.step_time = step_time or step_time_from_profile(profile)
        self.speed_factor = profile.twin.speed_factor
        self.max_num_seqs = dep.max_num_seqs
        self.max_num_batched_tokens = dep.max_num_batched_tokens
        self.max_num_partial_prefills = profile.twin.max_num_partial_prefills
        self.idle_gather_s = profile.twin.idle_gather_s
        self._gather_wall_s = gather_wall_s
        self.acceptance = dep.speculative.acceptance_per_position if dep.speculative else ()
        self.num_spec_tokens = dep.speculative.num_speculative_tokens if dep.speculative else 0
        if dep.speculative and not self.acceptance:
            self.acceptance = (0.0,) * self.num_spec_tokens
        # P(accept i | accepted i-1) = rate[i] / rate[i-1]; a profile whose rates rise with position
        # cannot be met (no draft is accepted after a rejection) and is capped at certainty.
        self.conditional_acceptance = tuple(
            min(rate / prev, 1.0) if prev > 0 else 0.0
            for rate, prev in zip(self.acceptance, (1.0, *self.acceptance), strict=False)
        )
        self.block_size = profile.twin.block_size
        self.kv_cache_tokens, self.num_blocks = kv_pool(profile, kv_cache_tokens)
        self.observers: list[EngineObserver] = []
        self._seed = seed
        self._arrivals = 0  # requests added so far
        self._waiting: deque[_Seq] = deque()
        self._running: list[_Seq] = []
        self._by_id: dict[str, _Seq] = {}
        self._prefix_cache: OrderedDict[int, None] = OrderedDict()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._t0 = time.perf_counter()
        self._pace = self._t0
        self._vclock = 0.0  # virtual seconds at the latest step boundary (or wake-up)
        self._idle = True
        self._from_idle = False
        # The step in flight, for stamping what arrives during it: (wall start, wall end, seconds).
        self._in_step: tuple[float, float, float] | None = None
        self.steps = 0
        self.dead = False
        self.frozen = False

    # --- clock ---------------------------------------------------------------------------------------

    def now_s(self) -> float:
        """Simulated seconds since the engine was created (wall time multiplied by the time scale)."""
        return (time.perf_counter() - self._t0) * self.time_scale

    def virtual_now_s(self) -> float:
        """The engine's virtual clock: the simulated time of its latest step boundary.

        A step that starts at virtual t ends at t + its step time exactly, however late the host wakes
        the event loop; an idle engine's clock jumps to the wall clock (scaled) when a request wakes
        it. Requests that arrive during the first step out of idle are stamped with its start, so a
        burst's requests share one arrival time; one arriving during a later step, as far into it as
        the wall clock is (:meth:`_arrival_now`). Every time the engine reports (arrivals, token
        outputs, the metrics' latencies) is on this clock.
        """
        return self._vclock

    def _arrival_now(self) -> float:
        """The virtual time of a request arriving now (the engine is awake).

        Between steps, the boundary. During the first step out of idle, its start: the rest of a burst,
        whose sends were simultaneous however the host spread their arrival over its milliseconds.
        During a later step, as far into it as the wall clock is into the step's pacing: an open-loop
        request sent mid-step waits for the rest of that step, not the whole of it.
        """
        if self._in_step is None:
            return self._vclock
        wall_start, wall_end, seconds = self._in_step
        share = (time.perf_counter() - wall_start) / max(wall_end - wall_start, 1e-9)
        return self._vclock + min(max(share, 0.0), 1.0) * seconds

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the step loop on the running event loop."""
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="gx10-twin-engine")

    def abort_all(self) -> None:
        """Abort every request in flight (shutdown); their streams end with "abort"."""
        stats = StepStats()
        for seq in [*self._running, *self._waiting]:
            self._finish(seq, "abort", None, stats)
        self._running.clear()
        self._waiting.clear()
        for observer in self.observers:
            observer.on_step(stats)

    def die(self) -> None:
        """The engine core dies: every stream in flight raises EngineDeadError, and so does every new request.

        Call it from the event loop, outside a step (``loop.call_soon``), as vLLM's output handler
        learns of the death between steps.
        """
        if self.dead:
            return
        self.dead = True
        for seq in [*self._running, *self._waiting]:
            seq.finished = True
            seq.stream._put(_DEAD)
        self._running.clear()
        self._waiting.clear()
        self._by_id.clear()
        if self._task is not None:
            self._task.cancel()
        if self._wakeup is not None:
            self._wakeup.set()

    def freeze(self) -> None:
        """The engine hangs: no further step runs (requests queue, no token is produced, counters stand)."""
        self.frozen = True

    async def stop(self) -> None:
        """Abort everything in flight and stop the step loop."""
        self.abort_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def idle(self) -> bool:
        """The step loop waits for a request (nothing runs or waits, and no request woke it yet)."""
        return self._idle

    @property
    def num_running(self) -> int:
        """Requests scheduled in the running batch."""
        return len(self._running)

    @property
    def num_waiting(self) -> int:
        """Requests queued for admission."""
        return len(self._waiting)

    @property
    def num_used_blocks(self) -> int:
        """KV blocks held by running requests (never more than ``num_blocks``)."""
        return sum(self._held_blocks(s) for s in self._running)

    def kv_cache_usage(self) -> float:
        """Fraction of KV blocks held by running requests (0..1)."""
        return min(1.0, self.num_used_blocks / self.num_blocks)

    # --- requests ------------------------------------------------------------------------------------

    def add_request(
        self,
        request_id: str,
        prompt_ids: Sequence[int],
        script: Script,
        params: SamplingParams,
        *,
        finish_at: tuple[int, str] | None = None,
        arrival_s: float | None = None,
    ) -> RequestStream:
        """Queue a request; iterate the returned stream for its outputs.

        ``arrival_s``: the virtual time a request that wakes an idle engine arrives (a replay's send
        time); by default the scaled wall clock's now.

        ``finish_at=(n, reason)`` finishes the request after exactly ``n`` tokens with ``reason`` (a
        fault: ``(0, "stop")`` is an empty completion, ``(8, "abort")`` an abort after 8 tokens).
        Raises EngineDeadError once the engine has died.
        """
        if self.dead:
            raise EngineDeadError()
        stream = RequestStream(request_id, len(prompt_ids), self)
        script.rng.getrandbits(64)  # the script's text continues from here, as it always has
        # Speculative acceptance draws follow the request's place in the engine's arrivals, not its
        # prompt: runs whose prompts differ (the suite's per-run nonce keeps prefix caching out) draw
        # the same acceptance, so two runs of a suite give the same figures.
        self._arrivals += 1
        seed = hash((self._seed, self._arrivals)) & 0xFFFF_FFFF_FFFF_FFFF
        if self._idle:  # the request that wakes the engine: the clock jumps to (scaled) wall time
            self._vclock = max(self._vclock, self.now_s() if arrival_s is None else arrival_s)
            self._idle = False
        arrival = self._arrival_now()
        stream.arrival_s = arrival
        seq = _Seq(request_id, prompt_ids, script, params, stream, random.Random(seed), arrival)
        seq.finish_at = finish_at
        self._waiting.append(seq)
        self._by_id[request_id] = seq
        if self._wakeup is not None:
            self._wakeup.set()
        return stream

    def abort(self, request_id: str) -> None:
        """Remove a request wherever it is; it finishes with "abort"."""
        seq = self._by_id.get(request_id)
        if seq is None or seq.finished:
            return
        if seq in self._running:
            self._running.remove(seq)
        elif seq in self._waiting:
            self._waiting.remove(seq)
        stats = StepStats()
        self._finish(seq, "abort", None, stats)
        for observer in self.observers:
            observer.on_step(stats)

    # --- the step loop -------------------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self._wakeup is not None
        while True:
            if self.frozen:
                await asyncio.Event().wait()  # hung for good: only stop() (cancel) ends it
            if not self._running and not self._waiting:
                self._idle = True
                self._wakeup.clear()
                await self._wakeup.wait()
                # The step clock starts when the waking request arrived, not when the event loop got to
                # the engine (a few milliseconds later, which a high time scale would magnify).
                now = time.perf_counter()
                woke = self._t0 + self._vclock / self.time_scale if self._waiting else now
                self._pace = min(now, woke)
                self._from_idle = True
                if self.idle_gather_s > 0:
                    # The rest of a burst joins the first step, stamped with the waking request's
                    # arrival (the clock stands still: add_request stamps the current boundary). The
                    # wait is wall time only; the first step still starts at the waking arrival.
                    wait = max(self.idle_gather_s / self.time_scale, self._gather_wall_s)
                    await asyncio.sleep(max(self._pace + wait - time.perf_counter(), 0.0))
                continue
            started = time.perf_counter()
            step_start = self._vclock
            stats = StepStats()
            prefill, decode = self._schedule(stats)
            woke, self._from_idle = self._from_idle, False
            n_prefill = sum(n for _, n in prefill)
            stats.num_scheduled_tokens = n_prefill + sum(n for _, n in decode)
            context = sum(n * (seq.num_computed + (n - 1) / 2) for seq, n in prefill)
            work = StepWork(n_prefill, len(prefill), len(decode), prefill_context=context)
            # The one place simulated time is spent: a step's prefill and decode cost and the warm-up
            # it may carry, all at the deployment's speed (twin.speed_factor).
            stats.step_s = self.step_time.step_s(work) / self.speed_factor
            # Pace against a running timeline rather than each step's start: the event loop wakes up to
            # a millisecond late, and at high time scales that would otherwise slow the twin down.
            # A bounded debt keeps an overloaded twin from bursting to catch up.
            self._pace = max(self._pace, started - _MAX_PACE_DEBT_S) + stats.step_s / self.time_scale
            if not woke:
                self._in_step = (started, self._pace, stats.step_s)
            await asyncio.sleep(max(self._pace - time.perf_counter(), 0.0))
            self._in_step = None
            # The step ends at its start plus its step time on the virtual clock, however late the
            # host woke us: lateness is the host's, not the simulated deployment's.
            self._vclock = step_start + stats.step_s
            self._apply(prefill, decode, stats)
            self.steps += 1
            stats.num_running = len(self._running)
            stats.num_waiting = len(self._waiting)
            stats.kv_cache_usage = self.kv_cache_usage()
            for observer in self.observers:
                observer.on_step(stats)

    def _alone(self) -> bool:
        """Out of idle, the step starts with the request that woke the engine: vLLM's API server hands
        requests over one at a time, after rendering and tokenizing each, and the engine core starts a
        step as soon as the first lands. The twin's own HTTP layer bunches arrivals by a few
        milliseconds of host timing, so it is said here, whatever the scheduler (unless the profile
        says the engine gathers what lands at once: twin.idle_gather_s)."""
        return self._from_idle and not self.idle_gather_s

    def _schedule(self, stats: StepStats) -> tuple[list[tuple[_Seq, int]], list[tuple[_Seq, int]]]:
        if self.max_num_partial_prefills > 0:
            return self._schedule_partial_prefills(stats)
        plan = self._new_plan()
        i = 0
        while i < len(self._running) and plan.budget > 0:
            seq = self._running[i]
            n = min(seq.rest if seq.prefilling else 1 + self.num_spec_tokens, plan.budget)
            if not self._reserve(seq, n, plan, stats):
                break  # it preempted itself: nothing after it runs
            (plan.prefill if seq.prefilling else plan.decode).append((seq, n))
            plan.budget -= n
            i += 1
        if plan.preempted:
            return plan.prefill, plan.decode  # vLLM admits no waiting request in a step that preempted
        now = self._vclock
        admit = 1 if self._alone() else self.max_num_seqs
        while self._waiting and admit > 0 and plan.budget > 0 and len(self._running) < self.max_num_seqs:
            admit -= 1
            seq = self._waiting[0]
            lookup = StepStats()
            self._admit(seq, lookup)
            n = min(seq.rest, plan.budget)
            need = self._blocks_after(seq, n)
            if need > plan.free_blocks:
                self._unadmit(seq)
                break  # wait for running requests to free KV blocks
            self._running_from_waiting(seq, need, plan, stats, lookup, now)
            plan.prefill.append((seq, n))
            plan.budget -= n
        return plan.prefill, plan.decode

    def _schedule_partial_prefills(
        self, stats: StepStats
    ) -> tuple[list[tuple[_Seq, int]], list[tuple[_Seq, int]]]:
        """Decodes, then prompts: see the module docstring.

        With P = ``max_num_partial_prefills`` a slot is ``budget // P`` tokens. A prompt whose rest fits
        in a slot finishes in this step and takes no slot; up to P others (running ones first, then
        waiting ones in arrival order) share what is left equally. KV blocks are taken in the running
        list's order, decodes first; a prompt sharing the budget takes them for the share it would get
        without the waiting prompts, and later gets the smaller of that and its final share.
        """
        plan = self._new_plan()
        running_prompts: list[_Seq] = []
        i = 0
        while i < len(self._running):
            seq = self._running[i]
            i += 1
            if seq.prefilling:
                running_prompts.append(seq)
            elif plan.budget > 0:
                n = min(1 + self.num_spec_tokens, plan.budget)
                if not self._reserve(seq, n, plan, stats):
                    break
                plan.decode.append((seq, n))
                plan.budget -= n
        slot = max(plan.budget // self.max_num_partial_prefills, 1)

        def take(seq: _Seq) -> bool:
            if seq.rest <= slot and seq.rest <= plan.budget:
                plan.prefill.append((seq, seq.rest))
                plan.budget -= seq.rest
                return True
            if len(plan.partial) < self.max_num_partial_prefills:
                plan.partial.append(seq)
                return True
            return False

        running_prompts = [seq for seq in running_prompts if id(seq) not in plan.victims]
        for seq in running_prompts:
            take(seq)
        limit: dict[int, int] = {}  # the tokens a prompt sharing the budget has its KV blocks for
        shares = self._shares(plan.partial, plan.budget)
        for seq in running_prompts:
            if id(seq) in plan.victims:
                continue
            n = next((m for s, m in plan.prefill if s is seq), shares.get(id(seq), 0))
            if n == 0:
                continue
            if not self._reserve(seq, n, plan, stats):
                break
            limit[id(seq)] = n
        now = self._vclock
        admit = 0 if plan.preempted else 1 if self._alone() else self.max_num_seqs
        while (
            self._waiting
            and admit > 0
            and plan.budget > len(plan.partial)
            and len(self._running) < self.max_num_seqs
        ):
            admit -= 1
            seq = self._waiting[0]
            lookup = StepStats()
            self._admit(seq, lookup)  # a prefix-cache hit can leave a rest that fits in a slot
            n = min(seq.rest, plan.budget)  # the most it can get in this step
            need = self._blocks_after(seq, n)
            if need > plan.free_blocks or not take(seq):
                self._unadmit(seq)
                break  # wait for running requests to free KV blocks, or for a slot
            self._running_from_waiting(seq, need, plan, stats, lookup, now)
            limit[id(seq)] = n
        # Equal shares; a prompt needing less than its share passes the rest on.
        shares = self._shares(plan.partial, plan.budget)
        partial = [(seq, min(shares[id(seq)], limit.get(id(seq), 0))) for seq in plan.partial]
        return plan.prefill + [(seq, n) for seq, n in partial if n > 0], plan.decode

    @staticmethod
    def _shares(partial: list[_Seq], budget: int) -> dict[int, int]:
        """Equal shares of ``budget``; a prompt needing less than its share passes the rest on."""
        shares: dict[int, int] = {}
        by_need = sorted(partial, key=lambda s: s.rest)
        for i, seq in enumerate(by_need):
            n = min(seq.rest, budget // (len(by_need) - i))
            shares[id(seq)] = n
            budget -= n
        return shares

    # --- KV blocks -----------------------------------------------------------------------------------

    def _new_plan(self) -> _Plan:
        return _Plan(budget=self.max_num_batched_tokens, free_blocks=self.num_blocks - self.num_used_blocks)

    def _held_blocks(self, seq: _Seq) -> int:
        """KV blocks ``seq`` holds: its held tokens in whole blocks, the last one partly filled."""
        return -(-seq.held_tokens // self.block_size)

    def _blocks_after(self, seq: _Seq, n: int) -> int:
        """Blocks ``seq`` holds after ``n`` more tokens are computed and its outputs of the step sampled.

        A decode step's 1 + k tokens can all be accepted; a prompt's last chunk samples the first
        output. Capped at the whole cache, which one request of max_model_len always fits in.
        """
        tokens = seq.held_tokens + n + (1 if seq.prefilling and n >= seq.rest else 0)
        return min(-(-tokens // self.block_size), self.num_blocks)

    def _reserve(self, seq: _Seq, n: int, plan: _Plan, stats: StepStats) -> bool:
        """Take the KV blocks a running ``seq`` needs for ``n`` tokens this step, preempting if it must.

        As vLLM V1's scheduler (first come, first served): while the blocks are short, the request
        last in the running list is preempted; when that is ``seq`` itself, False.
        """
        while True:
            need = self._blocks_after(seq, n) - self._held_blocks(seq)
            if need <= plan.free_blocks:
                plan.free_blocks -= need
                plan.reserved[id(seq)] = plan.reserved.get(id(seq), 0) + need
                return True
            victim = self._running.pop()
            self._preempt(victim, plan, stats)
            if victim is seq:
                return False

    def _preempt(self, seq: _Seq, plan: _Plan, stats: StepStats) -> None:
        """Free every block of ``seq`` and put it at the front of the waiting queue, to compute again.

        Its computed blocks stay in the prefix cache (vLLM frees them to the cached free list), so its
        recomputation can start from them. It takes back nothing from this step's plan.
        """
        plan.free_blocks += self._held_blocks(seq) + plan.reserved.pop(id(seq), 0)
        for entries in (plan.prefill, plan.decode):
            for entry in entries:
                if entry[0] is seq:
                    entries.remove(entry)
                    plan.budget += entry[1]
                    break
        plan.partial = [s for s in plan.partial if s is not seq]
        plan.victims.add(id(seq))
        plan.preempted = True
        tokens = [*seq.prompt_ids, *seq.output_ids][: seq.held_tokens]
        self._cache_blocks(_block_hashes(tokens, self.block_size))
        seq.num_recomputed_outputs = len(seq.output_ids)
        seq.num_computed = 0
        seq.num_preemptions += 1
        stats.num_preemptions += 1
        self._waiting.appendleft(seq)

    def _running_from_waiting(
        self, seq: _Seq, need: int, plan: _Plan, stats: StepStats, lookup: StepStats, now: float
    ) -> None:
        stats.prefix_cache_queries += lookup.prefix_cache_queries
        stats.prefix_cache_hits += lookup.prefix_cache_hits
        self._waiting.popleft()
        plan.free_blocks -= need
        plan.reserved[id(seq)] = need
        if seq.scheduled_s is None:  # vLLM's queue time ends at the first scheduling
            seq.scheduled_s = now
        self._running.append(seq)

    def _admit(self, seq: _Seq, stats: StepStats) -> None:
        """Prefix-cache lookup: whole cached blocks are not computed again (the last token always is).

        As vLLM V1's ``get_computed_blocks``: the hit may cover at most ``len(ids) - 1`` tokens (the
        last one is computed for its logits) in whole blocks, so a fully cached prompt of a multiple
        of the block size computes its last block again. A preempted request looks up its prompt and the
        outputs it recomputes; like vLLM, its lookups are not counted in the prefix cache's queries
        and hits, and its cached-token count stays.
        """
        ids = seq.context_ids()
        seq.block_hashes = _block_hashes(ids, self.block_size)
        hit_blocks = 0
        for h in seq.block_hashes[: (len(ids) - 1) // self.block_size]:
            if h not in self._prefix_cache:
                break
            self._prefix_cache.move_to_end(h)
            hit_blocks += 1
        hits = hit_blocks * self.block_size
        seq.num_computed = hits
        if seq.num_preemptions:
            return
        seq.stream.num_cached_tokens = hits
        stats.prefix_cache_queries += len(ids)
        stats.prefix_cache_hits += hits

    def _unadmit(self, seq: _Seq) -> None:
        """Undo :meth:`_admit` for a request that stays waiting."""
        seq.num_computed = 0
        if not seq.num_preemptions:
            seq.stream.num_cached_tokens = 0

    def prime_prefix(self, ids: Sequence[int]) -> None:
        """Put the whole blocks of ``ids`` in the prefix cache, as if a request had computed them: a
        replay of measured requests gives each the prefix the server said its cache served."""
        self._cache_blocks(_block_hashes(ids, self.block_size))

    def _remember_prefix(self, seq: _Seq) -> None:
        self._cache_blocks(seq.block_hashes)

    def _cache_blocks(self, hashes: Sequence[int]) -> None:
        for h in hashes:
            self._prefix_cache[h] = None
            self._prefix_cache.move_to_end(h)
        while len(self._prefix_cache) > self.num_blocks:
            self._prefix_cache.popitem(last=False)

    def _apply(
        self, prefill: list[tuple[_Seq, int]], decode: list[tuple[_Seq, int]], stats: StepStats
    ) -> None:
        now = self._vclock
        emitting: list[tuple[_Seq, int]] = []
        for seq, n in prefill:
            if seq.finished:
                continue
            seq.num_computed += n
            if not seq.prefilling:
                self._remember_prefix(seq)
                if seq.first_token_s is None:  # a resumed request's prompt was counted the first time
                    stats.num_prompt_tokens += len(seq.prompt_ids)
                emitting.append((seq, 1))
        for seq, n in decode:
            if seq.finished:
                continue
            k = n - 1
            accepted = 0
            if k > 0:
                for rate in self.conditional_acceptance[:k]:
                    if seq.rng.random() >= rate:
                        break
                    accepted += 1
                stats.num_drafts += 1
                stats.num_draft_tokens += k
                stats.num_accepted_tokens += accepted
                if len(stats.accepted_per_pos) < self.num_spec_tokens:
                    stats.accepted_per_pos.extend([0] * (self.num_spec_tokens - len(stats.accepted_per_pos)))
                for pos in range(accepted):
                    stats.accepted_per_pos[pos] += 1
            emitting.append((seq, 1 + accepted))
        for seq, n in emitting:
            self._emit(seq, n, now, stats)
        self._running = [s for s in self._running if not s.finished]

    def _emit(self, seq: _Seq, n: int, now: float, stats: StepStats) -> None:
        params = seq.params
        new_ids: list[int] = []
        finish: str | None = None
        stop_reason: int | str | None = None
        cut: int | None = None
        if seq.finish_at is not None:
            n = max(0, min(n, seq.finish_at[0] - len(seq.output_ids)))
        for _ in range(n):
            i = len(seq.output_ids)
            script = seq.script
            eos_allowed = not params.ignore_eos and i >= params.min_tokens
            tok = script.eos_id if eos_allowed and i >= script.natural_len else script.token(i)
            seq.output_ids.append(tok)
            new_ids.append(tok)
            if tok == script.eos_id and eos_allowed:
                finish = "stop"
                break
            if tok in params.stop_token_ids and i >= params.min_tokens:
                finish, stop_reason = "stop", tok
                break
            if not self.tokenizer.is_special(tok):
                before = len(seq.text)
                seq.text += self.tokenizer.decode([tok])
                if params.stop and i + 1 >= params.min_tokens:
                    found = _find_stop(seq.text, params.stop, before)
                    if found is not None:
                        index, stop = found
                        cut = index + len(stop) if params.include_stop_str_in_output else index
                        finish, stop_reason = "stop", stop
                        break
            if len(seq.output_ids) >= params.max_tokens:
                finish = "length"
                break
        if finish is None and seq.finish_at is not None and len(seq.output_ids) >= seq.finish_at[0]:
            finish = seq.finish_at[1]
        if cut is not None:
            seq.text = seq.text[:cut]
        # Hold back text that could be the start of a stop string, as vLLM's detokenizer does.
        hold = 0 if finish or not params.stop else max(len(s) for s in params.stop) - 1
        upto = max(seq.sent_chars, len(seq.text) - hold)
        delta = seq.text[seq.sent_chars : upto]
        seq.sent_chars = upto
        stats.num_generation_tokens += len(new_ids)
        if seq.first_token_s is None:
            seq.first_token_s = now
            stats.ttfts_s.append(now - seq.arrival_s)
        else:
            stats.inter_token_latencies_s.append(now - seq.last_token_s)
        seq.last_token_s = now
        if finish is not None:
            self._finish(seq, finish, stop_reason, stats, tuple(new_ids), delta)
        else:
            seq.stream._put(Output(tuple(new_ids), delta, t_s=now))

    def _finish(
        self,
        seq: _Seq,
        reason: str,
        stop_reason: int | str | None,
        stats: StepStats,
        new_ids: tuple[int, ...] = (),
        delta: str = "",
    ) -> None:
        seq.finished = True
        self._by_id.pop(seq.request_id, None)
        now = self._vclock
        scheduled = seq.scheduled_s if seq.scheduled_s is not None else now
        first = seq.first_token_s if seq.first_token_s is not None else now
        stats.finished.append(
            FinishedRequest(
                finish_reason=reason,
                e2e_s=now - seq.arrival_s,
                queued_s=scheduled - seq.arrival_s,
                prefill_s=first - scheduled,
                decode_s=now - first,
                inference_s=now - scheduled,
                num_prompt_tokens=len(seq.prompt_ids),
                num_generation_tokens=len(seq.output_ids),
                max_tokens=seq.params.max_tokens,
                request_id=seq.request_id,
                num_preemptions=seq.num_preemptions,
                num_cached_tokens=seq.stream.num_cached_tokens,
            )
        )
        seq.stream._put(Output(new_ids, delta, reason, stop_reason, t_s=now))


def kv_pool(profile: Profile, kv_cache_tokens: int | None = None) -> tuple[int, int]:
    """The twin's KV pool for ``profile``: (tokens, blocks of ``twin.block_size`` tokens).

    The tokens: ``kv_cache_tokens``, else the profile's ``twin.kv_cache_tokens``, else 2.1 x
    max_model_len (the reference cluster's ratio). vLLM refuses to start when one request of
    max_model_len does not fit; the twin serves at least that much instead, in as many blocks.
    """
    max_model_len = profile.deployment.max_model_len
    block_size = profile.twin.block_size
    if kv_cache_tokens is None:
        kv_cache_tokens = profile.twin.kv_cache_tokens
    if kv_cache_tokens is None:
        kv_cache_tokens = int(max_model_len * 2.1)
    tokens = max(kv_cache_tokens, max_model_len)
    return tokens, max(tokens // block_size, -(-max_model_len // block_size))


def _block_hashes(ids: Sequence[int], block_size: int) -> list[int]:
    """A chained hash per whole block of ``ids``: a block's hash stands for every token up to its end."""
    h = 0
    hashes: list[int] = []
    for start in range(0, len(ids) - block_size + 1, block_size):
        h = hash((h, tuple(ids[start : start + block_size])))
        hashes.append(h)
    return hashes


def _find_stop(text: str, stops: tuple[str, ...], new_from: int) -> tuple[int, str] | None:
    """Earliest stop string that ends in the newly added text."""
    best: tuple[int, str] | None = None
    for stop in stops:
        if not stop:
            continue
        index = text.find(stop, max(0, new_from - len(stop) + 1))
        if index != -1 and (best is None or index < best[0]):
            best = (index, stop)
    return best


async def collect(stream: AsyncIterator[Output]) -> list[Output]:
    """All outputs of a stream (tests and non-streaming responses)."""
    return [out async for out in stream]
