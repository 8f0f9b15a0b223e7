"""The ``gx10`` section at the end of a run: what the user came for, within 100 columns.

Each section shows itself the way its declaration says (the perf suite's sweep table in the post's
columns, the needle tally, ...); a declared section without terminal lines of its own gets a small
table of its declared figures. Plain text, no pytest import.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.figures import MISSING, Section, sections_in

__all__ = ["WIDTH", "section_lines", "summary_lines", "text_table", "wrap"]

WIDTH = 100


def wrap(text: str) -> list[str]:
    """A long line as several of at most :data:`WIDTH` columns, the rest indented."""
    return textwrap.wrap(
        text, WIDTH, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    ) or [""]


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Right-aligned columns two spaces apart, each line cut at :data:`WIDTH`."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [text[:WIDTH] for text in out]


def section_lines(section: Section, entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """A section without lines of its own: its title, then one row per entry of its declared figures."""
    shown = [f for f in section.figures if any(f.name in e and not f.each for e in entries)]
    if not shown:
        return []
    headers = ([section.key] if section.key else []) + [f.narrow() for f in shown]
    rows = [
        ([str(e.get(section.key, MISSING))] if section.key else []) + [f.text(e.get(f.name)) for f in shown]
        for e in entries
    ]
    return [f"{section.title.lower()}:", *text_table(headers, rows)]


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """The section's lines for a results document; empty when the run measured nothing."""
    blocks: list[list[str]] = []
    for _, section, entries in sections_in(document):
        if section is None:
            continue  # a list nothing declared (the relaunches): the JSON and the report hold it
        lines = section.terminal(entries) if section.terminal is not None else section_lines(section, entries)
        if lines:
            blocks.append(lines)
    if not blocks:
        return []
    head = [f"{document.get('model', MISSING)} on {document.get('target', MISSING)}"]
    if document.get("target_label"):
        head[0] += f" ({document['target_label']})"
    if document.get("server"):
        label = str(document.get("server_label") or document["server"])
        head[0] += f", {label} {document.get('server_version') or ''}".rstrip()
    engine = document.get("engine")
    if isinstance(engine, Mapping) and engine.get("state") not in (None, "alive"):
        head.append(
            f"ENGINE {str(engine['state']).upper()} since {engine.get('since')}: {engine.get('cause')}"
        )
    lines = [text[:WIDTH] for text in head]
    for block in blocks:
        lines += ["", *block]
    return lines
