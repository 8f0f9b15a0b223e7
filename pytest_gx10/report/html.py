"""HTML fragments for the pytest-html report: the gx10 section a blog post can carry, and each test's tables.

The gx10 section comes first: a banner when the twin stood in for the deployment (and when the
engine died), the run's header (the deployment's facts, then the run's as the post writes them:
date, target, profile, image, flags; then the client's), a verdict per suite, the release gate,
then each section's plots and tables, and what each figure means. The run's facts are shown there
once; a test's row carries only its own figures.

Everything here is a string of HTML built from escaped text: cell values, titles and model replies go
through :func:`html.escape` (after redaction), so a reply holding ``<script>`` shows as text and runs
nothing. No pytest import: the plugin side (``pytest_gx10.report.session``) hands these to pytest-html.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_gx10.figures import Overlay, sections_in
from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.tables import (
    Table,
    definitions_table,
    engine_line,
    entry_tables,
    run_header,
    section_table,
    value_text,
)

__all__ = [
    "COLOURS",
    "STYLE",
    "banner_html",
    "entry_html",
    "html_table",
    "report_title",
    "suite_verdict",
    "summary_html",
]

# Text and background colours of the report, checked against WCAG AA (4.5:1) by the unit tests.
COLOURS = {
    "text": "#1a1a1a",
    "background": "#ffffff",
    "head": "#eef1f4",  # table headers
    "ok": "#1b5e20",
    "fail": "#b3261e",
    "muted": "#4a4f55",  # skipped, not attempted
    "banner": "#5c3b00",
    "banner_bg": "#fff4e0",
    "dead": "#7f1010",
    "dead_bg": "#fdecea",
    "link": "#0b57d0",
    "warn": "#8a4b00",  # pytest-html's skipped and xfailed (its orange reads 2:1 on white)
}

STYLE = f"""<style>
body, p, #results-table, .gx10 {{ color: {COLOURS["text"]}; background: {COLOURS["background"]}; }}
a {{ color: {COLOURS["link"]}; }}
span.passed, .passed .col-result {{ color: {COLOURS["ok"]}; }}
span.skipped, span.xfailed, span.rerun, .skipped .col-result, .xfailed .col-result, .rerun .col-result
  {{ color: {COLOURS["warn"]}; }}
span.error, span.failed, span.xpassed, .error .col-result, .failed .col-result, .xpassed .col-result
  {{ color: {COLOURS["fail"]}; }}
.filters button, .collapse button {{ color: {COLOURS["text"]}; }}
#environment-header, #environment {{ display: none; }}
.summary__data {{ display: flex; flex-direction: column; flex: 1 1 auto; }}
.summary__data > * {{ order: 1; }}
.summary__data > .prefix {{ order: 0; }}
.gx10 {{ font-size: 13px; }}
.gx10 h2 {{ font-size: 18px; margin: 18px 0 6px 0; color: {COLOURS["text"]}; }}
.gx10 h3 {{ font-size: 15px; margin: 14px 0 4px 0; color: {COLOURS["text"]}; }}
.gx10 table {{ border-collapse: collapse; margin: 4px 0 12px 0; font-size: 13px; width: auto;
  color: {COLOURS["text"]}; background: {COLOURS["background"]}; }}
.gx10 th, .gx10 td {{ border: 1px solid #8a8f96; padding: 3px 9px; text-align: right;
  color: {COLOURS["text"]}; background: {COLOURS["background"]}; }}
.gx10 th {{ background: {COLOURS["head"]}; font-weight: bold; }}
.gx10 table[data-table="gx10-run"] td, .gx10 table[data-table="gx10-definitions"] td,
.gx10 table[data-table="gx10-run"] th, .gx10 table[data-table="gx10-definitions"] th {{ text-align: left; }}
.gx10 th:first-child, .gx10 td:first-child {{ text-align: left; }}
.gx10 caption {{ text-align: left; font-weight: bold; padding: 4px 0; color: {COLOURS["text"]}; }}
.gx10 pre {{ background: #f3f4f6; color: {COLOURS["text"]}; padding: 4px 8px; white-space: pre-wrap; max-width: 60em; }}
.gx10 .gx10-pass, .gx10 td.gx10-st-ok {{ color: {COLOURS["ok"]}; font-weight: bold; }}
.gx10 .gx10-fail, .gx10 td.gx10-st-failed, .gx10 td.gx10-st-engine-dead, .gx10 td.gx10-st-zero-token
  {{ color: {COLOURS["fail"]}; font-weight: bold; }}
.gx10 .gx10-skip, .gx10 td.gx10-st-not-attempted {{ color: {COLOURS["muted"]}; font-weight: bold; }}
.gx10 .gx10-banner {{ color: {COLOURS["banner"]}; background: {COLOURS["banner_bg"]};
  border-left: 4px solid #b35900; padding: 6px 10px; font-weight: bold; }}
.gx10 .gx10-dead {{ color: {COLOURS["dead"]}; background: {COLOURS["dead_bg"]};
  border-left: 4px solid {COLOURS["fail"]}; padding: 6px 10px; font-weight: bold; }}
.gx10 .gx10-plots {{ display: flex; flex-wrap: wrap; }}
.gx10 .gx10-plots svg {{ margin: 4px 12px 4px 0; border: 1px solid #d0d4d9; vertical-align: top; }}
</style>"""

_STATUS_HEADERS = ("Status", "status")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def html_table(table: Table, *, with_id: bool = False) -> str:
    """One table with its caption, note and verbatim blocks, every text escaped.

    ``with_id`` gives it its anchor as id (the summary's tables; a test's own tables repeat them).
    A status column's cells carry their status as a class (``gx10-st-engine-dead``).
    """
    head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
    status_at = {i for i, h in enumerate(table.headers) if h in _STATUS_HEADERS}

    def cell(i: int, text: str) -> str:
        if i in status_at:
            state = text.split(":", 1)[0]
            return f'<td class="gx10-st gx10-st-{escape(_slug(state))}">{escape(text)}</td>'
        return f"<td>{escape(text)}</td>"

    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>" for row in table.rows)
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


def entry_html(section: str, entry: Mapping[str, Any], redactor: Redactor) -> str:
    """A test's figures: the tables of its entry (the run's facts are in the gx10 section, once)."""
    entry = redactor.value(entry)
    tables = entry_tables(section, entry)
    return redactor.text('<div class="gx10">' + "\n".join(html_table(t) for t in tables) + "</div>")


def report_title(document: Mapping[str, Any], description: str = "") -> str:
    """The page's title and heading: the profile's description (or its name, or the model)."""
    what = description or str(document.get("profile") or document.get("model") or "gx10 run")
    return f"{what} — gx10 report"


def banner_html(document: Mapping[str, Any]) -> str:
    """ "Simulated (twin)" when the twin stood in for the deployment; the engine's death when it died."""
    parts = []
    if document.get("target_kind") == "twin":
        scale = document.get("time_scale")
        at = f" at time scale {scale:g}" if isinstance(scale, int | float) else ""
        parts.append(
            '<p class="gx10-banner" id="gx10-simulated" role="note">Simulated (twin): these figures come '
            f"from pytest-gx10's twin, a fake vLLM server playing the profile's deployment{escape(at)}, "
            "not from the deployment itself.</p>"
        )
    dead = engine_line(document)
    if dead:
        parts.append(f'<p class="gx10-dead" id="gx10-engine" role="alert">{escape(dead)}</p>')
    return "\n".join(parts)


def suite_verdict(counts: Mapping[str, int]) -> str:
    """ "failed" when a test failed or errored, "skipped" when every test skipped, else "passed"."""
    if counts.get("failed", 0) + counts.get("error", 0):
        return "failed"
    ran = sum(v for k, v in counts.items() if k != "skipped")
    if not ran and counts.get("skipped", 0):
        return "skipped"
    return "passed"


_VERDICT_CLASS = {"passed": "gx10-pass", "failed": "gx10-fail", "skipped": "gx10-skip"}


def _verdict(verdict: str, text: str | None = None) -> str:
    return f'<span class="{_VERDICT_CLASS.get(verdict, "gx10-fail")}">{escape(text or verdict)}</span>'


def _section_html(document: Mapping[str, Any], overlays: Sequence[Overlay]) -> list[str]:
    """Each section in the declared order: its heading, its plots, its tables."""
    parts: list[str] = []
    for name, section, entries in sections_in(document):
        if section is not None and section.tables is not None:
            tables = section.tables(entries, overlays)
        else:
            tables = [section_table(name, entries)]
        svgs = section.plots(entries, overlays) if section is not None and section.plots is not None else []
        title = section.title if section is not None else tables[0].title
        parts.append(f'<h3 id="gx10-section-{escape(_slug(name))}">{escape(title)}</h3>')
        if svgs:
            parts.append('<div class="gx10-plots">' + "\n".join(svgs) + "</div>")
        group = ""
        for table in tables:
            if table.group and table.group != group:
                parts.append(f"<h4>{escape(table.group)}</h4>")
            group = table.group
            parts.append(html_table(table, with_id=True))
    return parts


def summary_html(
    document: Mapping[str, Any],
    *,
    facts: Sequence[tuple[str, str]],
    suites: Mapping[str, Mapping[str, int]],
    gate: tuple[bool, str, Sequence[str], Sequence[str]] | None,
    redactor: Redactor,
    overlays: Sequence[Overlay] = (),
    environment: Mapping[str, Any] | None = None,
    extra: Sequence[Table] = (),
) -> str:
    """The gx10 section at the top of the report: banner, the run's header (deployment, run, client),
    a verdict per suite, the gate, each section's plots and tables, the figures' definitions.

    ``extra`` tables (a matrix run's cells and their comparison) follow the gate; then each matrix
    cell's block of the document, its plots and tables under the cell's name.

    ``facts`` are (label, value) rows known beside the document (the profile's deployment);
    ``suites`` maps a suite name to outcome counts; ``gate`` is (passed, headline, regressions,
    warnings) or None when no baseline was compared; ``overlays`` are drawn and compared beside the
    run's figures; ``environment`` is pytest-html's environment (pytest-metadata), shown with the
    client's facts.
    """
    doc = redactor.value(document)
    parts = [STYLE, '<div class="gx10" id="gx10-summary">', banner_html(doc)]
    header = run_header(doc, [(redactor.text(k), redactor.text(v)) for k, v in facts])
    if environment:
        # pytest-metadata's environment is the client's too: after the client's facts, once.
        rows = [[str(k), value_text(redactor.value(v))] for k, v in environment.items()]
        header = Table(header.title, header.headers, [*header.rows, *rows], anchor=header.anchor)
    parts.append(html_table(header, with_id=True))
    if suites:
        srows = []
        for name, counts in suites.items():
            text = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
            srows.append(
                f"<tr><td>{escape(name)}</td><td>{_verdict(suite_verdict(counts))}</td><td>{escape(text)}</td></tr>"
            )
        parts.append(
            '<table class="gx10-table" data-table="gx10-suites" id="gx10-suites"><caption>Suites</caption>'
            "<thead><tr><th>suite</th><th>verdict</th><th>tests</th></tr></thead>"
            f"<tbody>{''.join(srows)}</tbody></table>"
        )
    if gate is not None:
        ok, headline, regressions, warnings = gate
        parts.append(
            f'<p id="gx10-gate">Release gate: {_verdict("passed" if ok else "failed", redactor.text(headline))}</p>'
        )
        if regressions:
            items = "".join(f"<li>{escape(redactor.text(r))}</li>" for r in regressions)
            parts.append(f'<ul class="gx10-regressions">{items}</ul>')
        if warnings:
            items = "".join(f"<li>{escape(redactor.text(w))}</li>" for w in warnings)
            parts.append(f'<ul class="gx10-warnings">{items}</ul>')
    parts += [html_table(t, with_id=True) for t in extra]
    parts += _section_html(doc, overlays)
    for cell in doc.get("cells") or []:
        if isinstance(cell, Mapping):
            parts.append(f'<h2 class="gx10-cell">Cell {escape(str(cell.get("cell")))}</h2>')
            parts += _section_html(cell, overlays)
    definitions = definitions_table(doc)
    if definitions.rows:
        parts.append(html_table(definitions, with_id=True))
    parts.append("</div>")
    return redactor.text("\n".join(p for p in parts if p))
