"""The one target of a run: where its requests go and what stands behind that URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["LaunchError", "Target"]


class LaunchError(RuntimeError):
    """A target could not be started: names what was expected and the tail of its log."""


@dataclass(frozen=True)
class Target:
    """Where the run's requests go and what stands behind that URL."""

    url: str
    kind: str  # "attach" | "twin" | "launch" | "controller"
    description: str
    log_path: Path | None = None
    log_uri: str | None = None  # a log source URI (docker://NAME[@ssh://...]) when not a local file
