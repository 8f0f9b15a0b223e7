"""A run over a matrix of deployments: which cells, each cell's settings, how each cell ended.

``--gx10-matrix`` (or a recipe's ``[[matrix]]``) makes every test that reaches the target run once
per cell: the session-scoped ``gx10_cell`` fixture is parametrized with the cells, so pytest runs a
cell's tests together, tears its deployment down and starts the next one's. ``--gx10-ceiling`` makes
the grid's cells and walks them by bisection (:func:`pytest_gx10.matrix.search_ceiling`),
running a cell's tests only when the walk reaches it (:func:`run_ceiling`).

A cell's outcome is its status: ``boot failed`` (its deployment never answered), ``engine dead``
(its engine died or hung under a test), ``failed`` (a test failed), ``ok``, or ``not run``.
The comparison of the cells, one column per cell against the reference cell, is the offline
``compare``'s (:mod:`pytest_gx10.report.compare`), fed each cell's block of the results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.figures import sections_in
from pytest_gx10.matrix import (
    Ceiling,
    CeilingResult,
    Cell,
    format_path,
    format_value,
    matrix_cells,
    search_ceiling,
)
from pytest_gx10.report import provenance
from pytest_gx10.report.baseline import Tolerances
from pytest_gx10.report.compare import (
    BOOT_FAILED,
    CompareError,
    Comparison,
    RunFile,
    compare_files,
    reference_of,
    text_block,
)
from pytest_gx10.report.tables import Table
from pytest_gx10.settings import Settings

__all__ = [
    "BOOT_FAILED",
    "CELL_FIXTURE",
    "CellOutcome",
    "MatrixReport",
    "MatrixRun",
    "cell_documents",
    "matrix_report",
    "plan_matrix",
    "run_ceiling",
    "tally",
]

CELL_FIXTURE = "gx10_cell"
OK, FAILED, ENGINE_DEAD, NOT_RUN = "ok", "failed", "engine dead", "not run"


@dataclass
class CellOutcome:
    """How one cell's tests went: their outcomes, and what its deployment did."""

    counts: Counter[str] = field(default_factory=Counter)
    boot_error: str | None = None  # its deployment never answered
    engine: str | None = None  # the sentinel's verdict when the engine died or hung
    ran: bool = False

    @property
    def status(self) -> str:
        """``boot failed``, ``engine dead``, ``failed``, ``ok`` or ``not run``."""
        if self.boot_error is not None:
            return BOOT_FAILED
        if self.engine is not None:
            return ENGINE_DEAD
        if self.counts["failed"] or self.counts["error"]:
            return FAILED
        return OK if self.ran else NOT_RUN

    @property
    def passed(self) -> bool:
        """True when the cell ran and nothing of it failed."""
        return self.status == OK


@dataclass
class MatrixRun:
    """The cells of this run, their settings, and how each ended (the controller's record)."""

    cells: list[Cell]
    settings: dict[str, Settings]  # by cell id
    reference: str  # the id of the cell the others are compared with
    ceiling: Ceiling | None = None
    ceiling_launches: int | None = None
    ceiling_time_s: float | None = None
    outcomes: dict[str, CellOutcome] = field(default_factory=dict)
    search: CeilingResult | None = None
    cell_of: dict[str, str] = field(default_factory=dict)  # nodeid -> cell id

    def outcome(self, cell_id: str) -> CellOutcome:
        """The cell's outcome so far."""
        return self.outcomes.setdefault(cell_id, CellOutcome())

    def above_ceiling_failures(self) -> int | None:
        """The failed tests of the cells the ceiling search found failing above its answer; None
        when the search has no answer (or did not converge on one), or a cell at or under it failed."""
        search = self.search
        if search is None or search.answer is None or search.stopped not in ("converged", "high_passes"):
            return None
        value_of = {
            cell.id: value
            for cell, value in zip(self.cells, self.ceiling.grid() if self.ceiling else [], strict=False)
        }
        failures = 0
        for cell_id, outcome in self.outcomes.items():
            failed = outcome.counts["failed"] + outcome.counts["error"]
            if not failed:
                continue
            if value_of.get(cell_id, search.answer) <= search.answer:
                return None
            failures += failed
        return failures

    def describe(self) -> str:
        """One line for the report header."""
        if self.ceiling is not None:
            c = self.ceiling
            return (
                f"ceiling search of {c.dotted} over {format_value(c.value(0))}..{format_value(c.value(c.count - 1))} "
                f"({c.count} values), each value a launch of its own"
            )
        ids = ", ".join(cell.id for cell in self.cells)
        return f"{len(self.cells)} cells, each launched, tested and torn down in turn: {ids}; reference {self.reference}"

    def count(self, report: pytest.TestReport) -> None:
        """Count a test's outcome under its cell (a setup error or skip counts once)."""
        cell_id = self.cell_of.get(report.nodeid)
        if cell_id is None:
            return
        outcome = self.outcome(cell_id)
        outcome.ran = True
        tally(outcome.counts, report)

    def cell_facts(self, cell: Cell) -> dict[str, Any]:
        """What the results say of a cell before its tests: its id, values and settings."""
        return {
            "cell": cell.id,
            "cell_name": cell.name,
            "cell_settings": cell.settings,
            "overrides": {format_path(path): value for path, value in cell.overrides.items()},
            "reference_cell": cell.id == self.reference,
        }

    def end_facts(self, cell_id: str) -> dict[str, Any]:
        """What the results say of a cell once its tests ran: its status, counts and errors."""
        outcome = self.outcome(cell_id)
        return {
            "cell_status": outcome.status,
            "cell_tests": dict(outcome.counts),
            "boot_error": outcome.boot_error,
            "engine_verdict": outcome.engine,
        }


def tally(counts: Counter[str], report: pytest.TestReport) -> None:
    """Count a test's outcome: its call's (xfailed apart), or once ``error`` or ``skipped`` for a
    setup or teardown that failed or skipped."""
    if report.when == "call":
        counts["xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome] += 1
    elif report.failed:
        counts["error"] += 1
    elif report.skipped:
        counts["skipped"] += 1


def plan_matrix(
    settings: Settings, build: Callable[[Cell], Settings], *, xdist_workers: bool, attach: bool
) -> MatrixRun | None:
    """The matrix this run asks for (None without one), each cell's settings built and checked.

    ``build(cell)`` resolves the settings of a cell (raising ``pytest.UsageError``). Every cell is
    built before any launch, so a cell whose values the recipe or profile refuses stops the run at
    once. Combinations that cannot work are refused, each naming the option to drop.
    """
    recipe = settings.launch
    named = recipe.matrix if recipe is not None else ()
    if not (settings.matrix or named or settings.ceiling is not None):
        return None
    asked = "--gx10-ceiling" if settings.ceiling is not None else "--gx10-matrix"
    if settings.ceiling is not None and (settings.matrix or named):
        source = (
            "--gx10-matrix"
            if settings.matrix
            else f"the recipe's [[matrix]] ({recipe.path if recipe else ''})"
        )
        raise pytest.UsageError(
            f"gx10: --gx10-ceiling and {source} together: a search walks one key; drop one"
        )
    refusals = [
        (
            attach,
            "--gx10-endpoint attaches to one running deployment; a matrix launches each cell "
            "(the twin, or --gx10-launch=RECIPE)",
        ),
        (xdist_workers, "-n runs tests side by side; a matrix runs its cells one after another (drop -n)"),
        (
            settings.keep,
            "--gx10-keep keeps a deployment after the run; each cell is torn down before the next",
        ),
        (
            settings.baseline is not None,
            "--gx10-baseline gates one deployment; compare the cells' own runs instead",
        ),
        (settings.save_baseline is not None, "--gx10-save-baseline saves one deployment; run the cell alone"),
        (
            settings.write_profile is not None,
            "--gx10-write-profile writes one deployment; run the cell alone",
        ),
        (settings.history is not None, "--gx10-history keeps one deployment's trend; run the cell alone"),
    ]
    for refused, why in refusals:
        if refused:
            raise pytest.UsageError(f"gx10: {asked}: {why}")
    if settings.ceiling is not None:
        cells = [settings.ceiling.cell(value) for value in settings.ceiling.grid()]
    else:
        try:
            cells = matrix_cells(settings.matrix, named)
        except ValueError as exc:
            where = f" ({recipe.path})" if named and recipe is not None else ""
            raise pytest.UsageError(f"gx10: matrix{where}: {exc}") from None
    built = {cell.id: build(cell) for cell in cells}
    ids = [cell.id for cell in cells]
    reference = settings.reference_cell or ids[0]
    if reference not in ids:
        raise pytest.UsageError(
            f"gx10: --gx10-reference-cell {reference!r} is not a cell of this matrix; its cells: {', '.join(ids)}"
        )
    return MatrixRun(
        cells=cells,
        settings=built,
        reference=reference,
        ceiling=settings.ceiling,
        ceiling_launches=settings.ceiling_launches,
        ceiling_time_s=settings.ceiling_time_s,
    )


def run_ceiling(session: pytest.Session, matrix: MatrixRun, write: Callable[[str], None]) -> CeilingResult:
    """Walk the ceiling's grid, running a cell's tests when the walk reaches it (in collection order).

    A cell passes when its tests ran and none failed or errored. The tests of cells the walk never
    reached are reported as deselected.
    """
    assert matrix.ceiling is not None
    by_cell: dict[str, list[pytest.Item]] = {cell.id: [] for cell in matrix.cells}
    others: list[pytest.Item] = []
    for item in session.items:
        cell_id = matrix.cell_of.get(item.nodeid)
        (by_cell[cell_id] if cell_id is not None else others).append(item)
    cell_by_value = {format_value(v): c for v, c in zip(matrix.ceiling.grid(), matrix.cells, strict=True)}
    run_items(session, others)

    def run(value: int | float) -> bool:
        cell = cell_by_value[format_value(value)]
        write(f"gx10 ceiling: launching {cell.id}")
        if not run_items(session, by_cell[cell.id]):
            raise _Stopped  # -x or --maxfail, or a test asked pytest to stop: not a verdict
        outcome = matrix.outcome(cell.id)
        write(f"gx10 ceiling: {cell.id} {outcome.status}")
        return outcome.passed

    try:
        result = search_ceiling(
            matrix.ceiling, run, max_launches=matrix.ceiling_launches, max_time_s=matrix.ceiling_time_s
        )
    except _Stopped:
        if session.shouldfail:
            raise session.Failed(session.shouldfail) from None
        raise session.Interrupted(session.shouldstop) from None
    finally:
        probed = {cell_id for cell_id, outcome in matrix.outcomes.items() if outcome.ran}
        unprobed = [item for cell_id, items in by_cell.items() if cell_id not in probed for item in items]
        if unprobed:
            session.config.hook.pytest_deselected(items=unprobed)
    matrix.search = result
    return result


class _Stopped(BaseException):
    """The session was asked to stop during a cell: the search ends without judging it."""


def run_items(session: pytest.Session, items: Sequence[pytest.Item]) -> bool:
    """Run ``items`` as pytest's own loop does, the last one tearing every fixture down; False when
    the session was asked to stop (``-x``, ``--maxfail``, Ctrl-C is an exception)."""
    for i, item in enumerate(items):
        nextitem = items[i + 1] if i + 1 < len(items) else None
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail or session.shouldstop:
            return False
    return True


def cell_documents(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The cell blocks of a results document (none for a run of one deployment)."""
    cells = document.get("cells")
    return [c for c in cells if isinstance(c, Mapping)] if isinstance(cells, list) else []


# --- the report -------------------------------------------------------------------------------------


@dataclass
class MatrixReport:
    """What a matrix run shows: each cell's outcome, the cells compared, the ceiling search."""

    tables: list[Table]
    comparison: Comparison | None
    note: str | None  # why there is no comparison
    search: str | None  # the ceiling search's answer, in a line

    def text(self) -> str:
        """The terminal's block."""
        parts = [text_block(t) for t in self.tables]
        if self.comparison is not None:
            parts += [text_block(t) for t in self.comparison.tables()[1:]]  # the files are the cells above
        if self.note:
            parts.append(self.note)
        if self.search:
            parts.append(self.search)
        return "\n\n".join(parts)

    def all_tables(self) -> list[Table]:
        """Every table, for the Markdown and the HTML."""
        tables = list(self.tables)
        if self.comparison is not None:
            tables += self.comparison.tables()[1:]
        if self.note:
            tables.append(Table("Comparison of the cells", ("note",), [[self.note]]))
        return tables


def _tests_text(counts: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    return shown or "none"


def _facts_text(doc: Mapping[str, Any]) -> str:
    block = doc.get("deployment") if isinstance(doc.get("deployment"), Mapping) else {}
    values = provenance.values(block or {})
    parts = []
    server = " ".join(str(doc[k]) for k in ("server_label", "server_version") if doc.get(k))
    if server:
        parts.append(server)
    if values.get("image"):
        parts.append(f"image {values['image']}")
    if values.get("serve_command"):
        parts.append(str(values["serve_command"]))
    return "; ".join(parts) or "-"


def matrix_report(document: Mapping[str, Any], matrix: MatrixRun, tolerances: Tolerances) -> MatrixReport:
    """The cells' outcomes, their comparison against the reference cell, and the ceiling search."""
    docs = {str(d.get("cell")): d for d in cell_documents(document)}
    rows = []
    for cell in matrix.cells:
        doc = docs.get(cell.id)
        if doc is None and matrix.ceiling is not None:
            continue  # a value the search never launched
        outcome = matrix.outcome(cell.id)
        why = outcome.boot_error or outcome.engine or ""
        label = cell.id + (" (reference)" if cell.id == matrix.reference else "")
        rows.append(
            [
                label,
                cell.settings or "-",
                outcome.status,
                _tests_text(outcome.counts),
                (why[:160] + " | " if why else "") + (_facts_text(doc) if doc is not None else "-"),
            ]
        )
    tables = [
        Table(
            "Matrix cells",
            ("cell", "values", "status", "tests", "deployment"),
            rows,
            anchor="gx10-matrix-cells",
        )
    ]
    search = None
    if matrix.search is not None:
        result = matrix.search
        probe_rows = [
            [str(p.step), format_value(p.value), "pass" if p.passed else "FAIL", f"{p.elapsed_s:.0f}"]
            for p in result.probes
        ]
        tables.append(
            Table(
                f"Ceiling search of {result.ceiling.dotted}",
                ("launch", "value", "cells' tests", "seconds"),
                probe_rows,
                note=f"{result.summary()} ({result.why()})",
                anchor="gx10-ceiling",
            )
        )
        search = f"gx10 ceiling: {result.summary()} ({result.why()}; {len(result.probes)} launches)"
        if matrix.above_ceiling_failures():
            search += "; the failed tests are those of the cells above the ceiling, so the run passes"
    comparison, note = None, None
    ordered = [matrix.reference] + [c.id for c in matrix.cells if c.id != matrix.reference]
    runs = [_cell_run(cell_id, docs[cell_id]) for cell_id in ordered if cell_id in docs]
    figures = any(
        section is not None and section.key for r in runs for _, section, _ in sections_in(r.document)
    )
    if len(runs) >= 2 and figures:
        try:
            comparison = compare_files(runs, tolerances, labels=[str(r.document.get("cell")) for r in runs])
        except CompareError as exc:
            note = f"cells not compared: {exc}"
    elif len(runs) < 2 and len(matrix.cells) >= 2 and matrix.ceiling is None:
        note = "cells not compared: fewer than two cells recorded figures"
    return MatrixReport(tables=tables, comparison=comparison, note=note, search=search)


def _cell_run(cell_id: str, doc: Mapping[str, Any]) -> RunFile:
    path = Path(f"cell {cell_id}")
    return RunFile(path, "cell", doc, reference_of(path, doc))
