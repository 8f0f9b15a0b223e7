"""Reading and writing TOML files (profiles, recipes, a matrix cell's profile).

:func:`read_toml` reads one with errors that name the file: "not found" when it is not there,
"malformed" when it cannot be read or parsed. :func:`dumps` writes TOML-shaped data back as text
that :mod:`tomllib` reads as the same data: tables as ``[a.b]`` sections, a list of tables as
``[[a.b]]`` sections (inline ``{ ... }`` tables where a list mixes them with values or sits in
another list), keys quoted where they are not bare (``"serve.max_num_seqs"``), strings escaped as
TOML says. The standard library reads TOML but does not write it; this is the small writer the
package needs, not a formatter: comments and layout of a file that was read are not kept.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_gx10.config import ConfigError

__all__ = ["ConfigError", "dumps", "read_toml"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# TOML's escapes; any other control character is written \uXXXX.
_ESCAPES = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"', "\\": "\\\\"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_INT64 = range(-(2**63), 2**63)


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


def dumps(data: Mapping[str, Any], header: str = "") -> str:
    """``data`` as a TOML document, ``header`` (one or more lines) as its opening comment.

    Values: strings, ints (64-bit), finite floats, bools, lists and tuples, mappings with string
    keys. Anything else (None, a date, inf or nan, a lone surrogate) is a ValueError or TypeError
    naming its key, since TOML has no way to say it.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    _table(lines, (), data, array_item=False)
    return "\n".join(lines).lstrip("\n") + "\n"


def _key(key: Any, path: tuple[str, ...] = ()) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{_where(path)}: a TOML key is a string, got {type(key).__name__} {key!r}")
    return key if _BARE_KEY.fullmatch(key) else _basic(key, path)


def _where(path: tuple[str, ...]) -> str:
    return "key " + ".".join(path) if path else "the document"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _table(lines: list[str], path: tuple[str, ...], node: Mapping[str, Any], *, array_item: bool) -> None:
    """One table: its header, its plain keys, then its sub-tables and arrays of tables."""
    plain = {k: v for k, v in node.items() if not isinstance(v, Mapping) and not _is_table_array(v)}
    nested = {k: v for k, v in node.items() if k not in plain}
    header = ".".join(_key(part, path) for part in path)
    if array_item:
        lines += ["", f"[[{header}]]"]
    # A table needs its own header when it holds plain keys, or is empty (else it would vanish).
    elif path and (plain or not nested):
        lines += ["", f"[{header}]"]
    for key, value in plain.items():
        lines.append(f"{_key(key, path)} = {_value(value, (*path, key))}")
    for key, value in nested.items():
        _key(key, path)  # a key that is not a string is refused before anything is written under it
        if isinstance(value, Mapping):
            _table(lines, (*path, key), value, array_item=False)
        else:
            for item in value:
                _table(lines, (*path, key), item, array_item=True)


def _value(value: Any, path: tuple[str, ...]) -> str:
    """A value written inline (a table as ``{ k = v }``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value not in _INT64:
            raise ValueError(f"{_where(path)}: {value} does not fit TOML's 64-bit integers")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{_where(path)}: {value} is not a finite number; this writer refuses inf and nan"
            )
        return repr(value)  # the shortest text that reads back as the same float: 0.9, 1e-09
    if isinstance(value, str):
        return _string(value, path)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item, (*path, f"[{i}]")) for i, item in enumerate(value)) + "]"
    if isinstance(value, Mapping):
        items = [f"{_key(k, path)} = {_value(v, (*path, str(k)))}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"{_where(path)}: TOML has no {type(value).__name__} ({value!r})")


def _string(text: str, path: tuple[str, ...]) -> str:
    # A literal string keeps a regular expression readable ('0\.22\.1'); it cannot hold a quote or
    # a control character, which a basic string escapes.
    if "\\" in text and "'" not in text and not _CONTROL.search(text):
        _encodable(text, path)
        return f"'{text}'"
    return _basic(text, path)


def _basic(text: str, path: tuple[str, ...]) -> str:
    _encodable(text, path)
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif _CONTROL.fullmatch(char):
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _encodable(text: str, path: tuple[str, ...]) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{_where(path)}: {text!r} holds a lone surrogate, which TOML (UTF-8) cannot"
        ) from None
