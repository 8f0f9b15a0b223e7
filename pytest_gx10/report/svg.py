"""Inline SVG plots, written by hand (no plotting library): they travel inside a self-contained report.

Every plot is a ``<svg class="gx10-plot" data-plot=NAME>`` element; every label is escaped, so a
model's text cannot become markup. Concurrency points are spaced evenly (1, 2, 4, 8, 16 read as a
log scale, as the sweep is laid out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["acceptance_plot", "decode_prefill_plots", "needle_grid", "plots", "ttft_plot"]

WIDTH, HEIGHT = 460, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 30, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:g}"


def _frame(name: str, title: str, x_label: str, y_label: str, y_max: float, body: list[str]) -> str:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="gx10-plot" data-plot="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(value))}</text>')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    return "\n".join(parts + body + ["</svg>"])


def _x_positions(keys: Sequence[Any]) -> dict[Any, float]:
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / max(len(keys), 1)
    return {k: LEFT + step * (i + 0.5) for i, k in enumerate(keys)}


def _y(value: float, y_max: float) -> float:
    plot_h = HEIGHT - TOP - BOTTOM
    return TOP + plot_h - plot_h * min(max(value / y_max, 0.0), 1.05)


def _x_ticks(xs: Mapping[Any, float], label: str = "") -> list[str]:
    base = HEIGHT - BOTTOM + 14
    return [
        f'<text x="{x:.1f}" y="{base}" text-anchor="middle">{escape(label + str(k))}</text>'
        for k, x in xs.items()
    ]


def _line(name: str, title: str, y_label: str, points: Sequence[tuple[int, float | None]]) -> str:
    keys = [n for n, _ in points]
    xs = _x_positions(keys)
    values = [v for _, v in points if isinstance(v, int | float)]
    y_max = _nice_max(max(values, default=1.0))
    body = _x_ticks(xs)
    coords = [(xs[n], _y(v, y_max), v) for n, v in points if isinstance(v, int | float)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS[0]}" stroke-width="2"/>')
    for x, y, v in coords:
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{COLOURS[0]}"><title>{escape(_fmt(round(v, 1)))}</title></circle>'
        )
        body.append(
            f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle">{escape(_fmt(round(v, 1)))}</text>'
        )
    return _frame(name, title, "concurrency N", y_label, y_max, body)


def decode_prefill_plots(sweep: Sequence[Mapping[str, Any]]) -> list[str]:
    """Aggregate decode and aggregate prefill throughput against N."""
    points = [p for p in sweep if isinstance(p.get("concurrency"), int)]
    return [
        _line(
            "agg-decode",
            "Aggregate decode vs N",
            "tokens/s",
            [(p["concurrency"], p.get("agg_decode_tps")) for p in points],
        ),
        _line(
            "agg-prefill",
            "Aggregate prefill vs N",
            "tokens/s",
            [(p["concurrency"], p.get("agg_prefill_tps")) for p in points],
        ),
    ]


def ttft_plot(sweep: Sequence[Mapping[str, Any]]) -> str:
    """Every request's TTFT at each N (one dot per request; failed requests have none)."""
    points = [p for p in sweep if isinstance(p.get("concurrency"), int)]
    xs = _x_positions([p["concurrency"] for p in points])
    ttfts = [
        (p["concurrency"], i, r["ttft_s"])
        for p in points
        for i, r in enumerate(p.get("requests") or [])
        if isinstance(r.get("ttft_s"), int | float)
    ]
    y_max = _nice_max(max((t for _, _, t in ttfts), default=1.0))
    step = (WIDTH - LEFT - RIGHT) / max(len(xs), 1)
    body = _x_ticks(xs, "N=")
    for n, i, t in ttfts:
        size = max(len(p.get("requests") or []) for p in points if p["concurrency"] == n)
        offset = (i - (size - 1) / 2) * min(step * 0.6 / max(size, 1), 6)
        body.append(
            f'<circle cx="{xs[n] + offset:.1f}" cy="{_y(t, y_max):.1f}" r="3" fill="{COLOURS[1]}" fill-opacity="0.7">'
            f"<title>{escape(f'N={n} request {i}: TTFT {t:.2f} s')}</title></circle>"
        )
    return _frame("ttft", "TTFT per request", "concurrency N", "TTFT (s)", y_max, body)


def needle_grid(cases: Sequence[Mapping[str, Any]]) -> str:
    """Haystack length (rows) by needle depth (columns): green retrieved, red missed, grey unknown."""
    lengths = sorted({c["length"] for c in cases if isinstance(c.get("length"), int)})
    depths = sorted({float(c["depth"]) for c in cases if isinstance(c.get("depth"), int | float)})
    cell_w = min(80.0, (WIDTH - 100) / max(len(depths), 1))
    cell_h = 26.0
    height = int(TOP + cell_h * len(lengths) + 40)
    by_key = {(c.get("length"), float(c.get("depth", -1))): c for c in cases}
    parts = [
        f'<svg class="gx10-plot" data-plot="needle-grid" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="Needle retrieval by length and depth" '
        f'font-family="sans-serif" font-size="11">',
        "<title>Needle retrieval by length and depth</title>",
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">Needle retrieval (length x depth)</text>',
    ]
    for j, depth in enumerate(depths):
        x = 90 + cell_w * (j + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + cell_h * len(lengths) + 14}" text-anchor="middle">{depth:.2f}</text>'
        )
    parts.append(
        f'<text x="{90 + cell_w * len(depths) / 2:.1f}" y="{height - 6}" text-anchor="middle">needle depth</text>'
    )
    for i, length in enumerate(lengths):
        y = TOP + cell_h * i
        parts.append(
            f'<text x="84" y="{y + cell_h / 2 + 4:.1f}" text-anchor="end">{length:,} tok</text>'.replace(
                ",", " "
            )
        )
        for j, depth in enumerate(depths):
            case = by_key.get((length, depth))
            found = None if case is None else case.get("retrieved")
            if found is True:
                fill, mark, what = "#2ca02c", "✓", "retrieved"
            elif found is False:
                fill, mark, what = "#d62728", "✗", "missed"
            else:
                fill, mark, what = "#bbb", "–", "not run"
            x = 90 + cell_w * j
            tip = f"{length} tokens at depth {depth:.2f}: {what}"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{y + 1:.1f}" width="{cell_w - 2:.1f}" height="{cell_h - 2:.1f}" fill="{fill}">'
                f"<title>{escape(tip)}</title></rect>"
            )
            parts.append(
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h / 2 + 4:.1f}" text-anchor="middle" fill="#fff" font-size="13">{mark}</text>'
            )
    return "\n".join([*parts, "</svg>"])


def acceptance_plot(per_position: Sequence[float]) -> str:
    """Draft acceptance rate at each position (bars, 0 to 1)."""
    keys = list(range(len(per_position)))
    xs = _x_positions(keys)
    step = (WIDTH - LEFT - RIGHT) / max(len(keys), 1)
    body = [
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 14}" text-anchor="middle">{k + 1}</text>'
        for k, x in xs.items()
    ]
    for k, rate in zip(keys, per_position, strict=True):
        y = _y(rate, 1.0)
        bar_w = min(step * 0.6, 60)
        body.append(
            f'<rect x="{xs[k] - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{HEIGHT - BOTTOM - y:.1f}" '
            f'fill="{COLOURS[2]}"><title>{escape(f"position {k + 1}: {rate:.3f}")}</title></rect>'
        )
        body.append(f'<text x="{xs[k]:.1f}" y="{y - 4:.1f}" text-anchor="middle">{rate:.3f}</text>')
    return _frame(
        "acceptance", "Acceptance per draft position", "draft position", "acceptance rate", 1.0, body
    )


def plots(document: Mapping[str, Any]) -> list[str]:
    """Every plot the document has data for."""
    out: list[str] = []
    sweep = [p for p in document.get("sweep") or [] if isinstance(p, Mapping)]
    if sweep:
        out += decode_prefill_plots(sweep)
        out.append(ttft_plot(sweep))
    needle = [c for c in document.get("needle") or [] if isinstance(c, Mapping)]
    if needle:
        out.append(needle_grid(needle))
    window = next((e for e in document.get("mtp") or [] if e.get("name") == "window"), None)
    if window and window.get("per_position"):
        rates = [float(r) for r in window["per_position"] if isinstance(r, int | float)]
        if rates:
            out.append(acceptance_plot(rates))
    return out
