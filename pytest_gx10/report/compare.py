"""Offline comparison: runs side by side, each held to the first by the release gate's own rules.

``python -m pytest_gx10 compare A.json B.json ...`` reads results files (``--gx10-json``), baseline
files (``--gx10-save-baseline``) and history entries (``--gx10-history``) in any mix. The first file
is the reference: it becomes a :class:`~pytest_gx10.report.baseline.Baseline` in memory (a baseline
file is one already) and every other file's results document is held to it with
:func:`pytest_gx10.report.baseline.compare`, the function the live gate calls, so a verdict here is
the verdict the gate would have given. The tables show each gated figure per point, one column per
file, the change against the reference with its direction spelled out, and each point's status (ok,
zero-token, failed, engine dead, not attempted; a point a run lacks is "not attempted" when that
run's engine died, else "not run").

``compare --history DIR`` reads a history folder instead and shows each gated figure's trend across
the runs in time order. The same tables come out as text, Markdown or a standalone HTML page with
overlaid SVG plots. This module imports nothing from pytest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path
from typing import Any

from pytest_gx10.figures import HIGHER, LOWER, MISSING, TRUE, Figure, Section, sections_in
from pytest_gx10.load.points import PointStatus
from pytest_gx10.report.baseline import (
    BASELINE_FORMAT,
    DEFAULT_GREEDY_MATCH_MIN,
    Baseline,
    BaselineError,
    GateResult,
    Tolerances,
    compare,
    figures,
    load_baseline,
    software_facts,
)
from pytest_gx10.report.greedy import GreedyOutputs
from pytest_gx10.report.history import HISTORY_FORMAT, HISTORY_VERSION, history_files
from pytest_gx10.report.markdown import markdown_table
from pytest_gx10.report.results import SCHEMA_VERSION
from pytest_gx10.report.svg import LegendItem, Series, series_plot
from pytest_gx10.report.tables import Table

__all__ = [
    "BOOT_FAILED",
    "NOT_RUN",
    "CompareError",
    "Comparison",
    "History",
    "RunFile",
    "change_text",
    "compare_files",
    "load_history",
    "load_run",
    "reference_of",
    "text_block",
]

NOT_RUN = "not run"  # a point a run lacks while its engine lived (fewer points asked, or deselected)
BOOT_FAILED = "boot failed"  # every point of a matrix cell whose deployment never answered
MINUS = "\N{MINUS SIGN}"
DEAD_STATES = ("dead", "hung")
FAILED_COLOUR, POINTS_COLOUR = "#d62728", "#ff7f0e"


class CompareError(ValueError):
    """A file or folder that cannot be compared; the message is one line naming it and the problem."""


# --- reading files --------------------------------------------------------------------------------


def reference_of(path: Path, document: Mapping[str, Any]) -> Baseline:
    """A results document as the baseline the gate would hold other runs to (built in memory).

    The same fields :func:`~pytest_gx10.report.baseline.save_baseline` writes, less the greedy
    outputs (a results file has none); a file that does not say which client machine ran it has none.
    """
    return Baseline(
        path=path,
        created_at=str(document.get("started_at", "?")),
        software=software_facts(document),
        client=dict(document.get("client") or {}),
        deployment=dict(document.get("deployment") or {}),
        figures=figures(document),
        greedy=None,
        results=document,
        sections={name: section for name, section, _ in sections_in(document) if section is not None},
    )


@dataclass(frozen=True)
class RunFile:
    """One file read for comparison: its results document and the baseline it makes as reference."""

    path: Path
    kind: str  # "results", "baseline" or "history"
    document: Mapping[str, Any]
    reference: Baseline
    greedy: GreedyOutputs | None = None
    client: Mapping[str, Any] = field(default_factory=dict)  # the file's client block, if it has one
    gate: Mapping[str, Any] | None = None  # the live gate's verdict (a history entry, a results file)

    @property
    def profile(self) -> str:
        """The profile the run used, or ``?``."""
        return str(self.document.get("profile") or self.reference.software.get("profile") or "?")

    @property
    def started(self) -> str:
        """When the run started (``2026-12-04T23:44:35+00:00``), or ``?``."""
        return str(self.document.get("started_at") or self.reference.created_at or "?")

    @property
    def engine_died(self) -> bool:
        """True when the run's engine died or hung (its verdict, or a point saying so)."""
        engine = self.document.get("engine")
        if isinstance(engine, Mapping) and engine.get("state") in DEAD_STATES:
            return True
        dead = (PointStatus.ENGINE_DEAD, PointStatus.NOT_ATTEMPTED)
        return any(e.get("status") in dead for _, _, entries in sections_in(self.document) for e in entries)

    def gate_failed(self) -> bool | None:
        """The live gate's verdict on this run: True when it failed, None when no gate ran."""
        gate = self.gate if self.gate is not None else self.document.get("gate")
        if not isinstance(gate, Mapping) or not isinstance(gate.get("passed"), bool):
            return None
        return not gate["passed"]


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompareError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CompareError(f"{path}: a folder, not a results or baseline file") from None
    except OSError as exc:
        raise CompareError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CompareError(f"{path}: not UTF-8 text, so not a results or baseline file") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CompareError(f"{path}: not JSON ({exc})") from None


def _results(path: Path, data: Any, where: str = "") -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise CompareError(f"{path}: {where}a JSON {type(data).__name__}, not a results document")
    version = data.get("schema_version")
    if version is None:
        raise CompareError(
            f'{path}: {where}not a pytest-gx10 results or baseline file (no "schema_version" and no '
            '"format"); write one with --gx10-json=PATH or --gx10-save-baseline=PATH'
        )
    if version != SCHEMA_VERSION:
        raise CompareError(
            f"{path}: {where}results schema version {version!r}; this pytest-gx10 reads version {SCHEMA_VERSION}"
        )
    return data


def load_run(path: Path) -> RunFile:
    """Read a results file, a baseline file or a history entry; raises :class:`CompareError`."""
    data = _read_json(path)
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == BASELINE_FORMAT:
        try:
            baseline = load_baseline(path)
        except BaselineError as exc:
            raise CompareError(str(exc)) from None
        document = _results(path, baseline.results, "its 'results': ") if baseline.results else {}
        return RunFile(path, "baseline", document, baseline, baseline.greedy, baseline.client)
    if kind == HISTORY_FORMAT:
        if data.get("version") != HISTORY_VERSION:
            raise CompareError(
                f"{path}: history entry version {data.get('version')!r}; this pytest-gx10 reads "
                f"version {HISTORY_VERSION}"
            )
        document = _results(path, data.get("results"), "its 'results': ")
        client = data.get("client") if isinstance(data.get("client"), dict) else {}
        gate = data.get("gate") if isinstance(data.get("gate"), dict) else None
        return RunFile(path, "history", document, reference_of(path, document), None, client, gate)
    if kind is not None:
        raise CompareError(
            f"{path}: format {kind!r} is not one this command reads (a results file, "
            f"{BASELINE_FORMAT!r} or {HISTORY_FORMAT!r})"
        )
    document = _results(path, data)
    return RunFile(path, "results", document, reference_of(path, document))


def labels_of(paths: Sequence[Path]) -> list[str]:
    """Short names for the files: the file name, or the path where names repeat; ``(2)`` for a twin."""
    by_name: dict[str, set[Path]] = {}
    for path in paths:
        by_name.setdefault(path.name, set()).add(path.resolve())
    labels = [p.name if len(by_name[p.name]) == 1 else str(p) for p in paths]
    out: list[str] = []
    for label in labels:
        seen = out.count(label) + sum(1 for o in out if o.startswith(label + " ("))
        out.append(label if seen == 0 else f"{label} ({seen + 1})")
    return out


# --- what is shown --------------------------------------------------------------------------------


def _keyed_sections(runs: Sequence[RunFile]) -> list[Section]:
    """Every section with a key any run holds, in the declared order (a file's own declaration first)."""
    found: dict[str, tuple[int, int, Section]] = {}
    for run in runs:
        for name, section, _ in sections_in(run.document):
            section = run.reference.sections.get(name) or section
            if section is None or section.key is None or name in found:
                continue
            found[name] = (section.order, len(found), section)
    return [s for _, _, s in sorted(found.values(), key=lambda item: (item[0], item[1]))]


def _entries(run: RunFile, section: Section) -> dict[str, Mapping[str, Any]]:
    """The run's entries of a section by label (``N=8``)."""
    value = run.document.get(section.name)
    out: dict[str, Mapping[str, Any]] = {}
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, Mapping):
            label = section.label_of(entry)
            if label is not None:
                out[label] = entry
    return out


def _point_labels(runs: Sequence[RunFile], section: Section) -> list[str]:
    """Every point of the section any run holds, ordered by its key (N=1, 2, 4, 8, 16)."""
    keys: dict[str, Any] = {}
    for run in runs:
        for label, entry in _entries(run, section).items():
            keys.setdefault(label, entry.get(section.key or ""))
    labels = list(keys)
    try:
        return sorted(labels, key=lambda label: keys[label])
    except TypeError:  # keys of mixed types: first seen first
        return labels


def status_of(run: RunFile, entry: Mapping[str, Any] | None) -> str:
    """A point's status in the run: its own word, else ``not attempted``/``not run`` when absent.

    An entry of a section that records no status (a needle case) has none: ``""``.
    """
    if entry is None:
        if run.document.get("cell_status") == BOOT_FAILED:
            return BOOT_FAILED
        return PointStatus.NOT_ATTEMPTED if run.engine_died else NOT_RUN
    status = entry.get("status")
    return status if isinstance(status, str) else ""


def _shown(section: Section, tolerances: Tolerances, points: Sequence[str]) -> list[Figure]:
    """The section's figures the gate checks: gated, and a tail figure only with a tolerance of its own
    (by name, or for one of the points)."""
    return [
        f
        for f in section.figures
        if f.gated
        and not f.each
        and (not f.tail or any(tolerances.explicit(f"{section.name}[{p}].{f.name}") for p in points))
    ]


def direction(figure: Figure) -> str:
    """``higher is better``, ``lower is better`` or ``must stay true``."""
    return {HIGHER: "higher is better", LOWER: "lower is better", TRUE: "must stay true"}.get(
        figure.better or "", "not gated"
    )


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _title(section: Section, figure: Figure, tolerances: Tolerances | None) -> str:
    unit = f" ({figure.unit})" if figure.unit else ""
    tolerance = "" if tolerances is None else f", tolerance {_pct(tolerances.of(figure.name))}"
    return f"{section.title}: {figure.label}{unit}, {direction(figure)}{tolerance}"


def _cell(figure: Figure, entry: Mapping[str, Any] | None, status: str) -> str:
    value = None if entry is None else entry.get(figure.name)
    text = figure.text(value) if value is not None else MISSING
    return f"{text} ({status})" if status not in ("", PointStatus.OK) else text


def change_text(figure: Figure, row: Mapping[str, Any] | None, *, in_reference: bool = True) -> str:
    """The change of one figure against the reference, as the gate judged it (one of its rows).

    ``−19.6 % worse: REGRESSED``, ``−3.0 % worse, within 10 %``, ``+6.6 % better``, ``missing:
    REGRESSED``; ``–`` when the gate did not check it (the reference has no value).
    """
    if row is None:
        return "not in reference" if not in_reference else MISSING
    verdict = row.get("verdict")
    regressed = verdict in ("regressed", "missing")
    if verdict == "missing":
        return "missing: REGRESSED"
    if figure.better == TRUE:
        if regressed:
            return f"was {row.get('baseline')}, now {row.get('value')}: REGRESSED"
        return "same" if row.get("value") == row.get("baseline") else f"now {row.get('value')}"
    change = row.get("change")
    if not isinstance(change, int | float):
        return MISSING
    percent = change * 100
    if abs(percent) < 0.05:
        text, worse = "±0.0 %", False
    else:
        worse = (percent < 0) == (figure.better == HIGHER)
        sign = "+" if percent > 0 else MINUS
        text = f"{sign}{abs(percent):.1f} % {'worse' if worse else 'better'}"
    if verdict == "regressed":
        return f"{text}: REGRESSED"
    tolerance = row.get("tolerance")
    if worse and isinstance(tolerance, int | float):
        return f"{text}, within {_pct(tolerance)}"
    return text


def _run_facts(run: RunFile, label: str, reference: bool) -> list[str]:
    doc = run.document
    server = " ".join(str(doc[k]) for k in ("server_label", "server_version") if doc.get(k)) or MISSING
    target = str(doc.get("target_label") or doc.get("target_kind") or MISSING)
    return [
        label + (" (reference)" if reference else ""),
        run.kind,
        run.profile,
        server,
        target,
        run.started,
    ]


FACT_HEADERS = ("file", "kind", "profile", "server", "target", "started")


# --- comparing files ------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Files held to the first: one gate verdict per other file, and the tables to show them."""

    runs: list[RunFile]
    labels: list[str]
    tolerances: Tolerances
    gates: list[GateResult]  # one per file after the first

    @property
    def passed(self) -> bool:
        """True when no file regressed against the reference."""
        return all(g.passed for g in self.gates)

    @property
    def exit_code(self) -> int:
        """0 when every file passed, 1 when any regressed."""
        return 0 if self.passed else 1

    def verdict_lines(self) -> list[str]:
        """Each file's verdict, its regressions indented under it, then its notes."""
        lines: list[str] = []
        for label, gate in zip(self.labels[1:], self.gates, strict=True):
            lines.append(f"{label}: {gate.headline.replace(str(gate.baseline.path), self.labels[0])}")
            lines += [f"  {r}" for r in gate.regressions]
            lines += [f"  note: {n}" for n in (*gate.warnings, *gate.notes)]
        return lines

    def tables(self) -> list[Table]:
        """The files, then per section: the status per point and a table per gated figure."""
        ref = self.labels[0]
        out = [
            Table(
                "Files",
                FACT_HEADERS,
                [
                    _run_facts(r, label, i == 0)
                    for i, (r, label) in enumerate(zip(self.runs, self.labels, strict=True))
                ],
                anchor="gx10-files",
            )
        ]
        rows_by_gate = [{row["figure"]: row for row in gate.figures} for gate in self.gates]
        for section in _keyed_sections(self.runs):
            labels = _point_labels(self.runs, section)
            entries = [_entries(run, section) for run in self.runs]
            statuses = [
                [status_of(run, e.get(p)) for p in labels] for run, e in zip(self.runs, entries, strict=True)
            ]
            if any(s for column in statuses for s in column):
                out.append(
                    Table(
                        f"{section.title}: status per point",
                        ("point", *self.labels),
                        [[p, *(column[i] or MISSING for column in statuses)] for i, p in enumerate(labels)],
                        anchor=f"gx10-status-{section.name}",
                    )
                )
            for figure in _shown(section, self.tolerances, labels):
                headers = ["point", f"{ref} (reference)"]
                for label in self.labels[1:]:
                    headers += [label, f"{label} vs {ref}"]
                rows = []
                for i, point in enumerate(labels):
                    figure_id = f"{section.name}[{point}].{figure.name}"
                    row = [point, _cell(figure, entries[0].get(point), statuses[0][i])]
                    for j in range(1, len(self.runs)):
                        row.append(_cell(figure, entries[j].get(point), statuses[j][i]))
                        in_ref = entries[0].get(point, {}).get(figure.name) is not None
                        row.append(
                            change_text(figure, rows_by_gate[j - 1].get(figure_id), in_reference=in_ref)
                        )
                    rows.append(row)
                out.append(
                    Table(
                        _title(section, figure, self.tolerances),
                        tuple(headers),
                        rows,
                        anchor=f"gx10-{section.name}-{figure.name}",
                    )
                )
        return out

    def plots(self) -> list[str]:
        """One overlaid plot per gated number of each section: a series per file, its profile named."""
        svgs = []
        for section in _keyed_sections(self.runs):
            labels = _point_labels(self.runs, section)
            entries = [_entries(run, section) for run in self.runs]
            for figure in _shown(section, self.tolerances, labels):
                if figure.better not in (HIGHER, LOWER):
                    continue
                series = [
                    Series(
                        f"{label} ({run.profile})",
                        {p: _number(e.get(p), figure) for p in labels},
                        {p: s for p in labels if (s := status_of(run, e.get(p))) not in ("", PointStatus.OK)},
                    )
                    for run, label, e in zip(self.runs, self.labels, entries, strict=True)
                ]
                svgs.append(
                    series_plot(
                        f"{section.name}-{figure.name}",
                        f"{figure.label} vs {section.key}",
                        figure.column(),
                        labels,
                        series,
                        x_label=str(section.key),
                        unit=figure.unit,
                    )
                )
        return svgs

    def text(self) -> str:
        """The terminal output: the tables, then the verdicts."""
        parts = [f"gx10 compare: {len(self.runs)} files, each held to {self.labels[0]}"]
        parts += [text_block(t) for t in self.tables()]
        parts.append("\n".join(["Verdict", *self.verdict_lines()]))
        return "\n\n".join(parts) + "\n"

    def markdown(self) -> str:
        """The same tables in Markdown, and the verdicts as a list."""
        parts = ["## gx10 comparison\n"]
        parts += [markdown_table(t) for t in self.tables()]
        parts.append(_markdown_list("Verdict", self.verdict_lines()))
        return "\n".join(parts)

    def html(self) -> str:
        """A standalone page: verdicts, overlaid plots, every table."""
        verdicts = []
        for label, gate in zip(self.labels[1:], self.gates, strict=True):
            headline = gate.headline.replace(str(gate.baseline.path), self.labels[0])
            items = "".join(f"<li>{escape(r)}</li>" for r in gate.regressions)
            notes = "".join(f"<li>{escape(n)}</li>" for n in (*gate.warnings, *gate.notes))
            verdicts.append(
                f'<p class="verdict"><b>{escape(label)}</b>: {_verdict_span(gate.passed, headline)}</p>'
                + (f'<ul class="gx10-regressions">{items}</ul>' if items else "")
                + (f'<ul class="notes">{notes}</ul>' if notes else "")
            )
        return _page(
            f"gx10 comparison: {', '.join(self.labels)}",
            f"<h1>gx10 comparison</h1><p>Each file held to {escape(self.labels[0])} by the release gate's rules.</p>",
            "\n".join(verdicts),
            self.plots(),
            self.tables(),
        )


def _number(entry: Mapping[str, Any] | None, figure: Figure) -> float | None:
    value = None if entry is None else entry.get(figure.name)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compare_files(
    runs: Sequence[RunFile],
    tolerances: Tolerances,
    *,
    greedy_min: float = DEFAULT_GREEDY_MATCH_MIN,
    strict_facts: bool = False,
    labels: Sequence[str] | None = None,
) -> Comparison:
    """Hold every run after the first to the first, as the live gate would; raises CompareError.

    A tolerance naming no figure of the reference is refused with the closest name, as the live gate
    refuses it. Greedy outputs are compared when both files hold them (baseline files).
    """
    if len(runs) < 2:
        raise CompareError("compare needs at least two files: a reference and one to hold to it")
    first = runs[0]
    if not first.reference.figures:
        raise CompareError(f"{first.path}: holds no gated figure to hold the other files to")
    unknown = tolerances.unknown(first.reference.figures)
    if unknown:
        raise CompareError("tolerance: " + "; ".join(unknown))
    gates = []
    for run in runs[1:]:
        reference, notes = first.reference, []
        if reference.greedy is not None and run.greedy is None:
            reference = replace(reference, greedy=None)
            notes.append(f"greedy outputs not compared: {run.path} holds none (only a baseline file does)")
        document = run.document
        if run.client and not document.get("client"):  # an older results document inside the file
            document = {**document, "client": run.client}
        gate = compare(
            reference,
            document,
            tolerances=tolerances,
            greedy=run.greedy,
            greedy_min=greedy_min,
            strict_facts=strict_facts,
        )
        gate.notes[:0] = notes
        gates.append(gate)
    names = list(labels) if labels is not None else labels_of([r.path for r in runs])
    return Comparison(list(runs), names, tolerances, gates)


# --- history --------------------------------------------------------------------------------------


@dataclass
class History:
    """The runs of a history folder in time order, and each gated figure's trend across them."""

    directory: Path
    runs: list[RunFile]
    tolerances: Tolerances

    def _marks(self, run: RunFile) -> list[str]:
        bad = []
        for section in _keyed_sections([run]):
            for label, entry in _entries(run, section).items():
                status = status_of(run, entry)
                if status not in ("", PointStatus.OK):
                    bad.append(f"{label} {status}")
        return bad

    def _gate_word(self, run: RunFile) -> str:
        failed = run.gate_failed()
        return MISSING if failed is None else "failed" if failed else "passed"

    def tables(self) -> list[Table]:
        """The runs (time, profile, gate, points not ok), then per gated figure its trend."""
        out = [
            Table(
                "Runs, oldest first",
                ("run", "started", "file", "profile", "server", "gate", "points not ok"),
                [
                    [
                        f"#{i}",
                        run.started,
                        run.path.name,
                        run.profile,
                        str(run.document.get("server_version") or MISSING),
                        self._gate_word(run),
                        ", ".join(self._marks(run)) or MISSING,
                    ]
                    for i, run in enumerate(self.runs, 1)
                ],
                anchor="gx10-runs",
            )
        ]
        for section in _keyed_sections(self.runs):
            labels = _point_labels(self.runs, section)
            entries = [_entries(run, section) for run in self.runs]
            for figure in _shown(section, self.tolerances, labels):
                rows = [
                    [f"#{i}", self._gate_word(run)]
                    + [_cell(figure, e.get(p), status_of(run, e.get(p))) for p in labels]
                    for i, (run, e) in enumerate(zip(self.runs, entries, strict=True), 1)
                ]
                out.append(
                    Table(
                        f"{_title(section, figure, None)}: trend",
                        ("run", "gate", *labels),
                        rows,
                        anchor=f"gx10-trend-{section.name}-{figure.name}",
                    )
                )
        return out

    def plots(self) -> list[str]:
        """Per gated number, a series per point across the runs; failed runs shaded."""
        keys = list(range(1, len(self.runs) + 1))
        bands: dict[Any, tuple[str, str]] = {}
        for i, run in zip(keys, self.runs, strict=True):
            if run.gate_failed():
                bands[i] = (FAILED_COLOUR, "gate failed")
            elif self._marks(run):
                bands[i] = (POINTS_COLOUR, "points failed: " + ", ".join(self._marks(run)))
        legend = []
        if any(c == FAILED_COLOUR for c, _ in bands.values()):
            legend.append(LegendItem(FAILED_COLOUR, "run whose gate failed", band=True))
        if any(c == POINTS_COLOUR for c, _ in bands.values()):
            legend.append(LegendItem(POINTS_COLOUR, "run with points not ok", band=True))
        svgs = []
        for section in _keyed_sections(self.runs):
            labels = _point_labels(self.runs, section)
            entries = [_entries(run, section) for run in self.runs]
            for figure in _shown(section, self.tolerances, labels):
                if figure.better not in (HIGHER, LOWER):
                    continue
                series = []
                for point in labels:
                    values = {i: _number(e.get(point), figure) for i, e in zip(keys, entries, strict=True)}
                    marks = {
                        i: s
                        for i, run, e in zip(keys, self.runs, entries, strict=True)
                        if (s := status_of(run, e.get(point))) not in ("", PointStatus.OK)
                    }
                    series.append(Series(point, values, marks))
                svgs.append(
                    series_plot(
                        f"trend-{section.name}-{figure.name}",
                        f"{figure.label}: trend",
                        figure.column(),
                        keys,
                        series,
                        x_label="run, oldest first",
                        tick_prefix="#",
                        unit=figure.unit,
                        bands=bands,
                        band_legend=legend,
                    )
                )
        return svgs

    def text(self) -> str:
        """The terminal output: the runs, then each gated figure's trend."""
        head = f"gx10 history: {len(self.runs)} runs in {self.directory}, oldest first"
        return "\n\n".join([head, *(text_block(t) for t in self.tables())]) + "\n"

    def markdown(self) -> str:
        """The same tables in Markdown."""
        return "\n".join(["## gx10 history\n", *(markdown_table(t) for t in self.tables())])

    def html(self) -> str:
        """A standalone page: trend plots with failed runs shaded, then every table."""
        return _page(
            f"gx10 history: {self.directory}",
            f"<h1>gx10 history</h1><p>{len(self.runs)} runs in {escape(str(self.directory))}, oldest first.</p>",
            "",
            self.plots(),
            self.tables(),
        )


def load_history(directory: Path, tolerances: Tolerances) -> History:
    """Read every entry of a history folder, oldest first; raises :class:`CompareError`."""
    if not directory.exists():
        raise CompareError(f"{directory}: no such folder; fill one with --gx10-history={directory}")
    if not directory.is_dir():
        raise CompareError(f"{directory}: not a folder; --history takes the folder --gx10-history wrote")
    paths = history_files(directory)
    if not paths:
        raise CompareError(f"{directory}: holds no runs; fill it with --gx10-history={directory}")
    runs = [load_run(p) for p in paths]
    known = {figure_id for run in runs for figure_id in run.reference.figures}
    unknown = tolerances.unknown(known)
    if unknown:
        raise CompareError("tolerance: " + "; ".join(unknown))
    return History(directory, runs, tolerances)


# --- writers --------------------------------------------------------------------------------------


PLOT_KEY = (
    "A hollow marker is a point measured with failures (zero-token, failed); a cross on the axis is a "
    "point with no value (engine dead, not attempted, not run). Hover a point for its value and status."
)
TEXT_TABLES = ("gx10-files", "gx10-runs", "gx10-status-")  # words, not figures: aligned left


def text_block(table: Table) -> str:
    """A table as aligned text under its title, uncut: figures right-aligned, words left-aligned."""
    rows = [list(table.headers), *table.rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(table.headers))]
    words = table.anchor.startswith(TEXT_TABLES)

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 or words else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return "\n".join([table.title, *(line(r) for r in rows)])


def _markdown_list(title: str, lines: Sequence[str]) -> str:
    items = [
        ("  " if line.startswith("  ") else "") + "- " + line.strip().replace("|", "\\|") for line in lines
    ]
    return "\n".join([f"### {title}", "", *items]) + "\n"


def _verdict_span(ok: bool, text: str) -> str:
    return f'<span class="{"pass" if ok else "fail"}">{escape(text)}</span>'


PAGE_STYLE = """<style>
body { color: #111; background: #fff; font-family: sans-serif; font-size: 14px; margin: 16px 24px; }
h1 { font-size: 20px; }
table { border-collapse: collapse; margin: 6px 0 16px 0; font-size: 13px; }
caption { text-align: left; font-weight: bold; padding: 4px 0; color: #111; white-space: nowrap; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; color: #111; }
th { background: #f0f0f0; }
th:first-child, td:first-child, table.words th, table.words td { text-align: left; }
p.key { color: #333; font-size: 13px; }
.pass { color: #1b5e20; font-weight: bold; }
.fail { color: #b71c1c; font-weight: bold; }
.plots svg { margin: 4px 12px 8px 0; border: 1px solid #ddd; vertical-align: top; background: #fff; }
</style>"""


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    words = ' class="words"' if table.anchor.startswith(TEXT_TABLES) else ""
    return (
        f'<table data-table="{escape(table.anchor or table.title)}"{words}><caption>{escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _page(title: str, head: str, verdicts: str, svgs: Sequence[str], tables: Sequence[Table]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        PAGE_STYLE,
        "</head><body>",
        head,
        verdicts,
        f'<p class="key">{escape(PLOT_KEY)}</p><div class="plots">' + "\n".join(svgs) + "</div>"
        if svgs
        else "",
        *(_table_html(t) for t in tables),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
