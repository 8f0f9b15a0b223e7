"""HTML fragments for the pytest-html report: tables of figures, the run summary, the gating verdict.

Everything here is a string of HTML built from escaped text: cell values, titles and model replies go
through :func:`html.escape` (after redaction), so a reply holding ``<script>`` shows as text and runs
nothing. No pytest import: the plugin side (``pytest_gx10.report.session``) hands these to pytest-html.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.svg import plots
from pytest_gx10.report.tables import Table, entry_tables, facts_table, results_tables

__all__ = ["STYLE", "entry_html", "html_table", "summary_html"]

STYLE = """<style>
.gx10 table { border-collapse: collapse; margin: 4px 0 10px 0; font-size: 12px; width: auto; }
.gx10 table[data-table="gx10-run"] td { text-align: left; }
.gx10 th, .gx10 td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
.gx10 th:first-child, .gx10 td:first-child { text-align: left; }
.gx10 caption { text-align: left; font-weight: bold; padding: 4px 0; }
.gx10 pre { background: #f6f6f6; padding: 4px 8px; white-space: pre-wrap; max-width: 60em; }
.gx10 .gx10-pass { color: #2a7d2a; font-weight: bold; }
.gx10 .gx10-fail { color: #c62828; font-weight: bold; }
.gx10 .gx10-plots svg { margin: 4px 12px 4px 0; border: 1px solid #eee; vertical-align: top; }
</style>"""


def html_table(table: Table, *, with_id: bool = False) -> str:
    """One table with its caption, note and verbatim blocks, every text escaped.

    ``with_id`` gives it its anchor as id (the summary's tables; a test's own tables repeat them).
    """
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    anchor = f' id="{escape(table.anchor)}"' if table.anchor and with_id else ""
    parts = [
        f'<table class="gx10-table" data-table="{escape(table.anchor or table.title)}"{anchor}>'
        f"<caption>{escape(table.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    ]
    if table.note:
        parts.append(f"<p>{escape(table.note)}</p>")
    for title, text in table.blocks:
        parts.append(f"<p>{escape(title)}:</p><pre>{escape(text) or '(empty)'}</pre>")
    return "\n".join(parts)


def entry_html(section: str, entry: Mapping[str, Any], meta: Mapping[str, Any], redactor: Redactor) -> str:
    """A test's figures: the tables of its entry and the engine facts it ran against."""
    entry = redactor.value(entry)
    tables = entry_tables(section, entry)
    facts = facts_table(redactor.value(meta))
    if facts.rows:
        tables.append(facts)
    return redactor.text('<div class="gx10">' + "\n".join(html_table(t) for t in tables) + "</div>")


def _verdict(ok: bool, text: str) -> str:
    return f'<span class="{"gx10-pass" if ok else "gx10-fail"}">{escape(text)}</span>'


def summary_html(
    document: Mapping[str, Any],
    *,
    facts: Sequence[tuple[str, str]],
    suites: Mapping[str, Mapping[str, int]],
    gate: tuple[bool, str, Sequence[str], Sequence[str]] | None,
    redactor: Redactor,
) -> str:
    """The block at the top of the report: run facts, a verdict per suite, the gate, tables and plots.

    ``facts`` are (label, value) rows; ``suites`` maps a suite name to outcome counts; ``gate`` is
    (passed, headline, regressions, warnings) or None when no baseline was compared.
    """
    doc = redactor.value(document)
    parts = [STYLE, '<div class="gx10" id="gx10-summary">', "<h3>gx10 run</h3>"]
    rows = "".join(
        f"<tr><td>{escape(redactor.text(k))}</td><td>{escape(redactor.text(v))}</td></tr>" for k, v in facts
    )
    parts.append(f'<table class="gx10-table" data-table="gx10-run"><tbody>{rows}</tbody></table>')
    if suites:
        srows = []
        for name, counts in suites.items():
            failed = counts.get("failed", 0) + counts.get("error", 0)
            text = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            srows.append(
                f"<tr><td>{escape(name)}</td><td>{_verdict(failed == 0, 'passed' if failed == 0 else 'failed')}</td>"
                f"<td>{escape(text)}</td></tr>"
            )
        parts.append(
            '<table class="gx10-table" data-table="gx10-suites"><caption>Suites</caption>'
            "<thead><tr><th>suite</th><th>verdict</th><th>tests</th></tr></thead>"
            f"<tbody>{''.join(srows)}</tbody></table>"
        )
    if gate is not None:
        ok, headline, regressions, warnings = gate
        parts.append(f'<p id="gx10-gate">Release gate: {_verdict(ok, redactor.text(headline))}</p>')
        if regressions:
            items = "".join(f"<li>{escape(redactor.text(r))}</li>" for r in regressions)
            parts.append(f'<ul class="gx10-regressions">{items}</ul>')
        if warnings:
            items = "".join(f"<li>{escape(redactor.text(w))}</li>" for w in warnings)
            parts.append(f'<ul class="gx10-warnings">{items}</ul>')
    svgs = plots(doc)
    if svgs:
        parts.append('<div class="gx10-plots">' + "\n".join(svgs) + "</div>")
    parts += [html_table(t, with_id=True) for t in results_tables(doc)]
    parts.append("</div>")
    return redactor.text("\n".join(parts))
