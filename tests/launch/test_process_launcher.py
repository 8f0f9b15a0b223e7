"""The process launcher: a local server in its own process group, its log file, its leftovers."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from helpers.dockerkit import RecipeFactory

from pytest_gx10.client import VllmClient
from pytest_gx10.launch import BootProgress, LaunchError, load_recipe
from pytest_gx10.launch.process import ProcessLauncher, processes_of
from pytest_gx10.observe import FileLogSource


def test_process_serves_logs_and_stops(process_recipe: RecipeFactory) -> None:
    """The twin as a process recipe answers, logs to the launcher's file, and stop ends its group."""
    recipe = load_recipe(process_recipe())
    launcher = ProcessLauncher(recipe, run_id="run-p")
    target = launcher.start()
    try:
        assert processes_of(recipe.name, "run-p") != []
        with VllmClient(target.url, timeout_s=10) as client:
            assert client.served_model() == "Qwen3.5-397B-A17B-FP8"
        assert target.log_path == launcher.log_path
        assert any(
            "Uvicorn running" in line.raw or "startup" in line.raw
            for line in FileLogSource(target.log_path).lines()
        )
    finally:
        launcher.stop()
    assert processes_of(recipe.name) == []


def test_process_boot_timeout_names_url_and_log_tail(process_recipe: RecipeFactory) -> None:
    """A process that never serves fails the launch with its URL, the budget and its last log lines."""
    script = "import time; print('loading shard 3 of 9', flush=True); time.sleep(300)"
    recipe = load_recipe(process_recipe(entrypoint=[sys.executable, "-c", script], budget=2))
    seen: list[BootProgress] = []
    with pytest.raises(LaunchError) as info:
        ProcessLauncher(recipe, run_id="run-t").start(seen.append)
    message = str(info.value)
    assert seen, "no progress was reported during a 2 s boot"
    assert seen[-1].last_line == "loading shard 3 of 9"
    assert "did not answer GET http://127.0.0.1:" in message
    assert "within the boot budget of 2 s" in message
    assert "loading shard 3 of 9" in message
    assert processes_of(recipe.name) == []


def test_process_early_exit_names_status_and_log_tail(process_recipe: RecipeFactory) -> None:
    """A process that exits while booting fails at once with its status and its last lines."""
    script = "import sys; print('ValueError: no such model directory', file=sys.stderr); sys.exit(4)"
    recipe = load_recipe(process_recipe(entrypoint=[sys.executable, "-c", script], budget=120))
    with pytest.raises(LaunchError) as info:
        ProcessLauncher(recipe, run_id="run-e").start()
    message = str(info.value)
    assert "exited with status 4" in message
    assert "ValueError: no such model directory" in message


def test_kept_process_is_reaped_by_the_next_launch(process_recipe: RecipeFactory) -> None:
    """keep=True leaves the server running; the next launch of the recipe stops it first."""
    recipe = load_recipe(process_recipe())
    first = ProcessLauncher(recipe, run_id="run-1", keep=True)
    first.start()
    first.stop()
    kept = processes_of(recipe.name, "run-1")
    assert kept != []
    second = ProcessLauncher(recipe, run_id="run-2")
    second.start()
    try:
        assert processes_of(recipe.name, "run-1") == []
        assert second.reaped != []
        assert processes_of(recipe.name, "run-2") != []
    finally:
        second.stop()
    assert processes_of(recipe.name) == []


def test_a_dead_kept_process_is_relaunched_on_its_url(process_recipe: RecipeFactory) -> None:
    """relaunch() after a crash: the same URL (the recipe said any free port), a new process, still kept."""
    recipe = load_recipe(process_recipe())
    launcher = ProcessLauncher(recipe, run_id="run-r", keep=True)
    try:
        first = launcher.start()
        (old,) = processes_of(recipe.name, "run-r")
        os.killpg(old, signal.SIGKILL)
        second = launcher.relaunch()
        assert second.url == first.url
        assert launcher.keep
        assert processes_of(recipe.name, "run-r") not in ([], [old])
        with VllmClient(second.url, timeout_s=10) as client:
            assert client.health() == 200
    finally:
        launcher.keep = False
        launcher.stop()
    assert processes_of(recipe.name) == []


def test_missing_executable_is_a_launch_error(process_recipe: RecipeFactory) -> None:
    """An entry point that does not exist is named in one line."""
    recipe = load_recipe(process_recipe(entrypoint=["/nonexistent/bin/vllm", "serve"]))
    with pytest.raises(LaunchError, match=r"cannot run '/nonexistent/bin/vllm': No such file or directory"):
        ProcessLauncher(recipe, run_id="run-m").start()
