"""The docker launcher on a real engine: boot failures, leftovers, teardown, a container killed mid-run."""

from __future__ import annotations

import time
from typing import Any

import pytest
from helpers.dockerkit import RecipeFactory, ours

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.launch import BootProgress, LaunchError, load_recipe
from pytest_gx10.launch.docker import LABEL_RECIPE, LABEL_RUN, DockerLauncher
from pytest_gx10.observe import DockerLogSource


def test_twin_container_serves_and_is_removed(docker_recipe: RecipeFactory, docker_engine: Any) -> None:
    """The twin comes up in a labelled container, answers /v1/models, and stop removes the container."""
    recipe = load_recipe(docker_recipe())
    launcher = DockerLauncher(recipe, run_id="run-a")
    target = launcher.start()
    try:
        [container] = ours(docker_engine, recipe.name)
        assert container.labels[LABEL_RUN] == "run-a"
        assert target.log_uri == f"docker://{recipe.name}"
        with VllmClient(target.url, timeout_s=10) as client:
            assert client.served_model() == "Qwen3.5-397B-A17B-FP8"
    finally:
        launcher.stop()
    assert ours(docker_engine, recipe.name) == []


def test_boot_timeout_names_url_budget_and_log_tail(docker_recipe: RecipeFactory, docker_engine: Any) -> None:
    """A server that never answers /health fails the launch with the URL, the budget and its last lines."""
    path = docker_recipe(
        entrypoint=["sh", "-c", "echo loading weights 1/8; echo loading weights 2/8; exec sleep 300"],
        budget=3,
    )
    recipe = load_recipe(path)
    seen: list[BootProgress] = []
    with pytest.raises(LaunchError) as info:
        DockerLauncher(recipe, run_id="run-t").start(seen.append)
    message = str(info.value)
    assert seen, "no progress was reported during a 3 s boot"
    assert seen[-1].phase == "serve"
    assert seen[-1].budget_s == 3
    assert seen[-1].last_line == "loading weights 2/8"
    assert [p.elapsed_s for p in seen] == sorted(p.elapsed_s for p in seen)
    assert "did not answer GET http://127.0.0.1:" in message
    assert "/health with 200 within the boot budget of 3 s" in message
    assert "loading weights 2/8" in message
    assert ours(docker_engine, recipe.name) == []


def test_early_exit_names_status_and_log_tail(docker_recipe: RecipeFactory, docker_engine: Any) -> None:
    """A server that dies while booting fails at once with its exit status and log, not after the budget."""
    path = docker_recipe(
        entrypoint=["sh", "-c", "echo 'RuntimeError: No CUDA GPUs are available' >&2; exit 3"], budget=120
    )
    recipe = load_recipe(path)
    with pytest.raises(LaunchError) as info:
        DockerLauncher(recipe, run_id="run-e").start()
    message = str(info.value)
    assert f"(container {recipe.name}) exited with status 3" in message
    assert "before GET http://127.0.0.1:" in message
    assert "RuntimeError: No CUDA GPUs are available" in message
    assert ours(docker_engine, recipe.name) == []


def test_leftovers_of_a_killed_run_are_reaped(
    docker_recipe: RecipeFactory, docker_engine: Any, twin_image: str
) -> None:
    """Containers an earlier run of the recipe left are removed when the next launch starts."""
    recipe = load_recipe(docker_recipe())
    leftover = docker_engine.containers.run(
        twin_image,
        ["sleep", "300"],
        name=f"{recipe.name}-old",
        detach=True,
        init=True,
        network_mode="none",
        labels={LABEL_RECIPE: recipe.name, LABEL_RUN: "killed-run"},
    )
    launcher = DockerLauncher(recipe, run_id="run-new")
    try:
        launcher.start()
        assert launcher.reaped == [f"{recipe.name}-old"]
        assert [c.labels[LABEL_RUN] for c in ours(docker_engine, recipe.name)] == ["run-new"]
    finally:
        launcher.stop()
    with pytest.raises(Exception, match=r"No such container|404"):
        leftover.reload()
    assert ours(docker_engine, recipe.name) == []


def test_a_foreign_container_with_the_name_is_not_touched(
    docker_recipe: RecipeFactory, docker_engine: Any, twin_image: str
) -> None:
    """A container that merely has the recipe's name (no label) stops the launch instead of being removed."""
    recipe = load_recipe(docker_recipe())
    foreign = docker_engine.containers.create(twin_image, ["true"], name=recipe.name)
    try:
        with pytest.raises(LaunchError, match="exists and is not one of ours"):
            DockerLauncher(recipe, run_id="run-f").start()
        foreign.reload()
        assert foreign.name == recipe.name
    finally:
        foreign.remove(force=True)


def test_killed_container_is_seen_as_connection_errors(
    docker_recipe: RecipeFactory, docker_engine: Any
) -> None:
    """Killing the server's container mid-run makes the next requests fail with a connection error."""
    recipe = load_recipe(docker_recipe())
    launcher = DockerLauncher(recipe, run_id="run-k")
    target = launcher.start()
    try:
        with VllmClient(target.url, timeout_s=5) as client:
            assert client.health() == 200
            launcher.head_container.kill()
            with pytest.raises(EndpointError, match="connection refused"):
                client.models()
        assert not launcher.alive
    finally:
        launcher.stop()
    assert ours(docker_engine, recipe.name) == []


def test_docker_log_source_reads_a_real_container(docker_recipe: RecipeFactory, docker_engine: Any) -> None:
    """DockerLogSource on a real engine: the whole log, and only the lines after a mark."""
    recipe = load_recipe(docker_recipe())
    launcher = DockerLauncher(recipe, run_id="run-l")
    target = launcher.start()
    try:
        assert target.log_uri is not None
        source = DockerLogSource(recipe.name)
        lines = source.lines()
        assert any("Uvicorn running" in line.raw or "Application startup" in line.raw for line in lines), [
            line.raw for line in lines
        ][-5:]
        assert all("\n" not in line.raw for line in lines)
        time.sleep(1.1)  # the engine's since= has one-second resolution on old engines
        mark = source.mark()
        time.sleep(1.1)
        launcher.head_container.exec_run(["sh", "-c", "echo GX10-MARKER-AFTER > /proc/1/fd/1"])
        after = source.text_since(mark)
        assert "GX10-MARKER-AFTER" in after
        assert "Uvicorn running" not in after
        assert "Application startup" not in after
    finally:
        launcher.stop()
