"""Reading a TOML file (a profile or a recipe), with errors that name the file: "not found" when it
is not there, "malformed" when it cannot be read or parsed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pytest_gx10.config import ConfigError

__all__ = ["ConfigError", "read_toml"]


def read_toml(path: Path, error: type[ConfigError] = ConfigError) -> dict[str, Any]:
    """The document at ``path``; raise ``error`` (a :class:`ConfigError`) when it cannot be had."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(path, missing=True) from None
    except OSError as exc:
        raise error(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(path, "", f"not valid TOML: {exc}") from None
