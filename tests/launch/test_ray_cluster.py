"""Multi-node over Ray on a real engine: two containers form a Ray cluster before the head serves.

The image is gx10-ray (pytest-gx10 and ray from PyPI); both nodes run on the local engine with host
networking, each its own Ray node. The head serves the twin, as vLLM would serve the model with
``--distributed-executor-backend ray``, once `ray status` on the head lists both nodes.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from typing import Any

from helpers.dockerkit import RecipeFactory, ours

from pytest_gx10.client import VllmClient
from pytest_gx10.launch import load_recipe
from pytest_gx10.launch.boot import free_port
from pytest_gx10.launch.docker import DockerLauncher, ray_alive_nodes
from pytest_gx10.observe import DockerLogSource

RAY_ARGS = '["--num-cpus=1", "--object-store-memory=100000000"]'
HEAD_ARGS = '["--num-cpus=1", "--object-store-memory=100000000", "--include-dashboard=false"]'


def _active_nodes(status: str) -> int:
    """Nodes listed under 'Active:' in `ray status`."""
    if "Active:" not in status:
        return 0  # "No cluster status" while the autoscaler's view is not there yet
    section = status.split("Active:", 1)[1].split("Pending:", 1)[0]
    return len(re.findall(r"^\s*\d+\s+node_[0-9a-f]+", section, re.M))


def _health(url: str) -> str:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return str(response.status)
    except (urllib.error.URLError, OSError) as exc:
        return f"no answer ({exc})"


def test_two_node_ray_cluster_forms_before_the_head_serves(
    docker_recipe: RecipeFactory, docker_engine: Any, ray_image: str
) -> None:
    """`ray status` on the head sees 2 nodes before the server starts; then /health passes; stop removes both."""
    ray_port = free_port()
    path = docker_recipe(
        image=ray_image,
        budget=240,
        extra=f"""
[ray]
port = {ray_port}
head_args = {HEAD_ARGS}
worker_args = {RAY_ARGS}

[[nodes]]
role = "head"
address = "127.0.0.1"

[[nodes]]
role = "worker"
address = "127.0.0.1"
""",
    )
    recipe = load_recipe(path)
    seen: dict[str, Any] = {}

    def before_serve(launcher: DockerLauncher) -> None:
        # The server starts only when this returns. `ray status` reads the autoscaler's view, which
        # trails the cluster's own node table by a few seconds: ask it again until it lists both.
        deadline = time.monotonic() + 60
        while True:
            code, output = launcher.head_container.exec_run(["ray", "status"])
            seen["status"] = bytes(output).decode("utf-8", "replace")
            seen["code"] = code
            if code != 0 or _active_nodes(seen["status"]) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(2)
        seen["ray_nodes"] = ray_alive_nodes(launcher.head_container)
        seen["health"] = _health(str(launcher.url))
        seen["containers"] = len(ours(docker_engine, recipe.name))

    launcher = DockerLauncher(recipe, run_id="run-ray", before_serve=before_serve)
    target = launcher.start()
    try:
        assert seen["code"] == 0, seen["status"]
        assert _active_nodes(seen["status"]) == 2, seen["status"]
        assert seen["health"].startswith("no answer"), "the server answered before the cluster was complete"
        assert seen["containers"] == 2
        assert launcher.ray_nodes_before_serve == 2
        assert seen["ray_nodes"] == 2
        roles = sorted(c.labels["gx10.role"] for c in ours(docker_engine, recipe.name))
        assert roles == ["head", "worker"]
        with VllmClient(target.url, timeout_s=10) as client:
            assert client.health() == 200
            assert client.served_model() == "Qwen3.5-397B-A17B-FP8"
        # The server runs by docker exec, yet its lines are in the head container's own log.
        log = DockerLogSource(recipe.name).text()
        assert "Ray runtime started" in log
        assert "Uvicorn running" in log or "Application startup" in log
    finally:
        launcher.stop()
    assert ours(docker_engine, recipe.name) == []


def test_server_dying_under_ray_is_an_early_exit(
    docker_recipe: RecipeFactory, docker_engine: Any, ray_image: str
) -> None:
    """With Ray as the head's main process the container stays up when the server dies; the launch still fails at once."""
    ray_port = free_port()
    path = docker_recipe(
        image=ray_image,
        budget=240,
        entrypoint=["sh", "-c", "echo 'ERROR RayWorkerProc rank=[0] died unexpectedly'; exit 7"],
        extra=f"""
[ray]
port = {ray_port}
head_args = {HEAD_ARGS}
""",
    )
    recipe = load_recipe(path)
    launcher = DockerLauncher(recipe, run_id="run-ray-dead")
    try:
        launcher.start()
    except Exception as exc:
        message = str(exc)
    else:
        launcher.stop()
        raise AssertionError("the launch succeeded with a server that exits")
    assert f"(docker exec in {recipe.name}) exited with status 7" in message
    assert "RayWorkerProc rank=[0] died unexpectedly" in message
    assert ours(docker_engine, recipe.name) == []
