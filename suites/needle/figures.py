"""The needle suite's figures, declared once, and how a needle case is shown.

One entry per case (``needle[200000@0.50]``): the post's needle table (Metric, Value; one value
column per case when there are several) with the model's answer and the head of its reasoning
below it, a line per case on the terminal, and the length-by-depth grid of retrievals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pytest_gx10.figures import HIGHER, LOWER, MISSING, TRUE, Figure, Overlay, Section, register
from pytest_gx10.report.svg import TOP, WIDTH
from pytest_gx10.report.tables import Table
from pytest_gx10.report.terminal import text_table

__all__ = ["NEEDLE"]

_FIGURES = (
    Figure("length", "haystack length", "tokens"),
    Figure("depth", "requested depth", digits=2),
    Figure("placed_depth", "needle depth", digits=2, heading="Needle depth"),
    Figure("input_tokens", "input tokens", thousands=True, short="tokens", heading="Input tokens"),
    Figure(
        "ttft_s",
        "TTFT",
        "s",
        LOWER,
        digits=1,
        heading="TTFT (≈ prefill)",
        definition="send until the first token of the answer: about the time to prefill the haystack",
    ),
    Figure(
        "prefill_tps",
        "prefill speed",
        "tok/s",
        HIGHER,
        thousands=True,
        short="prefill",
        heading="Prefill speed",
        definition="input tokens divided by TTFT",
    ),
    Figure("output_tokens", "output tokens", thousands=True, heading="Output tokens"),
    Figure(
        "decode_tps",
        "decode speed",
        "tok/s",
        HIGHER,
        digits=1,
        short="decode",
        heading="Decode speed",
        definition="output tokens divided by (total wall minus TTFT)",
    ),
    Figure("total_wall_s", "total wall", "s", LOWER, digits=1, heading="Total wall"),
    Figure(
        "retrieved",
        "needle retrieved",
        better=TRUE,
        heading="Needle retrieved",
        definition="the final answer (after the reasoning) holds the needle's code exactly",
    ),
    Figure("ok", "request succeeded", better=TRUE),
)


def _f(name: str) -> Figure:
    figure = NEEDLE.figure(name)
    assert figure is not None, name
    return figure


def _retrieved(entry: Mapping[str, Any]) -> str:
    if entry.get("retrieved") is True:
        return "✅ yes — exact match"
    if entry.get("retrieved") is False:
        return "❌ no"
    return MISSING


def needle_table(cases: Sequence[Mapping[str, Any]]) -> Table:
    """The post's needle table (Metric, Value); one value column per case when there are several."""
    label = [("Value" if len(cases) == 1 else str(c.get("case", MISSING))) for c in cases]
    depth = _f("placed_depth")
    rows = [[_f("input_tokens").heading, *(_f("input_tokens").text(c.get("input_tokens")) for c in cases)]]
    rows.append([depth.heading, *(depth.text(c.get("placed_depth", c.get("depth"))) for c in cases)])
    for name in ("ttft_s", "prefill_tps", "output_tokens", "decode_tps", "total_wall_s"):
        figure = _f(name)
        rows.append([figure.heading, *(figure.with_unit(c.get(name)) for c in cases)])
    rows.append([_f("retrieved").heading, *(_retrieved(c) for c in cases)])
    blocks: list[tuple[str, str]] = []
    for c in cases:
        suffix = "" if len(cases) == 1 else f" ({c.get('case', MISSING)})"
        blocks.append((f"Model's final answer{suffix}", str(c.get("answer") or "")))
        if c.get("reasoning_head"):
            blocks.append((f"Reasoning trace head{suffix}", str(c.get("reasoning_head"))))
    return Table("Needle in a haystack", ("Metric", *label), rows, blocks=blocks, anchor="gx10-needle")


def tables(cases: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """The needle table of these cases."""
    return [needle_table(cases)]


def terminal(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    """How many were retrieved, then a row per case with its answer's head."""
    shown = [_f("input_tokens"), _f("ttft_s"), _f("prefill_tps")]
    rows = []
    for c in cases:
        verdict = (
            {True: "retrieved", False: "missed"}.get(c["retrieved"], MISSING) if "retrieved" in c else MISSING
        )
        rows.append(
            [
                str(c.get("case", MISSING)),
                *(f.text(c.get(f.name)) for f in shown),
                verdict,
                repr(str(c.get("answer") or ""))[:40],
            ]
        )
    found = sum(1 for c in cases if c.get("retrieved") is True)
    lines = [f"needle in a haystack: {found} of {len(cases)} retrieved"]
    return lines + text_table(["case", *(f.narrow() for f in shown), "", "answer"], rows)


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
                fill, mark, what = "#1e7b34", "✓", "retrieved"
            elif found is False:
                fill, mark, what = "#b3261e", "✗", "missed"
            else:
                fill, mark, what = "#5f6368", "–", "not run"
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


def plots(cases: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[str]:
    """The grid of retrievals."""
    return [needle_grid(cases)]


NEEDLE = register(
    Section(
        "needle",
        key="case",
        figures=_FIGURES,
        title="Needle in a haystack",
        order=20,
        tables=tables,
        terminal=terminal,
        plots=plots,
    )
)
