"""The saturation search's walk, with a made-up server: bounds, bisection, the stops, the answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from pytest_gx10.load.saturation import SaturationPlan, next_level, plan_search, search
from pytest_gx10.profiles import SaturationSpec


def _server(knee: float, walked: list[float]) -> Any:
    """A point's figures: attainment 1 up to the knee, 0.5 above it."""

    def run(level: float) -> Mapping[str, Any]:
        walked.append(level)
        good = level <= knee
        return {"point": f"rate {level:g}/s", "attainment": 1.0 if good else 0.5, "status": "ok"}

    return run


def test_rate_bisects_geometrically_until_the_resolution() -> None:
    walked: list[float] = []
    plan = SaturationPlan("rate", 0.9, 0.5, 64.0, max_steps=20, resolution=0.1)
    result = search(plan, _server(5.0, walked), slo={"ttft": 2.0})
    assert walked[:3] == [0.5, 64.0, pytest.approx(32**0.5)]  # sqrt(0.5 x 64)
    assert result.stopped == "converged"
    answer, failing = result.answer, result.lowest_failing
    assert answer is not None
    assert failing is not None
    assert answer <= 5.0 < failing
    assert (failing - answer) / answer <= 0.1
    assert all(p.passed == (p.level <= 5.0) for p in result.probes)


def test_concurrency_levels_are_whole_and_converge_to_one_step() -> None:
    walked: list[float] = []
    plan = SaturationPlan("concurrency", 0.9, 1.0, 64.0, max_steps=20, resolution=0.01)
    result = search(plan, _server(11, walked), slo={})
    assert all(level == int(level) for level in walked)
    assert len(set(walked)) == len(walked)
    assert (result.answer, result.lowest_failing) == (11.0, 12.0)
    assert next_level(plan, 11.0, 12.0) is None


def test_the_step_and_time_bounds_stop_the_walk() -> None:
    walked: list[float] = []
    plan = SaturationPlan("rate", 0.9, 0.5, 64.0, max_steps=4)
    result = search(plan, _server(5.0, walked), slo={})
    assert len(walked) == 4
    assert result.stopped == "step_bound"
    assert result.as_entry()["steps"] == 4

    now = [0.0]

    def clock() -> float:
        return now[0]

    def slow(level: float) -> Mapping[str, Any]:
        now[0] += 40.0  # every probe takes 40 s
        return {"attainment": 1.0 if level < 5 else 0.0}

    plan = SaturationPlan("rate", 0.9, 0.5, 64.0, max_steps=10, max_time_s=100.0)
    result = search(plan, slow, slo={}, clock=clock)
    assert len(result.probes) == 2  # a third would end at 120 s
    assert result.stopped == "time_bound"
    assert "100 s" in result.why()


def test_bounds_that_decide_the_answer_alone() -> None:
    plan = SaturationPlan("rate", 0.9, 2.0, 8.0)
    low_fails = search(plan, _server(1.0, []), slo={})
    assert (low_fails.stopped, low_fails.answer, len(low_fails.probes)) == ("low_fails", None, 1)
    assert low_fails.summary().startswith("no answer")
    high_passes = search(plan, _server(100.0, []), slo={})
    assert (high_passes.stopped, high_passes.answer) == ("high_passes", 8.0)
    assert "at least 8 req/s" in high_passes.summary()


def test_a_probe_that_cannot_run_or_kills_the_engine_keeps_the_probes_before_it() -> None:
    calls: list[float] = []

    def dies(level: float) -> Mapping[str, Any]:
        calls.append(level)
        if len(calls) == 3:
            raise ConnectionRefusedError("refused")
        return {"attainment": 1.0 if level < 5 else 0.0}

    result = search(SaturationPlan("rate", 0.9, 0.5, 64.0), dies, slo={})
    assert result.stopped == "probe_error"
    assert [p.level for p in result.probes] == [0.5, 64.0]
    assert "refused" in result.as_entry()["error"]

    def dead(level: float) -> Mapping[str, Any]:
        return {"attainment": 1.0 if level < 1 else 0.0, "status": "engine dead" if level > 1 else "ok"}

    result = search(SaturationPlan("rate", 0.9, 0.5, 64.0), dead, slo={})
    assert result.stopped == "engine_dead"
    assert [(p.level, p.passed) for p in result.probes] == [(0.5, True), (64.0, False)]
    assert result.answer == 0.5


def test_the_plan_takes_its_bounds_from_the_profile_the_list_or_the_defaults() -> None:
    spec = SaturationSpec()
    assert (plan_search("rate", (1.0, 2.0), spec, levels_given=False).low, 64.0) == (0.5, 64.0)
    given = plan_search("rate", (0.5, 1.0, 4.0), spec, levels_given=True)
    assert (given.low, given.high, given.bounds_from) == (0.5, 4.0, "the level list")
    burst = plan_search("burst", (1.0, 2.0, 4.0, 8.0), spec, levels_given=True)
    assert (burst.mode, burst.low, burst.high) == ("concurrency", 1.0, 8.0)
    own = plan_search("concurrency", (1.0,), SaturationSpec(low=2.5, high=20.2), levels_given=True)
    assert (own.low, own.high, own.bounds_from) == (2.0, 21.0, "profile perf.saturation")
    assert plan_search("concurrency", (4.0,), spec, levels_given=True).high == 64.0  # one level: no span


def test_a_profile_with_bounds_the_wrong_way_round_is_refused() -> None:
    import tomllib

    from helpers.tinyprofile import tiny_profile

    from pytest_gx10.profiles import ProfileError, profile_from_data

    for table, problem in (
        ("low = 8\nhigh = 4\n", "perf.saturation': low (8) must be under high (4)"),
        ("max_steps = 1\n", "perf.saturation.max_steps"),
        ("attainment = 1.5\n", "perf.saturation.attainment"),
    ):
        with pytest.raises(ProfileError) as caught:
            profile_from_data("tiny.toml", tomllib.loads(tiny_profile() + "\n[perf.saturation]\n" + table))
        assert problem in str(caught.value)
    good = profile_from_data("tiny.toml", tomllib.loads(tiny_profile() + "\n[perf.saturation]\nfloor = 3\n"))
    assert good.perf.saturation.floor == 3.0
    assert good.perf.saturation.attainment == 0.9
