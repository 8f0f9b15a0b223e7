"""Twin effects: what a parameter does to the deployment the twin serves (``[[twin.effects]]``).

A profile describes one deployment; a matrix of deployments (``--gx10-matrix``) overrides its keys
cell by cell. Some of those keys change more than themselves: with ``num_speculative_tokens = 5``
the reference cluster decodes at other step times, warms up longer and crashes under load. An
effect says so, in the profile, next to the numbers it changes::

    [[twin.effects]]
    note  = "MTP-5: the post's retest"                                   # optional
    when  = { "deployment.speculative.num_speculative_tokens" = 5 }      # the path's value equals
    above = { "deployment.serve_args.gpu_memory_utilization" = 0.90 }    # the path's number is over
    below = { "deployment.max_num_seqs" = 4 }                            # the path's number is under
    set   = { "twin.warmup_s" = 7.0 }                                    # dotted path = value
    faults = [ { kind = "death", running = 8, delay_s = 20.0 } ]         # appended to twin.faults
    speed = 0.86                                                         # twin.speed_factor x 0.86

All of an effect's conditions must hold (at least one is given), and it changes something (at least
one of ``set``, ``faults``, ``speed``). A condition on a path the data does not hold is false, not an
error: a default the file leaves out is not matched. Paths are dotted keys, a key holding a dot in
double quotes (:func:`pytest_gx10.matrix.parse_path`); numbers compare as numbers (5 and
5.0 are equal), a boolean only equals a boolean. ``set`` writes as a matrix cell does
(:func:`pytest_gx10.matrix.apply_overrides`).

Effects apply when a profile is built, in file order, to its data after any overrides: each effect
sees the data the ones before it left. The profile's ``raw`` data keeps the effects unapplied, so a
cell's profile written from it (overrides set, effects kept) reads back as the same deployment.
This module is core: it imports nothing from pytest nor from the twin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.config import Problem, unknown_key
from pytest_gx10.matrix import SHORT_NAMES, apply_overrides, format_path, format_value, parse_path
from pytest_gx10.profiles.faults import FaultSpecError, fault_from_table

__all__ = ["EFFECT_KEYS", "Effect", "apply_effects", "read_effects"]

Path = tuple[str, ...]

CONDITIONS = ("when", "above", "below")
CHANGES = ("set", "faults", "speed")
EFFECT_KEYS = (*CONDITIONS, *CHANGES, "note")
_HINT = (
    '; e.g. when = { "deployment.speculative.num_speculative_tokens" = 5 }, set = { "twin.warmup_s" = 7.0 }'
)


@dataclass(frozen=True)
class Effect:
    """One ``[[twin.effects]]`` entry, read and checked."""

    when: tuple[tuple[Path, Any], ...] = ()
    above: tuple[tuple[Path, float], ...] = ()
    below: tuple[tuple[Path, float], ...] = ()
    sets: tuple[tuple[Path, Any], ...] = ()
    faults: tuple[Mapping[str, Any], ...] = ()  # the tables, as [[twin.faults]] takes them
    speed: float | None = None
    note: str = ""

    def holds(self, data: Mapping[str, Any]) -> bool:
        """True when every condition holds in ``data``."""
        for path, value in self.when:
            found, there = _get(data, path)
            if not found or not _equal(there, value):
                return False
        for path, bound in self.above:
            found, there = _get(data, path)
            if not found or not _is_number(there) or not there > bound:
                return False
        for path, bound in self.below:
            found, there = _get(data, path)
            if not found or not _is_number(there) or not there < bound:
                return False
        return True

    def apply(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``data`` with the changes made; ValueError when ``set`` meets a table."""
        out = apply_overrides(data, dict(self.sets))
        twin = out.setdefault("twin", {})
        if not isinstance(twin, dict):  # [twin] is not a table: the table check says so
            return out
        if self.faults:
            faults = twin.setdefault("faults", [])
            if isinstance(faults, list):  # else the [[twin.faults]] check names it
                faults.extend(dict(table) for table in self.faults)
        if self.speed is not None:
            factor = twin.get("speed_factor", 1.0)
            if _is_number(factor):  # else the speed_factor check names it
                twin["speed_factor"] = float(factor) * self.speed
        return out

    def describe(self) -> str:
        """The note, or what the effect does when: ``when k=5: set 3 keys, 2 faults``."""
        if self.note:
            return self.note
        conditions = [f"{_short(p)}={format_value(v)}" for p, v in self.when]
        conditions += [f"{_short(p)}>{format_value(b)}" for p, b in self.above]
        conditions += [f"{_short(p)}<{format_value(b)}" for p, b in self.below]
        changes = []
        if self.sets:
            changes.append(f"set {_count(len(self.sets), 'key')}")
        if self.faults:
            changes.append(_count(len(self.faults), "fault"))
        if self.speed is not None:
            changes.append(f"speed x{format_value(self.speed)}")
        return f"when {' and '.join(conditions)}: {', '.join(changes)}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _short(path: Path) -> str:
    return SHORT_NAMES.get(path[-1], format_path(path[-1:]))


def _get(data: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(there: Any, value: Any) -> bool:
    """TOML equality: numbers by value, booleans only with booleans, arrays item by item."""
    if isinstance(value, bool) or isinstance(there, bool):
        return isinstance(value, bool) and isinstance(there, bool) and value == there
    if _is_number(value):
        return _is_number(there) and there == value
    if isinstance(value, list):
        return (
            isinstance(there, list)
            and len(there) == len(value)
            and all(_equal(a, b) for a, b in zip(there, value, strict=True))
        )
    return isinstance(there, str) and isinstance(value, str) and there == value


def _condition_value(value: Any) -> str | None:
    """The problem with a ``when`` value, or None: a string, number, boolean or array of them."""
    if isinstance(value, str | bool) or (_is_number(value) and math.isfinite(value)):
        return None
    if isinstance(value, list) and all(_condition_value(item) is None for item in value):
        return None
    return f"expected a string, number, boolean or array of them, got {type(value).__name__} {value!r}"


def _paths(
    table: Any, at: str, problems: list[Problem], check: Any = None
) -> tuple[tuple[Path, Any], ...] | None:
    """A ``{ "dotted.path" = value }`` table as (path, value) pairs; problems named ``at.path``."""
    if not isinstance(table, dict):
        problems.append((at, f"expected a table of dotted key = value, got {type(table).__name__} {table!r}"))
        return None
    if not table:
        problems.append((at, "an empty table; give a dotted key = value, or leave the key out"))
        return None
    pairs: list[tuple[Path, Any]] = []
    before = len(problems)
    for text, value in table.items():
        where = f"{at}.{format_path((text,))}"
        try:
            path = parse_path(text)
        except ValueError as exc:
            problems.append((where, str(exc)))
            continue
        problem = check(value) if check is not None else None
        if problem:
            problems.append((where, problem))
            continue
        pairs.append((path, value))
    return tuple(pairs) if len(problems) == before else None


def _bound(value: Any) -> str | None:
    if _is_number(value) and math.isfinite(value):
        return None
    return f"expected a number to compare with, got {type(value).__name__} {value!r}"


def _effect(entry: Any, at: str, problems: list[Problem]) -> Effect | None:
    if not isinstance(entry, dict):
        problems.append((at, f"expected a table ([[twin.effects]]), got {type(entry).__name__} {entry!r}"))
        return None
    before = len(problems)
    for name in entry:
        if name not in EFFECT_KEYS:
            problems.append((f"{at}.{name}", unknown_key(name, EFFECT_KEYS, f"{at}.")))
    values: dict[str, Any] = {}
    if "when" in entry:
        values["when"] = _paths(entry["when"], f"{at}.when", problems, _condition_value)
    for name in ("above", "below"):
        if name in entry:
            pairs = _paths(entry[name], f"{at}.{name}", problems, _bound)
            values[name] = pairs and tuple((path, float(bound)) for path, bound in pairs)
    if "set" in entry:
        values["sets"] = _paths(entry["set"], f"{at}.set", problems)
    if "faults" in entry:
        values["faults"] = _fault_tables(entry["faults"], f"{at}.faults", problems)
    if "speed" in entry:
        speed = entry["speed"]
        if not _is_number(speed) or not 0 < speed < math.inf:
            problems.append(
                (f"{at}.speed", f"expected a number > 0 (the twin's speed factor), got {speed!r}")
            )
        else:
            values["speed"] = float(speed)
    if "note" in entry:
        if isinstance(entry["note"], str):
            values["note"] = entry["note"]
        else:
            problems.append((f"{at}.note", f"expected a string, got {type(entry['note']).__name__}"))
    if not any(name in entry for name in CONDITIONS):
        problems.append((at, "no condition: give when, above or below" + _HINT))
    if not any(name in entry for name in CHANGES):
        problems.append((at, "no change: give set, faults or speed" + _HINT))
    if len(problems) != before:
        return None
    return Effect(**values)


def _fault_tables(value: Any, at: str, problems: list[Problem]) -> tuple[Mapping[str, Any], ...] | None:
    if not isinstance(value, list):
        problems.append((at, f"expected an array of fault tables, got {type(value).__name__} {value!r}"))
        return None
    before = len(problems)
    for i, table in enumerate(value):
        if not isinstance(table, dict):
            problems.append((f"{at}[{i}]", f"expected a fault table, got {type(table).__name__} {table!r}"))
            continue
        try:
            fault_from_table(table)
        except FaultSpecError as exc:
            problems.append((f"{at}[{i}]", str(exc)))
    return tuple(value) if len(problems) == before else None


def read_effects(value: Any, at: str = "twin.effects") -> tuple[tuple[Effect, ...], list[Problem]]:
    """The ``[[twin.effects]]`` array as effects, and every problem found, each named ``at[i].key``."""
    problems: list[Problem] = []
    if not isinstance(value, list):
        problems.append((at, f"expected an array of tables ([[twin.effects]]), got {type(value).__name__}"))
        return (), problems
    effects = [_effect(entry, f"{at}[{i}]", problems) for i, entry in enumerate(value)]
    return tuple(e for e in effects if e is not None), problems


def apply_effects(
    data: Mapping[str, Any], effects: Sequence[Effect], at: str = "twin.effects"
) -> tuple[dict[str, Any], tuple[str, ...], list[Problem]]:
    """``data`` with each effect whose conditions hold applied in turn; what applied; problems."""
    out = dict(data)
    applied: list[str] = []
    problems: list[Problem] = []
    for i, effect in enumerate(effects):
        if not effect.holds(out):
            continue
        try:
            out = effect.apply(out)
        except ValueError as exc:
            problems.append((f"{at}[{i}].set", str(exc)))
            continue
        applied.append(effect.describe())
    return out, tuple(applied), problems
