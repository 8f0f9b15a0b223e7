"""Figure declarations: each suite says once what it measures, and every writer and gate reads it.

A :class:`Section` is where a suite records its entries (``gx10_record("sweep", {...})``): the field
that names an entry, and a :class:`Figure` per measured value with its label, unit, number format and
which way is better. The report, the Markdown, the terminal summary, the floors and the baseline gate
read these declarations; nothing in the core names a suite's section or guesses a direction from a
figure's name.

A suite declares its sections in its own package and registers them when imported::

    from pytest_gx10.figures import HIGHER, LOWER, Figure, Section, register

    SWEEP = register(Section("sweep", key="concurrency", figures=(
        Figure("agg_decode_tps", "aggregate decode", "tok/s", HIGHER, digits=1),
        Figure("median_ttft_s", "median TTFT", "s", LOWER, digits=2),
    )))

Under pytest-xdist the controller never imports the test modules: every record carries its section's
declaration as data (:func:`declaration_data`), and the controller adopts it (:func:`adopt`). The
shipped suites' declarations are also found on first need (a record of ``sweep`` from any test file).
Optional presenters (the post's own table layouts, plots, terminal lines) are plain functions on the
section; a section without them gets the generic tables and terminal block. No pytest import here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_gx10.report.tables import Table

__all__ = [
    "HIGHER",
    "LOWER",
    "MISSING",
    "TRUE",
    "Figure",
    "Overlay",
    "Section",
    "adopt",
    "declaration_data",
    "declared",
    "num",
    "plain",
    "register",
    "sections_in",
]

HIGHER = "higher"  # a rate: a floor holds it up, a baseline regresses when it falls
LOWER = "lower"  # a time: a ceiling holds it down, a baseline regresses when it rises
TRUE = "true"  # a verdict that must stay true (a needle retrieved)
DIRECTIONS = (HIGHER, LOWER, TRUE)
MISSING = "–"


def num(value: Any, digits: int = 1, *, thousands: bool = False) -> str:
    """A figure as the post writes it: fixed decimals, whole numbers with spaced thousands; – if absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else str(value)
    if thousands:
        return f"{round(value):,}".replace(",", " ")
    return f"{value:.{digits}f}"


def plain(value: Any) -> str:
    """A value with no declared format: floats to 3 decimals under 10, else 1."""
    if isinstance(value, float):
        return num(value, 3 if abs(value) < 10 else 1)
    return MISSING if value is None else str(value)


@dataclass(frozen=True)
class Figure:
    """One measured value of an entry, declared once.

    ``label`` is the figure in a sentence ("aggregate decode"), ``short`` in a narrow column
    ("agg decode"), ``heading`` in a table's header ("Agg decode"); each defaults to the one before.
    ``better`` is :data:`HIGHER`, :data:`LOWER`, :data:`TRUE` or None (kept, never gated). A ``tail``
    figure (a percentile of a few samples) is gated only when given a tolerance of its own; an
    ``each`` figure is a list, gated position by position (``per_position[0]``).
    """

    name: str
    label: str
    unit: str = ""
    better: str | None = None
    digits: int | None = None  # None: plain (3 decimals under 10, else 1)
    thousands: bool = False
    tail: bool = False
    each: bool = False
    short: str = ""
    heading: str = ""
    definition: str = ""  # one sentence for the report's reader: what the figure is, how it is measured

    def __post_init__(self) -> None:
        if self.better is not None and self.better not in DIRECTIONS:
            raise ValueError(
                f"figure {self.name}: better must be one of {DIRECTIONS} or None, not {self.better!r}"
            )
        if not self.short:
            object.__setattr__(self, "short", self.label)
        if not self.heading:
            object.__setattr__(self, "heading", self.short)

    @property
    def gated(self) -> bool:
        """True when a baseline holds this figure (it has a better direction)."""
        return self.better is not None

    def text(self, value: Any) -> str:
        """The value in the declared format, without its unit."""
        if self.digits is None and not self.thousands:
            return plain(value)
        return num(value, self.digits or 0, thousands=self.thousands)

    def with_unit(self, value: Any) -> str:
        """The value and its unit (``121.3 tok/s``); – alone when absent."""
        text = self.text(value)
        return f"{text} {self.unit}" if self.unit and value is not None else text

    def column(self) -> str:
        """The table header: ``Agg decode (tok/s)``."""
        return f"{self.heading} ({self.unit})" if self.unit else self.heading

    def narrow(self) -> str:
        """The terminal's header: ``agg decode tok/s``."""
        return f"{self.short} {self.unit}" if self.unit else self.short

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (it travels on test reports and into baseline files)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        """The inverse of :meth:`as_dict`; unknown keys are ignored (a newer writer's)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


LinesFn = Callable[[Sequence[Mapping[str, Any]]], list[str]]


@dataclass(frozen=True)
class Overlay:
    """Figures to draw and compare beside the run's: the reference post's, or a baseline's.

    ``document`` is shaped like a results document (``{"sweep": [{"concurrency": 1, ...}]}``);
    ``label`` names the series in legends and change columns ("post MTP-2", "baseline").
    """

    label: str
    document: Mapping[str, Any]

    def entries(self, section: str) -> list[Mapping[str, Any]]:
        """The overlay's entries of that section (none when it has none)."""
        value = self.document.get(section)
        return [e for e in value if isinstance(e, Mapping)] if isinstance(value, list) else []


TablesFn = Callable[[Sequence[Mapping[str, Any]], Sequence[Overlay]], "list[Table]"]
PlotsFn = Callable[[Sequence[Mapping[str, Any]], Sequence[Overlay]], list[str]]


@dataclass(frozen=True)
class Section:
    """Where a suite records entries: the field naming an entry, its figures, and how it is shown.

    ``entry_label`` formats the key's value in figure ids and messages (``N={}`` gives
    ``sweep[N=8].agg_decode_tps``). ``order`` places the section among the others in every writer;
    ``sort_by`` names the fields its entries are kept in order of (default: the key), so that
    ``rate 8/s`` comes before ``rate 10/s``.
    The presenters are optional: ``tables`` (``tables(entries, overlays)``: the tables of some
    entries, all of them in the summary and the Markdown, one in its test's row of the HTML report;
    the overlays give comparisons to add), ``terminal`` (the section's lines
    in the ``gx10`` terminal section) and ``plots`` (inline SVG: ``plots(entries, overlays)``, the
    overlays being the reference post's or a baseline's figures to draw beside the run's).
    They are not data: a controller that only adopted the section from a report uses the generic ones.
    """

    name: str
    key: str | None = None
    figures: tuple[Figure, ...] = ()
    title: str = ""
    entry_label: str = "{}"
    order: int = 100
    sort_by: tuple[str, ...] = ()
    tables: TablesFn | None = field(default=None, compare=False, repr=False)
    terminal: LinesFn | None = field(default=None, compare=False, repr=False)
    plots: PlotsFn | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        names = [f.name for f in self.figures]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"section {self.name}: figures declared twice: {', '.join(twice)}")
        if not self.title:
            object.__setattr__(self, "title", self.name.replace("_", " ").capitalize())

    def figure(self, name: str) -> Figure | None:
        """The declared figure of that name, or None."""
        return next((f for f in self.figures if f.name == name), None)

    def label_of(self, entry: Mapping[str, Any]) -> str | None:
        """The entry's label (``N=8``) from its key field; None when it has none."""
        if self.key is None or self.key not in entry:
            return None
        return self.entry_label.format(entry[self.key])

    def data(self) -> dict[str, Any]:
        """The declaration as JSON-ready data (presenters left out)."""
        return {
            "name": self.name,
            "key": self.key,
            "figures": [f.as_dict() for f in self.figures],
            "title": self.title,
            "entry_label": self.entry_label,
            "order": self.order,
            "sort_by": list(self.sort_by),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Section:
        """A section from :meth:`data` (no presenters). Raises ValueError or TypeError when malformed."""
        return cls(
            name=str(data["name"]),
            key=None if data.get("key") is None else str(data["key"]),
            figures=tuple(Figure.from_dict(f) for f in data.get("figures") or ()),
            title=str(data.get("title") or ""),
            entry_label=str(data.get("entry_label") or "{}"),
            order=int(data.get("order", 100)),
            sort_by=tuple(str(f) for f in data.get("sort_by") or ()),
        )


# --- the registry (one per process) -------------------------------------------------------------

_SECTIONS: dict[str, Section] = {}
_ORIGIN: dict[str, str] = {}  # section -> the module that registered it (imported again by a controller)
_ADOPTED: set[str] = set()  # sections known only from a report's data (no presenters)
_shipped_loaded = False


def register(section: Section) -> Section:
    """Declare a section (call it at import of the suite's module); returns it.

    Registering the same declaration again is a no-op (a module imported under two names); a
    different declaration under a name already taken is an error naming both.
    """
    existing = _SECTIONS.get(section.name)
    caller = sys._getframe(1).f_globals.get("__name__", "")
    if existing is not None and section.name not in _ADOPTED:
        if existing.data() != section.data():
            raise ValueError(
                f"section {section.name!r} declared twice, differently: in {_ORIGIN.get(section.name)} "
                f"and in {caller}"
            )
        return existing
    _SECTIONS[section.name] = section
    _ORIGIN[section.name] = caller
    _ADOPTED.discard(section.name)
    return section


def declared(name: str) -> Section | None:
    """The section of that name, or None when nothing declared it.

    On a first miss the shipped suites' declarations are loaded: a record into ``sweep`` made by any
    test file is shown the way suites/perf shows it.
    """
    if name not in _SECTIONS:
        _load_shipped()
    return _SECTIONS.get(name)


def declaration_data(name: str) -> dict[str, Any] | None:
    """What a record carries to the controller: the section's data and the module that declared it."""
    section = declared(name)
    if section is None:
        return None
    return {**section.data(), "module": _ORIGIN.get(name, "")}


def adopt(data: Mapping[str, Any]) -> Section | None:
    """Controller side: know a section from a record's data (first by importing its module).

    Importing the declaring module gives the presenters too; when that fails (a suite's module is
    not importable here) the data alone gives the figures, their units and directions. Malformed
    data is ignored (None): a record is never lost for its declaration.
    """
    name = data.get("name")
    if not isinstance(name, str):
        return None
    known = declared(name)
    if known is not None:
        return known
    module = data.get("module")
    if isinstance(module, str) and module and module.rsplit(".", 1)[-1] != "conftest":
        with contextlib.suppress(Exception):  # any import error: fall back on the data
            importlib.import_module(module)
        if name in _SECTIONS:
            return _SECTIONS[name]
    try:
        section = Section.from_data(data)
    except (KeyError, TypeError, ValueError):
        return None
    _SECTIONS[name] = section
    _ORIGIN[name] = str(module or "")
    _ADOPTED.add(name)
    return section


def sections_in(document: Mapping[str, Any]) -> list[tuple[str, Section | None, list[Mapping[str, Any]]]]:
    """(name, declaration or None, entries) for every list of entries in a results document, in order.

    Declared sections come by their ``order``; lists nothing declared (a suite's own section, the
    relaunches) follow in the document's order. A matrix run's ``cells`` are documents of their own,
    not a section.
    """
    found = []
    for position, (name, value) in enumerate(document.items()):
        if not isinstance(value, list) or name == "cells":
            continue
        entries = [e for e in value if isinstance(e, Mapping)]
        if not entries:
            continue
        section = declared(name)
        rank = section.order if section is not None else 1_000_000
        found.append((rank, position, name, section, entries))
    found.sort(key=lambda item: (item[0], item[1]))
    return [(name, section, entries) for _, _, name, section, entries in found]


def _load_shipped() -> None:
    """Import each shipped suite's ``figures`` module once (they register their sections)."""
    global _shipped_loaded
    if _shipped_loaded:
        return
    _shipped_loaded = True
    from pytest_gx10 import suites_dirs

    for folder in suites_dirs():
        for path in sorted(folder.glob("*/figures.py")):
            _import_file(folder, path)


def _import_file(folder: Path, path: Path) -> None:
    suite = path.parent.name
    # Installed, the suites are the package pytest_gx10.suites; in a clone they are files beside it.
    for name in (f"pytest_gx10.suites.{suite}.figures", f"{folder.name}.{suite}.figures"):
        module = sys.modules.get(name)
        if module is not None and Path(getattr(module, "__file__", "") or "").resolve() == path.resolve():
            return
    with contextlib.suppress(ImportError):
        spec = importlib.util.find_spec(f"pytest_gx10.suites.{suite}.figures")
        if spec is not None and spec.origin and Path(spec.origin).resolve() == path.resolve():
            importlib.import_module(spec.name)
            return
    name = f"_gx10_shipped_{suite}_figures"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
