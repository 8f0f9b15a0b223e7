"""The report's tables, laid out like the reference post's, as plain values both writers render.

A :class:`Table` holds formatted cell text, never markup: the Markdown and HTML writers escape it
their own way, so what the server wrote (a model's reply) is always shown as text. Column names and
number formats follow the post: ``N Wall (s) Agg prefill (t/s) Agg decode (t/s) Median TTFT (s)
Median per-req decode (t/s)``, prefill rates as whole numbers with a space between thousands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AGGREGATE_HEADERS",
    "Table",
    "aggregate_table",
    "entry_tables",
    "facts_table",
    "latency_table",
    "mtp_table",
    "needle_table",
    "num",
    "request_table",
    "results_tables",
    "section_table",
]

AGGREGATE_HEADERS = (
    "N",
    "Wall (s)",
    "Agg prefill (t/s)",
    "Agg decode (t/s)",
    "Median TTFT (s)",
    "Median per‑req decode (t/s)",
)
REQUEST_HEADERS = ("req", "TTFT (s)", "duration (s)", "prefill (t/s)", "decode (t/s)")
MISSING = "–"


@dataclass(frozen=True)
class Table:
    """A titled table of text cells; ``blocks`` are (title, text) shown verbatim below it."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[str]]
    note: str = ""
    blocks: list[tuple[str, str]] = field(default_factory=list)
    anchor: str = ""


def num(value: Any, digits: int = 1, *, thousands: bool = False) -> str:
    """A figure as the post writes it: fixed decimals, whole numbers with spaced thousands; – if absent."""
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING if value is None else str(value)
    if thousands:
        return f"{round(value):,}".replace(",", " ")
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return MISSING if not isinstance(value, int | float) else f"{value * 100:.1f}%"


def aggregate_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """The post's aggregate throughput table, one row per concurrency point."""
    rows = [
        [
            str(p.get("concurrency", MISSING)),
            num(p.get("wall_s")),
            num(p.get("agg_prefill_tps"), thousands=True),
            num(p.get("agg_decode_tps")),
            num(p.get("median_ttft_s"), 2),
            num(p.get("median_decode_tps")),
        ]
        for p in points
    ]
    return Table("Aggregate throughput", AGGREGATE_HEADERS, rows, anchor="gx10-aggregate")


def latency_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """Figures kept beside the post's (never in their place): TTFT and inter-token percentiles, skew."""
    headers = (
        "N",
        "p90 TTFT (s)",
        "p99 TTFT (s)",
        "ITL p50 (ms)",
        "ITL p90 (ms)",
        "ITL p99 (ms)",
        "dispatch skew (ms)",
        "ok / failed",
    )
    rows = [
        [
            str(p.get("concurrency", MISSING)),
            num(p.get("p90_ttft_s"), 2),
            num(p.get("p99_ttft_s"), 2),
            num(p.get("itl_p50_ms")),
            num(p.get("itl_p90_ms")),
            num(p.get("itl_p99_ms")),
            num(p.get("dispatch_skew_ms")),
            f"{p.get('ok_requests', MISSING)} / {p.get('failed_requests', MISSING)}",
        ]
        for p in points
    ]
    return Table("Latency", headers, rows, anchor="gx10-latency")


def request_table(point: Mapping[str, Any]) -> Table:
    """One point's per-request table (the post's "N=8" tables); failed requests say why."""
    requests: list[Mapping[str, Any]] = list(point.get("requests") or [])
    failed = any(r.get("error") or (r.get("ended") not in (None, "done")) for r in requests)
    headers = REQUEST_HEADERS + (("status",) if failed else ())
    rows = []
    for i, r in enumerate(requests):
        row = [
            str(i),
            num(r.get("ttft_s"), 2),
            num(r.get("duration_s"), 2),
            num(r.get("prefill_tps"), thousands=True),
            num(r.get("decode_tps")),
        ]
        if failed:
            why = r.get("error") or ""
            row.append(f"{r.get('ended', MISSING)} HTTP {r.get('status', MISSING)} {why}".strip())
        rows.append(row)
    n = point.get("concurrency", MISSING)
    tokens = sorted({(r.get("prompt_tokens"), r.get("completion_tokens")) for r in requests}, key=str)
    note = ""
    if len(tokens) == 1 and None not in tokens[0]:
        note = f"input {tokens[0][0]} tokens, output {tokens[0][1]} tokens per request"
    return Table(f"N={n}", headers, rows, note=note, anchor=f"gx10-requests-{n}")


def _retrieved(entry: Mapping[str, Any]) -> str:
    if entry.get("retrieved") is True:
        return "✅ yes — exact match"
    if entry.get("retrieved") is False:
        return "❌ no"
    return MISSING


def needle_table(cases: Sequence[Mapping[str, Any]]) -> Table:
    """The post's needle table (Metric, Value); one value column per case when there are several."""
    label = [("Value" if len(cases) == 1 else str(c.get("case", MISSING))) for c in cases]
    metrics: list[tuple[str, Any]] = [
        ("Input tokens", lambda c: num(c.get("input_tokens"), thousands=True)),
        ("Needle depth", lambda c: num(c.get("placed_depth", c.get("depth")), 2)),
        ("TTFT (≈ prefill)", lambda c: f"{num(c.get('ttft_s'))} s"),
        ("Prefill speed", lambda c: f"{num(c.get('prefill_tps'), thousands=True)} tokens/s"),
        ("Output tokens", lambda c: num(c.get("output_tokens"), thousands=True)),
        ("Decode speed", lambda c: f"{num(c.get('decode_tps'))} t/s"),
        ("Total wall", lambda c: f"{num(c.get('total_wall_s'))} s"),
        ("Needle retrieved", _retrieved),
    ]
    rows = [[name, *(fmt(c) for c in cases)] for name, fmt in metrics]
    blocks: list[tuple[str, str]] = []
    for c in cases:
        suffix = "" if len(cases) == 1 else f" ({c.get('case', MISSING)})"
        blocks.append((f"Model's final answer{suffix}", str(c.get("answer") or "")))
        if c.get("reasoning_head"):
            blocks.append((f"Reasoning trace head{suffix}", str(c.get("reasoning_head"))))
    return Table("Needle in a haystack", ("Metric", *label), rows, blocks=blocks, anchor="gx10-needle")


def mtp_table(entries: Sequence[Mapping[str, Any]]) -> Table:
    """Speculative decoding over the window: the figures of the post's SpecDecoding line."""
    rows: list[list[str]] = []
    for e in entries:
        if e.get("name") == "window":
            per_position = e.get("per_position") or []
            rows += [
                ["Method", str(e.get("method", MISSING))],
                ["Window (tokens)", num(e.get("completion_tokens"), 0)],
                ["Mean acceptance length", num(e.get("acceptance_length"), 2)],
                ["Accepted (tokens)", num(e.get("accepted"), 0)],
                ["Drafted (tokens)", num(e.get("draft_tokens"), 0)],
                ["Drafts", num(e.get("drafts"), 0)],
                ["Per-position acceptance rate", ", ".join(num(r, 3) for r in per_position) or MISSING],
                ["Avg draft acceptance rate", _pct(e.get("acceptance_rate"))],
            ]
        elif e.get("name") == "log":
            rows += [
                ["SpecDecoding log lines", num(e.get("log_lines"), 0)],
                ["Log acceptance rate", _pct(e.get("log_acceptance_rate"))],
                ["/metrics acceptance rate", _pct(e.get("metrics_acceptance_rate"))],
            ]
        else:
            rows += [[f"{e.get('name', MISSING)}: {k}", str(v)] for k, v in e.items() if k != "name"]
    return Table("Speculative decoding", ("Metric", "Value"), rows, anchor="gx10-mtp")


FACT_LABELS = (
    ("target_label", "Target"),
    ("target", "Endpoint"),
    ("target_description", "Target description"),
    ("model", "Model"),
    ("server_version", "Server version"),
    ("profile", "Profile"),
    ("launch_recipe", "Launch recipe"),
    ("serve_flags", "Serve flags"),
)


def facts_table(meta: Mapping[str, Any]) -> Table:
    """The run's engine facts (target, model, server version, profile, launch recipe, flags)."""
    rows = []
    for key, label in FACT_LABELS:
        value = meta.get(key)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list | tuple):
            value = " ".join(str(v) for v in value)
        elif isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        rows.append([label, str(value)])
    return Table("Run", ("Fact", "Value"), rows, anchor="gx10-facts")


def entry_tables(section: str, entry: Mapping[str, Any]) -> list[Table]:
    """The tables one recorded entry shows in its test's row of the HTML report."""
    if section == "sweep":
        return [aggregate_table([entry]), latency_table([entry]), request_table(entry)]
    if section == "needle":
        return [needle_table([entry])]
    if section == "mtp":
        return [mtp_table([entry])]
    return [Table(section, ("Figure", "Value"), [[str(k), _plain(v)] for k, v in entry.items()])]


def results_tables(document: Mapping[str, Any]) -> list[Table]:
    """Every table of a results document, in the post's order: sweep, per-request, needle, MTP."""
    tables: list[Table] = []
    sweep = list(document.get("sweep") or [])
    if sweep:
        tables += [aggregate_table(sweep), latency_table(sweep)]
        tables += [request_table(p) for p in sweep]
    needle = list(document.get("needle") or [])
    if needle:
        tables.append(needle_table(needle))
    mtp = list(document.get("mtp") or [])
    if mtp:
        tables.append(mtp_table(mtp))
    for name, value in document.items():
        if name not in ("sweep", "needle", "mtp") and isinstance(value, list) and value:
            rows = [e for e in value if isinstance(e, Mapping)]
            if rows:
                tables.append(section_table(name, rows))
    return tables


def section_table(section: str, entries: Sequence[Mapping[str, Any]]) -> Table:
    """Any other section a suite records into: one row per entry, one column per plain figure."""
    columns: list[str] = []
    for entry in entries:
        columns += [k for k, v in entry.items() if k not in columns and not isinstance(v, list | dict)]
    rows = [[_plain(e.get(c)) for c in columns] for e in entries]
    return Table(section.replace("_", " ").capitalize(), tuple(columns), rows, anchor=f"gx10-{section}")


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return num(value, 3 if abs(value) < 10 else 1)
    return MISSING if value is None else str(value)
