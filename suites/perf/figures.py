"""The throughput sweep's figures, declared once, and how the sweep is shown.

One entry per concurrency point (``sweep[N=8]``), by the reference post's definitions (see the
README). The report's tables follow the post's layout, with the post's column names and number
formats (prefill rates as whole numbers with a space between thousands); the extra figures (TTFT
and inter-token percentiles, the barrier's dispatch skew) sit in a table beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_gx10.figures import HIGHER, LOWER, MISSING, Figure, Section, register
from pytest_gx10.load.repeats import MIN_INTERVAL_REPEATS, Spread
from pytest_gx10.report.svg import (
    COLOURS,
    LEFT,
    RIGHT,
    WIDTH,
    frame,
    line_plot,
    nice_max,
    x_positions,
    x_ticks,
    y_of,
)
from pytest_gx10.report.tables import Table
from pytest_gx10.report.terminal import text_table

__all__ = ["REQUEST", "SWEEP"]

_FIGURES = (
    Figure("wall_s", "wall", "s", LOWER, digits=1, heading="Wall"),
    Figure(
        "agg_prefill_tps",
        "aggregate prefill",
        "tok/s",
        HIGHER,
        thousands=True,
        short="agg prefill",
        heading="Agg prefill",
    ),
    Figure(
        "agg_decode_tps",
        "aggregate decode",
        "tok/s",
        HIGHER,
        digits=1,
        short="agg decode",
        heading="Agg decode",
    ),
    Figure("median_ttft_s", "median TTFT", "s", LOWER, digits=2, heading="Median TTFT"),
    Figure("median_decode_tps", "median decode", "tok/s", HIGHER, digits=1, heading="Median per‑req decode"),
    Figure("p90_ttft_s", "p90 TTFT", "s", LOWER, digits=2, tail=True),
    Figure("p99_ttft_s", "p99 TTFT", "s", LOWER, digits=2, tail=True),
    Figure("itl_p50_ms", "median inter-token latency", "ms", LOWER, digits=1, tail=True, heading="ITL p50"),
    Figure("itl_p90_ms", "p90 inter-token latency", "ms", LOWER, digits=1, tail=True, heading="ITL p90"),
    Figure("itl_p99_ms", "p99 inter-token latency", "ms", LOWER, digits=1, tail=True, heading="ITL p99"),
    # Measured by the client about itself, not the server: kept, never gated.
    Figure("dispatch_skew_ms", "dispatch skew", "ms", None, digits=1),
    Figure("ok_requests", "requests that succeeded", short="ok"),
    Figure("failed_requests", "requests that failed", short="failed"),
)
AGGREGATE = ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps")
LATENCY = ("p90_ttft_s", "p99_ttft_s", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "dispatch_skew_ms")

# One request of a point (the point's ``requests`` rows); kept in the file, never gated.
REQUEST = Section(
    "request",
    figures=(
        Figure("ttft_s", "TTFT", "s", digits=2),
        Figure("duration_s", "duration", "s", digits=2),
        Figure("prefill_tps", "prefill", "tok/s", thousands=True),
        Figure("decode_tps", "decode", "tok/s", digits=1),
    ),
)


def _f(name: str) -> Figure:
    figure = SWEEP.figure(name)
    assert figure is not None, name
    return figure


def _spread(point: Mapping[str, Any], name: str) -> Spread | None:
    data = (point.get("spread") or {}).get(name)
    return Spread.from_dict(data) if isinstance(data, Mapping) else None


def cell(point: Mapping[str, Any], name: str) -> str:
    """A point's figure as the tables show it: the value, and ``±`` its spread over repeats (K > 1)."""
    figure = _f(name)
    text = figure.text(point.get(name))
    spread = _spread(point, name)
    if spread is None or spread.n < 2 or point.get(name) is None:
        return text
    return f"{text} ±{figure.text(spread.shown_half)}"


def repeats_note(points: Sequence[Mapping[str, Any]]) -> str:
    """What the ``±`` means, when some point ran more than once; empty otherwise."""
    counts = sorted({len(p.get("repeats") or ()) for p in points} - {0, 1})
    if not counts:
        return ""
    k = "/".join(str(c) for c in counts)
    if counts[0] >= MIN_INTERVAL_REPEATS:
        return f"median of {k} repeats per point; ± half the 95 % interval of the mean"
    if counts[-1] < MIN_INTERVAL_REPEATS:
        return f"median of {k} repeats per point; ± half their range (no interval below 3 repeats)"
    return f"median of {k} repeats per point; ± half the 95 % interval of the mean, or half the range below 3"


def aggregate_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """The post's aggregate throughput table, one row per concurrency point."""
    headers = ("N", *(_f(n).column() for n in AGGREGATE))
    rows = [[str(p.get("concurrency", MISSING)), *(cell(p, n) for n in AGGREGATE)] for p in points]
    return Table("Aggregate throughput", headers, rows, note=repeats_note(points), anchor="gx10-aggregate")


def latency_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """Figures kept beside the post's (never in their place): TTFT and inter-token percentiles, skew."""
    headers = ("N", *(_f(n).column() for n in LATENCY), "ok / failed")
    rows = [
        [
            str(p.get("concurrency", MISSING)),
            *(cell(p, n) for n in LATENCY),
            f"{p.get('ok_requests', MISSING)} / {p.get('failed_requests', MISSING)}",
        ]
        for p in points
    ]
    return Table("Latency", headers, rows, note=repeats_note(points), anchor="gx10-latency")


def request_table(point: Mapping[str, Any]) -> Table:
    """One point's per-request table (the post's "N=8" tables); failed requests say why."""
    requests: list[Mapping[str, Any]] = list(point.get("requests") or [])
    failed = any(r.get("error") or (r.get("ended") not in (None, "done")) for r in requests)
    headers = ("req", *(f.column() for f in REQUEST.figures)) + (("status",) if failed else ())
    rows = []
    for i, r in enumerate(requests):
        row = [str(i), *(f.text(r.get(f.name)) for f in REQUEST.figures)]
        if failed:
            why = r.get("error") or ""
            row.append(f"{r.get('ended', MISSING)} HTTP {r.get('status', MISSING)} {why}".strip())
        rows.append(row)
    n = point.get("concurrency", MISSING)
    tokens = sorted({(r.get("prompt_tokens"), r.get("completion_tokens")) for r in requests}, key=str)
    note = ""
    if len(tokens) == 1 and None not in tokens[0]:
        note = f"input {tokens[0][0]} tokens, output {tokens[0][1]} tokens per request"
    return Table(f"N={n}", headers, rows, note=note, anchor=f"gx10-requests-{n}", group="Per‑request totals")


def tables(points: Sequence[Mapping[str, Any]]) -> list[Table]:
    """The aggregate and latency tables, then each point's per-request table."""
    return [aggregate_table(points), latency_table(points), *(request_table(p) for p in points)]


def terminal(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """The sweep in the post's columns, the requests' size, and any point's failed requests."""
    shown = [_f(n) for n in AGGREGATE]
    note = repeats_note(points)
    headers = ["N", *(f.narrow() for f in shown), "ok/N·K" if note else "ok/N"]
    rows = [
        [
            str(p.get("concurrency")),
            *(cell(p, f.name) for f in shown),
            f"{p.get('ok_requests', MISSING)}/{_sent(p)}",
        ]
        for p in points
    ]
    lines = ["throughput sweep (N requests released together):", *text_table(headers, rows)]
    if note:
        lines.append(note)
    tokens = sorted(
        {
            (r.get("prompt_tokens"), r.get("completion_tokens"))
            for p in points
            for r in p.get("requests") or []
        },
        key=str,
    )
    if len(tokens) == 1 and None not in tokens[0]:
        lines.append(f"each request: {tokens[0][0]} tokens in, {tokens[0][1]} out")
    for p in points:
        outcomes = {k: v for k, v in (p.get("outcomes") or {}).items() if k != "ok"}
        if outcomes:
            lines.append(
                f"N={p.get('concurrency')}: " + ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items()))
            )
    return lines


def _sent(point: Mapping[str, Any]) -> Any:
    n = point.get("concurrency", MISSING)
    k = len(point.get("repeats") or ())
    return n * k if k > 1 and isinstance(n, int) else n


def ttft_plot(points: Sequence[Mapping[str, Any]]) -> str:
    """Every request's TTFT at each N (one dot per request; failed requests have none)."""
    xs = x_positions([p["concurrency"] for p in points])
    ttfts = [
        (p["concurrency"], i, r["ttft_s"])
        for p in points
        for i, r in enumerate(p.get("requests") or [])
        if isinstance(r.get("ttft_s"), int | float)
    ]
    y_max = nice_max(max((t for _, _, t in ttfts), default=1.0))
    step = (WIDTH - LEFT - RIGHT) / max(len(xs), 1)
    body = x_ticks(xs, "N=")
    for n, i, t in ttfts:
        size = max(len(p.get("requests") or []) for p in points if p["concurrency"] == n)
        offset = (i - (size - 1) / 2) * min(step * 0.6 / max(size, 1), 6)
        body.append(
            f'<circle cx="{xs[n] + offset:.1f}" cy="{y_of(t, y_max):.1f}" r="3" fill="{COLOURS[1]}" fill-opacity="0.7">'
            f"<title>{escape(f'N={n} request {i}: TTFT {t:.2f} s')}</title></circle>"
        )
    ttft = REQUEST.figures[0]
    return frame("ttft", "TTFT per request", "concurrency N", ttft.column(), y_max, body)


def plots(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """Aggregate decode and prefill against N, and every request's TTFT."""
    points = [p for p in entries if isinstance(p.get("concurrency"), int)]
    decode, prefill = _f("agg_decode_tps"), _f("agg_prefill_tps")
    return [
        line_plot(
            "agg-decode",
            "Aggregate decode vs N",
            decode.unit,
            [(p["concurrency"], p.get(decode.name)) for p in points],
        ),
        line_plot(
            "agg-prefill",
            "Aggregate prefill vs N",
            prefill.unit,
            [(p["concurrency"], p.get(prefill.name)) for p in points],
        ),
        ttft_plot(points),
    ]


SWEEP = register(
    Section(
        "sweep",
        key="concurrency",
        figures=_FIGURES,
        title="Throughput sweep",
        entry_label="N={}",
        order=10,
        tables=tables,
        terminal=terminal,
        plots=plots,
    )
)
