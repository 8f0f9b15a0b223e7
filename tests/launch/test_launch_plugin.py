"""--gx10-launch as users meet it: a suite against a launched target, xdist, Ctrl-C, --gx10-keep."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.dockerkit import ROOT, RecipeFactory, ours

from pytest_gx10.launch import load_recipe
from pytest_gx10.launch.process import processes_of

HEALTH = ROOT / "suites" / "health"


def _count(kind: str, client: Any, name: str) -> int:
    return len(ours(client, name)) if kind == "docker" else len(processes_of(name))


def test_health_suite_against_the_twin_container(
    docker_engine: Any, twin_image: str, pytester: pytest.Pytester
) -> None:
    """`pytest suites/health --gx10-launch=recipes/twin-docker.toml` passes and leaves no container."""
    recipe = ROOT / "recipes" / "twin-docker.toml"
    result = pytester.runpytest_subprocess(str(HEALTH), f"--gx10-launch={recipe}", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [f"gx10 target: launched from recipe twin-docker ({recipe}) [[]--gx10-launch[]]"]
    )
    result.assert_outcomes(passed=17)
    assert ours(docker_engine, "twin-docker") == []


COUNTING = """
import os
from pathlib import Path

import pytest

from pytest_gx10.launch.process import processes_of

KIND, NAME, OUT = {kind!r}, {name!r}, Path({out!r})


def count():
    if KIND == "process":
        return len(processes_of(NAME))
    import docker
    return len(docker.from_env().containers.list(all=True, filters={{"label": "gx10.recipe=" + NAME}}))


@pytest.mark.parametrize("i", range(4))
def test_one_target(i, gx10_target, gx10_client):
    assert gx10_client.health() == 200
    (OUT / f"{{os.environ.get('PYTEST_XDIST_WORKER', 'main')}}-{{i}}").write_text(f"{{count()}} {{gx10_target.url}}")


def test_log_of_the_launched_target(gx10_logs):
    assert any("Uvicorn running" in line.raw or "startup" in line.raw for line in gx10_logs.lines())
"""


@pytest.mark.parametrize("kind", ["docker", "process"])
def test_xdist_starts_exactly_one_target(
    kind: str,
    request: pytest.FixtureRequest,
    pytester: pytest.Pytester,
    tmp_path: Path,
) -> None:
    """With -n 2 the controller launches once: every worker sees one container (or process) and one URL."""
    factory: RecipeFactory = request.getfixturevalue(f"{kind}_recipe")
    client = request.getfixturevalue("docker_engine") if kind == "docker" else None
    recipe = load_recipe(factory())
    out = tmp_path / "seen"
    out.mkdir()
    pytester.makepyfile(test_counting=COUNTING.format(kind=kind, name=recipe.name, out=str(out)))
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--gx10-launch={recipe.path}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=5)
    seen = {p.name: p.read_text().split() for p in out.iterdir()}
    assert len(seen) == 4
    assert {name.split("-")[0] for name in seen} == {"gw0", "gw1"}
    assert {count for count, _ in seen.values()} == {"1"}
    assert len({url for _, url in seen.values()}) == 1
    assert _count(kind, client, recipe.name) == 0


SLEEPER = """
import time
from pathlib import Path

def test_waits(gx10_target):
    Path({ready!r}).write_text(gx10_target.url)
    time.sleep(120)
"""


def _ctrl_c_as_a_terminal_gives_it() -> None:
    """In the child: SIGINT at its default, as from a terminal. A run started in the background by a
    shell without job control has SIGINT ignored, every child inherits that, and Python then installs
    no KeyboardInterrupt at all: Ctrl-C could not be what the test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("kind", "sig"),
    [("docker", signal.SIGINT), ("docker", signal.SIGTERM), ("process", signal.SIGINT)],
    ids=["docker-ctrl-c", "docker-sigterm", "process-ctrl-c"],
)
def test_interrupted_run_leaves_nothing(
    kind: str, sig: signal.Signals, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Ctrl-C (or SIGTERM) in the middle of a run tears the launched target down."""
    factory: RecipeFactory = request.getfixturevalue(f"{kind}_recipe")
    client = request.getfixturevalue("docker_engine") if kind == "docker" else None
    recipe = load_recipe(factory())
    ready = tmp_path / "ready"
    test_file = tmp_path / "test_sleeper.py"
    test_file.write_text(SLEEPER.format(ready=str(ready)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            f"--gx10-launch={recipe.path}",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_ctrl_c_as_a_terminal_gives_it,
    )
    try:
        deadline = time.monotonic() + 90
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), (
            proc.communicate(timeout=30)[0].decode()[-3000:] if proc.poll() is not None else "no start"
        )
        assert _count(kind, client, recipe.name) == 1
        proc.send_signal(sig)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()  # a failure here must not leave a pipe for a later test to trip on
    assert "KeyboardInterrupt" in output
    assert _count(kind, client, recipe.name) == 0


def test_keep_leaves_the_target_and_the_next_run_reaps_it(
    docker_recipe: RecipeFactory, docker_engine: Any, pytester: pytest.Pytester
) -> None:
    """--gx10-keep leaves the container running; the next launch of the recipe replaces it."""
    recipe = load_recipe(docker_recipe())
    pytester.makepyfile("def test_up(gx10_client):\n    assert gx10_client.health() == 200\n")
    first = pytester.runpytest_subprocess(
        f"--gx10-launch={recipe.path}", "--gx10-keep", "-p", "no:cacheprovider"
    )
    first.assert_outcomes(passed=1)
    first.stderr.fnmatch_lines(["gx10: --gx10-keep: recipe * left running at http://127.0.0.1:*"])
    [kept] = ours(docker_engine, recipe.name)
    assert kept.status == "running"
    second = pytester.runpytest_subprocess(f"--gx10-launch={recipe.path}", "-p", "no:cacheprovider")
    second.assert_outcomes(passed=1)
    assert ours(docker_engine, recipe.name) == []


def test_failed_launch_is_tried_once_and_fails_every_test(
    process_recipe: RecipeFactory, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A server that dies while booting is launched once; each test that needs it errors with the reason."""
    attempts = tmp_path / "attempts"
    script = (
        f"import sys; open({str(attempts)!r}, 'a').write('x\\n'); "
        "print('OSError: weights not found', file=sys.stderr); sys.exit(2)"
    )
    recipe = load_recipe(process_recipe(entrypoint=[sys.executable, "-c", script]))
    pytester.makepyfile("def test_a(gx10_target):\n    pass\n\ndef test_b(gx10_client):\n    pass\n")
    result = pytester.runpytest_subprocess(f"--gx10-launch={recipe.path}", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*gx10 target did not start: the server of recipe * exited with status 2*"])
    assert "OSError: weights not found" in result.stdout.str()
    assert attempts.read_text().count("x") == 1


def test_mtp_suite_reads_the_container_log(
    docker_engine: Any, twin_image: str, pytester: pytest.Pytester
) -> None:
    """The MTP suite's log checks pass on the head container's log (docker://NAME), not a file."""
    recipe = ROOT / "recipes" / "twin-docker.toml"
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "mtp"), f"--gx10-launch={recipe}", "-p", "no:cacheprovider", "-rA"
    )
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "PASSED *test_mtp.py::test_mtp_detected_once_per_tp_rank",
            "PASSED *test_mtp.py::test_spec_decoding_log_agrees_with_metrics",
        ],
        consecutive=False,
    )
    assert ours(docker_engine, "twin-docker") == []


KILLS_CONTAINER = """
import pytest

from pytest_gx10.state import GX10_STATE


def test_1_before(gx10_client):
    assert gx10_client.health() == 200


def test_2_kills_the_container(pytestconfig, gx10_client):
    pytestconfig.stash[GX10_STATE].launcher.head_container.kill()
    assert gx10_client.health() == 200


@pytest.mark.parametrize("i", range(3))
def test_3_later(gx10_client, i):
    assert gx10_client.health() == 200
"""


def test_killed_container_is_engine_death(
    docker_recipe: RecipeFactory, docker_engine: Any, pytester: pytest.Pytester
) -> None:
    """A container killed mid-run: the test that meets it fails with the verdict, later ones error at once."""
    recipe = load_recipe(docker_recipe())
    pytester.makepyfile(test_kill=KILLS_CONTAINER)
    result = pytester.runpytest_subprocess(f"--gx10-launch={recipe.path}", "-p", "no:cacheprovider", "-vv")
    result.assert_outcomes(passed=1, failed=1, errors=3)
    result.stdout.fnmatch_lines(["FAILED *test_2_kills_the_container - engine dead since ??:??:??: *"])
    result.stdout.fnmatch_lines(["ERROR *test_3_later?0? - Failed: engine dead since ??:??:??: *"])
    assert ours(docker_engine, recipe.name) == []


def test_killed_container_is_relaunched_once(
    docker_recipe: RecipeFactory, docker_engine: Any, pytester: pytest.Pytester
) -> None:
    """With --gx10-relaunch-on-crash the recipe is launched again and the later tests pass."""
    recipe = load_recipe(docker_recipe())
    pytester.makepyfile(test_kill=KILLS_CONTAINER)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        f"--gx10-launch={recipe.path}",
        "--gx10-relaunch-on-crash",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=4, failed=1)
    (relaunch,) = json.loads(out.read_text())["relaunches"]
    assert relaunch["after"]["state"] == "dead"
    assert ours(docker_engine, recipe.name) == []
