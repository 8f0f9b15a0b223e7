"""Reading a TOML file (a profile or a recipe) with errors that name the file."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["read_toml"]


def read_toml(path: Path, error: Callable[[Path, str, str], Exception]) -> dict[str, Any]:
    """The document at ``path``; ``error(path, key, problem)`` is raised when it cannot be read or parsed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(path, "", f"not valid TOML: {exc}") from None
