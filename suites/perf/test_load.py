"""Sustained load: N requests kept in flight, or arrivals at R requests/s, with objectives and goodput.

One test per point, with ``--gx10-load-mode concurrency`` (a point per ``--gx10-concurrency`` N: N
requests in flight for ``--gx10-duration`` seconds, each finished one replaced at once) or
``--gx10-load-mode rate`` (a point per ``--gx10-rate`` R: open-loop arrivals, ``--gx10-arrival``
constant, poisson or gamma, for the duration; each request keeps its scheduled and actual send
time, and the point reports the send lag). In the default burst mode it is not collected (nor is
the burst sweep in the other modes). Requests sent in the first ``--gx10-warmup`` seconds (by send time) are left out of the
figures (:mod:`pytest_gx10.load.steady`). Every point is recorded into the ``load`` section before
any assertion; it passes when no measured request failed and its floors hold
(``[perf.load_floors.rate."2"]``, ``[perf.load_floors.concurrency.8]``). The point itself is run by
:func:`suites.perf.loadpoint.run_load_point`, as the saturation search's probes are; with
``--gx10-saturate`` the search takes these points' place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.load.floors import check_limits
from pytest_gx10.load.steady import point_name
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings

from .figures import LOAD
from .loadpoint import run_load_point

pytestmark = pytest.mark.gx10_load  # points run one after another, never beside each other


HIT_RATE_ROOM = 0.10


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
    run = run_load_point(
        mode,
        level,
        client=gx10_client,
        server=gx10_server,
        profile=gx10_profile,
        settings=s,
        progress=gx10_progress,
        engine=gx10_engine,
    )
    figures = run.figures
    gx10_record(LOAD.name, figures)

    assert figures["measured"], (
        f"{point}: no request was sent after the {s.warmup_s:g} s warm-up of a {s.duration_s:g} s point; "
        "lengthen --gx10-duration or shorten --gx10-warmup"
    )
    lines = run.failures
    assert not lines, f"{point}: {len(lines)} of {figures['sent']} requests failed:\n" + "\n".join(lines)
    limits = perf.load_floors.get(mode, {}).get(float(level), {})
    misses = check_limits(LOAD, figures, limits)
    assert not misses, "\n".join(misses)
    expected, measured = figures.get("expected_prefix_hit_rate"), figures.get("prefix_cache_hit_rate")
    most = figures.get("expected_prefix_hit_rate_max")
    if expected is not None and most is not None and measured is not None:
        # A conversation's turn resends its history: the cache serves at least the earlier prompts,
        # at most the earlier prompts and answers, in whole blocks; ten points either way allow the
        # chat template's tokens and conversations the cache had to evict.
        assert expected - HIT_RATE_ROOM <= measured <= most + HIT_RATE_ROOM, (
            f"{point}: the server's prefix cache hit {measured:.1%} of prompt tokens, where the "
            f"conversations' histories make {expected:.1%} to {most:.1%} possible (within "
            f"{HIT_RATE_ROOM:.0%}); is prefix caching on, and does the KV cache hold the conversations?"
        )
    elif expected is not None and measured is not None:
        # A group's later requests arrive after its first was prefilled: the server's prefix cache
        # serves their shared blocks. Ten points either way allow the chat template's tokens and a
        # group's requests that overlap in the engine.
        assert abs(measured - expected) <= HIT_RATE_ROOM, (
            f"{point}: the server's prefix cache hit {measured:.1%} of prompt tokens, where the shared "
            f"prefixes make {expected:.1%} possible (within {HIT_RATE_ROOM:.0%}); is prefix caching on?"
        )
