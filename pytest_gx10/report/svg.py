"""Inline SVG plots, written by hand (no plotting library): they travel inside a self-contained report
and stand alone as ``.svg`` files next to the Markdown.

Every plot is a ``<svg class="gx10-plot" data-plot=NAME>`` element; every label is escaped, so a
model's text cannot become markup. Keys along x are spaced evenly (concurrency 1, 2, 4, 8, 16 read
as a log scale, as the sweep is laid out). A value's label is the table's cell text: the caller
passes the figure's own formatter, so the plot and the table round the same number once. A point
that failed is marked (a red cross and its status), never drawn as an ordinary point. The drawing
helpers are here; which plots a section has is its declaration's (:mod:`pytest_gx10.figures`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, NamedTuple

from pytest_gx10.figures import Overlay, sections_in

__all__ = [
    "BOTTOM",
    "COLOURS",
    "FAILED",
    "HEIGHT",
    "LEFT",
    "OVERLAY_COLOURS",
    "RIGHT",
    "TOP",
    "WIDTH",
    "LegendItem",
    "Line",
    "Series",
    "XYSeries",
    "cross",
    "fmt",
    "frame",
    "line_plot",
    "nice_max",
    "plot_name",
    "plots",
    "series_plot",
    "stack",
    "time_plot",
    "x_positions",
    "x_ticks",
    "xy_plot",
    "y_of",
]

WIDTH, HEIGHT = 460, 250
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 30, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
LINE_COLOURS = ("#1f5f99", "#1e7b34")  # the run's own lines in the report: darker, 4.5:1 on white
OVERLAY_COLOURS = ("#b35900", "#5f6368", "#6a3d9a")  # baseline / reference series, dashed
FAILED = "#b3261e"  # failed requests and points: red crosses
LEGEND_ROW = 16


class LegendItem(NamedTuple):
    """One row of a plot's legend: a line in ``colour`` (a shaded box when ``band``) and its label.

    ``kind`` draws another swatch: "dashed" (a reference series), "dot" (a request), "cross" (a
    failed one).
    """

    colour: str
    label: str
    band: bool = False
    kind: str = "line"


def nice_max(value: float) -> float:
    """The next round number (1, 2, 2.5, 5 times a power of ten) at or above ``value``: the y axis top."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def fmt(value: float) -> str:
    """An axis or point label: whole numbers with spaced thousands from 1000 up."""
    if value >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:g}"


def frame(
    name: str,
    title: str,
    x_label: str,
    y_label: str,
    y_max: float,
    body: list[str],
    *,
    legend: Sequence[LegendItem] = (),
) -> str:
    """A whole ``<svg>``: title, plot area, y grid with labels, axis labels, and ``body`` drawn on it.

    A ``legend`` adds a row per item under the x axis's label (the plot grows to hold it).
    """
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    height = HEIGHT + (LEGEND_ROW * len(legend) + 6 if legend else 0)
    parts = [
        f'<svg class="gx10-plot" data-plot="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11" fill="#1a1a1a">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>',
    ]
    for i in range(5):
        value = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(value))}</text>')
    parts.append(
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    for row, item in enumerate(legend):
        y = HEIGHT + 8 + LEGEND_ROW * row
        if item.kind == "cross":
            swatch = cross(LEFT + 9, y - 1, item.label, 4)
        elif item.kind == "dot":
            swatch = f'<circle cx="{LEFT + 9}" cy="{y - 1}" r="3.5" fill="{escape(item.colour)}"/>'
        elif item.band:
            swatch = (
                f'<rect x="{LEFT}" y="{y - 6}" width="18" height="10" fill="{escape(item.colour)}" '
                'fill-opacity="0.18" stroke="none"/>'
            )
        else:
            swatch = (
                f'<line x1="{LEFT}" x2="{LEFT + 18}" y1="{y - 1}" y2="{y - 1}" '
                f'stroke="{escape(item.colour)}" stroke-width="3"'
                + (' stroke-dasharray="5 3"/>' if item.kind == "dashed" else "/>")
            )
        parts.append(
            f'<g class="gx10-legend">{swatch}<text x="{LEFT + 24}" y="{y + 3}">{escape(item.label)}</text></g>'
        )
    return "\n".join(parts + body + ["</svg>"])


def x_positions(keys: Sequence[Any]) -> dict[Any, float]:
    """Each key's x, spaced evenly across the plot area."""
    plot_w = WIDTH - LEFT - RIGHT
    step = plot_w / max(len(keys), 1)
    return {k: LEFT + step * (i + 0.5) for i, k in enumerate(keys)}


def y_of(value: float, y_max: float) -> float:
    """A value's y in the plot area (0 at the bottom, ``y_max`` at the top; a little room above)."""
    plot_h = HEIGHT - TOP - BOTTOM
    return TOP + plot_h - plot_h * min(max(value / y_max, 0.0), 1.05)


def x_ticks(xs: Mapping[Any, float], label: str = "") -> list[str]:
    """A label under each key (``label`` before it: ``N=``)."""
    base = HEIGHT - BOTTOM + 14
    return [
        f'<text x="{x:.1f}" y="{base}" text-anchor="middle">{escape(label + str(k))}</text>'
        for k, x in xs.items()
    ]


def cross(x: float, y: float, tip: str, size: float = 4.5) -> str:
    """A red cross at (x, y): a failed request or point, its tooltip saying what became of it."""
    return (
        f'<g class="gx10-failed" stroke="{FAILED}" stroke-width="2"><title>{escape(tip)}</title>'
        f'<line x1="{x - size:.1f}" y1="{y - size:.1f}" x2="{x + size:.1f}" y2="{y + size:.1f}"/>'
        f'<line x1="{x - size:.1f}" y1="{y + size:.1f}" x2="{x + size:.1f}" y2="{y - size:.1f}"/></g>'
    )


@dataclass(frozen=True)
class Line:
    """One line of a plot: (key, value) points; ``labelled`` writes each value above its point."""

    label: str
    points: Sequence[tuple[Any, float | None]]
    colour: str = LINE_COLOURS[0]
    dashed: bool = False
    labelled: bool = True


def line_plot(
    name: str,
    title: str,
    y_label: str,
    series: Sequence[Line],
    text: Callable[[Any], str],
    *,
    status: Mapping[Any, str] | None = None,
) -> str:
    """Values against concurrency N: a line per series, the first's points labelled with ``text``.

    ``text`` is the figure's own formatter (the table's cell), so a label is rounded once. ``status``
    gives each key's status: a key whose status is not "ok" gets a red cross at its value (or on the
    axis when it has none) and its status written, never an ordinary point.
    """
    status = status or {}
    keys: list[Any] = []
    for s in series:
        keys += [k for k, _ in s.points if k not in keys]
    keys += [k for k in status if k not in keys]
    keys.sort()
    xs = x_positions(keys)
    values = [v for s in series for _, v in s.points if isinstance(v, int | float)]
    y_max = nice_max(max(values, default=1.0))
    body = x_ticks(xs, "N=")
    items = [(s.label, s.colour, "dashed" if s.dashed else "line") for s in series]
    for s in sorted(series, key=lambda s: not s.dashed):  # the run's own lines on top
        coords = [(xs[k], y_of(v, y_max), k, v) for k, v in s.points if isinstance(v, int | float)]
        measured = [c for c in coords if status.get(c[2], "ok") == "ok" or s.dashed]
        if len(measured) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in measured)
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            body.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>')
        for x, y, k, v in coords:
            state = "ok" if s.dashed else status.get(k, "ok")
            tip = f"{s.label}, N={k}: {text(v)} {y_label}"
            if state != "ok":
                body.append(cross(x, y, f"{tip} ({state})"))
                continue
            radius = 2.5 if s.dashed else 3.5
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{s.colour}"><title>{escape(tip)}</title></circle>'
            )
            if s.labelled:
                body.append(
                    f'<text x="{x:.1f}" y="{y - 7:.1f}" text-anchor="middle">{escape(text(v))}</text>'
                )
    first = series[0] if series else None
    valued = {k for k, v in (first.points if first else ()) if isinstance(v, int | float)}
    marked = False
    for k, state in status.items():
        if state == "ok" or k not in xs:
            continue
        marked = True
        if k not in valued:
            y = y_of(0.0, y_max)
            body.append(cross(xs[k], y - 8, f"N={k}: {state}"))
        body.append(
            f'<text x="{xs[k]:.1f}" y="{y_of(0.0, y_max) - 18:.1f}" text-anchor="middle" fill="{FAILED}" '
            f'font-weight="bold">{escape(state)}</text>'
        )
    if marked:
        items.append(("failed point", FAILED, "cross"))
    legend = [LegendItem(colour, label, kind=kind) for label, colour, kind in items] if len(items) > 1 else []
    return frame(name, title, "concurrency N", y_label, y_max, body, legend=legend)


@dataclass(frozen=True)
class Series:
    """One line of a :func:`series_plot`: a value per key, and a word on the keys that need one.

    ``marks`` maps a key to what became of it (``zero-token``, ``engine dead``): a point with a
    value and a mark is drawn hollow; a key with a mark and no value gets a cross on the x axis.
    """

    label: str
    values: Mapping[Any, float | None]
    marks: Mapping[Any, str] = field(default_factory=dict)


def _segments(keys: Sequence[Any], values: Mapping[Any, float | None]) -> list[list[Any]]:
    """Runs of consecutive keys that have a value: a line is not drawn across a missing point."""
    runs: list[list[Any]] = [[]]
    for key in keys:
        if isinstance(values.get(key), int | float):
            runs[-1].append(key)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def series_plot(
    name: str,
    title: str,
    y_label: str,
    keys: Sequence[Any],
    series: Sequence[Series],
    *,
    x_label: str = "concurrency N",
    tick_prefix: str = "",
    unit: str = "",
    bands: Mapping[Any, tuple[str, str]] | None = None,
    band_legend: Sequence[LegendItem] = (),
) -> str:
    """Several series over the same keys in one plot, each in its colour, with a legend naming each.

    ``bands`` shades a key's column (colour, why): a run whose gate failed, in a trend. A single
    series has its values written beside its points; with several, each point's ``<title>`` says it.
    """
    xs = x_positions(list(keys))
    step = (WIDTH - LEFT - RIGHT) / max(len(keys), 1)
    plot_h = HEIGHT - TOP - BOTTOM
    numbers = [v for s in series for v in s.values.values() if isinstance(v, int | float)]
    y_max = nice_max(max(numbers, default=1.0))
    body: list[str] = []
    for key, (colour, why) in (bands or {}).items():
        if key in xs:
            body.append(
                f'<rect class="gx10-band" x="{xs[key] - step / 2:.1f}" y="{TOP}" width="{step:.1f}" '
                f'height="{plot_h}" fill="{escape(colour)}" fill-opacity="0.18">'
                f"<title>{escape(f'{tick_prefix}{key}: {why}')}</title></rect>"
            )
    body += x_ticks(xs, tick_prefix)
    suffix = f" {unit}" if unit else ""
    for i, line in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        dash = "" if i < len(COLOURS) else ' stroke-dasharray="6 3"'
        for run in _segments(keys, line.values):
            if len(run) > 1:
                path = " ".join(f"{xs[k]:.1f},{y_of(float(line.values[k] or 0), y_max):.1f}" for k in run)
                body.append(
                    f'<polyline data-series="{escape(line.label)}" points="{path}" fill="none" '
                    f'stroke="{colour}" stroke-width="2"{dash}/>'
                )
        for key in keys:
            value, mark = line.values.get(key), line.marks.get(key)
            where = f"{line.label}: {tick_prefix}{key}"
            if isinstance(value, int | float):
                x, y = xs[key], y_of(float(value), y_max)
                text = f"{where}: {fmt(round(float(value), 2))}{suffix}" + (f" ({mark})" if mark else "")
                fill = "#fff" if mark else colour
                body.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4.5 if mark else 3.5}" fill="{fill}" '
                    f'stroke="{colour}" stroke-width="2"><title>{escape(text)}</title></circle>'
                )
                if len(series) == 1:
                    body.append(
                        f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">'
                        f"{escape(fmt(round(float(value), 1)))}</text>"
                    )
            elif mark:
                x, y = xs[key], TOP + plot_h - 5
                body.append(
                    f'<text class="gx10-missing" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" '
                    f'fill="{colour}" font-size="14" font-weight="bold">✕<title>{escape(f"{where}: {mark}")}'
                    "</title></text>"
                )
    legend = [LegendItem(COLOURS[i % len(COLOURS)], s.label) for i, s in enumerate(series)]
    return frame(name, title, x_label, y_label, y_max, body, legend=[*legend, *band_legend])


def time_plot(
    name: str,
    title: str,
    y_label: str,
    t_s: Sequence[float | None],
    lines: Sequence[Line],
    *,
    second: Line | None = None,
    second_max: float = 1.0,
    second_text: Callable[[float], str] = lambda v: f"{v * 100:g} %",
) -> str:
    """Values over time (seconds along x): a line per series, broken where a value is missing.

    Each :class:`Line`'s points are (index into ``t_s``, value). ``second`` is drawn against its own
    scale (0 to ``second_max``, labelled inside the plot's right edge with ``second_text``): KV
    cache usage beside request counts.
    """
    plot_w = WIDTH - LEFT - RIGHT
    times = [t for t in t_s if isinstance(t, int | float)]
    t_max = nice_max(max(times, default=1.0))
    values = [v for s in lines for _, v in s.points if isinstance(v, int | float)]
    y_max = nice_max(max(values, default=1.0))

    def x_of(t: float) -> float:
        return LEFT + plot_w * t / t_max

    base = HEIGHT - BOTTOM + 14
    body = [
        f'<text x="{x_of(t_max * i / 4):.1f}" y="{base}" text-anchor="middle">{escape(fmt(t_max * i / 4))}</text>'
        for i in range(5)
    ]
    drawn = [(s, 1.0) for s in lines]
    if second is not None:
        drawn.append((second, y_max / second_max))
        for i in (2, 4):
            body.append(
                f'<text x="{LEFT + plot_w - 4}" y="{y_of(y_max * i / 4, y_max) + 12:.1f}" text-anchor="end" '
                f'fill="{second.colour}">{escape(second_text(second_max * i / 4))}</text>'
            )
    for line, scale in drawn:
        run: list[str] = []
        runs = [run]
        for index, value in line.points:
            t = t_s[index] if 0 <= index < len(t_s) else None
            if isinstance(t, int | float) and isinstance(value, int | float):
                run.append(f"{x_of(t):.1f},{y_of(value * scale, y_max):.1f}")
            elif run:
                run = []
                runs.append(run)
        dash = ' stroke-dasharray="5 3"' if line.dashed else ""
        for points in runs:
            if len(points) == 1:
                x, y = points[0].split(",")
                body.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{line.colour}"/>')
            elif points:
                body.append(
                    f'<polyline data-series="{escape(line.label)}" points="{" ".join(points)}" fill="none" '
                    f'stroke="{line.colour}" stroke-width="2"{dash}><title>{escape(line.label)}</title></polyline>'
                )
    legend = [LegendItem(s.colour, s.label, kind="dashed" if s.dashed else "line") for s, _ in drawn]
    return frame(name, title, "seconds from the point's start", y_label, y_max, body, legend=legend)


@dataclass(frozen=True)
class XYSeries:
    """One series of an :func:`xy_plot`: (x, y) points joined in the order given.

    ``tips`` says each point in its tooltip; a point whose ``failed`` is true is a red cross; a
    ``hollow`` series has open markers (a second reading of the same points: goodput beside output).
    ``labels`` writes a short text above each point (a probe's step).
    """

    label: str
    points: Sequence[tuple[float, float]]
    colour: str = LINE_COLOURS[0]
    dashed: bool = False
    hollow: bool = False
    tips: Sequence[str] = ()
    failed: Sequence[bool] = ()
    labels: Sequence[str] = ()
    joined: bool = True


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = [low * (high / low) ** (i / 4) for i in range(5)] if high > low else [low]
    return [float(f"{t:.2g}") for t in ticks]


def xy_plot(
    name: str,
    title: str,
    x_label: str,
    y_label: str,
    series: Sequence[XYSeries],
    *,
    y_max: float | None = None,
    x_log: bool = False,
    hlines: Sequence[tuple[float, str, str]] = (),
    vlines: Sequence[tuple[float, str, str]] = (),
    extra_legend: Sequence[LegendItem] = (),
) -> str:
    """Values against a numeric x (linear from 0, or logarithmic between the smallest and largest x).

    Every marker is ``<circle class="gx10-point" data-series=LABEL>`` (a failed one a red cross in
    ``<g class="gx10-failed" data-series=LABEL>``), one per point. ``hlines`` and ``vlines`` are
    (value, colour, label): a dashed target across the plot, a line at an answer.
    """
    plot_w = WIDTH - LEFT - RIGHT
    xs = [x for s in series for x, _ in s.points] + [v for v, _, _ in vlines]
    ys = [y for s in series for _, y in s.points] + [v for v, _, _ in hlines]
    top = y_max if y_max is not None else nice_max(max(ys, default=1.0))
    if x_log and xs and min(xs) > 0:
        lo, hi = min(xs) / 1.25, max(xs) * 1.25

        def x_of(x: float) -> float:
            return LEFT + plot_w * math.log(max(x, lo) / lo) / math.log(hi / lo)

        ticks = _log_ticks(min(xs), max(xs))
    else:
        hi = nice_max(max(xs, default=1.0))

        def x_of(x: float) -> float:
            return LEFT + plot_w * x / hi

        ticks = [hi * i / 4 for i in range(5)]
    base = HEIGHT - BOTTOM + 14
    body = [
        f'<text x="{x_of(t):.1f}" y="{base}" text-anchor="middle">{escape(fmt(t))}</text>'
        for t in dict.fromkeys(ticks)
    ]
    for value, colour, label in hlines:
        y = y_of(value, top)
        body.append(
            f'<line class="gx10-hline" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{escape(colour)}" stroke-width="1.5" stroke-dasharray="6 3"><title>{escape(label)}</title></line>'
        )
    for value, colour, label in vlines:
        x = x_of(value)
        body.append(
            f'<line class="gx10-vline" x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
            f'stroke="{escape(colour)}" stroke-width="1.5"><title>{escape(label)}</title></line>'
        )
    for s in series:
        coords = [(x_of(x), y_of(y, top)) for x, y in s.points]
        if s.joined and len(coords) > 1:
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            body.append(
                f'<polyline data-series="{escape(s.label)}" points="{path}" fill="none" '
                f'stroke="{s.colour}" stroke-width="2"{dash}/>'
            )
        for i, (x, y) in enumerate(coords):
            tip = s.tips[i] if i < len(s.tips) else f"{s.label}: {fmt(s.points[i][0])}, {fmt(s.points[i][1])}"
            if i < len(s.failed) and s.failed[i]:
                mark = cross(x, y, tip)
                body.append(
                    mark.replace(
                        '<g class="gx10-failed"', f'<g class="gx10-failed" data-series="{escape(s.label)}"', 1
                    )
                )
            else:
                fill = "#ffffff" if s.hollow else s.colour
                body.append(
                    f'<circle class="gx10-point" data-series="{escape(s.label)}" cx="{x:.1f}" cy="{y:.1f}" '
                    f'r="3.5" fill="{fill}" stroke="{s.colour}" stroke-width="1.5"><title>{escape(tip)}</title></circle>'
                )
            if i < len(s.labels) and s.labels[i]:
                body.append(
                    f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">{escape(s.labels[i])}</text>'
                )
    legend = [
        LegendItem(s.colour, s.label, kind="dashed" if s.dashed else ("dot" if not s.joined else "line"))
        for s in series
    ]
    legend += [LegendItem(colour, label, kind="dashed") for _, colour, label in hlines]
    legend += [LegendItem(colour, label) for _, colour, label in vlines]
    return frame(name, title, x_label, y_label, top, body, legend=[*legend, *extra_legend])


def stack(name: str, title: str, panels: Sequence[str]) -> str:
    """Plots made by :func:`frame` stacked one under the other in one ``<svg>`` (one file, two panels)."""
    inner: list[str] = []
    offset = 0.0
    for panel in panels:
        head, _, rest = panel.partition("\n")
        found = re.search(r'height="([0-9.]+)"', head)
        height = float(found.group(1)) if found else float(HEIGHT)
        content = rest.rsplit("</svg>", 1)[0]
        inner.append(f'<g class="gx10-panel" transform="translate(0 {offset:g})">\n{content}</g>')
        offset += height
    return "\n".join(
        [
            f'<svg class="gx10-plot" data-plot="{escape(name)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="{WIDTH}" height="{offset:g}" viewBox="0 0 {WIDTH} {offset:g}" role="img" '
            f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11" fill="#1a1a1a">',
            f"<title>{escape(title)}</title>",
            *inner,
            "</svg>",
        ]
    )


def plots(document: Mapping[str, Any], overlays: Sequence[Overlay] = ()) -> list[str]:
    """Every plot the document's sections draw, section by section in the declared order.

    ``overlays`` are drawn beside the run's figures (the reference post's, a baseline's).
    """
    out: list[str] = []
    for _, section, entries in sections_in(document):
        if section is not None and section.plots is not None:
            out += section.plots(entries, overlays)
    return out


def plot_name(svg: str) -> str:
    """The ``data-plot`` name of a plot (its file name next to the Markdown)."""
    start = svg.find('data-plot="')
    if start < 0:
        return "plot"
    start += len('data-plot="')
    return svg[start : svg.index('"', start)]
