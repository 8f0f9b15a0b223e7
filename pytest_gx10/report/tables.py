"""The report's tables, as plain values both writers render.

A :class:`Table` holds formatted cell text, never markup: the Markdown and HTML writers escape it
their own way, so what the server wrote (a model's reply) is always shown as text. A section's own
layout (the reference post's aggregate table, the needle table) comes from its declaration's
presenters (:mod:`pytest_gx10.figures`); any other section gets one row per entry, one column per
plain figure, headed with the declared label and unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_gx10.figures import MISSING, Overlay, Section, declared, num, plain, sections_in
from pytest_gx10.report.provenance import CLIENT_LABELS, DEPLOYMENT_LABELS, fact_text

__all__ = [
    "MISSING",
    "Table",
    "block_rows",
    "definitions_table",
    "engine_line",
    "entry_tables",
    "facts_table",
    "num",
    "provenance_rows",
    "results_tables",
    "run_date",
    "run_header",
    "run_rows",
    "section_table",
    "value_text",
]


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; ``blocks`` are (title, text) shown verbatim below it.

    Tables of one ``group`` (one point's per-request tables) sit under a heading of that name.
    """

    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    note: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)
    anchor: str = ""
    group: str = ""


FACT_LABELS = (
    ("target_label", "Target"),
    ("target", "Endpoint"),
    ("target_description", "Target description"),
    ("model", "Model"),
    ("server_label", "Server"),
    ("server_version", "Server version"),
    ("token_counting", "Prompt sizes"),
    ("profile", "Profile"),
    ("launch_recipe", "Launch recipe"),
    ("image", "Image"),
    ("serve_flags", "Serve flags"),
)
# A run fact the deployment block shows already (with its source) is not shown twice.
_SHOWN_BY_DEPLOYMENT = {
    "model": "model",
    "server_label": "server",
    "server_version": "server_version",
    "launch_recipe": "launch",
    "serve_flags": "serve_command",
}


def provenance_rows(meta: Mapping[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(deployment rows, client rows) of a results document: ``[label, "value [source]"]`` each,
    in the declared order; an unknown fact has no row."""
    block = meta.get("deployment")
    deployment = []
    if isinstance(block, Mapping):
        for key, label in DEPLOYMENT_LABELS:
            fact = block.get(key)
            if isinstance(fact, Mapping) and fact.get("value") not in (None, "", [], {}):
                deployment.append([label, fact_text(fact)])
    client = meta.get("client")
    rows = []
    if isinstance(client, Mapping):
        rows = [
            [label, f"{client[key]} [client]"] for key, label in CLIENT_LABELS if client.get(key) is not None
        ]
    return deployment, rows


def value_text(value: Any) -> str:
    """A fact's value on one line: a list space-separated, a mapping as ``k=v, ...``; never ``None``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return " ".join(value_text(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={value_text(v)}" for k, v in value.items() if v is not None)
    return str(value)


def run_rows(meta: Mapping[str, Any]) -> list[list[str]]:
    """The run's own facts (target, endpoint, profile, recipe, image, flags), leaving out what the
    deployment block shows already (with its source)."""
    found = meta.get("deployment")
    block: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    rows = []
    for key, label in FACT_LABELS:
        value = meta.get(key)
        if value in (None, "", [], {}) or _SHOWN_BY_DEPLOYMENT.get(key) in block:
            continue
        rows.append([label, value_text(value)])
    return rows


def facts_table(meta: Mapping[str, Any]) -> Table:
    """The run's facts: the deployment first (GPU, driver and CUDA, server build, image and digest,
    flags: each with its source), then the run's own (target, endpoint, profile), then the client
    machine. Each fact has one row."""
    deployment, client = provenance_rows(meta)
    return Table("Run", ("Fact", "Value"), [*deployment, *run_rows(meta), *client], anchor="gx10-facts")


def run_date(document: Mapping[str, Any]) -> str:
    """The run's start as the post writes its date: ``2026-06-13 15:02 UTC``; empty when unknown."""
    started = document.get("started_at")
    if not isinstance(started, str) or not started:
        return ""
    try:
        when = datetime.fromisoformat(started)
    except ValueError:
        return started
    zone = when.tzname() or ""
    return f"{when:%Y-%m-%d %H:%M} {'UTC' if zone in ('UTC', 'UTC+00:00') else zone}".rstrip()


def engine_line(document: Mapping[str, Any]) -> str:
    """ "Engine dead since 16:13:25: CUDA error ..." when the results say the engine died; else empty."""
    engine = document.get("engine")
    if not isinstance(engine, Mapping) or engine.get("state") in (None, "alive"):
        return ""
    line = f"Engine {engine['state']}"
    if engine.get("since"):
        line += f" since {engine['since']}"
    if engine.get("cause"):
        line += f": {engine['cause']}"
    return line


def run_header(document: Mapping[str, Any], facts: Sequence[tuple[str, str]] = ()) -> Table:
    """The run's header: the deployment's facts first (each with its source), then the run's own as
    the post writes them (date, target, profile, recipe, image, flags, the engine's state), then the
    client machine's; each fact once.

    ``facts`` are the run's (label, value) rows known beside the document (the profile's
    deployment); the document's own facts fill in what they do not say.
    """
    deployment, client = block_rows(document)
    rows: list[list[str]] = []
    date = run_date(document)
    if date:
        rows.append(["Date", date])
    rows += [[label, value] for label, value in facts if value not in ("", None)]
    said = {r[0] for r in rows} | {r[0] for r in deployment}
    # A fact row given says these too ("Target: twin at http://...", "Server: vLLM 0.22.1").
    covered = {"Endpoint": "Target", "Target description": "Target", "Server version": "Server"}
    rows += [row for row in run_rows(document) if row[0] not in said and covered.get(row[0]) not in said]
    engine = engine_line(document)
    if engine:
        rows.append(["Engine", engine.removeprefix("Engine ")])
    return Table("Run", ("Fact", "Value"), [*deployment, *rows, *client], anchor="gx10-run")


def block_rows(document: Mapping[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(deployment rows, client rows): the facts the labels declare in their order (a deployment
    fact with its source), then any other key of the block as a row of its own."""
    deployment, client = provenance_rows(document)
    labels = {"deployment": dict(DEPLOYMENT_LABELS), "client": dict(CLIENT_LABELS)}
    for key, rows in (("deployment", deployment), ("client", client)):
        block = document.get(key)
        if not isinstance(block, Mapping):
            continue
        for name, value in block.items():
            # provenance_rows showed the declared facts in their form ({value, source}; a client value)
            shown = name in labels[key] and (key == "client" or isinstance(value, Mapping))
            if shown or value in (None, "", [], {}):
                continue
            sourced = isinstance(value, Mapping) and "value" in value
            if sourced and value.get("value") in (None, "", [], {}):
                continue
            rows.append([str(name), fact_text(value) if sourced else value_text(value)])
    return deployment, client


def definitions_table(document: Mapping[str, Any]) -> Table:
    """A line per declared figure the document holds and that has a definition: what it measures."""
    rows = []
    for _, section, entries in sections_in(document):
        if section is None:
            continue
        present = {k for e in entries for k in e}
        for figure in section.figures:
            if figure.definition and figure.name in present:
                rows.append([figure.column(), figure.definition])
    return Table("What the figures mean", ("Figure", "Definition"), rows, anchor="gx10-definitions")


def _heading(section: Section | None, name: str) -> str:
    figure = section.figure(name) if section is not None else None
    return figure.column() if figure is not None else name


def _cell(section: Section | None, name: str, value: Any) -> str:
    figure = section.figure(name) if section is not None else None
    return figure.text(value) if figure is not None else plain(value)


def entry_tables(section: str, entry: Mapping[str, Any]) -> list[Table]:
    """The tables one recorded entry shows in its test's row of the HTML report."""
    declaration = declared(section)
    if declaration is not None and declaration.tables is not None:
        return list(declaration.tables([entry], ()))
    title = declaration.title if declaration is not None else section
    rows = [[_heading(declaration, str(k)), _cell(declaration, str(k), v)] for k, v in entry.items()]
    return [Table(title, ("Figure", "Value"), rows)]


def results_tables(document: Mapping[str, Any], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """Every table of a results document, section by section in the declared order.

    ``overlays`` (the reference post's, a baseline's figures) add the sections' comparison tables.
    """
    tables: list[Table] = []
    for name, declaration, entries in sections_in(document):
        if declaration is not None and declaration.tables is not None:
            tables += declaration.tables(entries, overlays)
        else:
            tables.append(section_table(name, entries))
    return tables


def section_table(section: str, entries: Sequence[Mapping[str, Any]]) -> Table:
    """A section without a layout of its own: one row per entry, one column per plain figure.

    Declared figures are headed with their label and unit and shown in their format; other fields
    keep their names.
    """
    declaration = declared(section)
    columns: list[str] = []
    for entry in entries:
        columns += [k for k, v in entry.items() if k not in columns and not isinstance(v, list | dict)]
    rows = [[_cell(declaration, c, e.get(c)) for c in columns] for e in entries]
    title = declaration.title if declaration is not None else section.replace("_", " ").capitalize()
    headers = tuple(_heading(declaration, c) for c in columns)
    return Table(title, headers, rows, anchor=f"gx10-{section}")
