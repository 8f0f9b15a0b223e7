"""A matrix of deployments launched from a process recipe (the twin as a local process): each cell is
launched, tested and torn down in turn; a cell that fails to boot is that cell's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.dockerkit import RecipeFactory

from pytest_gx10.launch.process import processes_of

pytestmark = pytest.mark.twin

HEALTH = Path(__file__).resolve().parents[2] / "suites" / "health" / "test_health.py"


def _cells(path: Path) -> dict[str, dict[str, object]]:
    return {c["cell"]: c for c in json.loads(path.read_text())["cells"]}


def test_each_cell_is_launched_and_torn_down_and_a_failed_boot_is_its_own_result(
    pytester: pytest.Pytester, process_recipe: RecipeFactory
) -> None:
    """Three cells of the time scale: 0 is refused by the twin at boot (that cell: boot failed, its
    tests error in one line), 15 and 20 boot and pass; the run goes on past the failed cell, and
    nothing of the recipe is left running."""
    recipe = process_recipe()
    out = pytester.path / "matrix.json"
    result = pytester.runpytest_subprocess(
        str(HEALTH),
        f"--gx10-launch={recipe}",
        "--gx10-matrix=serve.args.time_scale=15,0,20",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    assert result.ret == 1
    text = result.stdout.str()
    for cell in ("time_scale=15", "time_scale=0", "time_scale=20"):
        assert f"[{cell}]" in text
    cells = _cells(out)
    assert list(cells) == ["time_scale=15", "time_scale=0", "time_scale=20"]
    assert cells["time_scale=0"]["cell_status"] == "boot failed"
    assert "exited with status" in str(cells["time_scale=0"]["boot_error"])
    for good in ("time_scale=15", "time_scale=20"):
        assert cells[good]["cell_status"] == "ok", cells[good]
        tests = cells[good]["cell_tests"]
        assert isinstance(tests, dict)
        assert tests.get("passed", 0) > 0
        assert not tests.get("failed")
        # The facts of each cell's own launch: its rendered command line holds its value.
        deployment = cells[good]["deployment"]
        assert isinstance(deployment, dict)
        command = str(deployment["serve_command"]["value"])
        assert f"--time-scale {good.split('=')[1]}" in command
    result.stdout.fnmatch_lines(["*Matrix cells*", "*time_scale=0*boot failed*"])
    assert "gx10 target did not start" in text
    recipe_name = recipe.stem
    assert processes_of(recipe_name) == []


def test_named_cells_from_the_recipe(pytester: pytest.Pytester, process_recipe: RecipeFactory) -> None:
    """A recipe's [[matrix]] names its cells: the ids are the names, and each cell's values reach the
    command line of its own launch."""
    recipe = process_recipe()
    recipe.write_text(
        recipe.read_text()
        + """
[[matrix]]
name = "slow"
serve.args.time_scale = 10

[[matrix]]
name = "fast"
serve.args.time_scale = 20
"""
    )
    out = pytester.path / "named.json"
    result = pytester.runpytest_subprocess(
        f"{HEALTH}::test_served_model_is_listed",
        f"--gx10-launch={recipe}",
        "--gx10-reference-cell=fast",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*[[]slow[]] PASSED*", "*[[]fast[]] PASSED*", "*fast (reference)*"])
    cells = _cells(out)
    assert [c["cell_settings"] for c in cells.values()] == ["time_scale=10", "time_scale=20"]
    assert cells["fast"]["reference_cell"] is True
    assert processes_of(recipe.stem) == []
