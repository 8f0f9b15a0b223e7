"""``--gx10-fit-twin``: a run of the perf suite ends with a twin fitted to what it measured, written as a
profile the twin then serves; a run with nothing to fit says why and keeps its outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_gx10.fit import figures_of, read_run
from pytest_gx10.profiles import load_profile

pytestmark = pytest.mark.twin

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_a_perf_run_writes_a_twin_of_itself_that_serves_its_figures(pytester: pytest.Pytester) -> None:
    fitted, first, again = (
        pytester.path / "mine.toml",
        pytester.path / "first.json",
        pytester.path / "again.json",
    )
    common = ["-p", "no:cacheprovider", "--gx10-concurrency=1,2,4", "--gx10-no-summary"]
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf" / "test_sweep.py"), *common, f"--gx10-json={first}", f"--gx10-fit-twin={fitted}"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"gx10: twin fitted to 3 point(s) of this run (rms residual *) written to {fitted}; *"]
    )
    profile = load_profile(fitted)
    measured = read_run(first)
    assert profile.name == "mine"
    assert profile.deployment.served_model_name == measured.facts["model"]
    assert [n for n, _ in profile.twin.decode_step_s][:3] == [1, 2, 4]
    assert "this run (--gx10-fit-twin)" in fitted.read_text()
    # The fitted twin, run the same way, measures what the run measured (the twin it was fitted to).
    served = pytester.runpytest_subprocess(
        str(SUITES / "perf" / "test_sweep.py"), *common, f"--gx10-profile={fitted}", f"--gx10-json={again}"
    )
    assert served.ret == 0, served.stdout.str()
    for point, twin in zip(measured.points, read_run(again).points, strict=True):
        assert twin.concurrency == point.concurrency
        want, got = figures_of(point, point.requests), figures_of(twin, twin.requests)
        for name in ("wall_s", "agg_decode_tps", "median_ttft_s"):
            assert got[name] == pytest.approx(want[name], rel=0.15), f"{point.label} {name}"


def test_a_run_without_a_sweep_says_no_twin_was_fitted(pytester: pytest.Pytester) -> None:
    fitted = pytester.path / "mine.toml"
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"), "-p", "no:cacheprovider", f"--gx10-fit-twin={fitted}"
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["gx10: no twin fitted: this run: no 'sweep' or 'load' points*"])
    assert not fitted.exists()
    assert "Traceback" not in result.stdout.str()
