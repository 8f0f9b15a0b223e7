"""--gx10-matrix and --gx10-ceiling: what cannot work is refused before anything is launched, in a
line naming the option to change; cells run in turn on the twin, each with its own block of results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.twin

HEALTH = Path(__file__).resolve().parents[2] / "suites" / "health" / "test_health.py"
PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--gx10-matrix=serve.max_num_seqs=4,8"], "sets a recipe's key, and no recipe is launched"),
        (["--gx10-matrix=deployment.max_num_seqs"], "is not PATH=V1,V2"),
        (["--gx10-matrix=deployment.max_model_len=many,8192"], "matrix cell ctx=many: malformed profile"),
        (
            ["--gx10-matrix=deployment.max_num_seqs=4,8", "--gx10-endpoint=http://127.0.0.1:9"],
            "--gx10-endpoint attaches to one running deployment",
        ),
        (
            ["--gx10-matrix=deployment.max_num_seqs=4,8", "--gx10-baseline=base.json"],
            "--gx10-baseline gates one deployment",
        ),
        (
            [
                "--gx10-matrix=deployment.max_num_seqs=4,8",
                "--gx10-ceiling=deployment.serve_args.gpu_memory_utilization=0.85..0.95:0.01",
            ],
            "--gx10-ceiling and --gx10-matrix together",
        ),
        (
            ["--gx10-matrix=deployment.max_num_seqs=4,8", "--gx10-reference-cell=seqs=2"],
            "its cells: seqs=4, seqs=8",
        ),
        (["--gx10-ceiling=deployment.max_num_seqs=4..9:2"], "whole number of steps"),
    ],
    ids=["recipe-key", "no-values", "bad-value", "endpoint", "baseline", "both", "reference", "grid"],
)
def test_what_cannot_work_is_refused_at_once(pytester: pytest.Pytester, args: list[str], said: str) -> None:
    pytester.makepyfile("def test_nothing(gx10_settings):\n    pass\n")
    result = pytester.runpytest_subprocess(*args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str() + result.stderr.str()
    assert said in result.stderr.str()


def test_a_matrix_under_xdist_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(gx10_settings):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "--gx10-matrix=deployment.max_num_seqs=4,8", "-n", "2", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "a matrix runs its cells one after another (drop -n)" in result.stderr.str()


def test_twin_cells_run_in_turn_with_their_own_results(pytester: pytest.Pytester) -> None:
    """Two twin cells of max_num_seqs: the health suite and two sweep points run once per cell, the
    tests grouped cell by cell; each cell's block holds its own figures and facts; the comparison
    names both cells; a test that needs no target is not multiplied."""
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    out = pytester.path / "cells.json"
    result = pytester.runpytest_subprocess(
        str(HEALTH),
        str(PERF / "test_sweep.py"),
        "test_plain.py",
        "--gx10-matrix=deployment.max_num_seqs=16,8",
        "--gx10-concurrency=1,2",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    assert result.ret == 0, result.stdout.str()
    lines = [line for line in result.stdout.lines if " PASSED" in line]
    cells_in_order = ["seqs=16" if "seqs=16" in line else "seqs=8" for line in lines if "seqs=" in line]
    assert cells_in_order == sorted(cells_in_order, key=lambda c: c != "seqs=16")  # grouped by cell
    assert sum("test_plain" in line for line in lines) == 1
    document = json.loads(out.read_text())
    assert "sweep" not in document
    cells = {c["cell"]: c for c in document["cells"]}
    assert list(cells) == ["seqs=16", "seqs=8"]
    for name, cell in cells.items():
        assert cell["cell_status"] == "ok"
        assert [p["concurrency"] for p in cell["sweep"]] == [1, 2]
        assert cell["overrides"] == {"deployment.max_num_seqs": int(name.split("=")[1])}
        assert cell["target_kind"] == "twin"
    # Each cell measured its own deployment: two launches, two URLs.
    assert cells["seqs=16"]["target"] != cells["seqs=8"]["target"]
    result.stdout.fnmatch_lines(
        [
            "*gx10 matrix: 2 cells, each launched, tested and torn down in turn: seqs=16, seqs=8; reference seqs=16",
            "*Matrix cells*",
            "*Throughput sweep: aggregate decode (tok/s), higher is better*",
            "*point*seqs=16 (reference)*seqs=8*seqs=8 vs seqs=16*",
        ]
    )
