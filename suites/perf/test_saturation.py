"""Saturation: the highest rate (or concurrency) whose SLO attainment holds the target.

Collected only with ``--gx10-saturate`` (which needs objectives: ``--gx10-slo`` or ``[perf.slo]``),
and then in place of the perf suite's plain points. The search (:mod:`pytest_gx10.load.saturation`)
probes the low bound, the high bound, then bisects; each probe is a sustained load point run as
``test_load_point`` runs one, recorded into the ``load`` section (telemetry and all) and kept out of
the release gate (its level depends on the path the search took). The ``saturation`` entry (every
probe in the order walked, the answer, why the search stopped) is recorded before any assertion,
whatever stopped it, a dead engine included. The test fails when the engine died or a probe could
not run, and when the answer is under the profile's ``perf.saturation.floor``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.load.saturation import SaturationPlan, search
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings

from .figures import LOAD, SATURATION, probe_lines
from .loadpoint import run_load_point

pytestmark = pytest.mark.gx10_load  # probes run one after another, never beside other load


def test_saturation(
    gx10_saturation: SaturationPlan,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_profile: Profile,
    gx10_settings: Settings,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
    gx10_progress: Callable[[str], None],
    gx10_engine: Callable[[], Verdict],
) -> None:
    """The search finds a level that holds the attainment target, and it reaches the floor if given."""
    plan = gx10_saturation
    steps = 0

    def run(level: float) -> Mapping[str, Any]:
        nonlocal steps
        steps += 1
        gx10_progress(f"saturation probe at {plan.level_text(level)}")
        figures = run_load_point(
            plan.mode,
            level,
            client=gx10_client,
            server=gx10_server,
            profile=gx10_profile,
            settings=gx10_settings,
            progress=gx10_progress,
            engine=gx10_engine,
        ).figures
        # A probe is a load point like any other, but its level is the search's: kept out of the gate.
        gx10_record(LOAD.name, {**figures, "probe": steps, "gated": False})
        return figures

    result = search(plan, run, slo=dict(gx10_settings.slo))
    entry = result.as_entry()
    gx10_record(SATURATION.name, entry)

    probes = "\n".join(probe_lines(entry))
    assert result.stopped not in ("engine_dead", "probe_error"), f"{result.why()}\n{probes}"
    if plan.floor is not None:
        reached = result.answer is not None and result.answer >= plan.floor
        assert reached, (
            f"saturation {plan.level_text(result.answer)} < floor {plan.level_text(plan.floor)} "
            f"({plan.target:.0%} SLO attainment; {result.why()}); probes:\n{probes}"
        )
