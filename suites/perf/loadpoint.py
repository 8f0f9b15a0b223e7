"""One sustained load point, run the one way both ``test_load_point`` and the saturation search run it.

:func:`run_load_point` sends for ``--gx10-duration``, or ``--gx10-requests`` requests (closed loop:
N in flight; open loop: arrivals at R/s, climbing there over ``--gx10-ramp-up`` seconds), samples the server's /metrics meanwhile, and returns the point's ``load`` figures (with
the telemetry) and a line per failed request. It records nothing and asserts nothing: the caller
records the figures first, then decides.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.client import StreamResult, VllmClient
from pytest_gx10.load.arrivals import arrival_times
from pytest_gx10.load.runner import LoadProgress, run_closed_loop, run_open_loop
from pytest_gx10.load.steady import load_figures, point_name
from pytest_gx10.load.telemetry import sample_telemetry, telemetry_figures
from pytest_gx10.load.turns import expected_hit_rates, turn_rows
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings
from pytest_gx10.workload import RequestFacts
from pytest_gx10.workload.conversation import Conversation
from pytest_gx10.workload.plan import BodyForm
from pytest_gx10.workload.shared import BLOCK_SIZE

__all__ = ["PointRun", "run_load_point"]

RUN_NONCE = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class PointRun:
    """A point's ``load`` figures and a line per failed request (``request 3: HTTP 500 ...``)."""

    figures: dict[str, Any]
    failures: list[str]


def body_form(server: Server, settings: Settings, point: str) -> BodyForm:
    """How the perf suite puts point ``point``'s requests (the profile's endpoint, max_tokens, ignore_eos;
    the usage in every chunk from a server that offers it, so inter-token times count real tokens)."""
    perf = settings.profile.perf
    return BodyForm(
        count=server.count_prompt,
        chat=perf.endpoint == "chat",
        point=point,
        max_tokens_default=perf.max_tokens,
        ignore_eos=perf.ignore_eos,
        usage_per_chunk="usage_per_chunk" in server.offers,
    )


def kv_block_size(server: Server, model: str | None) -> int:
    """The server's KV block in tokens (vLLM's ``vllm:cache_config_info``), else vLLM's default, 16:
    a prefix cache shares whole blocks only."""
    return (server.block_size(model) if model else None) or BLOCK_SIZE


def workload_figures(
    settings: Settings, requests: Sequence[RequestFacts], block_size: int = BLOCK_SIZE
) -> dict[str, Any]:
    """What a point records of its workload: the kind, and for a shared prefix the hit rate its
    requests make possible (to set beside the server's own, ``prefix_cache_hit_rate``); for
    conversations the least and the most they make possible."""
    figures: dict[str, Any] = {"workload": settings.workload, "kv_block_size": block_size}
    if settings.workload == "multi-turn" and requests:
        low, high = expected_hit_rates(requests)
        figures["expected_prefix_hit_rate"], figures["expected_prefix_hit_rate_max"] = low, high
    if settings.workload == "shared-prefix" and requests:
        plan = settings.workload_for("", "").shared
        assert plan is not None
        lengths = [r.input_tokens for r in requests]
        figures["expected_prefix_hit_rate"] = plan.expected_hit_rate(lengths, block_size)
    return figures


class _Bodies:
    """The point's requests from the run's workload, their facts kept, paired with their results.

    Request i's body is ``self(i)``. A multi-turn workload's requests come from conversations: in
    the closed loop each slot carries one conversation at a time (:meth:`for_slot`, then
    :meth:`slot_result`); in the open loop each arrival starts one, whose later turns follow its
    answers (:meth:`arrival`, then :meth:`follow`).
    """

    def __init__(self, server: Server, settings: Settings, point: str, block_size: int) -> None:
        self.workload = settings.workload_for(point, RUN_NONCE, block_size)
        self.form = body_form(server, settings, point)
        self.facts: dict[int, RequestFacts] = {}
        self.issued: list[RequestFacts] = []
        self.pairs: list[tuple[RequestFacts, StreamResult]] = []
        self._conversations = itertools.count()
        self._chats: dict[int, Conversation] = {}  # by slot (closed loop) or by arrival (open loop)
        self._sent: dict[int, RequestFacts] = {}  # each chat's request in flight
        self._lock = threading.Lock()

    @property
    def conversations(self) -> bool:
        return self.workload.kind == "multi-turn"

    def __call__(self, i: int) -> dict[str, Any]:
        body, facts = self.workload.body(
            i,
            **self.form,
        )
        self.facts[i] = facts
        return body

    def _new_chat(self) -> Conversation:
        with self._lock:
            index = next(self._conversations)
        return self.workload.conversation(
            index,
            **self.form,
        )

    def _turn(self, key: int) -> dict[str, Any]:
        body, facts = self._chats[key].next_body()
        self._sent[key] = facts
        with self._lock:
            self.issued.append(facts)
        return body

    def all_facts(self) -> list[RequestFacts]:
        """Every request's facts: by index, or for conversations in the order their turns were built."""
        return list(self.issued) if self.conversations else [self.facts[i] for i in sorted(self.facts)]

    def _answered(self, key: int, result: StreamResult) -> None:
        self.pairs.append((self._sent[key], result))
        self._chats[key].answer(result.content if result.ok else None, result.completion_tokens)

    def for_slot(self, i: int, slot: int) -> dict[str, Any]:
        """Request i of the closed loop, sent from ``slot``: the slot's next turn, or request i."""
        if not self.conversations:
            return self(i)
        if slot not in self._chats or self._chats[slot].done:
            self._chats[slot] = self._new_chat()
        return self._turn(slot)

    def slot_result(self, i: int, slot: int, result: StreamResult) -> None:
        """How the slot's request ended: the answer goes into its conversation."""
        if self.conversations:
            self._answered(slot, result)

    def arrival(self, i: int) -> dict[str, Any]:
        """Arrival i's first request: request i, or the first turn of conversation i."""
        if not self.conversations:
            return self(i)
        self._chats[i] = self._new_chat()
        return self._turn(i)

    def follow(self, i: int, result: StreamResult) -> dict[str, Any] | None:
        """After arrival i's latest request: its conversation's next turn, None when it is over."""
        if not self.conversations:
            return None
        self._answered(i, result)
        if self._chats[i].done:
            return None
        return self._turn(i)


def run_load_point(
    mode: str,
    level: float,
    *,
    client: VllmClient,
    server: Server,
    profile: Profile,
    settings: Settings,
    progress: Callable[[str], None],
    engine: Callable[[], Verdict],
) -> PointRun:
    """Run one point of ``mode`` (``rate`` or ``concurrency``) at ``level`` and measure it."""
    s, perf = settings, profile.perf
    point = point_name(mode, level)
    path = "/v1/chat/completions" if perf.endpoint == "chat" else "/v1/completions"
    scale = client.time_scale()  # a twin's seconds run faster: durations are the target's
    block_size = kv_block_size(server, client.model)
    body = _Bodies(server, settings, point, block_size)

    def on_progress(p: LoadProgress) -> None:
        progress(f"{point}: {p.done} done, {p.completion_tokens} tokens, {p.elapsed_s:.1f} s")

    # What the server saw meanwhile: /metrics scraped from just before the first send to after the last end.
    with sample_telemetry(server, client.model) as sampler:
        if mode == "rate":
            offsets = arrival_times(
                level,
                None if s.requests else s.duration_s,
                s.arrival,
                count=s.requests,
                seed=perf.seed,
                burstiness=perf.burstiness,
                ramp_up_s=s.ramp_up_s,
            )
            bodies = [body.arrival(i) for i in range(len(offsets))]  # built before the clock starts
            start, sent = run_open_loop(
                client,
                path,
                bodies,
                [o / scale for o in offsets],
                max_in_flight=perf.max_in_flight,
                on_progress=on_progress,
                follow=body.follow if body.conversations else None,
            )
        else:
            start, sent = run_closed_loop(
                client,
                path,
                body.for_slot,
                int(level),
                None if s.requests else s.duration_s / scale,
                max_requests=s.requests,
                on_progress=on_progress,
                on_result=body.slot_result,
            )
    failed = [x.result for x in sent if not x.result.ok]
    figures = load_figures(
        mode,
        level,
        sent,
        start_ns=start,
        warmup_s=s.warmup_s,
        warmup_count=s.warmup_requests,
        slo=dict(s.slo),
        time_scale=scale,
        engine_dead=bool(failed) and not engine().alive,
    )
    if mode == "rate":
        figures["arrival"] = s.arrival
        figures["ramp_up_s"] = s.ramp_up_s
    completion = sum(x.result.completion_tokens or 0 for x in sent)
    figures.update(telemetry_figures(sampler.series(), client_completion_tokens=completion))
    figures.update(workload_figures(settings, body.all_facts(), block_size))
    if body.conversations:
        figures["turns"] = turn_rows(body.pairs)
    lines = [f"request {i}: {x.result.describe()}" for i, x in enumerate(sent) if not x.result.ok]
    return PointRun(figures, lines)
