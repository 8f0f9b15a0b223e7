"""suites/perf's saturation search through the plugin against a small twin (max_num_seqs 8, at three
times real time): the answer between the bounds, the floor, the bounds on the walk, the usage error
without objectives, the report's probe table and plots, the latency-throughput plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"
# Concurrency points in a closed loop: an overloaded probe queues nothing past its duration.
SHORT = ("--gx10-load-mode=concurrency", "--gx10-duration=3", "--gx10-warmup=1")


def _run(
    pytester: pytest.Pytester, *args: str, saturation: str = "", markdown: bool = False
) -> tuple[pytest.RunResult, dict]:  # type: ignore[type-arg]
    profile = pytester.path / "tiny.toml"
    twin = tiny_profile().replace("time_scale = 1.0", "time_scale = 3.0")
    profile.write_text(twin + "\n[perf.saturation]\n" + saturation)
    out = pytester.path / "out.json"
    more = [f"--gx10-markdown={pytester.path / 'report.md'}"] if markdown else []
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider", *more, *args
    )
    return result, json.loads(out.read_text()) if out.exists() else {}


def _markers(svg: str, series: str) -> int:
    return len(re.findall(rf'class="gx10-point" data-series="{re.escape(series)}"', svg))


def test_the_search_converges_between_passing_and_failing_levels(pytester: pytest.Pytester) -> None:
    """Concurrency 1 to 32 with TTFT <= 0.3 s: past the twin's 8 sequences requests queue for a slot
    and miss it. The walk probes both bounds then bisects; every level at or under the answer passed,
    every one above failed, and the answer sits one step under the lowest failing level. Each probe
    is a load point too (kept out of the gate); the report holds the probe table and the plots."""
    result, doc = _run(
        pytester,
        *SHORT,
        "--gx10-saturate",
        "--gx10-slo=ttft=0.3s",
        saturation="low = 1\nhigh = 32\nmax_steps = 9\n",
        markdown=True,
    )
    result.assert_outcomes(passed=1)  # the search alone: the plain load points are not collected
    (search,) = doc["saturation"]
    probes = search["probes"]
    assert [p["level"] for p in probes[:2]] == [1.0, 32.0]
    assert [p["step"] for p in probes] == list(range(1, len(probes) + 1))
    assert search["stopped"] == "converged", search["why"]
    answer, failing = search["answer"], search["lowest_failing"]
    assert answer is not None
    assert failing is not None
    assert 1 <= answer < failing <= 32
    assert failing - answer <= 1  # whole numbers: nothing left between them
    for p in probes:
        assert p["passed"] == (p["level"] <= answer), probes
        assert p["passed"] == (p["attainment"] >= 0.9), p
    # Past the twin's 8 sequences a request waits a whole request's time for a slot: no level over 12
    # holds. Under it, TTFT is a prefill; on two busy shared cores a probe of a few seconds can still
    # lose a request or two to the client's own lateness, so the low side is left loose.
    assert 2 <= answer <= 12, probes
    assert search["target"] == 0.9
    assert search["slo"] == {"ttft": 0.3}
    result.stdout.fnmatch_lines([f"saturation (concurrency): saturation at {int(answer)} in flight*"])

    probed = [p for p in doc["load"] if p.get("probe")]
    assert sorted(p["probe"] for p in probed) == [p["step"] for p in probes]
    assert all(p["gated"] is False and p["telemetry"]["t_s"] for p in probed)
    assert "sweep" not in doc

    markdown = (pytester.path / "report.md").read_text()
    assert "### Saturation (concurrency): saturation at" in markdown
    assert markdown.count("in flight | ") >= len(probes)  # a row per probe
    plot = (pytester.path / "report-saturation-concurrency.svg").read_text()
    assert plot.count('class="gx10-point"') + plot.count('class="gx10-failed" data-series="probe"') == len(
        probes
    )
    assert 'class="gx10-hline"' in plot
    assert "target 90%" in plot
    assert f"answer {int(answer)} in flight" in plot
    curve = (pytester.path / "report-latency-throughput.svg").read_text()
    for series in ("TTFT p50", "TTFT p90", "TTFT p99", "TPOT p50", "TPOT p99", "TTFT p50 vs goodput"):
        assert _markers(curve, series) == len(probes), series
    assert (pytester.path / f"report-telemetry-concurrency-{int(answer)}.svg").exists()
    assert (pytester.path / "out-latency-throughput.svg").read_text() == curve  # beside the JSON too


def test_the_floor_fails_above_the_answer_and_passes_under_it(pytester: pytest.Pytester) -> None:
    """Bounds 2 and 4 that both pass: the answer is at least the high bound, said so; a floor of 6
    fails naming the answer, the floor and the probes; a floor of 3 passes."""
    common = (*SHORT, "--gx10-saturate", "--gx10-slo=ttft=2s")
    result, doc = _run(pytester, *common, saturation="low = 2\nhigh = 4\nfloor = 6\n")
    result.assert_outcomes(failed=1)
    (search,) = doc["saturation"]
    assert search["stopped"] == "high_passes"
    assert search["answer"] == 4.0
    assert "at least 4 in flight" in search["summary"]
    assert [p["level"] for p in search["probes"]] == [2.0, 4.0]
    result.stdout.fnmatch_lines(
        ["*saturation 4 in flight < floor 6 in flight*", "*step*level*attain*", "*1*2 in flight*pass*"]
    )

    result, doc = _run(pytester, *common, saturation="low = 2\nhigh = 4\nfloor = 3\n")
    result.assert_outcomes(passed=1)
    assert doc["saturation"][0]["answer"] == 4.0


def test_the_walk_stops_at_the_step_bound_and_when_the_low_bound_fails(pytester: pytest.Pytester) -> None:
    """Three probes at most: the bounds and one bisection, then it stops and says so. An objective
    nothing meets fails the low bound: no answer (null), said plainly, and the search ends there."""
    result, doc = _run(
        pytester,
        *SHORT,
        "--gx10-saturate",
        "--gx10-slo=ttft=0.3s",
        saturation="low = 1\nhigh = 32\nmax_steps = 3\n",
    )
    result.assert_outcomes(passed=1)
    (search,) = doc["saturation"]
    assert search["stopped"] == "step_bound"
    assert [p["level"] for p in search["probes"]] == [1.0, 32.0, 6.0]  # 6 = round(sqrt(1 x 32))

    result, doc = _run(pytester, *SHORT, "--gx10-saturate", "--gx10-slo=ttft=1ms", saturation="low = 2\n")
    result.assert_outcomes(passed=1)  # no floor: no level passing is a finding, not a failure
    (search,) = doc["saturation"]
    assert search["answer"] is None
    assert search["stopped"] == "low_fails"
    assert [p["level"] for p in search["probes"]] == [2.0]
    assert search["summary"].startswith("no answer: no level probed reaches 90% SLO attainment")
    result.stdout.fnmatch_lines(["saturation (concurrency): no answer*"])


def test_saturate_without_objectives_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """No --gx10-slo and no [perf.slo]: the run stops before any test and says where to set them."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(tiny_profile())
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", "--gx10-saturate", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*saturation search needs objectives*--gx10-slo*[perf.slo]*"])
    assert "passed" not in result.stdout.str()


def test_without_saturate_the_search_is_not_collected(pytester: pytest.Pytester) -> None:
    """The plain points run, the search does not."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(tiny_profile())
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", "--gx10-load-mode=rate", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(["*test_load_point*rate=1*", "*test_load_point*rate=2*"])
    assert "test_saturation" not in result.stdout.str()


def test_a_rate_run_draws_one_marker_per_level_beside_the_json(pytester: pytest.Pytester) -> None:
    """Two rate points with objectives: the latency-throughput plot beside the JSON has one marker per
    level on each line, goodput's included, and each point's telemetry plot is in the Markdown's."""
    result, doc = _run(
        pytester,
        "--gx10-load-mode=rate",
        "--gx10-rate=2,4",
        "--gx10-arrival=constant",
        "--gx10-duration=3",
        "--gx10-warmup=1",
        "--gx10-slo=ttft=2s",
        markdown=True,
    )
    result.assert_outcomes(passed=2)
    assert len(doc["load"]) == 2
    curve = (pytester.path / "out-latency-throughput.svg").read_text()
    for series in ("TTFT p50", "TTFT p90", "TTFT p99", "TPOT p50", "TPOT p99", "TPOT p50 vs goodput"):
        assert _markers(curve, series) == 2, series
    assert (pytester.path / "report-telemetry-rate-2-s.svg").read_text().count("<polyline") >= 2
    assert "Server telemetry" in (pytester.path / "report.md").read_text()


def test_a_server_dying_mid_search_keeps_the_probes_measured(pytester: pytest.Pytester) -> None:
    """The twin dies after 40 requests, during the high bound's probe: the search stops there, the
    test fails naming the death, and the JSON keeps the low bound's probe (passed) and the search."""
    death = '\n[[twin.faults]]\nkind = "death"\nafter = 40\n'
    profile = pytester.path / "tiny.toml"
    twin = tiny_profile().replace("time_scale = 1.0", "time_scale = 3.0")
    # The faults table belongs to [twin]: put it before the [perf] tables.
    profile.write_text(
        twin.replace("\n[perf]", death + "\n[perf]") + "\n[perf.saturation]\nlow = 1\nhigh = 32\n"
    )
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider",
        *SHORT, "--gx10-saturate", "--gx10-slo=ttft=0.3s",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*engine dead*"])
    (search,) = json.loads(out.read_text())["saturation"]
    assert search["stopped"] in ("engine_dead", "probe_error"), search["why"]
    assert search["probes"][0]["level"] == 1.0
    assert search["probes"][0]["passed"] is True
    assert search["answer"] == 1.0
    assert all(p["level"] != 6.0 for p in search["probes"])  # no bisection after the death
