"""Sustained load: N requests kept in flight, or arrivals at R requests/s, with objectives and goodput.

One test per point, with ``--gx10-load-mode concurrency`` (a point per ``--gx10-concurrency`` N: N
requests in flight for ``--gx10-duration`` seconds, each finished one replaced at once) or
``--gx10-load-mode rate`` (a point per ``--gx10-rate`` R: open-loop arrivals, ``--gx10-arrival``
constant, poisson or gamma, for the duration; each request keeps its scheduled and actual send
time, and the point reports the send lag). In the default burst mode it is not collected (nor is
the burst sweep in the other modes). Requests sent in the first ``--gx10-warmup`` seconds (by send time) are left out of the
figures (:mod:`pytest_gx10.load.steady`). Every point is recorded into the ``load`` section before
any assertion; it passes when no measured request failed and its floors hold
(``[perf.load_floors.rate."2"]``, ``[perf.load_floors.concurrency.8]``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.load.arrivals import arrival_times
from pytest_gx10.load.floors import check_limits
from pytest_gx10.load.runner import LoadProgress, run_closed_loop, run_open_loop
from pytest_gx10.load.steady import load_figures, point_name
from pytest_gx10.load.telemetry import sample_telemetry, telemetry_figures
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings
from pytest_gx10.workload import sized_prompt

from .figures import LOAD

pytestmark = pytest.mark.gx10_load  # points run one after another, never beside each other

RUN_NONCE = uuid.uuid4().hex[:8]


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


def test_load_point(
    gx10_load_level: float,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_profile: Profile,
    gx10_settings: Settings,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
    gx10_progress: Callable[[str], None],
    gx10_engine: Callable[[], Verdict],
) -> None:
    """A sustained point: its requests succeed after the warm-up and its floors hold."""
    s, perf = gx10_settings, gx10_profile.perf
    mode, level = s.load_mode, gx10_load_level
    point = point_name(mode, level)
    path = "/v1/chat/completions" if perf.endpoint == "chat" else "/v1/completions"
    scale = gx10_client.time_scale()  # a twin's seconds run faster: durations are the target's
    body = _body_maker(gx10_server, gx10_profile, point)

    def progress(p: LoadProgress) -> None:
        gx10_progress(f"{point}: {p.done} done, {p.completion_tokens} tokens, {p.elapsed_s:.1f} s")

    # What the server saw meanwhile: /metrics scraped from just before the first send to after the last end.
    with sample_telemetry(gx10_server, gx10_client.model) as sampler:
        if mode == "rate":
            offsets = arrival_times(
                level, s.duration_s, s.arrival, seed=perf.seed, burstiness=perf.burstiness
            )
            bodies = [body(i) for i in range(len(offsets))]  # built before the clock starts
            start, sent = run_open_loop(
                gx10_client,
                path,
                bodies,
                [o / scale for o in offsets],
                max_in_flight=perf.max_in_flight,
                on_progress=progress,
            )
        else:
            start, sent = run_closed_loop(
                gx10_client, path, body, int(level), s.duration_s / scale, on_progress=progress
            )
    failed = [x.result for x in sent if not x.result.ok]
    figures = load_figures(
        mode,
        level,
        sent,
        start_ns=start,
        warmup_s=s.warmup_s,
        slo=dict(s.slo),
        time_scale=scale,
        engine_dead=bool(failed) and not gx10_engine().alive,
    )
    if mode == "rate":
        figures["arrival"] = s.arrival
    completion = sum(x.result.completion_tokens or 0 for x in sent)
    figures.update(telemetry_figures(sampler.series(), client_completion_tokens=completion))
    gx10_record(LOAD.name, figures)

    assert figures["measured"], (
        f"{point}: no request was sent after the {s.warmup_s:g} s warm-up of a {s.duration_s:g} s point; "
        "lengthen --gx10-duration or shorten --gx10-warmup"
    )
    lines = [f"request {i}: {x.result.describe()}" for i, x in enumerate(sent) if not x.result.ok]
    assert not lines, f"{point}: {len(lines)} of {len(sent)} requests failed:\n" + "\n".join(lines)
    limits = perf.load_floors.get(mode, {}).get(float(level), {})
    misses = check_limits(LOAD, figures, limits)
    assert not misses, "\n".join(misses)
