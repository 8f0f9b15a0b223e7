"""A suite of the user's own declares its figures and every output shows them, the package untouched.

The toy suite lives in a temporary folder: a module declaring a section with two figures (one
better higher, one better lower) and a test recording into it against the twin. Its figures reach
the results JSON, the Markdown, the terminal summary and the HTML report, with -n 0 and under xdist
(where the controller never imports the toy's module and knows the section only from the reports),
and the baseline gate holds them to their declared directions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_gx10.figures import HIGHER, LOWER, Figure, Section
from pytest_gx10.load.floors import check_limits

TOY_FIGURES = """
from pytest_gx10.figures import HIGHER, LOWER, Figure, Section, register

TOY = register(
    Section(
        "toy",
        key="case",
        title="Toy figures",
        figures=(
            Figure("speed_tps", "toy speed", "tok/s", HIGHER, digits=1),
            Figure("latency_ms", "toy latency", "ms", LOWER, digits=1),
        ),
    )
)
"""

TOY_TEST = """
import os

from toy_figures import TOY


def test_toy(gx10_record):
    factor = float(os.environ.get("TOY_FACTOR", "1"))
    gx10_record(TOY.name, {"case": "alpha", "speed_tps": 123.4 / factor, "latency_ms": 5.5 * factor})
"""


def _toy(pytester: pytest.Pytester) -> Path:
    toy = pytester.mkdir("toy")  # not importable from the working directory: only the workers import it
    (toy / "toy_figures.py").write_text(TOY_FIGURES)
    (toy / "test_toy.py").write_text(TOY_TEST)
    return toy


@pytest.mark.parametrize("workers", ["0", "2"])
def test_toy_figures_reach_every_output(pytester: pytest.Pytester, workers: str) -> None:
    """JSON entry, Markdown table, terminal block and HTML table, headed by the declared labels and units."""
    toy = _toy(pytester)
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        str(toy),
        "-n",
        workers,
        "-p",
        "no:cacheprovider",
        f"--gx10-json={out}/r.json",
        f"--gx10-markdown={out}/r.md",
        f"--html={out}/r.html",
        "--self-contained-html",
    )
    result.assert_outcomes(passed=1)
    doc = json.loads((out / "r.json").read_text())
    assert doc["toy"] == [{"case": "alpha", "speed_tps": 123.4, "latency_ms": 5.5}]
    markdown = (out / "r.md").read_text()
    assert "### Toy figures" in markdown
    assert "| case | toy speed (tok/s) | toy latency (ms) |" in markdown
    assert "| alpha | 123.4 | 5.5 |" in markdown
    result.stdout.fnmatch_lines(
        ["*= gx10 =*", "toy figures:", " case  toy speed tok/s  toy latency ms", "alpha  *123.4  *5.5"]
    )
    html = (out / "r.html").read_text()
    summary = html.split('id="gx10-summary"', 1)[1].split('id="results-table"', 1)[0]
    assert 'id="gx10-toy"' in summary
    assert "<th>toy speed (tok/s)</th><th>toy latency (ms)</th>" in summary
    assert "<td>123.4</td><td>5.5</td>" in summary


def test_baseline_gate_holds_toy_figures_to_their_directions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Speed falling and latency rising are both regressions, each the way its declaration says."""
    toy = _toy(pytester)
    base = pytester.path / "b.json"
    saved = pytester.runpytest_subprocess(str(toy), "-p", "no:cacheprovider", f"--gx10-save-baseline={base}")
    assert saved.ret == pytest.ExitCode.OK, saved.stdout.str()[-2000:]
    data = json.loads(base.read_text())
    assert data["figures"] == {"toy[alpha].speed_tps": 123.4, "toy[alpha].latency_ms": 5.5}
    assert [f["better"] for f in data["sections"]["toy"]["figures"]] == ["higher", "lower"]

    better = pytester.runpytest_subprocess(
        str(toy), "-p", "no:cacheprovider", "-n", "2", f"--gx10-baseline={base}", "--gx10-tolerance=0%"
    )
    assert better.ret == pytest.ExitCode.OK, better.stdout.str()[-2000:]  # factor 1: the same figures

    monkeypatch.setenv("TOY_FACTOR", "2")
    worse = pytester.runpytest_subprocess(
        str(toy), "-p", "no:cacheprovider", "-n", "2", f"--gx10-baseline={base}"
    )
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    worse.stdout.fnmatch_lines(
        [
            f"FAILED: 2 regressions against {base}",
            "  toy[[]alpha].speed_tps: 61.7 tok/s < baseline 123.4 tok/s - 10% (111.1 tok/s), -50.0%",
            "  toy[[]alpha].latency_ms: 11.0 ms > baseline 5.5 ms + 10% (6.05 ms), +100.0%",
        ]
    )


def test_floors_follow_the_declared_direction() -> None:
    """A floor on a rate, a ceiling on a time, and a limit on an undeclared figure named as such."""
    toy = Section(
        "toy",
        key="case",
        figures=(
            Figure("speed_tps", "toy speed", "tok/s", HIGHER),
            Figure("latency_ms", "toy latency", "ms", LOWER),
        ),
    )
    entry = {"case": "alpha", "speed_tps": 90.0, "latency_ms": 12.0}
    assert check_limits(toy, entry, {"speed_tps": 80.0, "latency_ms": 15.0}) == []
    assert check_limits(toy, entry, {"speed_tps": 100.0, "latency_ms": 10.0, "sped_tps": 1.0}) == [
        "alpha toy latency 12.00 ms > ceiling 10.00 ms",
        "alpha limit on sped_tps: sped_tps is not a figure of toy (limits take: speed_tps, latency_ms)",
        "alpha toy speed 90.0 tok/s < floor 100.0 tok/s",
    ]
