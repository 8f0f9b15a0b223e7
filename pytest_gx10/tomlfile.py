"""Reading a TOML file (a profile or a recipe) and checking it against a schema, with errors that name
the file and the key."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["NUMBER", "check_schema", "read_toml"]

NUMBER: tuple[type, ...] = (int, float)

SchemaError = Callable[[Path, str, str], Exception]


def read_toml(path: Path, error: SchemaError) -> dict[str, Any]:
    """The document at ``path``; ``error(path, key, problem)`` is raised when it cannot be read or parsed."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise error(path, "", f"cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise error(path, "", f"not valid TOML: {exc}") from None


def _type_name(t: type | tuple[type, ...]) -> str:
    if t == NUMBER:
        return "number"
    names = {str: "string", int: "integer", float: "number", list: "array", bool: "boolean", dict: "table"}
    return " or ".join(names.get(x, x.__name__) for x in (t if isinstance(t, tuple) else (t,)))


def check_schema(
    path: Path,
    data: Mapping[str, Any],
    schema: Mapping[str, Any],
    error: SchemaError,
    *,
    prefix: str = "",
    hints: Mapping[str, str] | None = None,
) -> None:
    """Every key of ``data`` is known to ``schema`` and of its type; raise ``error(path, key, problem)``.

    ``schema`` maps a key to a type, a tuple of types, ``object`` (anything) or a nested schema (a
    table); ``"*"`` stands for any key. An unknown key names the known ones and the closest match;
    ``hints`` adds a sentence for unknown keys of a table (by its dotted name).
    """
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        expected = schema.get(key, schema.get("*"))
        if expected is None:
            known = [k for k in schema if k != "*"]
            close = difflib.get_close_matches(key, known, n=1)
            extra = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            hint = (hints or {}).get(prefix.rstrip("."), "")
            raise error(path, dotted, f"unknown key (known here: {', '.join(sorted(known))}){extra}{hint}")
        if isinstance(expected, Mapping):
            if not isinstance(value, dict):
                raise error(path, dotted, f"expected a table, got {type(value).__name__}")
            check_schema(path, value, expected, error, prefix=dotted + ".", hints=hints)
            continue
        if expected is object:
            continue
        types = expected if isinstance(expected, tuple) else (expected,)
        # bool is an int subclass in Python; TOML keeps them apart and so do we.
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise error(
                path, dotted, f"expected {_type_name(expected)}, got {type(value).__name__} {value!r}"
            )
