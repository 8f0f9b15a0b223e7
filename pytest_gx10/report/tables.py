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
from typing import Any

from pytest_gx10.figures import MISSING, Section, declared, num, plain, sections_in
from pytest_gx10.report.provenance import CLIENT_LABELS, DEPLOYMENT_LABELS, fact_text

__all__ = [
    "MISSING",
    "Table",
    "entry_tables",
    "facts_table",
    "num",
    "provenance_rows",
    "results_tables",
    "section_table",
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


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


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


def facts_table(meta: Mapping[str, Any]) -> Table:
    """The run's facts: the deployment first (GPU, driver and CUDA, server build, image and digest,
    flags: each with its source), then the run's own (target, endpoint, profile), then the client
    machine. Each fact has one row."""
    deployment, client = provenance_rows(meta)
    found = meta.get("deployment")
    block: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    rows = list(deployment)
    for key, label in FACT_LABELS:
        value = meta.get(key)
        if value in (None, "", [], {}) or _SHOWN_BY_DEPLOYMENT.get(key) in block:
            continue
        rows.append([label, _text(value)])
    rows += client
    return Table("Run", ("Fact", "Value"), rows, anchor="gx10-facts")


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
        return list(declaration.tables([entry]))
    title = declaration.title if declaration is not None else section
    rows = [[_heading(declaration, str(k)), _cell(declaration, str(k), v)] for k, v in entry.items()]
    return [Table(title, ("Figure", "Value"), rows)]


def results_tables(document: Mapping[str, Any]) -> list[Table]:
    """Every table of a results document, section by section in the declared order."""
    tables: list[Table] = []
    for name, declaration, entries in sections_in(document):
        if declaration is not None and declaration.tables is not None:
            tables += declaration.tables(entries)
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
