"""A matrix of deployments: the axes and cells to launch one deployment each, and the ceiling search.

This is the spec layer only: it reads the option texts, names the cells, sets their values in a
recipe's or a profile's data and walks a ceiling search over a caller's verdicts. No pytest here, no
network, no launching.

**An axis** (``--gx10-matrix``) is ``PATH=V1,V2,...``::

    --gx10-matrix 'serve.speculative_config.num_speculative_tokens=2,5'
    --gx10-matrix 'serve.gpu_memory_utilization=0.90,0.92'
    --gx10-matrix 'deployment.speculative.num_speculative_tokens=2,5'   # a twin's profile

``PATH`` is dotted keys into the recipe's data (``serve.…``) or the profile's (``deployment.…``):
TOML bare keys (letters, digits, ``_`` and ``-``), or a double-quoted key for one holding a dot
(``serve.args."compilation_config.cudagraph_mode"=none,piecewise``). Each value is a TOML literal
where it reads as one (``5``, ``0.92``, ``true``, ``"fp8"``, ``'fp8'``) and a string otherwise
(``fp8`` is ``"fp8"``); there is at least one value and no value twice (``0.90`` and ``0.9`` are
the same float). Commas inside quotes belong to the value.

**Cells**: several axes make their product, the first axis varying slowest; or a recipe names its
cells in a ``[[matrix]]`` array of tables, each setting values by dotted key plus an optional
``name`` (not both; at most :data:`MAX_CELLS` cells)::

    [[matrix]]
    name = "mtp2"
    serve.speculative_config.num_speculative_tokens = 2
    serve.gpu_memory_utilization = 0.90

A cell's id is its settings, ``k=5,gmu=0.92``, keyed by short names (:data:`SHORT_NAMES`, else the
last key; more keys when two axes would share one), or its name when it has one. Values are written
so they read back as the same value: ``0.9``, ``5``, ``true``, ``fp8``, and ``"5"`` for the string.

**A ceiling** (``--gx10-ceiling``) is ``PATH=LO..HI:STEP``, e.g.
``'serve.gpu_memory_utilization=0.85..0.95:0.01'``: the grid LO, LO+STEP, ..., HI (HI - LO a whole
number of steps; decimal arithmetic, so 0.85..0.95:0.01 is 11 exact points, and integers when the
three are integers). The search, as :mod:`pytest_gx10.load.saturation` walks levels, probes:

1. the low bound: if it fails, no value passes and the answer is None ("low bound fails");
2. the high bound: if it passes, the answer is the high bound ("high bound passes");
3. the middle grid point between the highest passing value and the lowest failing one;

until those two are adjacent on the grid ("converged"), ``max_launches`` probes were made ("launch
bound") or a probe could not run at all ("probe error"). Every probe is kept in the order walked.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import re
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pytest_gx10.bisection import walk

__all__ = [
    "CEILING_STOPS",
    "MAX_CELLS",
    "SHORT_NAMES",
    "Axis",
    "Ceiling",
    "CeilingProbe",
    "CeilingResult",
    "Cell",
    "apply_overrides",
    "format_path",
    "format_value",
    "matrix_cells",
    "next_index",
    "parse_axis",
    "parse_ceiling",
    "parse_path",
    "search_ceiling",
    "short_names",
]

MATRIX_EXAMPLE = "--gx10-matrix 'serve.gpu_memory_utilization=0.90,0.92'"
CEILING_EXAMPLE = "--gx10-ceiling 'serve.gpu_memory_utilization=0.85..0.95:0.01'"

# Each cell is a launch (minutes to boot a large model): a product past this is more likely a slip.
MAX_CELLS = 64

# Short names for ids, as the vLLM community writes them; any other key is its own short name.
SHORT_NAMES = {
    "num_speculative_tokens": "k",
    "gpu_memory_utilization": "gmu",
    "max_num_seqs": "seqs",
    "max_num_batched_tokens": "mnbt",
    "tensor_parallel_size": "tp",
    "pipeline_parallel_size": "pp",
    "data_parallel_size": "dp",
    "enable_expert_parallel": "ep",
    "max_model_len": "ctx",
    "kv_cache_dtype": "kv",
    "block_size": "block",
    "enable_prefix_caching": "prefix",
    "enable_chunked_prefill": "chunked",
    "enforce_eager": "eager",
    "quantization": "quant",
    "attention_backend": "attn",
    "cpu_offload_gb": "offload",
    "swap_space": "swap",
}

Path = tuple[str, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PATH_PART = re.compile(r'([A-Za-z0-9_-]+|"[^"\\]*")(\.|$)')
# A word read as a string when it is not a TOML literal: no quotes, brackets, spaces or separators.
_BARE_WORD = re.compile(r"[^\s,=\"'\[\]{}#]+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


# --- paths and values ---------------------------------------------------------------------------


def parse_path(text: str) -> Path:
    """``serve.speculative_config.num_speculative_tokens`` as its keys; ValueError when malformed."""
    stripped, parts, at = text.strip(), [], 0
    while at < len(stripped):
        found = _PATH_PART.match(stripped, at)
        if found is None or (found.group(2) == "." and found.end() == len(stripped)):
            raise ValueError(
                f"not a dotted key path: {text.strip()!r} (keys of letters, digits, '_' or '-' joined by "
                "dots; a key holding a dot in double quotes)"
            )
        part = found.group(1)
        parts.append(part[1:-1] if part.startswith('"') else part)
        at = found.end()
    if not parts or any(not part for part in parts):
        raise ValueError(f"not a dotted key path: {text.strip()!r} (an empty key)")
    return tuple(parts)


def format_path(path: Path) -> str:
    """The keys joined by dots, a key that is not a bare TOML key in double quotes."""
    return ".".join(part if _BARE_KEY.fullmatch(part) else f'"{part}"' for part in path)


def _literal(token: str) -> Any:
    """A TOML scalar literal's value, or None when ``token`` is not one."""
    try:
        value = tomllib.loads(f"v = {token}")["v"]
    except tomllib.TOMLDecodeError:
        return None
    return value if isinstance(value, str | int | float | bool) else None


def _read_value(token: str) -> Any:
    """A value as written on the command line: a TOML scalar literal, else a bare word as a string."""
    value = _literal(token)
    if value is not None:
        return value
    if _BARE_WORD.fullmatch(token):
        return token
    raise ValueError(f"not a value: {token!r}; expected a number, true/false, a word or a quoted string")


def format_value(value: Any) -> str:
    """A value as an id shows it, compact and stable, and reading back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float: 0.9, 1e-05
    if isinstance(value, str):
        return (
            value
            if _BARE_WORD.fullmatch(value) and _literal(value) is None
            else json.dumps(value, ensure_ascii=False)
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{format_path((str(k),))}={format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _identity(value: Any) -> Any:
    """What makes two values the same setting: 1 and 1.0 and true differ on a command line."""
    if isinstance(value, list | tuple):
        return ("list", tuple(_identity(item) for item in value))
    if isinstance(value, Mapping):  # an inline table in a [[matrix]] array
        return ("table", tuple(sorted((str(k), _identity(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def _split_values(text: str) -> list[str]:
    """Split at commas outside quotes."""
    tokens: list[str] = []
    current: list[str] = []
    quote = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == ",":
            tokens.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    tokens.append("".join(current).strip())
    return tokens


# --- axes and cells -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One ``--gx10-matrix`` option: a key path and the values it takes, in the order given."""

    path: Path
    values: tuple[Any, ...]
    text: str = ""

    @property
    def dotted(self) -> str:
        """The path as written: ``serve.gpu_memory_utilization``."""
        return format_path(self.path)


def parse_axis(text: str) -> Axis:
    """``PATH=V1,V2,...`` as an :class:`Axis` (see the module's docstring); ValueError when malformed."""

    def wrong(what: str) -> ValueError:
        return ValueError(f"--gx10-matrix {text!r}: {what}; expected PATH=V1,V2,..., e.g. {MATRIX_EXAMPLE}")

    path_text, equals, values_text = text.partition("=")
    if not equals:
        raise wrong("no '=' between the key path and the values")
    try:
        path = parse_path(path_text)
    except ValueError as exc:
        raise wrong(str(exc)) from None
    if not values_text.strip():
        raise wrong("no values")
    values: list[Any] = []
    seen: dict[Any, str] = {}
    for token in _split_values(values_text):
        if not token:
            raise wrong("an empty value (two commas, or one at an end)")
        if token[0] in "[{" or token[-1] in "]}":
            raise wrong("a list or table is not an axis value; name such cells in the recipe's [[matrix]]")
        try:
            value = _read_value(token)
        except ValueError as exc:
            raise wrong(str(exc)) from None
        if _identity(value) in seen:
            before = seen[_identity(value)]
            raise wrong(f"the value {token} twice" + (f" (as {before} before)" if before != token else ""))
        seen[_identity(value)] = token
        values.append(value)
    return Axis(path=path, values=tuple(values), text=text)


def short_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Each path's name in ids: its last key's short name, with more keys where two would clash."""
    if len(set(paths)) != len(paths):
        twice = sorted({format_path(p) for p in paths if paths.count(p) > 1})
        raise ValueError(f"the same key path twice: {', '.join(twice)}")

    def name(path: Path, keys: int) -> str:
        last = SHORT_NAMES.get(path[-1], path[-1])
        return format_path((*path[-keys:-1], last)) if keys > 1 else format_path((last,))

    keys = dict.fromkeys(paths, 1)
    while True:
        names = {path: name(path, keys[path]) for path in paths}
        clashing = [p for p in paths if list(names.values()).count(names[p]) > 1]
        if not clashing:
            return names
        grown = False
        for path in clashing:
            if keys[path] < len(path):
                keys[path] += 1
                grown = True
        if not grown:  # distinct paths always differ once whole; a guard, not a case
            raise ValueError(
                f"cannot name the key paths apart: {', '.join(format_path(p) for p in clashing)}"
            )


@dataclass(frozen=True)
class Cell:
    """One deployment of the matrix: the values it sets, and its id in test ids and reports.

    ``settings`` is ``k=5,gmu=0.92``; ``id`` is the cell's ``name`` when it has one, else its settings.
    """

    id: str
    overrides: Mapping[Path, Any]
    name: str | None = None
    settings: str = ""


def _settings(overrides: Mapping[Path, Any], names: Mapping[Path, str]) -> str:
    return ",".join(f"{names[path]}={format_value(value)}" for path, value in overrides.items())


def _flatten(entry: Mapping[str, Any], prefix: Path, into: dict[Path, Any]) -> None:
    """A named cell's keys as paths: a string key is a dotted path, a nested table goes deeper."""
    for key_text, value in entry.items():
        path = (*prefix, *parse_path(key_text))
        if isinstance(value, Mapping):
            _flatten(value, path, into)
        elif path in into:
            raise ValueError(f"sets {format_path(path)} twice")
        else:
            into[path] = value


def _named_cells(named: Sequence[Mapping[str, Any]]) -> list[tuple[str | None, dict[Path, Any]]]:
    cells: list[tuple[str | None, dict[Path, Any]]] = []
    for i, entry in enumerate(named):
        where = f"[[matrix]] entry {i + 1}"
        name = entry.get("name")
        if name is not None and (not isinstance(name, str) or not _BARE_WORD.fullmatch(name)):
            raise ValueError(
                f"{where}: name {name!r} is not a word (no spaces, quotes, commas, '=', '#' or brackets)"
            )
        overrides: dict[Path, Any] = {}
        try:
            _flatten({k: v for k, v in entry.items() if k != "name"}, (), overrides)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if not overrides:
            raise ValueError(f"{where}: sets no value; expected dotted keys, e.g. serve.max_num_seqs = 8")
        cells.append((name, overrides))
    return cells


def matrix_cells(
    axes: Sequence[Axis], named: Sequence[Mapping[str, Any]] = (), *, max_cells: int = MAX_CELLS
) -> list[Cell]:
    """The cells to launch: the axes' product (first axis slowest), or the ``named`` cells.

    ``named`` are a recipe's ``[[matrix]]`` tables: dotted paths (or nested tables) to values, plus
    an optional ``name``. Neither given: no cells. Both, a cell twice, or more than ``max_cells``
    cells: ValueError.
    """
    if axes and named:
        raise ValueError(
            "--gx10-matrix axes and the recipe's [[matrix]] cells together: use one or the other "
            "(drop the [[matrix]] tables, or the --gx10-matrix options)"
        )
    if axes:
        count = math.prod(len(axis.values) for axis in axes)
        if count > max_cells:
            sizes = " x ".join(str(len(axis.values)) for axis in axes)
            raise ValueError(
                f"--gx10-matrix: {len(axes)} axes make {count} cells ({sizes}), more than {max_cells}, "
                "each a launch; give fewer values, or name the cells in the recipe's [[matrix]]"
            )
        paths = [axis.path for axis in axes]
        names = short_names(paths)
        product = []
        for values in itertools.product(*(axis.values for axis in axes)):
            overrides = dict(zip(paths, values, strict=True))
            settings = _settings(overrides, names)
            product.append(Cell(id=settings, overrides=overrides, settings=settings))
        return product
    entries = _named_cells(named)
    if len(entries) > max_cells:
        raise ValueError(f"[[matrix]]: {len(entries)} cells, more than {max_cells}, each a launch")
    all_paths = list(dict.fromkeys(path for _, overrides in entries for path in overrides))
    names = short_names(all_paths)
    cells: list[Cell] = []
    seen_ids: dict[str, int] = {}
    seen_settings: dict[frozenset[tuple[Path, Any]], int] = {}
    for i, (name, overrides) in enumerate(entries, start=1):
        settings = _settings(overrides, names)
        cell = Cell(id=name or settings, overrides=overrides, name=name, settings=settings)
        identity = frozenset((path, _identity(value)) for path, value in overrides.items())
        if identity in seen_settings:
            raise ValueError(
                f"[[matrix]] entries {seen_settings[identity]} and {i} are the same cell ({settings})"
            )
        if cell.id in seen_ids:
            raise ValueError(f"[[matrix]] entries {seen_ids[cell.id]} and {i} have the same name {cell.id!r}")
        seen_settings[identity], seen_ids[cell.id] = i, i
        cells.append(cell)
    return cells


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[Path, Any]) -> dict[str, Any]:
    """A deep copy of ``data`` (a recipe's or a profile's tables) with each path set to its value.

    Missing tables on the way are created. A table is not replaced by a value, nor a value by a
    table: ValueError naming the path.
    """
    result: dict[str, Any] = copy.deepcopy(dict(data))
    for path, value in overrides.items():
        table: dict[str, Any] = result
        for depth, part in enumerate(path[:-1], start=1):
            inner = table.setdefault(part, {})
            if not isinstance(inner, dict):
                raise ValueError(
                    f"cannot set {format_path(path)}: {format_path(path[:depth])} is "
                    f"{format_value(inner)}, not a table"
                )
            table = inner
        old, new_is_table = table.get(path[-1]), isinstance(value, Mapping)
        if isinstance(old, dict) and not new_is_table:
            raise ValueError(
                f"cannot set {format_path(path)} to {format_value(value)}: it is a table; set a key in it"
            )
        if old is not None and not isinstance(old, dict) and new_is_table:
            raise ValueError(f"cannot set {format_path(path)} to a table: it is {format_value(old)}")
        table[path[-1]] = copy.deepcopy(dict(value)) if new_is_table else copy.deepcopy(value)
    return result


# --- the ceiling search -------------------------------------------------------------------------

# Why a ceiling search stopped: the code in the results, and the words the report says it in.
CEILING_STOPS = {
    "converged": "converged",
    "launch_bound": "launch bound",
    "time_bound": "time bound",
    "low_fails": "low bound fails",
    "high_passes": "high bound passes",
    "probe_error": "probe error",
}


@dataclass(frozen=True)
class Ceiling:
    """One ``--gx10-ceiling`` option: a key path and its grid, ``low`` to ``high`` by ``step``."""

    path: Path
    low: Decimal
    high: Decimal
    step: Decimal
    text: str = ""

    @property
    def dotted(self) -> str:
        """The path as written: ``serve.gpu_memory_utilization``."""
        return format_path(self.path)

    @property
    def integral(self) -> bool:
        """Whether the grid is whole numbers (then its values are ints)."""
        return all(d == d.to_integral_value() for d in (self.low, self.high, self.step))

    @property
    def count(self) -> int:
        """How many grid points: 11 for 0.85..0.95:0.01."""
        return int((self.high - self.low) / self.step) + 1

    def value(self, index: int) -> int | float:
        """The grid point at ``index`` (0 is the low bound), exact: low + index x step in decimal."""
        if not 0 <= index < self.count:
            raise IndexError(f"grid index {index} outside 0..{self.count - 1}")
        exact = self.low + index * self.step
        return int(exact) if self.integral else float(exact)

    def grid(self) -> list[int | float]:
        """Every grid point, low to high."""
        return [self.value(i) for i in range(self.count)]

    def launches_to_converge(self) -> int:
        """The most probes a search can need: both bounds, then halving the gap to adjacent."""
        return min(self.count, 2 + math.ceil(math.log2(max(self.count - 1, 1))))

    def cell(self, value: Any) -> Cell:
        """The cell that sets the path to ``value``: id ``gmu=0.9``."""
        settings = _settings({self.path: value}, short_names([self.path]))
        return Cell(id=settings, overrides={self.path: value}, settings=settings)


def parse_ceiling(text: str) -> Ceiling:
    """``PATH=LO..HI:STEP`` as a :class:`Ceiling` (see the module's docstring); ValueError when malformed."""

    def wrong(what: str) -> ValueError:
        return ValueError(
            f"--gx10-ceiling {text!r}: {what}; expected PATH=LO..HI:STEP, e.g. {CEILING_EXAMPLE}"
        )

    path_text, equals, span = text.partition("=")
    if not equals:
        raise wrong("no '=' between the key path and the range")
    try:
        path = parse_path(path_text)
    except ValueError as exc:
        raise wrong(str(exc)) from None
    bounds, colon, step_text = span.partition(":")
    low_text, dots, high_text = bounds.partition("..")
    if not (colon and dots):
        raise wrong("no LO..HI:STEP range")

    def number(name: str, token: str) -> Decimal:
        token = token.strip()
        if not _NUMBER.fullmatch(token):
            raise wrong(f"{name} {token!r} is not a number")
        try:
            return Decimal(token)
        except InvalidOperation:  # the pattern admits only what Decimal reads; a guard
            raise wrong(f"{name} {token!r} is not a number") from None

    low, high, step = number("LO", low_text), number("HI", high_text), number("STEP", step_text)
    if not low < high:
        raise wrong(f"LO {low} is not below HI {high}")
    if not step > 0:
        raise wrong(f"STEP {step} is not above 0")
    if (high - low) % step != 0:
        raise wrong(f"HI - LO = {high - low} is not a whole number of steps of {step}")
    return Ceiling(path=path, low=low, high=high, step=step, text=text)


@dataclass(frozen=True)
class CeilingProbe:
    """One launch of the walk: the grid point, its value, and whether its cell passed."""

    step: int
    index: int
    value: int | float
    passed: bool
    elapsed_s: float


@dataclass
class CeilingResult:
    """Where a ceiling search got to: every probe in the order walked, the answer, and why it stopped."""

    ceiling: Ceiling
    max_launches: int
    max_time_s: float | None = None
    probes: list[CeilingProbe] = field(default_factory=list)
    stopped: str = ""
    error: str = ""
    elapsed_s: float = 0.0

    @property
    def answer(self) -> int | float | None:
        """The highest value that passed; None when none did."""
        passed = [p.value for p in self.probes if p.passed]
        return max(passed) if passed else None

    @property
    def lowest_failing(self) -> int | float | None:
        """The lowest value that failed above the answer; None when none did."""
        answer = self.answer
        failed = [p.value for p in self.probes if not p.passed and (answer is None or p.value > answer)]
        return min(failed) if failed else None

    def why(self) -> str:
        """Why the search stopped, in a sentence naming the values."""
        path, show = self.ceiling.dotted, format_value
        if self.stopped == "converged":
            return f"converged: {path}={show(self.answer)} passes, the next grid point {show(self.lowest_failing)} fails"
        if self.stopped == "launch_bound":
            return f"launch bound: {self.max_launches} launches made"
        if self.stopped == "time_bound":
            return f"time bound: {self.elapsed_s:.0f} s spent, no launch started after {self.max_time_s:g} s"
        if self.stopped == "low_fails":
            return f"the low bound {path}={show(self.ceiling.value(0))} fails: no value on the grid passes"
        if self.stopped == "high_passes":
            high = show(self.ceiling.value(self.ceiling.count - 1))
            return f"the high bound {path}={high} passes: the ceiling is at least {high}"
        if self.stopped == "probe_error":
            return f"a launch could not be judged ({self.error})"
        return "not run"

    def summary(self) -> str:
        """The answer in one line, said plainly when there is none."""
        if self.answer is None:
            return f"no ceiling: {self.why()}"
        above = self.lowest_failing
        bound = f", {format_value(above)} fails" if above is not None else ""
        at_least = "at least " if self.stopped == "high_passes" else ""
        return f"ceiling of {self.ceiling.dotted} at {at_least}{format_value(self.answer)}{bound}"

    def as_entry(self) -> dict[str, Any]:
        """The search as a JSON-ready entry."""
        ceiling = self.ceiling
        return {
            "path": ceiling.dotted,
            "low": ceiling.value(0),
            "high": ceiling.value(ceiling.count - 1),
            "step": int(ceiling.step) if ceiling.integral else float(ceiling.step),
            "grid_points": ceiling.count,
            "max_launches": self.max_launches,
            "max_time_s": self.max_time_s,
            "answer": self.answer,
            "lowest_failing": self.lowest_failing,
            "summary": self.summary(),
            "stopped": self.stopped,
            "why": self.why(),
            "error": self.error or None,
            "launches": len(self.probes),
            "elapsed_s": self.elapsed_s,
            "probes": [asdict(p) for p in self.probes],
        }


def next_index(passing: int, failing: int) -> int | None:
    """The grid point midway between the highest passing and the lowest failing; None when adjacent."""
    if failing - passing <= 1:
        return None
    return (passing + failing) // 2


def search_ceiling(
    ceiling: Ceiling,
    run: Callable[[int | float], bool],
    *,
    max_launches: int | None = None,
    max_time_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_probe: Callable[[CeilingProbe], None] | None = None,
) -> CeilingResult:
    """Walk the grid (see the module's docstring); ``run(value)`` launches and judges one cell.

    ``max_launches`` defaults to the launches the grid needs to converge; after ``max_time_s`` no
    launch starts (one under way finishes). An exception from ``run``
    ends the search as a probe error, the probes made kept; it never escapes.
    """
    bound = ceiling.launches_to_converge() if max_launches is None else max_launches
    if bound < 1:
        raise ValueError(f"max_launches {max_launches} is below 1")
    result = CeilingResult(ceiling=ceiling, max_launches=bound, max_time_s=max_time_s)
    start = clock()

    def judge(index: int) -> bool | None:
        value = ceiling.value(index)
        began = clock()
        try:
            passed = bool(run(value))
        except Exception as exc:  # a launcher's failure to judge, not a verdict: stop, keep the probes
            result.stopped, result.error = "probe_error", f"{type(exc).__name__}: {exc}"
            return None
        found = CeilingProbe(len(result.probes) + 1, index, value, passed, clock() - began)
        result.probes.append(found)
        if on_probe is not None:
            on_probe(found)
        return passed

    def launch_bound() -> str | None:
        if len(result.probes) >= bound:
            return "launch_bound"
        if max_time_s is not None and clock() - start >= max_time_s:
            return "time_bound"
        return None

    try:
        reason = walk(0, ceiling.count - 1, judge, next_index, launch_bound)
        if reason is not None:
            result.stopped = reason
        return result
    finally:
        result.elapsed_s = clock() - start
