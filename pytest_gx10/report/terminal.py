"""The ``gx10`` section at the end of a run: what the user came for, laid out like the post.

The sweep table (the post's columns), the needle grid, speculative-decoding acceptance, the crash and
robustness tallies and the engine's verdict, within 100 columns. Plain text, no pytest import.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.report.tables import MISSING, num

__all__ = ["WIDTH", "summary_lines"]

WIDTH = 100

_SWEEP = (
    ("N", "concurrency", 0),
    ("wall s", "wall_s", 1),
    ("agg prefill tok/s", "agg_prefill_tps", -1),
    ("agg decode tok/s", "agg_decode_tps", 1),
    ("median TTFT s", "median_ttft_s", 2),
    ("median decode tok/s", "median_decode_tps", 1),
    ("ok/N", None, 0),
)


def _wrap(text: str) -> list[str]:
    """A long line as several of at most :data:`WIDTH` columns, the rest indented."""
    return textwrap.wrap(
        text, WIDTH, subsequent_indent="    ", break_on_hyphens=False, break_long_words=False
    ) or [""]


def _cell(point: Mapping[str, Any], key: str | None, digits: int) -> str:
    if key is None:
        return f"{point.get('ok_requests', MISSING)}/{point.get('concurrency', MISSING)}"
    value = point.get(key)
    if key == "concurrency":
        return str(value)
    return num(value, thousands=True) if digits < 0 else num(value, digits)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True))
    out = [line]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [text[:WIDTH] for text in out]


def _sweep(points: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = [[_cell(p, key, digits) for _, key, digits in _SWEEP] for p in points]
    lines = ["throughput sweep (N requests released together):"]
    lines += _table([h for h, _, _ in _SWEEP], rows)
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


def _needle(cases: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = []
    for c in cases:
        verdict = (
            {True: "retrieved", False: "missed"}.get(c["retrieved"], MISSING) if "retrieved" in c else MISSING
        )
        rows.append(
            [
                str(c.get("case", MISSING)),
                num(c.get("input_tokens"), thousands=True),
                num(c.get("ttft_s"), 1),
                num(c.get("prefill_tps"), thousands=True),
                verdict,
                repr(str(c.get("answer") or ""))[:40],
            ]
        )
    found = sum(1 for c in cases if c.get("retrieved") is True)
    lines = [f"needle in a haystack: {found} of {len(cases)} retrieved"]
    return lines + _table(["case", "tokens", "TTFT s", "prefill tok/s", "", "answer"], rows)


def _mtp(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for e in entries:
        if e.get("name") == "window":
            per_position = ", ".join(num(r, 3) for r in e.get("per_position") or []) or MISSING
            lines += _wrap(
                f"speculative decoding ({e.get('method', MISSING)}): mean acceptance length "
                f"{num(e.get('acceptance_length'), 2)}, acceptance rate {num(e.get('acceptance_rate'), 3)}, "
                f"per position {per_position}"
            )
    return lines


def _crash(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for e in entries:
        outcomes = ", ".join(f"{v} {k}" for k, v in sorted((e.get("outcomes") or {}).items())) or MISSING
        same = e.get("canary_before") is not None and e.get("canary_before") == e.get("canary_after")
        crash_lines = e.get("crash_lines")
        lines += _wrap(
            f"crash load: {e.get('requests', MISSING)} requests ({outcomes}); canary "
            f"{'the same after' if same else 'CHANGED after' if e.get('canary_after') else MISSING}; "
            f"crash lines in the log: {len(crash_lines) if isinstance(crash_lines, list) else MISSING}"
        )
    return lines


def _robustness(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    cases = [e for e in entries if e.get("case") != "fuzz"]
    statuses = Counter(str(e.get("status")) for e in cases)
    bad = [e["case"] for e in cases if not isinstance(e.get("status"), int) or e["status"] >= 500]
    lines = _wrap(
        f"robustness: {len(cases)} bad inputs, answered "
        + ", ".join(f"{n} x HTTP {s}" for s, n in sorted(statuses.items()))
    )
    if bad:
        lines += _wrap("5xx or no answer (see the failures and the findings): " + ", ".join(bad))
    for e in entries:
        if e.get("case") == "fuzz":
            tally = ", ".join(f"{n} x {s}" for s, n in (e.get("statuses") or {}).items())
            lines += _wrap(f"fuzz: {e.get('requests', MISSING)} bodies ({tally})")
            if e.get("failure"):
                lines += _wrap(f"fuzz failure: {e['failure']}"[:400])
    return lines


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """The section's lines for a results document; empty when the run measured nothing."""
    blocks: list[list[str]] = []
    if document.get("sweep"):
        blocks.append(_sweep(document["sweep"]))
    if document.get("needle"):
        blocks.append(_needle(document["needle"]))
    if document.get("mtp"):
        blocks.append(_mtp(document["mtp"]))
    if document.get("crash"):
        blocks.append(_crash(document["crash"]))
    if document.get("robustness"):
        blocks.append(_robustness(document["robustness"]))
    blocks = [b for b in blocks if b]
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
