"""The speculative-decoding suite's figures, declared once, and how they are shown.

Two entries: ``window`` (the /metrics counters over one greedy generation window: the figures of
the post's SpecDecoding line) and ``log`` (the SpecDecoding log lines of the same window against
/metrics). Acceptance is better higher; per-position rates are gated position by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_gx10.figures import HIGHER, MISSING, Figure, Overlay, Section, num, register
from pytest_gx10.report.svg import BOTTOM, COLOURS, HEIGHT, LEFT, RIGHT, WIDTH, frame, x_positions, y_of
from pytest_gx10.report.tables import Table
from pytest_gx10.report.terminal import wrap

__all__ = ["MTP"]

_FIGURES = (
    Figure("window_tokens", "window asked for", "tokens"),
    Figure("completion_tokens", "window", "tokens", digits=0, heading="Window"),
    Figure("generation_tokens", "generated", "tokens"),
    Figure("drafts", "drafts", digits=0, heading="Drafts"),
    Figure("draft_tokens", "drafted", "tokens", digits=0, heading="Drafted"),
    Figure("accepted", "accepted", "tokens", digits=0, heading="Accepted"),
    Figure(
        "acceptance_length",
        "mean acceptance length",
        better=HIGHER,
        digits=2,
        heading="Mean acceptance length",
        definition="tokens a verification step yields on average: 1 + accepted / drafts",
    ),
    Figure(
        "acceptance_rate",
        "acceptance rate",
        better=HIGHER,
        digits=3,
        heading="Avg draft acceptance rate",
        definition="accepted draft tokens divided by drafted tokens over the window (/metrics counters)",
    ),
    Figure(
        "per_position",
        "per-position acceptance rate",
        better=HIGHER,
        digits=3,
        each=True,
        heading="Per-position acceptance rate",
        definition="for each draft position, the share of drafts whose token there was accepted",
    ),
    Figure("log_lines", "SpecDecoding log lines", digits=0, heading="SpecDecoding log lines"),
    Figure("log_accepted", "accepted in the log", "tokens"),
    Figure("log_drafted", "drafted in the log", "tokens"),
    Figure(
        "log_acceptance_rate", "log acceptance rate", better=HIGHER, digits=3, heading="Log acceptance rate"
    ),
    Figure(
        "metrics_acceptance_rate",
        "/metrics acceptance rate",
        better=HIGHER,
        digits=3,
        heading="/metrics acceptance rate",
    ),
)


def _f(name: str) -> Figure:
    figure = MTP.figure(name)
    assert figure is not None, name
    return figure


def _pct(value: Any) -> str:
    return MISSING if not isinstance(value, int | float) else f"{value * 100:.1f}%"


def _row(entry: Mapping[str, Any], name: str) -> list[str]:
    figure = _f(name)
    return [figure.column(), figure.text(entry.get(name))]


def mtp_table(entries: Sequence[Mapping[str, Any]]) -> Table:
    """Speculative decoding over the window: the figures of the post's SpecDecoding line."""
    rows: list[list[str]] = []
    for e in entries:
        if e.get("name") == "window":
            per_position = _f("per_position")
            rows += [
                ["Method", str(e.get("method", MISSING))],
                _row(e, "completion_tokens"),
                _row(e, "acceptance_length"),
                _row(e, "accepted"),
                _row(e, "draft_tokens"),
                _row(e, "drafts"),
                [
                    per_position.heading,
                    ", ".join(per_position.text(r) for r in e.get("per_position") or []) or MISSING,
                ],
                [_f("acceptance_rate").heading, _pct(e.get("acceptance_rate"))],
            ]
        elif e.get("name") == "log":
            rows += [
                _row(e, "log_lines"),
                [_f("log_acceptance_rate").heading, _pct(e.get("log_acceptance_rate"))],
                [_f("metrics_acceptance_rate").heading, _pct(e.get("metrics_acceptance_rate"))],
            ]
        else:
            rows += [[f"{e.get('name', MISSING)}: {k}", str(v)] for k, v in e.items() if k != "name"]
    return Table("Speculative decoding", ("Metric", "Value"), rows, anchor="gx10-mtp")


def tables(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """One table of every entry."""
    return [mtp_table(entries)]


def terminal(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The window's acceptance in one sentence."""
    lines = []
    for e in entries:
        if e.get("name") == "window":
            per_position = ", ".join(num(r, 3) for r in e.get("per_position") or []) or MISSING
            lines += wrap(
                f"speculative decoding ({e.get('method', MISSING)}): mean acceptance length "
                f"{_f('acceptance_length').text(e.get('acceptance_length'))}, acceptance rate "
                f"{_f('acceptance_rate').text(e.get('acceptance_rate'))}, per position {per_position}"
            )
    return lines


def acceptance_plot(per_position: Sequence[float]) -> str:
    """Draft acceptance rate at each position (bars, 0 to 1)."""
    keys = list(range(len(per_position)))
    xs = x_positions(keys)
    step = (WIDTH - LEFT - RIGHT) / max(len(keys), 1)
    body = [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{k + 1}</text>'
        for k, x in xs.items()
    ]
    rate_of = _f("per_position")
    for k, rate in zip(keys, per_position, strict=True):
        y = y_of(rate, 1.0)
        text = rate_of.text(rate)
        bar_w = min(step * 0.6, 60)
        body.append(
            f'<rect x="{xs[k] - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{HEIGHT - BOTTOM - y:.1f}" '
            f'fill="{COLOURS[2]}"><title>{escape(f"position {k + 1}: {text}")}</title></rect>'
        )
        body.append(f'<text x="{xs[k]:.1f}" y="{y - 4:.1f}" text-anchor="middle">{escape(text)}</text>')
    return frame(
        "acceptance", "Acceptance per draft position", "draft position", "acceptance rate", 1.0, body
    )


def plots(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[str]:
    """Acceptance per draft position, from the window."""
    window = next((e for e in entries if e.get("name") == "window"), None)
    if not window or not window.get("per_position"):
        return []
    rates = [float(r) for r in window["per_position"] if isinstance(r, int | float)]
    return [acceptance_plot(rates)] if rates else []


MTP = register(
    Section(
        "mtp",
        key="name",
        figures=_FIGURES,
        title="Speculative decoding",
        order=30,
        tables=tables,
        terminal=terminal,
        plots=plots,
    )
)
