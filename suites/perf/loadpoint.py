"""One sustained load point, run the one way both ``test_load_point`` and the saturation search run it.

:func:`run_load_point` sends for ``--gx10-duration``, or ``--gx10-requests`` requests (closed loop:
N in flight; open loop: arrivals at R/s, climbing there over ``--gx10-ramp-up`` seconds), samples the server's /metrics meanwhile, and returns the point's ``load`` figures (with
the telemetry) and a line per failed request. It records nothing and asserts nothing: the caller
records the figures first, then decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_gx10.client import VllmClient
from pytest_gx10.load.arrivals import arrival_times
from pytest_gx10.load.runner import LoadProgress, run_closed_loop, run_open_loop
from pytest_gx10.load.steady import load_figures, point_name
from pytest_gx10.load.telemetry import sample_telemetry, telemetry_figures
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings
from pytest_gx10.workload import sized_prompt

__all__ = ["PointRun", "run_load_point"]

RUN_NONCE = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class PointRun:
    """A point's ``load`` figures and a line per failed request (``request 3: HTTP 500 ...``)."""

    figures: dict[str, Any]
    failures: list[str]


def _body_maker(server: Server, profile: Profile, point: str) -> Callable[[int], dict[str, Any]]:
    perf = profile.perf
    chat = perf.endpoint == "chat"

    def count(text: str) -> int:
        if chat:
            return server.count_tokens(messages=[{"role": "user", "content": text}])
        return server.count_tokens(text)

    def body(i: int) -> dict[str, Any]:
        # A header of its own per request: prefix caching shares nothing beyond the template.
        prompt = sized_prompt(
            count,
            perf.input_tokens,
            seed=f"{point} request {i}",
            chat=chat,
            header=f"Story {i + 1}, {point}, edition {RUN_NONCE}.\n\n",
        )
        return {
            **prompt.body(),
            "max_tokens": perf.max_tokens,
            "temperature": 0,
            **({"ignore_eos": True} if perf.ignore_eos else {}),
        }

    return body


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
    body = _body_maker(server, profile, point)

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
            bodies = [body(i) for i in range(len(offsets))]  # built before the clock starts
            start, sent = run_open_loop(
                client,
                path,
                bodies,
                [o / scale for o in offsets],
                max_in_flight=perf.max_in_flight,
                on_progress=on_progress,
            )
        else:
            start, sent = run_closed_loop(
                client,
                path,
                body,
                int(level),
                None if s.requests else s.duration_s / scale,
                max_requests=s.requests,
                on_progress=on_progress,
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
    lines = [f"request {i}: {x.result.describe()}" for i, x in enumerate(sent) if not x.result.ok]
    return PointRun(figures, lines)
