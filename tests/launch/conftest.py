"""The launch tier: launchers against a real container engine and real local processes.

Docker tests need the engine that ``scripts/dockerd start`` runs (``DOCKER_HOST`` pointing at it)
and the images ``scripts/dockerd image`` builds. Without them these tests skip, naming those
commands; with ``GX10_REQUIRE_REAL=1`` (as CI sets) they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.dockerkit import RAY_IMAGE, REFERENCE, TWIN_IMAGE, RecipeFactory, not_ready, ours

from pytest_gx10.launch import LaunchError
from pytest_gx10.launch.boot import cache_dir
from pytest_gx10.launch.docker import docker_client
from pytest_gx10.launch.process import processes_of


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker SDK client of the engine at DOCKER_HOST."""
    try:
        client = docker_client()
    except LaunchError as exc:
        not_ready(f"no container engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def twin_image(docker_engine: Any) -> str:
    """The local image with pytest-gx10 installed (the twin runs in it)."""
    try:
        docker_engine.images.get(TWIN_IMAGE)
    except Exception:
        not_ready(f"image {TWIN_IMAGE} is not built: run scripts/dockerd image")
    return TWIN_IMAGE


@pytest.fixture(scope="session")
def ray_image(docker_engine: Any) -> str:
    """The local image with pytest-gx10 and ray from PyPI."""
    try:
        docker_engine.images.get(RAY_IMAGE)
    except Exception:
        not_ready(f"image {RAY_IMAGE} is not built: run scripts/dockerd image")
    return RAY_IMAGE


@pytest.fixture
def docker_recipe(tmp_path: Path, docker_engine: Any) -> Iterator[RecipeFactory]:
    """``docker_recipe(entrypoint=..., budget=..., extra=...)`` writes a docker recipe with a unique name.

    Whatever a test leaves under that name is removed afterwards, so one failure cannot spill over.
    """
    names: list[str] = []

    def make(
        *,
        image: str = TWIN_IMAGE,
        entrypoint: list[str] | None = None,
        budget: float = 60,
        args: str = f'profile = "{REFERENCE}"',
        extra: str = "",
        name: str | None = None,
    ) -> Path:
        name = name or f"gx10-t-{uuid.uuid4().hex[:8]}"
        names.append(name)
        entry = entrypoint or ["python3", "-m", "pytest_gx10.fake"]
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f"""
[recipe]
name = "{name}"
kind = "docker"
profile = "{REFERENCE}"
boot_budget_s = {budget}

[docker]
image = "{image}"
container_name = "{name}"
stop_timeout_s = 5

[serve]
entrypoint = {json.dumps(entry)}
host = "127.0.0.1"
port = 0

[serve.args]
{args}
{extra}
"""
        )
        return path

    yield make
    for name in names:
        for container in ours(docker_engine, name):
            container.remove(force=True)


@pytest.fixture
def process_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecipeFactory]:
    """``process_recipe(entrypoint=..., budget=...)``: a process recipe (default: the twin) with a unique name.

    GX10_CACHE points into the test's directory, so pid files and logs stay there; whatever a test
    leaves running under that recipe is stopped afterwards.
    """
    monkeypatch.setenv("GX10_CACHE", str(tmp_path / "cache"))
    names: list[str] = []

    def make(*, entrypoint: list[str] | None = None, budget: float = 60, name: str | None = None) -> Path:
        name = name or f"gx10-p-{uuid.uuid4().hex[:8]}"
        names.append(name)
        entry = entrypoint or [sys.executable, "-m", "pytest_gx10.fake"]
        path = tmp_path / f"{name}.toml"
        path.write_text(
            f"""
[recipe]
name = "{name}"
kind = "process"
profile = "{REFERENCE}"
boot_budget_s = {budget}

[serve]
entrypoint = {json.dumps(entry)}
host = "127.0.0.1"
port = 0

[serve.args]
profile = "{REFERENCE}"

[process]
stop_timeout_s = 5
"""
        )
        return path

    yield make
    for name in names:
        for pid in processes_of(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def real_cache() -> Path:
    """Where scripts/real-vllm and scripts/real-llamacpp keep their builds and models, read before
    pytester moves HOME."""
    return cache_dir()
