"""``--gx10-markdown``: the run as a post writes it, ready to paste, with its plots as SVG files.

The document carries the run's header (date, model, target, server, profile, deployment, image,
flags), says when the twin stood in and when the engine died, then each section's tables (every
sweep point, "not attempted" ones included, and the post's MTP-5-style table with change columns
against the reference post or a baseline) with links to its plots, and what each figure means.
``--gx10-markdown=out/run.md`` writes the plots beside it as ``out/run-<plot>.svg``
(``run-agg-decode.svg``, ``run-ttft.svg``, ...), linked by relative path. ``--gx10-json`` gets the
latency-throughput plot beside it the same way (``out/results-latency-throughput.svg``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_gx10.figures import Overlay, sections_in
from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.svg import plot_name
from pytest_gx10.report.tables import (
    Table,
    definitions_table,
    engine_line,
    run_header,
    section_table,
)

__all__ = ["markdown_document", "markdown_table", "plot_files", "write_markdown", "write_plots_beside"]


def _cell(text: str) -> str:
    # A cell is one line; HTML in a reply must show as text on renderers that pass HTML through.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("|", "\\|").replace("\r", "").replace("\n", " ")


def _fenced(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{text.rstrip()}\n{fence}"


def markdown_table(table: Table, level: int = 3) -> str:
    """One table with its heading, note and verbatim blocks."""
    lines = [f"{'#' * level} {_cell(table.title)}", ""]
    if table.note:
        lines += [_cell(table.note), ""]
    lines.append("| " + " | ".join(_cell(h) for h in table.headers) + " |")
    lines.append("|" + "|".join("---" for _ in table.headers) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    for title, text in table.blocks:
        lines += ["", f"{_cell(title)}:", "", _fenced(text) if text else "(empty)"]
    return "\n".join(lines) + "\n"


def _svg_title(svg: str) -> str:
    found = re.search(r"<title>(.*?)</title>", svg, re.S)
    return found.group(1) if found else plot_name(svg)


def plot_files(
    document: Mapping[str, Any], stem: str, overlays: Sequence[Overlay] = ()
) -> dict[str, list[tuple[str, str, str]]]:
    """Per section: (file name, title, svg) of each plot, the file named ``<stem>-<plot>.svg``."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    for name, section, entries in sections_in(document):
        if section is None or section.plots is None:
            continue
        files = [
            (f"{stem}-{plot_name(svg)}.svg", _svg_title(svg), svg) for svg in section.plots(entries, overlays)
        ]
        if files:
            out[name] = files
    return out


def markdown_document(
    document: Mapping[str, Any],
    redactor: Redactor | None = None,
    extra: Sequence[Table] = (),
    *,
    facts: Sequence[tuple[str, str]] = (),
    overlays: Sequence[Overlay] = (),
    title: str = "gx10 results",
    plots: Mapping[str, Sequence[tuple[str, str, str]]] | None = None,
) -> str:
    """The whole results document as Markdown; every string passes through ``redactor``.

    ``facts`` are the run's (label, value) rows beside the document (the profile's deployment);
    ``overlays`` add the comparison tables; ``plots`` (from :func:`plot_files`) are linked under
    their section.
    """
    doc = redactor.value(document) if redactor else document
    parts = [f"## {_cell(title)}\n"]
    if doc.get("target_kind") == "twin":
        scale = doc.get("time_scale")
        at = f" at time scale {scale:g}" if isinstance(scale, int | float) else ""
        parts.append(
            f"> **Simulated (twin):** these figures come from pytest-gx10's twin, a fake vLLM server "
            f"playing the profile's deployment{at}, not from the deployment itself.\n"
        )
    dead = engine_line(doc)
    if dead:
        parts.append(f"> **{_cell(dead)}**\n")
    header = run_header(doc, facts)
    if header.rows:
        parts.append(markdown_table(header))
    for name, section, entries in sections_in(doc):
        if section is not None and section.tables is not None:
            tables = section.tables(entries, overlays)
        else:
            tables = [section_table(name, entries)]
        links = (plots or {}).get(name, ())
        group = ""
        for i, table in enumerate(tables):
            if table.group and table.group != group:
                parts.append(f"### {_cell(table.group)}\n")
            group = table.group
            parts.append(markdown_table(table, level=4 if table.group else 3))
            if i == 0 and links:
                parts.append("\n".join(f"![{_cell(t)}]({file})" for file, t, _ in links) + "\n")
    definitions = definitions_table(doc)
    if definitions.rows:
        parts.append(markdown_table(definitions))
    parts += [markdown_table(t) for t in extra]
    text = "\n".join(parts)
    return redactor.text(text) if redactor else text


def _write_svg(target: Path, svg: str, redactor: Redactor | None) -> None:
    target.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + (redactor.text(svg) if redactor else svg) + "\n",
        encoding="utf-8",
    )


def write_plots_beside(
    path: Path,
    document: Mapping[str, Any],
    names: Sequence[str],
    redactor: Redactor | None = None,
) -> list[Path]:
    """Write the named plots beside ``path`` (the results JSON) as the Markdown does its own:
    ``<stem>-<plot>.svg``; returns the files written (a plot no section drew is left out)."""
    doc = redactor.value(document) if redactor else document
    written = []
    for found in plot_files(doc, path.stem).values():
        for name, _, svg in found:
            if plot_name(svg) in names:
                path.parent.mkdir(parents=True, exist_ok=True)
                _write_svg(path.parent / name, svg, redactor)
                written.append(path.parent / name)
    return written


def write_markdown(
    path: Path,
    document: Mapping[str, Any],
    redactor: Redactor | None = None,
    *,
    facts: Sequence[tuple[str, str]] = (),
    overlays: Sequence[Overlay] = (),
    title: str = "gx10 results",
    extra: Sequence[Table] = (),
) -> list[Path]:
    """Write the Markdown at ``path`` and its plots beside it (``<stem>-<plot>.svg``); returns every file.

    ``extra`` tables come first (a matrix run's cells and their comparison); each matrix cell's block
    of the document follows as a section of its own, its plots named ``<stem>-<cell>-<plot>.svg``.
    """
    doc = redactor.value(document) if redactor else document
    path.parent.mkdir(parents=True, exist_ok=True)
    files = plot_files(doc, path.stem, overlays)
    written = []
    for found in files.values():
        for name, _, svg in found:
            target = path.parent / name
            _write_svg(target, svg, redactor)
            written.append(target)
    text = markdown_document(doc, redactor, facts=facts, overlays=overlays, title=title, plots=files)
    if extra:
        text += "\n" + "\n".join(markdown_table(t) for t in extra)
    for i, cell in enumerate(c for c in doc.get("cells") or [] if isinstance(c, Mapping)):
        stem = f"{path.stem}-cell{i + 1}"
        cell_files = plot_files(cell, stem, overlays)
        for found in cell_files.values():
            for name, _, svg in found:
                _write_svg(path.parent / name, svg, redactor)
                written.append(path.parent / name)
        text += "\n" + markdown_document(
            cell, redactor, facts=(), overlays=overlays, title=f"Cell {cell.get('cell')}", plots=cell_files
        )
    path.write_text(text, encoding="utf-8")
    return [path, *written]
