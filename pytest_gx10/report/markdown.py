"""``--gx10-markdown``: the run's tables in Markdown, laid out like the reference post's, ready to paste."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.tables import Table, facts_table, results_tables

__all__ = ["markdown_document", "markdown_table"]


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


def markdown_document(
    document: Mapping[str, Any], redactor: Redactor | None = None, extra: Sequence[Table] = ()
) -> str:
    """The whole results document as Markdown; every string passes through ``redactor``."""
    doc = redactor.value(document) if redactor else document
    parts = ["## gx10 results\n"]
    facts = facts_table(doc)
    if facts.rows:
        parts.append(markdown_table(facts))
    group = ""
    for table in results_tables(doc):
        if table.group and table.group != group:
            parts.append(f"### {_cell(table.group)}\n")
        group = table.group
        parts.append(markdown_table(table, level=4 if table.group else 3))
    parts += [markdown_table(t) for t in extra]
    text = "\n".join(parts)
    return redactor.text(text) if redactor else text
