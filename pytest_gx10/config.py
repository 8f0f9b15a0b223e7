"""Config files (profiles, recipes) and settings: one error class, and each key declared once.

A table of a config file is a frozen dataclass and each of its fields is one key: the field's
annotation is the key's type, the field's default its default (no default: the key is required), and
:func:`key` puts its range, choices, help and any special parsing in the field's metadata.
:func:`read_table` checks a TOML table against such a dataclass and collects every problem (unknown
key with the closest known one, wrong type, out of range, missing required key) instead of stopping
at the first, so :class:`ConfigError` can name them all at once. :func:`parse_tolerances` reads the
baseline tolerances (``agg_decode_tps=5%``) a setting and a profile's ``[baseline]`` table give. This
module imports nothing from pytest nor from the rest of the package; the plugin turns a
:class:`ConfigError` into a usage error.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints

__all__ = [
    "ConfigError",
    "Invalid",
    "Key",
    "Problem",
    "build_table",
    "convert",
    "declared",
    "key",
    "parse_duration",
    "parse_slo",
    "parse_tolerance",
    "parse_tolerances",
    "read_table",
    "unknown_key",
]

Problem = tuple[str, str]  # (dotted key, what is wrong); an empty key is the file as a whole

_META = "gx10"


class ConfigError(ValueError):
    """A config file (or setting) that cannot be used: names the file, each key and what is wrong.

    ``problems`` holds every problem found; ``key`` and ``problem`` are the first one's. A file that
    is not there is ``missing`` and says "not found" rather than "malformed".
    """

    what: ClassVar[str] = "config file"

    def __init__(
        self,
        path: Path | str,
        key: str = "",
        problem: str = "",
        *,
        problems: Sequence[Problem] = (),
        missing: bool = False,
    ) -> None:
        self.path = str(path)
        self.problems: tuple[Problem, ...] = tuple(problems) or ((key, problem),)
        self.key, self.problem = self.problems[0]
        self.missing = missing
        super().__init__(self._message())

    def _where(self, key: str) -> str:
        return f"{self.path}: key '{key}'" if key else self.path

    def _message(self) -> str:
        if self.missing:
            return f"{self.what} not found: {self.path}" + (f"; {self.problem}" if self.problem else "")
        if len(self.problems) == 1:
            return f"malformed {self.what} {self._where(self.key)}: {self.problem}"
        lines = [f"malformed {self.what} {self.path}: {len(self.problems)} problems"]
        lines += [f"  {self._where(k)}: {p}" for k, p in self.problems]
        return "\n".join(lines)


class Invalid(ValueError):
    """Raised by a key's ``parse`` function: one or more problems, keyed relative to the key
    (``""`` is the key itself, ``"[2]"`` its third item, ``".eight"`` a key of its table)."""

    def __init__(self, problem: str = "", at: str = "", *, problems: Sequence[Problem] = ()) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems) or ((at, problem),)
        super().__init__("; ".join(f"{a}: {p}" if a else p for a, p in self.problems))


@dataclass(frozen=True)
class Key:
    """How one key is checked beyond its type: range, choices, an extra check, or its own parser."""

    help: str = ""
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    lt: float | None = None
    expect: str = ""  # says what an out-of-range value should be, instead of the derived sentence
    choices: tuple[str, ...] = ()
    nonempty: bool = False  # an array needs at least one item
    check: Callable[[Any], str | None] | None = None  # the converted value -> a problem, or None
    parse: Callable[[Any], Any] | None = None  # the raw TOML value -> the field's value; raises Invalid


def key(
    default: Any = dataclasses.MISSING,
    *,
    factory: Callable[[], Any] | None = None,
    help: str = "",
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    expect: str = "",
    choices: Sequence[str] = (),
    nonempty: bool = False,
    check: Callable[[Any], str | None] | None = None,
    parse: Callable[[Any], Any] | None = None,
) -> Any:
    """A dataclass field declaring one config key (no ``default`` nor ``factory``: required)."""
    meta = {
        _META: Key(help, gt, ge, le, lt, expect, tuple(choices), nonempty, check, parse),
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(field: dataclasses.Field[Any]) -> Key:
    """The declaration of a field (a plain field has an empty one)."""
    found = field.metadata.get(_META)
    return found if isinstance(found, Key) else Key()


def unknown_key(name: str, known: Sequence[str], prefix: str = "", hint: str = "") -> str:
    """The problem of an unknown key: the known ones, the closest match, and a hint."""
    close = difflib.get_close_matches(name, list(known), n=1)
    extra = f"; did you mean '{prefix}{close[0]}'?" if close else ""
    return f"unknown key (known here: {', '.join(sorted(known))}){extra}{hint}"


def _type_name(tp: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if tp in names:
        return names[tp]
    origin = get_origin(tp)
    if origin is tuple:
        return "array"
    if origin in (Mapping, dict) or dataclasses.is_dataclass(tp):
        return "table"
    return getattr(tp, "__name__", str(tp))


def _problem_type(tp: Any, value: Any) -> str:
    article = "a " if _type_name(tp) == "table" else ""
    return f"expected {article}{_type_name(tp)}, got {type(value).__name__} {value!r}"


_BAD = object()


def convert(tp: Any, value: Any, dotted: str, problems: list[Problem]) -> Any:
    """``value`` (from TOML) as the annotation ``tp`` says, or a problem appended and ``_BAD``.

    Arrays become tuples, numbers for ``float`` become floats, a table for a dataclass is read with
    :func:`read_table`. ``bool`` is an int in Python; TOML keeps them apart and so do we.
    """
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        return convert(options[0], value, dotted, problems)
    if tp is Any:
        return value
    if tp in (str, bool, int):
        if isinstance(value, tp) and (tp is bool or not isinstance(value, bool)):
            return value
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif origin is tuple:
        if isinstance(value, list):
            if len(args) == 2 and args[1] is Ellipsis:
                items = [convert(args[0], v, f"{dotted}[{i}]", problems) for i, v in enumerate(value)]
            elif len(value) != len(args):
                problems.append((dotted, f"expected an array of {len(args)} items, got {value!r}"))
                return _BAD
            else:
                items = [
                    convert(t, v, f"{dotted}[{i}]", problems)
                    for i, (t, v) in enumerate(zip(args, value, strict=True))
                ]
            return _BAD if any(v is _BAD for v in items) else tuple(items)
    elif origin in (Mapping, dict):
        if isinstance(value, dict):
            out = {k: convert(args[1], v, f"{dotted}.{k}", problems) for k, v in value.items()}
            return _BAD if any(v is _BAD for v in out.values()) else out
    elif dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, dict):
            built = build_table(tp, value, dotted + ".", problems)
            return _BAD if built is None else built
    else:  # pragma: no cover - a declaration with a type this reader does not know
        raise TypeError(f"config key {dotted}: unsupported type {tp!r}")
    problems.append((dotted, _problem_type(tp, value)))
    return _BAD


def _range_problem(name: str, spec: Key, number: float) -> str | None:
    low_ok = (spec.gt is None or number > spec.gt) and (spec.ge is None or number >= spec.ge)
    high_ok = (spec.lt is None or number < spec.lt) and (spec.le is None or number <= spec.le)
    if low_ok and high_ok:
        return None
    if spec.expect:
        return f"{spec.expect}, got {number!r}"
    if spec.ge is not None and spec.le is not None:
        return f"expected a number between {spec.ge:g} and {spec.le:g}, got {number!r}"
    if spec.gt == 0 and spec.lt is None and spec.le is None:
        what = "a positive number of seconds" if name.endswith("_s") else "positive"
        return f"must be {what}, got {number!r}"
    if spec.ge == 0 and spec.lt is None and spec.le is None:
        return f"must not be negative, got {number!r}"
    bounds = [
        f"{sign} {bound:g}"
        for sign, bound in ((">", spec.gt), (">=", spec.ge), ("<", spec.lt), ("<=", spec.le))
        if bound is not None
    ]
    return f"must be {' and '.join(bounds)}, got {number!r}"


def _check_value(name: str, spec: Key, value: Any, dotted: str, problems: list[Problem]) -> None:
    ranged = spec.gt is not None or spec.ge is not None or spec.lt is not None or spec.le is not None
    if isinstance(value, tuple):
        if spec.nonempty and not value:
            problems.append((dotted, "expected at least one item, got an empty array"))
        for i, item in enumerate(value):
            if ranged and isinstance(item, int | float):
                problem = _range_problem(name, spec, item)
                if problem:
                    problems.append((f"{dotted}[{i}]", problem))
    elif ranged and isinstance(value, int | float):
        problem = _range_problem(name, spec, value)
        if problem:
            problems.append((dotted, problem))
    if spec.choices and value not in spec.choices:
        problems.append((dotted, f"expected {_choices(spec.choices)}, got {value!r}"))
    if spec.check is not None and value is not None:
        problem = spec.check(value)
        if problem:
            problems.append((dotted, problem))


def _choices(choices: Sequence[str]) -> str:
    quoted = [f'"{c}"' for c in choices]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return "one of " + ", ".join(quoted)


def read_table(
    cls: type, data: Mapping[str, Any], prefix: str, problems: list[Problem]
) -> dict[str, Any] | None:
    """The keys of ``data`` converted as ``cls`` declares them, or None when any had a problem.

    Every problem (unknown key, wrong type, out of range, missing required key) is appended to
    ``problems`` with its dotted key (``prefix`` + key). A required table missing from ``data`` is read
    as an empty one, so its own required keys are named. ``cls`` may give ``UNKNOWN_HINT``, a sentence
    added to its unknown-key problems.
    """
    before = len(problems)
    declared_fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    hint = getattr(cls, "UNKNOWN_HINT", "")
    for name in data:
        if name not in declared_fields:
            problems.append((prefix + name, unknown_key(name, list(declared_fields), prefix, hint)))
    values: dict[str, Any] = {}
    for name, field in declared_fields.items():
        dotted = prefix + name
        spec = declared(field)
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if name not in data:
            tp = hints[name]
            if required and dataclasses.is_dataclass(tp) and isinstance(tp, type):
                value = build_table(tp, {}, dotted + ".", problems)
                if value is not None:
                    values[name] = value
            elif required:
                choices = f" ({_choices(spec.choices)})" if spec.choices else ""
                problems.append((dotted, f"required key is missing{choices}"))
            continue
        if spec.parse is not None:
            try:
                value = spec.parse(data[name])
            except Invalid as exc:
                problems.extend((dotted + at, text) for at, text in exc.problems)
                continue
        else:
            value = convert(hints[name], data[name], dotted, problems)
            if value is _BAD:
                continue
        _check_value(name, spec, value, dotted, problems)
        values[name] = value
    return values if len(problems) == before else None


def build_table(cls: type, data: Mapping[str, Any], prefix: str, problems: list[Problem]) -> Any:
    """An instance of ``cls`` from ``data`` (defaults for what is not given), or None with problems."""
    values = read_table(cls, data, prefix, problems)
    return None if values is None else cls(**values)


def parse_tolerance(text: Any) -> float:
    """``5%`` -> 0.05; a plain number is a fraction below 1 (``0.05``). Raises ValueError.

    A plain 1 or more is refused: ``agg_decode_tps=5`` would read as 500 % and switch the figure off.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a tolerance: {text!r}")
    raw = str(text).strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1]) / 100 if percent else float(raw)
    except ValueError:
        raise ValueError(
            f"not a tolerance: {raw!r} (use a percentage like 5% or a fraction like 0.05)"
        ) from None
    if not value >= 0:
        raise ValueError(f"a tolerance must not be negative, got {raw!r}")
    if not percent and value >= 1:
        raise ValueError(
            f"a tolerance of {raw} reads as {value:.0%}: write a percentage ({raw}%) or a fraction below 1"
        )
    return value


def parse_tolerances(text: str) -> tuple[tuple[str, float], ...]:
    """``agg_decode_tps=5%,median_ttft_s=20%`` (a bare ``15%`` sets the default). Raises ValueError."""
    pairs: list[tuple[str, float]] = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.rpartition("=")  # ids hold "=" too: sweep[N=8].wall_s=20%
        if not sep:
            name, value = "default", value
        name = name.strip()
        if not name:
            raise ValueError(f"no figure name in {part!r}; e.g. agg_decode_tps=5%")
        pairs.append((name, parse_tolerance(value)))
    if not pairs:
        raise ValueError("no tolerance given; e.g. agg_decode_tps=5%")
    return tuple(pairs)


SLO_KEYS = (
    "ttft",
    "tpot",
    "e2e",
)  # per-request objectives: time to first token, per output token, end to end


def parse_duration(text: str) -> float:
    """``2s``, ``100ms`` or ``1.5 s`` in seconds; the unit is required. Raises ValueError."""
    value = str(text).strip().replace(" ", "")
    for unit, scale in (("ms", 1e-3), ("s", 1.0)):
        if value.endswith(unit):
            try:
                seconds = float(value[: -len(unit)]) * scale
            except ValueError:
                break
            if not seconds > 0:
                raise ValueError(f"{text!r} must be more than 0")
            return seconds
    raise ValueError(f"{text!r} is not a time with its unit, e.g. 2s or 100ms")


def parse_slo(value: str | Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
    """``ttft=2s,tpot=100ms,e2e=30s`` (or a table of the same) as (objective, seconds) pairs.

    Each objective is one of ttft, tpot, e2e, given once, with its unit (s or ms). Raises ValueError.
    """
    if isinstance(value, Mapping):
        items = [(str(k), str(v)) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            if part.strip():
                name, sep, text = part.partition("=")
                if not sep:
                    raise ValueError(f"{part.strip()!r} is not name=time, e.g. ttft=2s")
                items.append((name, text))
    pairs: dict[str, float] = {}
    for name, text in items:
        name = name.strip()
        if name not in SLO_KEYS:
            raise ValueError(f"unknown objective {name!r}; objectives are {', '.join(SLO_KEYS)}")
        if name in pairs:
            raise ValueError(f"objective {name} given twice")
        pairs[name] = parse_duration(text)
    if not pairs:
        raise ValueError("no objective given; e.g. ttft=2s,tpot=100ms,e2e=30s")
    return tuple((k, pairs[k]) for k in SLO_KEYS if k in pairs)
