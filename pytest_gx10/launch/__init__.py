"""Targets: attach to a running server, or start one with a :class:`Launcher` (the embedded twin,
a process, containers)."""

from __future__ import annotations

from pytest_gx10.launch.boot import BootListener, BootProgress, Launcher
from pytest_gx10.launch.recipes import Recipe, RecipeError, load_recipe
from pytest_gx10.launch.target import LaunchError, Target
from pytest_gx10.launch.twin import TwinLauncher

__all__ = [
    "BootListener",
    "BootProgress",
    "LaunchError",
    "Launcher",
    "Recipe",
    "RecipeError",
    "Target",
    "TwinLauncher",
    "load_recipe",
    "make_launcher",
]


def make_launcher(recipe: Recipe, *, run_id: str, keep: bool = False) -> Launcher:
    """The launcher of the recipe's kind (the docker SDK is imported only for docker recipes)."""
    if recipe.kind == "docker":
        from pytest_gx10.launch.docker import DockerLauncher

        return DockerLauncher(recipe, run_id=run_id, keep=keep)
    from pytest_gx10.launch.process import ProcessLauncher

    return ProcessLauncher(recipe, run_id=run_id, keep=keep)
