"""Targets: attach to a running server, or start one (the embedded twin, a process, containers)."""

from __future__ import annotations

from typing import Protocol

from pytest_gx10.launch.boot import BootProgress, Progress
from pytest_gx10.launch.recipes import Recipe, RecipeError, load_recipe
from pytest_gx10.launch.target import LaunchError, Target, TwinProcess

__all__ = [
    "BootProgress",
    "LaunchError",
    "Launcher",
    "Progress",
    "Recipe",
    "RecipeError",
    "Target",
    "TwinProcess",
    "load_recipe",
    "make_launcher",
]


class Launcher(Protocol):
    """What the plugin needs of a launcher: start once, stop once."""

    recipe: Recipe
    keep: bool

    def start(self, progress: Progress | None = None) -> Target:
        """Start the deployment; return its target once /health answers 200."""
        ...

    def stop(self) -> None:
        """Tear it down (unless ``keep``)."""
        ...


def make_launcher(recipe: Recipe, *, run_id: str, keep: bool = False) -> Launcher:
    """The launcher of the recipe's kind (the docker SDK is imported only for docker recipes)."""
    if recipe.kind == "docker":
        from pytest_gx10.launch.docker import DockerLauncher

        return DockerLauncher(recipe, run_id=run_id, keep=keep)
    from pytest_gx10.launch.process import ProcessLauncher

    return ProcessLauncher(recipe, run_id=run_id, keep=keep)
