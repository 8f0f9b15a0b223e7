"""Targets: attach to a running server, or start one (the embedded twin, a process, containers)."""

from __future__ import annotations

from pytest_gx10.launch.target import LaunchError, Target, TwinProcess

__all__ = ["LaunchError", "Target", "TwinProcess"]
