"""Fault rules as profiles, the command line and request headers write them (the twin's fault injection).

One parser for the spec string ``KIND[:key=value,...]`` (``python -m pytest_gx10.fake --fault`` and
the twin's ``x-gx10-fault`` request header) and the profile's ``[[twin.faults]]`` tables (the same
keys, with ``kind``). What each kind does on the wire and when it fires: ``pytest_gx10.fake.faults``.
This module is core and imports nothing from the twin, so that profiles can check their faults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["ENGINE_KINDS", "KINDS", "Fault", "FaultSpecError", "fault_from_table", "parse_fault"]

_TRIGGER_KEYS = ("after", "running")
# kind -> the keys it takes besides the triggers
KINDS: dict[str, tuple[str, ...]] = {
    "death": ("delay_s", "grace_s"),
    "zombie": ("delay_s",),
    "http_500": ("count", "body"),
    "error_fraction": ("count", "p", "seed", "body"),
    "zero_tokens": ("count",),
    "abort": ("count", "tokens"),
    "cut": ("count", "tokens"),
    "stall": ("count", "tokens", "stall_s", "then"),
    "slow_ttft": ("count", "extra_s"),
}
ENGINE_KINDS = frozenset({"death", "zombie"})
_CHOICES = {"body": ("json", "text", "empty"), "then": ("continue", "abort", "cut")}
_INTS = ("after", "running", "count", "tokens", "seed")
_FLOATS = ("delay_s", "grace_s", "stall_s", "extra_s", "p")


class FaultSpecError(ValueError):
    """A fault that cannot be read: names the spec, the key and what is wrong."""


@dataclass(frozen=True)
class Fault:
    """One fault rule: its kind, its trigger and its parameters (see the module docstring)."""

    kind: str
    after: int = 0
    running: int | None = None
    count: int | None = None
    delay_s: float = 0.0
    grace_s: float = 5.0
    body: str = "json"
    p: float = 0.1
    seed: int = 0
    tokens: int = 8
    stall_s: float = 30.0
    then: str = "continue"
    extra_s: float = 10.0

    @property
    def engine_wide(self) -> bool:
        """True for the faults of the whole engine (death, zombie) rather than of one request."""
        return self.kind in ENGINE_KINDS

    def spec(self) -> str:
        """The spec string that reads back as this fault (non-default keys only)."""
        default = Fault(self.kind)
        parts = [
            f"{f.name}={getattr(self, f.name):g}"
            if isinstance(getattr(self, f.name), float)
            else f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if f.name != "kind" and getattr(self, f.name) != getattr(default, f.name)
        ]
        return self.kind + (":" + ",".join(parts) if parts else "")


def _value(spec: str, kind: str, key: str, raw: Any) -> Any:
    """Check and convert one key's value (a string from a spec, or a TOML value)."""
    where = f"fault {spec!r}: {key}"
    if key in _INTS:
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise FaultSpecError(f"{where}: expected an integer, got {raw!r}")
        try:
            value: Any = int(raw)
        except ValueError:
            raise FaultSpecError(f"{where}: expected an integer, got {raw!r}") from None
        least = 1 if key in ("running", "count") else 0
        if key != "seed" and value < least:
            raise FaultSpecError(f"{where}: must be at least {least}, got {value}")
        return value
    if key in _FLOATS:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise FaultSpecError(f"{where}: expected a number, got {raw!r}")
        try:
            value = float(raw)
        except ValueError:
            raise FaultSpecError(f"{where}: expected a number, got {raw!r}") from None
        if not value >= 0 or value == float("inf"):
            raise FaultSpecError(f"{where}: expected a finite number >= 0, got {raw!r}")
        if key == "p" and value > 1:
            raise FaultSpecError(f"{where}: a fraction between 0 and 1, got {raw!r}")
        return value
    choices = _CHOICES[key]
    if raw not in choices:
        raise FaultSpecError(f"{where}: expected one of {', '.join(choices)}, got {raw!r}")
    return raw


def _build(spec: str, kind: str, items: Sequence[tuple[str, Any]]) -> Fault:
    if kind not in KINDS:
        raise FaultSpecError(f"fault {spec!r}: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    allowed = (*_TRIGGER_KEYS, *KINDS[kind])
    values: dict[str, Any] = {}
    for key, raw in items:
        if key not in allowed:
            raise FaultSpecError(
                f"fault {spec!r}: unknown key {key!r} for {kind} (its keys: {', '.join(sorted(allowed))})"
            )
        if key in values:
            raise FaultSpecError(f"fault {spec!r}: key {key!r} given twice")
        values[key] = _value(spec, kind, key, raw)
    return Fault(kind, **values)


def parse_fault(text: str) -> Fault:
    """Read ``KIND[:key=value,...]`` (command line and header); raise FaultSpecError naming the problem."""
    spec = text.strip()
    kind, colon, rest = spec.partition(":")
    items: list[tuple[str, str]] = []
    if rest.strip():
        for part in rest.split(","):
            key, eq, value = part.partition("=")
            if not eq or not key.strip() or not value.strip():
                raise FaultSpecError(
                    f"fault {spec!r}: expected key=value, got {part.strip()!r} (syntax: KIND[:key=value,...])"
                )
            items.append((key.strip(), value.strip()))
    elif colon or not kind.strip():
        raise FaultSpecError(f"fault {spec!r}: expected KIND[:key=value,...]; kinds: {', '.join(KINDS)}")
    return _build(spec, kind.strip(), items)


def fault_from_table(table: Mapping[str, Any]) -> Fault:
    """A profile's ``[[twin.faults]]`` table: ``kind`` plus the same keys as the spec string."""
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise FaultSpecError(f"each fault needs kind = one of {', '.join(KINDS)}, got {kind!r}")
    spec = kind + ":" + ",".join(f"{k}={v}" for k, v in table.items() if k != "kind")
    return _build(spec.rstrip(":"), kind, [(k, v) for k, v in table.items() if k != "kind"])
