"""Helpers of the launch tier (imported by its tests and its conftest)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.launch.docker import LABEL_RECIPE

ROOT = Path(__file__).resolve().parents[2]
TWIN_IMAGE = "gx10-twin:latest"
RAY_IMAGE = "gx10-ray:latest"
REFERENCE = "qwen3.5-397b-fp8-mtp2-gx10x4"


def not_ready(reason: str) -> None:
    """Skip, naming the command that makes it ready, or fail when CI forbids skipping."""
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason} (GX10_REQUIRE_REAL=1 forbids skipping the launch tier)", pytrace=False)
    pytest.skip(reason)


def ours(client: Any, recipe_name: str) -> list[Any]:
    """Every container, running or not, labelled with this recipe (`docker ps -a --filter label=...`)."""
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_RECIPE}={recipe_name}"}))


RecipeFactory = Callable[..., Path]
