"""The throughput sweep's figures, declared once, and how the sweep is shown; the load points' too.

One entry per concurrency point (``sweep[N=8]``), by the reference post's definitions (see the
README). The report's tables follow the post's layout, with the post's column names and number
formats (prefill rates as whole numbers with a space between thousands); the extra figures (TTFT
and inter-token percentiles, the barrier's dispatch skew) sit in a table beside them.
"""

from __future__ import annotations

import ast
import contextlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from pytest_gx10.figures import HIGHER, LOWER, MISSING, Figure, Overlay, Section, num, register
from pytest_gx10.load.points import percentile
from pytest_gx10.load.repeats import MIN_INTERVAL_REPEATS, Spread
from pytest_gx10.load.telemetry import KV_FULL_USAGE, telemetry_words
from pytest_gx10.report.svg import (
    FAILED,
    LEFT,
    LINE_COLOURS,
    OVERLAY_COLOURS,
    RIGHT,
    WIDTH,
    LegendItem,
    Line,
    XYSeries,
    cross,
    frame,
    line_plot,
    nice_max,
    stack,
    time_plot,
    x_positions,
    x_ticks,
    xy_plot,
    y_of,
)
from pytest_gx10.report.tables import Table
from pytest_gx10.report.terminal import text_table

__all__ = ["LOAD", "REQUEST", "SATURATION", "SWEEP", "probe_lines"]

_FIGURES = (
    Figure(
        "wall_s",
        "wall",
        "s",
        LOWER,
        digits=1,
        heading="Wall",
        definition="the longest request's duration: N requests released together until the last stream ends",
    ),
    Figure(
        "agg_prefill_tps",
        "aggregate prefill",
        "tok/s",
        HIGHER,
        thousands=True,
        short="agg prefill",
        heading="Agg prefill",
        definition="all prompt tokens of the point divided by the longest TTFT",
    ),
    Figure(
        "agg_decode_tps",
        "aggregate decode",
        "tok/s",
        HIGHER,
        digits=1,
        short="agg decode",
        heading="Agg decode",
        definition="all completion tokens of the point divided by (wall minus the shortest TTFT)",
    ),
    Figure(
        "median_ttft_s",
        "median TTFT",
        "s",
        LOWER,
        digits=2,
        heading="Median TTFT",
        definition="time to first token: send until the first chunk carrying a token, median over the requests",
    ),
    Figure(
        "median_decode_tps",
        "median decode",
        "tok/s",
        HIGHER,
        digits=1,
        heading="Median per‑req decode",
        definition="each request's completion tokens divided by (its duration minus its TTFT), median",
    ),
    Figure("p90_ttft_s", "p90 TTFT", "s", LOWER, digits=2, tail=True, definition="90th percentile of TTFT"),
    Figure("p99_ttft_s", "p99 TTFT", "s", LOWER, digits=2, tail=True, definition="99th percentile of TTFT"),
    Figure(
        "itl_p50_ms",
        "median inter-token latency",
        "ms",
        LOWER,
        digits=1,
        tail=True,
        heading="ITL p50",
        definition="time between tokens, each gap shared by the tokens its chunk carries; percentiles by token",
    ),
    Figure("itl_p90_ms", "p90 inter-token latency", "ms", LOWER, digits=1, tail=True, heading="ITL p90"),
    Figure("itl_p99_ms", "p99 inter-token latency", "ms", LOWER, digits=1, tail=True, heading="ITL p99"),
    # Measured by the client about itself, not the server: kept, never gated.
    Figure(
        "dispatch_skew_ms",
        "dispatch skew",
        "ms",
        None,
        digits=1,
        definition="the spread of the N send times (the client's own, not the server's)",
    ),
    Figure("ok_requests", "requests that succeeded", short="ok"),
    Figure("failed_requests", "requests that failed", short="failed"),
    # What the server's /metrics said while the point ran (pytest_gx10.load.telemetry): kept, never gated.
    Figure(
        "peak_running",
        "peak running requests",
        digits=0,
        heading="Peak running",
        definition="the most requests the server reported running in one scrape during the point",
    ),
    Figure(
        "peak_waiting",
        "peak waiting requests",
        digits=0,
        heading="Peak waiting",
        definition="the most requests the server reported queued (waiting) in one scrape",
    ),
    Figure(
        "peak_kv_usage",
        "peak KV cache usage",
        digits=2,
        heading="Peak KV",
        definition="the highest KV cache usage the server reported (1 is full)",
    ),
    Figure(
        "preemptions",
        "preemptions",
        digits=0,
        heading="Preemptions",
        definition="requests the server preempted during the point (its counter's change)",
    ),
    Figure(
        "prefix_cache_hit_rate",
        "prefix cache hit rate",
        digits=2,
        heading="Prefix hits",
        definition="prompt tokens found in the prefix cache over those looked up, during the point",
    ),
    Figure(
        "server_generation_tokens",
        "generated tokens (server)",
        digits=0,
        heading="Server gen tokens",
        definition="the server's own count of generated tokens during the point",
    ),
    Figure(
        "client_completion_tokens",
        "completion tokens (client)",
        digits=0,
        heading="Client tokens",
        definition="the sum of the requests' usage.completion_tokens: beside the server's count",
    ),
    Figure(
        "kv_full",
        "KV cache full",
        definition=f"peak KV cache usage reached {KV_FULL_USAGE:g} during the point",
    ),
    Figure("preempted", "preempted", definition="the server preempted a request during the point"),
    # The workload's (pytest_gx10.workload): kept, never gated.
    Figure(
        "expected_prefix_hit_rate",
        "expected prefix cache hit rate",
        digits=2,
        heading="Expected prefix hits",
        definition="the share of prompt tokens a prefix cache can serve in a shared-prefix workload; in a "
        "multi-turn one, the least it can serve (the earlier turns' prompts)",
    ),
    Figure(
        "expected_prefix_hit_rate_max",
        "most prefix cache hit rate possible",
        digits=2,
        heading="Most prefix hits",
        definition="in a multi-turn workload, the most a prefix cache can serve (the earlier turns' "
        "prompts and answers)",
    ),
    Figure(
        "median_ttfat_s",
        "median time to first answer token",
        "s",
        digits=2,
        heading="Median TTFAT",
        definition="a reasoning model's first answer (content) token, after its thinking; median",
    ),
    Figure(
        "mean_reasoning_tokens",
        "mean reasoning tokens",
        digits=0,
        heading="Reasoning tokens",
        definition="thinking tokens per request that thought (the usage's reasoning_tokens)",
    ),
)
_WORKLOAD_FIGURES = (
    "expected_prefix_hit_rate",
    "expected_prefix_hit_rate_max",
    "median_ttfat_s",
    "mean_reasoning_tokens",
)
AGGREGATE = ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps")
LATENCY = ("p90_ttft_s", "p99_ttft_s", "itl_p50_ms", "itl_p90_ms", "itl_p99_ms", "dispatch_skew_ms")
TELEMETRY = (
    "peak_running",
    "peak_waiting",
    "peak_kv_usage",
    "preemptions",
    "prefix_cache_hit_rate",
    "server_generation_tokens",
    "client_completion_tokens",
)

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


def status_of(point: Mapping[str, Any]) -> str:
    """The point's status ("ok", "zero-token", "failed", "engine dead", "not attempted").

    A point recorded before points carried one is "ok" when none of its requests failed.
    """
    status = point.get("status")
    if isinstance(status, str) and status:
        return status
    return "failed" if point.get("failed_requests") else "ok"


def status_line(point: Mapping[str, Any]) -> str:
    """The point's status and what the server saw: ``ok, KV cache full, 3 preemptions``."""
    words = telemetry_words(point)
    return f"{status_of(point)}, {words}" if words else status_of(point)


def aggregate_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """The post's aggregate throughput table, one row per concurrency point, and each one's status.

    A point that failed shows "–" where it has no figure; a point the dead engine kept from
    starting is a row of its own ("not attempted"), as the post's N=16.
    """
    headers = ("N", *(_f(n).column() for n in AGGREGATE), "Status")
    rows = [
        [str(p.get("concurrency", MISSING)), *(cell(p, n) for n in AGGREGATE), status_line(p)] for p in points
    ]
    why = [f"N={p.get('concurrency')}: {p['why']}" for p in points if p.get("why")]
    note = "; ".join([n for n in (repeats_note(points), *why) if n])
    return Table("Aggregate throughput", headers, rows, note=note, anchor="gx10-aggregate")


def latency_table(points: Sequence[Mapping[str, Any]]) -> Table:
    """Figures kept beside the post's (never in their place): TTFT and inter-token percentiles, skew."""
    headers = ("N", *(_f(n).column() for n in LATENCY), "ok / failed")
    rows = []
    for p in points:
        ok, failed = p.get("ok_requests"), p.get("failed_requests")
        counts = f"{ok} / {failed}" if ok is not None and failed is not None else status_of(p)
        rows.append([str(p.get("concurrency", MISSING)), *(cell(p, n) for n in LATENCY), counts])
    return Table("Latency", headers, rows, note=repeats_note(points), anchor="gx10-latency")


def _n_label(point: Mapping[str, Any]) -> str:
    return f"N={point.get('concurrency', MISSING)}"


def telemetry_table(
    points: Sequence[Mapping[str, Any]],
    *,
    label: Callable[[Mapping[str, Any]], str] = _n_label,
    key: str = "N",
    anchor: str = "gx10-telemetry",
) -> Table | None:
    """What the server's /metrics said during each point; None when no point has telemetry.

    ``label`` names a point in its row and note (``N=8``, ``rate 2/s``), ``key`` heads that column.
    """
    shown = [p for p in points if isinstance(p.get("telemetry"), Mapping)]
    if not shown:
        return None
    headers = (key, *(_f(n).column() for n in TELEMETRY), "Samples")
    rows = []
    why = []
    for p in shown:
        series: Mapping[str, Any] = p["telemetry"]
        samples = len(series.get("t_s") or ())
        gaps = series.get("gaps") or 0
        count = f"{samples} ({gaps} gaps)" if gaps else str(samples)
        shown_as = label(p)
        rows.append([shown_as.removeprefix("N="), *(_f(n).text(p.get(n)) for n in TELEMETRY), count])
        if series.get("reason"):
            why.append(f"{shown_as}: {series['reason']}")
    interval = shown[0]["telemetry"].get("interval_s")
    if isinstance(interval, int | float):
        why.insert(0, f"/metrics scraped every {interval:g} s")
    note = "; ".join(why)
    return Table("Server telemetry", headers, rows, note=note, anchor=anchor)


# --- a multi-turn workload's turns (a point's optional ``turns``: one row per conversation turn) ---

TURN_HEADERS = (
    "Turn",
    "Requests (ok/total)",
    "Input tokens",
    "New tokens",
    "Median TTFT (s)",
    "p90 TTFT (s)",
    "Median prefill (tok/s)",
    "Possible hit",
    "Server hit",
    "Cached tokens",
)
TURN_NOTE = (
    "tokens are means per request; possible hit: the share of the turn's prompt tokens a prefix cache "
    "can serve, from the previous turn's prompt in whole 16-token blocks to that prompt and its answer; "
    "server hit: the server's prefix-cache hit rate over the turn (/metrics); cached tokens: the mean of "
    "the server's usage.prompt_tokens_details.cached_tokens"
)


def _percent(value: Any) -> str:
    return f"{value * 100:.0f} %" if _number(value) is not None else MISSING


def possible_hit(row: Mapping[str, Any]) -> str:
    """``40–52 %`` from a turn's expected hit rates (one figure when both round alike, – when neither)."""
    low, high = _number(row.get("expected_hit_rate_min")), _number(row.get("expected_hit_rate_max"))
    if low is None or high is None:
        return _percent(high if low is None else low)
    low_text, high_text = f"{low * 100:.0f}", f"{high * 100:.0f}"
    return f"{low_text} %" if low_text == high_text else f"{low_text}–{high_text} %"


def _turn_row(row: Mapping[str, Any]) -> list[str]:
    return [
        num(row.get("turn"), 0),
        f"{num(row.get('ok'), 0)}/{num(row.get('requests'), 0)}",
        num(row.get("mean_input_tokens"), 1),
        num(row.get("mean_new_tokens"), 1),
        num(row.get("median_ttft_s"), 2),
        num(row.get("p90_ttft_s"), 2),
        num(row.get("median_prefill_tps"), thousands=True),
        possible_hit(row),
        _percent(row.get("prefix_cache_hit_rate")),
        num(row.get("mean_cached_tokens"), 1),
    ]


def turn_rows(point: Mapping[str, Any]) -> list[list[str]]:
    """A point's turns as table rows; empty when the point has none (a single-turn workload)."""
    turns = point.get("turns")
    if not isinstance(turns, list):
        return []
    return [_turn_row(row) for row in turns if isinstance(row, Mapping)]


def turns_table(point: Mapping[str, Any], label: str, anchor: str) -> Table | None:
    """One point's turns (``Turns, N=4``), a row per conversation turn; None without turns."""
    rows = turn_rows(point)
    if not rows:
        return None
    return Table(f"Turns, {label}", TURN_HEADERS, rows, note=TURN_NOTE, anchor=anchor)


def turns_lines(point: Mapping[str, Any], label: str) -> list[str]:
    """One point's turns as a text table under ``N=4 turns:``; empty without turns."""
    rows = turn_rows(point)
    if not rows:
        return []
    headers = (
        "turn",
        "ok/req",
        "in tok",
        "new tok",
        "TTFT p50",
        "TTFT p90",
        "prefill tok/s",
        "possible hit",
        "server hit",
        "cached",
    )
    return [f"{label} turns:", *text_table(headers, rows)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower().replace("n=", "n")).strip("-")


def _error_text(error: Any) -> str:
    """An error as its message: a server's error object says its message and code, never ``None``."""
    if error is None:
        return ""
    data: Any = error
    if isinstance(error, str) and error.startswith("{"):
        with contextlib.suppress(ValueError, SyntaxError, MemoryError, RecursionError):
            data = ast.literal_eval(error)
    if isinstance(data, Mapping):
        message = str(data.get("message") or "").strip()
        code = data.get("code")
        return f"{message} (code {code})" if code is not None else message
    return str(error)


def request_status(request: Mapping[str, Any]) -> str:
    """What became of one request, in words: "ok", "zero-token", "HTTP 500: ...", "inband error: ..."."""
    outcome = request.get("outcome")
    if outcome is None:  # recorded before requests carried an outcome
        outcome = "ok" if request.get("ended") in (None, "done") and not request.get("error") else "failed"
    if outcome == "ok":
        return "ok"
    if outcome == "zero_tokens":
        return "zero-token"
    words = str(outcome).replace("_", " ")
    status = request.get("status")
    if isinstance(status, int) and status != 200:
        words = f"{words}, HTTP {status}"
    why = _error_text(request.get("error"))
    return f"{words}: {why}" if why else words


def request_table(point: Mapping[str, Any]) -> Table:
    """One point's per-request table (the post's "N=8" tables); failed requests say why."""
    requests: list[Mapping[str, Any]] = list(point.get("requests") or [])
    statuses = [request_status(r) for r in requests]
    failed = any(s != "ok" for s in statuses)
    headers = ("req", *(f.column() for f in REQUEST.figures)) + (("status",) if failed else ())
    rows = []
    for i, (r, why) in enumerate(zip(requests, statuses, strict=True)):
        row = [str(i), *(f.text(r.get(f.name)) for f in REQUEST.figures)]
        if failed:
            row.append(why)
        rows.append(row)
    n = point.get("concurrency", MISSING)
    tokens = sorted({(r.get("prompt_tokens"), r.get("completion_tokens")) for r in requests}, key=str)
    note = ""
    if len(tokens) == 1 and None not in tokens[0]:
        note = f"input {tokens[0][0]} tokens, output {tokens[0][1]} tokens per request"
    state = status_line(point)
    if state != "ok":
        note = f"{state}; {note}" if note else state
    return Table(f"N={n}", headers, rows, note=note, anchor=f"gx10-requests-{n}", group="Per‑request totals")


def _change(value: Any, reference: Any, figure: Figure) -> str:
    """The post's change cell: "tie", "−14% vs 63.6" or "+5% vs 40.3"; – when either is missing."""
    if not isinstance(value, int | float) or not isinstance(reference, int | float) or not reference:
        return MISSING
    change = (value - reference) / reference * 100
    if round(change) == 0:
        return f"tie ({figure.text(reference)})"
    sign = "+" if change > 0 else "\u2212"
    return f"{sign}{abs(change):.0f}% vs {figure.text(reference)}"


def comparison_table(points: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay]) -> Table | None:
    """The post's MTP-5 table: wall, prefill and decode per N, a change column per comparison, status.

    Each comparison (a baseline, the reference post's run) gets its own "vs" column on aggregate
    decode; a point that did not run (or ran and failed) says so in its status column.
    """
    against = [(o.label, {e.get("concurrency"): e for e in o.entries("sweep")}) for o in overlays]
    against = [(label, by_n) for label, by_n in against if by_n]
    if not against:
        return None
    shown = [_f("wall_s"), _f("agg_prefill_tps"), _f("agg_decode_tps")]
    decode = shown[-1]
    headers = ("N", *(f.column() for f in shown), *(f"vs {label}" for label, _ in against), "Status")
    rows = []
    for p in points:
        n = p.get("concurrency")
        changes = []
        for _, by_n in against:
            ref = by_n.get(n)
            if ref is None:
                changes.append(MISSING)
            elif not isinstance(ref.get(decode.name), int | float):
                changes.append(status_of(ref))
            else:
                changes.append(_change(p.get(decode.name), ref.get(decode.name), decode))
        rows.append([str(n), *(f.text(p.get(f.name)) for f in shown), *changes, status_of(p)])
    names = " and ".join(label for label, _ in against)
    return Table(
        f"Against {names}",
        headers,
        rows,
        note=f"change of aggregate decode against {names}",
        anchor="gx10-comparison",
    )


def tables(points: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """The aggregate and latency tables, the comparisons, the telemetry, each multi-turn point's turns,
    then each point's per-request table."""
    out = [aggregate_table(points)]
    compared = comparison_table(points, overlays)
    if compared is not None:
        out.append(compared)
    out.append(latency_table(points))
    telemetry = telemetry_table(points)
    if telemetry is not None:
        out.append(telemetry)
    for p in points:
        turns = turns_table(p, _n_label(p), f"gx10-turns-{p.get('concurrency', 'point')}")
        if turns is not None:
            out.append(turns)
    return out + [request_table(p) for p in points if p.get("requests")]


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
        flags = telemetry_words(p)
        if flags:
            lines.append(f"N={p.get('concurrency')}: {flags}")
    for p in points:
        lines += turns_lines(p, _n_label(p))
    return lines


def _sent(point: Mapping[str, Any]) -> Any:
    n = point.get("concurrency", MISSING)
    k = len(point.get("repeats") or ())
    return n * k if k > 1 and isinstance(n, int) else n


def ttft_plot(points: Sequence[Mapping[str, Any]]) -> str:
    """Every request's TTFT at each N: a dot per request that succeeded, a red cross per one that failed.

    A failed request without a TTFT is crossed on the axis; a point that never ran says its status.
    """
    xs = x_positions([p["concurrency"] for p in points])
    marks = [
        (p["concurrency"], i, r.get("ttft_s"), request_status(r))
        for p in points
        for i, r in enumerate(p.get("requests") or [])
    ]
    ttft = REQUEST.figures[0]
    y_max = nice_max(max((t for _, _, t, _ in marks if isinstance(t, int | float)), default=1.0))
    step = (WIDTH - LEFT - RIGHT) / max(len(xs), 1)
    body = x_ticks(xs, "N=")
    failed = 0
    for n, i, t, state in marks:
        size = max(len(p.get("requests") or []) for p in points if p["concurrency"] == n)
        offset = (i - (size - 1) / 2) * min(step * 0.6 / max(size, 1), 6)
        x = xs[n] + offset
        if state != "ok":
            failed += 1
            at = f"TTFT {ttft.text(t)} s" if isinstance(t, int | float) else "no token"
            y = y_of(t, y_max) if isinstance(t, int | float) else y_of(0.0, y_max) - 6
            body.append(cross(x, y, f"N={n} request {i}: {at}, failed ({state})", 3.5))
            continue
        if not isinstance(t, int | float):
            continue
        body.append(
            f'<circle cx="{x:.1f}" cy="{y_of(t, y_max):.1f}" r="3" fill="{LINE_COLOURS[0]}" fill-opacity="0.75">'
            f"<title>{escape(f'N={n} request {i}: TTFT {ttft.text(t)} s')}</title></circle>"
        )
    for p in points:
        if not p.get("requests") and status_of(p) != "ok":
            body.append(
                f'<text x="{xs[p["concurrency"]]:.1f}" y="{y_of(0.0, y_max) - 8:.1f}" text-anchor="middle" '
                f'fill="{FAILED}" font-weight="bold">{escape(status_of(p))}</text>'
            )
    legend = [LegendItem(LINE_COLOURS[0], "request", kind="dot")]
    if failed:
        legend.append(LegendItem(FAILED, f"failed request ({failed})", kind="cross"))
    return frame("ttft", "TTFT per request", "concurrency N", ttft.column(), y_max, body, legend=legend)


def telemetry_plot(point: Mapping[str, Any], label: str | None = None) -> str | None:
    """Running and waiting requests and KV cache usage over one point's time; None without samples.

    ``label`` names the point (``rate 2/s``); a sweep point is ``N=8`` (the plot ``telemetry-n8``).
    """
    series = point.get("telemetry")
    if not isinstance(series, Mapping) or not series.get("t_s"):
        return None
    shown = label if label is not None else f"N={point.get('concurrency')}"
    slug = _slug(shown)
    t_s = list(series["t_s"])

    def line(name: str, label: str, colour: str, *, dashed: bool = False) -> Line:
        values = list(series.get(name) or ())
        return Line(label, list(enumerate(values)), colour, dashed=dashed, labelled=False)

    kv = line("kv_usage", "KV cache usage (right scale)", OVERLAY_COLOURS[0], dashed=True)
    return time_plot(
        f"telemetry-{slug}",
        f"{shown}: what the server saw",
        "requests",
        t_s,
        [line("running", "running", LINE_COLOURS[0]), line("waiting", "waiting", LINE_COLOURS[1])],
        second=kv if any(isinstance(v, int | float) for _, v in kv.points) else None,
    )


@dataclass(frozen=True)
class CurvePoint:
    """One level of the latency-throughput curve: its throughput and its latency percentiles."""

    label: str  # N=8, rate 2/s
    output_tps: float | None
    goodput_tps: float | None  # None without objectives
    ttft_s: tuple[float | None, float | None, float | None]  # p50, p90, p99
    tpot_ms: tuple[float | None, float | None]  # p50, p99


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _tpot_ms(requests: Sequence[Mapping[str, Any]], q: float) -> float | None:
    """A sweep point's TPOT percentile from its requests: (duration - TTFT) / (tokens - 1)."""
    values = []
    for r in requests:
        ttft, duration, tokens = (
            _number(r.get("ttft_s")),
            _number(r.get("duration_s")),
            r.get("completion_tokens"),
        )
        if ttft is None or duration is None or not isinstance(tokens, int) or tokens < 2:
            continue
        if r.get("outcome", "ok") == "ok":
            values.append((duration - ttft) / (tokens - 1) * 1000)
    return percentile(values, q)


def sweep_curve(points: Sequence[Mapping[str, Any]]) -> list[CurvePoint]:
    """The sweep's points on the curve: aggregate decode as the output rate, TPOT from the requests."""
    out = []
    for p in sorted(
        (p for p in points if isinstance(p.get("concurrency"), int)), key=lambda p: p["concurrency"]
    ):
        requests = [r for r in p.get("requests") or () if isinstance(r, Mapping)]
        out.append(
            CurvePoint(
                f"N={p['concurrency']}",
                _number(p.get("agg_decode_tps")),
                None,
                (_number(p.get("median_ttft_s")), _number(p.get("p90_ttft_s")), _number(p.get("p99_ttft_s"))),
                (_tpot_ms(requests, 50), _tpot_ms(requests, 99)),
            )
        )
    return out


def load_curve(points: Sequence[Mapping[str, Any]]) -> list[CurvePoint]:
    """The load points on the curve, by level: output and (with objectives) goodput tokens per second."""
    shown = [p for p in points if isinstance(p.get("level"), int | float)]
    out = []
    for p in sorted(shown, key=lambda p: (str(p.get("mode")), p["level"])):
        out.append(
            CurvePoint(
                str(p.get("point", p["level"])),
                _number(p.get("output_tps")),
                _number(p.get("goodput_tps")) if p.get("slo") else None,
                (_number(p.get("ttft_p50_s")), _number(p.get("ttft_p90_s")), _number(p.get("ttft_p99_s"))),
                (_number(p.get("tpot_p50_ms")), _number(p.get("tpot_p99_ms"))),
            )
        )
    return out


_PERCENTILE_COLOURS = (LINE_COLOURS[0], LINE_COLOURS[1], OVERLAY_COLOURS[2])


def latency_throughput_plot(curve: Sequence[CurvePoint], x_words: str = "output tok/s") -> str | None:
    """Two panels, one marker per level each line: TTFT p50 / p90 / p99 and TPOT p50 / p99 against
    output tokens per second; with objectives the medians against goodput tokens per second too
    (hollow, dashed). None when no level has an output rate. The plot ``latency-throughput``."""
    points = [c for c in curve if c.output_tps is not None]
    if not points:
        return None

    def lines(
        what: str, unit: str, values: Callable[[CurvePoint], Sequence[float | None]], names: Sequence[str]
    ) -> list[XYSeries]:
        out = []
        for i, name in enumerate(names):
            shown = [(c, values(c)[i]) for c in points if values(c)[i] is not None]
            out.append(
                XYSeries(
                    f"{what} {name}",
                    [(float(c.output_tps or 0), float(v or 0)) for c, v in shown],
                    _PERCENTILE_COLOURS[i],
                    tips=[
                        f"{c.label}: {what} {name} {v:.3g} {unit} at {c.output_tps:.1f} tok/s"
                        for c, v in shown
                    ],
                )
            )
        good = [(c, values(c)[0]) for c in points if c.goodput_tps is not None and values(c)[0] is not None]
        if good:
            out.append(
                XYSeries(
                    f"{what} {names[0]} vs goodput",
                    [(float(c.goodput_tps or 0), float(v or 0)) for c, v in good],
                    OVERLAY_COLOURS[0],
                    dashed=True,
                    hollow=True,
                    tips=[
                        f"{c.label}: {what} {names[0]} {v:.3g} {unit} at {c.goodput_tps:.1f} goodput tok/s"
                        for c, v in good
                    ],
                )
            )
        return out

    x_label = (
        f"{x_words} (hollow: goodput tok/s)" if any(c.goodput_tps is not None for c in points) else x_words
    )
    ttft = xy_plot(
        "latency-throughput-ttft",
        "TTFT against throughput",
        x_label,
        "TTFT (s)",
        lines("TTFT", "s", lambda c: c.ttft_s, ("p50", "p90", "p99")),
    )
    tpot = xy_plot(
        "latency-throughput-tpot",
        "TPOT against throughput",
        x_label,
        "TPOT (ms)",
        lines("TPOT", "ms", lambda c: c.tpot_ms, ("p50", "p99")),
    )
    return stack("latency-throughput", "Latency against throughput, one point per level", [ttft, tpot])


def plots(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[str]:
    """Aggregate decode (with the median per-request decode) and prefill against N, every request's TTFT.

    The overlays' (the reference post's, a baseline's) aggregate figures are drawn dashed beside them.
    """
    points = [p for p in entries if isinstance(p.get("concurrency"), int)]
    status = {p["concurrency"]: status_of(p) for p in points}
    decode, median, prefill = _f("agg_decode_tps"), _f("median_decode_tps"), _f("agg_prefill_tps")

    def series(figure: Figure) -> list[Line]:
        out = []
        for colour, o in zip(OVERLAY_COLOURS, overlays, strict=False):
            found = [
                (e["concurrency"], e.get(figure.name))
                for e in o.entries("sweep")
                if isinstance(e.get("concurrency"), int)
            ]
            if any(isinstance(v, int | float) for _, v in found):
                out.append(Line(f"{o.label} {figure.short}", found, colour, dashed=True, labelled=False))
        return out

    own = [(p["concurrency"], p.get(decode.name)) for p in points]
    decode_series = [
        Line(decode.short, own, LINE_COLOURS[0]),
        Line(
            f"{median.label} per request",
            [(p["concurrency"], p.get(median.name)) for p in points],
            LINE_COLOURS[1],
        ),
        *series(decode),
    ]
    prefill_series = [
        Line(prefill.short, [(p["concurrency"], p.get(prefill.name)) for p in points], LINE_COLOURS[0]),
        *series(prefill),
    ]
    return [
        line_plot(
            "agg-decode", "Aggregate decode vs N", decode.unit, decode_series, decode.text, status=status
        ),
        line_plot(
            "agg-prefill", "Aggregate prefill vs N", prefill.unit, prefill_series, prefill.text, status=status
        ),
        ttft_plot(points),
        *([] if (lt := latency_throughput_plot(sweep_curve(points))) is None else [lt]),
        *(svg for p in points if (svg := telemetry_plot(p)) is not None),
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


# --- sustained load points (--gx10-load-mode concurrency|rate): the ``load`` section ---------------


def _stat_figures(prefix: str, what: str, unit: str, digits: int, definition: str) -> tuple[Figure, ...]:
    words = {"mean": "mean", "p50": "median", "p90": "p90", "p99": "p99"}
    return tuple(
        Figure(
            f"{prefix}_{stat}_{'s' if unit == 's' else 'ms'}",
            f"{words[stat]} {what}",
            unit,
            LOWER,
            digits=digits,
            tail=stat in ("p90", "p99"),
            short=f"{what} {stat}",
            definition=definition if stat == "mean" else "",
        )
        for stat in ("mean", "p50", "p90", "p99")
    )


_LOAD_FIGURES = (
    Figure(
        "request_throughput_rps",
        "request throughput",
        "req/s",
        HIGHER,
        digits=2,
        short="throughput",
        heading="Throughput",
        definition="completed requests divided by the window (first measured send to last measured end)",
    ),
    Figure(
        "input_tps", "input token throughput", "tok/s", HIGHER, thousands=True, short="input", heading="Input"
    ),
    Figure(
        "output_tps", "output token throughput", "tok/s", HIGHER, digits=1, short="output", heading="Output"
    ),
    Figure(
        "total_tps", "total token throughput", "tok/s", HIGHER, thousands=True, short="total", heading="Total"
    ),
    *_stat_figures("ttft", "TTFT", "s", 2, "send until the first chunk carrying a token"),
    *_stat_figures("tpot", "TPOT", "ms", 1, "(end-to-end latency minus TTFT) / (output tokens - 1)"),
    *_stat_figures("itl", "ITL", "ms", 1, "gaps between chunks, each shared by the tokens its chunk carries"),
    *_stat_figures("e2e", "e2e latency", "s", 2, "send until the stream's last byte"),
    Figure(
        "goodput_rps",
        "goodput",
        "req/s",
        HIGHER,
        digits=2,
        heading="Goodput",
        definition="requests meeting every objective (TTFT, TPOT, e2e) divided by the window",
    ),
    Figure(
        "goodput_tps",
        "goodput tokens",
        "tok/s",
        HIGHER,
        digits=1,
        heading="Goodput tokens",
        definition="output tokens of the requests meeting every objective divided by the window",
    ),
    Figure(
        "attainment",
        "SLO attainment",
        "",
        HIGHER,
        digits=2,
        heading="Attainment",
        definition="share of the measured requests meeting every objective (failed ones miss)",
    ),
    # The client's own punctuality (rate mode): kept, never gated.
    Figure("send_lag_p50_ms", "median send lag", "ms", None, digits=1, short="lag p50"),
    Figure("send_lag_p99_ms", "p99 send lag", "ms", None, digits=1, short="lag p99"),
    Figure(
        "send_lag_max_ms",
        "largest send lag",
        "ms",
        None,
        digits=1,
        short="lag max",
        definition="actual minus scheduled send time (the client's, not the server's)",
    ),
    Figure("window_s", "measurement window", "s", None, digits=1, short="window"),
    Figure("ok_requests", "measured requests that succeeded", short="ok"),
    Figure("failed_requests", "measured requests that failed", short="failed"),
    *(f for f in _FIGURES if f.name in _WORKLOAD_FIGURES),
)
LOAD_THROUGHPUT = (
    "request_throughput_rps",
    "input_tps",
    "output_tps",
    "total_tps",
    "goodput_rps",
    "attainment",
)
LOAD_LATENCY = (
    "ttft_p50_s",
    "ttft_p99_s",
    "tpot_p50_ms",
    "tpot_p99_ms",
    "itl_p50_ms",
    "itl_p99_ms",
    "e2e_p50_s",
    "e2e_p99_s",
)


def _lf(name: str) -> Figure:
    figure = LOAD.figure(name)
    assert figure is not None, name
    return figure


def slo_words(slo: Any) -> str:
    """``TTFT ≤ 2 s, TPOT ≤ 100 ms``; ``none`` when the point had no objectives."""
    if not isinstance(slo, Mapping) or not slo:
        return "none"
    parts = []
    for name, bound in slo.items():
        shown = f"{bound * 1000:g} ms" if isinstance(bound, int | float) and bound < 1 else f"{bound:g} s"
        parts.append(f"{name.upper() if name != 'e2e' else 'e2e'} ≤ {shown}")
    return ", ".join(parts)


def _lag(p: Mapping[str, Any]) -> str:
    if p.get("mode") != "rate":
        return MISSING
    figs = [_lf(n) for n in ("send_lag_p50_ms", "send_lag_p99_ms", "send_lag_max_ms")]
    return " / ".join(f.text(p.get(f.name)) for f in figs)


def _load_note(points: Sequence[Mapping[str, Any]]) -> str:
    slos = sorted({slo_words(p.get("slo")) for p in points})
    warm = sorted({float(w) for p in points if isinstance(w := p.get("warmup_s"), int | float)})
    parts = [f"objectives: {' | '.join(slos)}"]
    if warm:
        parts.append(f"requests sent in the first {'/'.join(f'{w:g}' for w in warm)} s left out (warm-up)")
    parts.append("window: first measured send to last measured end")
    return "; ".join(parts)


def load_tables(points: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """Throughput and goodput per point, then the latencies and the client's send lag."""
    headers = (
        "Point",
        "Sent (warm-up)",
        *(_lf(n).column() for n in LOAD_THROUGHPUT),
        "ok / failed",
        "Status",
    )
    rows = [
        [
            _point_label(p),
            f"{p.get('sent', MISSING)} ({p.get('warmup_requests', MISSING)})",
            *(_lf(n).text(p.get(n)) for n in LOAD_THROUGHPUT),
            f"{p.get('ok_requests', MISSING)} / {p.get('failed_requests', MISSING)}",
            status_of(p),
        ]
        for p in points
    ]
    out = [Table("Load points", headers, rows, note=_load_note(points), anchor="gx10-load")]
    headers = ("Point", *(_lf(n).column() for n in LOAD_LATENCY), "Send lag p50 / p99 / max (ms)")
    rows = [[_point_label(p), *(_lf(n).text(p.get(n)) for n in LOAD_LATENCY), _lag(p)] for p in points]
    out.append(
        Table(
            "Load latency",
            headers,
            rows,
            note="send lag: actual minus scheduled send (rate mode), the client's own",
            anchor="gx10-load-latency",
        )
    )
    telemetry = telemetry_table(points, label=_point_label, key="Point", anchor="gx10-load-telemetry")
    if telemetry is not None:
        out.append(telemetry)
    for p in points:
        label = _point_label(p)
        turns = turns_table(p, label, f"gx10-load-turns-{_slug(label)}")
        if turns is not None:
            out.append(turns)
    return out


def _point_label(point: Mapping[str, Any]) -> str:
    """``rate 2/s``, and ``rate 2/s (probe 3)`` for a saturation probe."""
    label = str(point.get("point", MISSING))
    return f"{label} (probe {point['probe']})" if point.get("probe") else label


def load_plots(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[str]:
    """Latency against throughput (one marker per level), then what the server saw at each point."""
    curve = latency_throughput_plot(load_curve(entries))
    telemetry = [svg for p in entries if (svg := telemetry_plot(p, str(p.get("point", MISSING)))) is not None]
    return ([] if curve is None else [curve]) + telemetry


def load_terminal(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per point: throughput, the medians, goodput and attainment, the send lag."""
    shown = ("request_throughput_rps", "output_tps", "ttft_p50_s", "tpot_p50_ms", "e2e_p50_s", "goodput_rps")
    narrow = ["req/s", "out tok/s", "TTFT s", "TPOT ms", "e2e s", "goodput req/s"]
    headers = ["point", "sent", *narrow, "attain", "ok/meas", "lag p99 ms", "server run/wait"]
    rows = [
        [
            str(p.get("point", MISSING)),
            str(p.get("sent", MISSING)),
            *(_lf(n).text(p.get(n)) for n in shown),
            _lf("attainment").text(p.get("attainment")),
            f"{p.get('ok_requests', MISSING)}/{p.get('measured', MISSING)}",
            _lf("send_lag_p99_ms").text(p.get("send_lag_p99_ms")) if p.get("mode") == "rate" else MISSING,
            _peaks(p),
        ]
        for p in points
    ]
    lines = [
        "load points (sustained; figures after the warm-up; latencies are medians):",
        *text_table(headers, rows),
        _load_note(points),
    ]
    for p in points:
        outcomes = {k: v for k, v in (p.get("outcomes") or {}).items() if k != "ok"}
        if outcomes:
            lines.append(f"{p.get('point')}: " + ", ".join(f"{v} {k}" for k, v in sorted(outcomes.items())))
        flags = telemetry_words(p)
        if flags:
            lines.append(f"{p.get('point')}: {flags}")
    for p in points:
        lines += turns_lines(p, _point_label(p))
    return lines


def _peaks(point: Mapping[str, Any]) -> str:
    """The server's peak running and waiting requests during the point (``23/12``), from its /metrics."""
    running, waiting = point.get("peak_running"), point.get("peak_waiting")
    if not isinstance(running, int | float) or not isinstance(waiting, int | float):
        return MISSING
    return f"{running:g}/{waiting:g}"


LOAD = register(
    Section(
        "load",
        key="point",
        sort_by=("mode", "level"),
        figures=_LOAD_FIGURES,
        title="Load points",
        entry_label="{}",
        order=11,
        tables=load_tables,
        terminal=load_terminal,
        plots=load_plots,
    )
)


# --- the saturation search (--gx10-saturate): the ``saturation`` section ---------------------------


def _level_text(entry: Mapping[str, Any], level: Any) -> str:
    if not isinstance(level, int | float):
        return "none"
    return f"{level:.3g} req/s" if entry.get("mode") == "rate" else f"{int(level)} in flight"


_PROBE_COLUMNS = (
    ("attainment", "Attainment", 2),
    ("goodput_rps", "Goodput (req/s)", 2),
    ("goodput_tps", "Goodput (tok/s)", 1),
    ("ttft_p50_s", "TTFT p50 (s)", 2),
    ("ttft_p99_s", "TTFT p99 (s)", 2),
    ("tpot_p50_ms", "TPOT p50 (ms)", 1),
    ("tpot_p99_ms", "TPOT p99 (ms)", 1),
)


def _probe_row(entry: Mapping[str, Any], probe: Mapping[str, Any]) -> list[str]:
    verdict = "pass" if probe.get("passed") else "fail"
    if probe.get("status") not in (None, "ok"):
        verdict += f" ({probe['status']})"
    return [
        str(probe.get("step", MISSING)),
        _level_text(entry, probe.get("level")),
        *(num(probe.get(name), digits) for name, _, digits in _PROBE_COLUMNS),
        verdict,
    ]


def probe_lines(entry: Mapping[str, Any]) -> list[str]:
    """The probes as a text table, in the order walked (assertion messages, the terminal)."""
    probes = [p for p in entry.get("probes") or () if isinstance(p, Mapping)]
    if not probes:
        return ["no probe was made"]
    headers = [
        "step",
        "level",
        "attain",
        "good req/s",
        "good tok/s",
        "TTFT p50",
        "TTFT p99",
        "TPOT p50",
        "TPOT p99",
        "verdict",
    ]
    return text_table(headers, [_probe_row(entry, p) for p in probes])


def _saturation_note(entry: Mapping[str, Any]) -> str:
    target = entry.get("target")
    shown = f"{target:.0%}" if isinstance(target, int | float) else MISSING
    parts = [
        f"a level passes when at least {shown} of its measured requests meet every objective "
        f"({slo_words(entry.get('slo'))})",
        f"bounds {_level_text(entry, entry.get('low'))} to {_level_text(entry, entry.get('high'))} "
        f"({entry.get('bounds_from', MISSING)})",
        f"stopped: {entry.get('why', MISSING)}",
    ]
    if isinstance(entry.get("floor"), int | float):
        parts.append(f"floor {_level_text(entry, entry['floor'])}")
    return "; ".join(parts)


def saturation_tables(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[Table]:
    """Per search: the answer in its title, then every probe in the order walked."""
    out = []
    headers = ("Step", "Level", *(h for _, h, _ in _PROBE_COLUMNS), "Verdict")
    for entry in entries:
        probes = [p for p in entry.get("probes") or () if isinstance(p, Mapping)]
        out.append(
            Table(
                f"Saturation ({entry.get('mode', MISSING)}): {entry.get('summary', MISSING)}",
                headers,
                [_probe_row(entry, p) for p in probes],
                note=_saturation_note(entry),
                anchor=f"gx10-saturation-{entry.get('mode', 'search')}",
            )
        )
    return out


def saturation_terminal(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """The answer in one line, why the search stopped, and the probes."""
    lines = []
    for entry in entries:
        lines += [
            f"saturation ({entry.get('mode')}): {entry.get('summary', MISSING)}",
            f"stopped: {entry.get('why', MISSING)}",
            *probe_lines(entry),
        ]
    return lines


def saturation_plot(entry: Mapping[str, Any]) -> str | None:
    """Attainment against level: each probe (its step written above it), the target, the answer."""
    probes = [
        p
        for p in entry.get("probes") or ()
        if isinstance(p, Mapping) and isinstance(p.get("level"), int | float)
    ]
    if not probes:
        return None
    walked = sorted(probes, key=lambda p: p["level"])
    mode = str(entry.get("mode", "search"))
    series = XYSeries(
        "probe",
        [(float(p["level"]), float(p.get("attainment") or 0.0)) for p in walked],
        LINE_COLOURS[0],
        tips=[
            f"step {p.get('step')}: {_level_text(entry, p['level'])}, attainment "
            f"{num(p.get('attainment'), 2)}, {'pass' if p.get('passed') else 'fail'}"
            for p in walked
        ],
        failed=[not p.get("passed") for p in walked],
        labels=[str(p.get("step", "")) for p in walked],
    )
    target = entry.get("target")
    hlines = (
        [(float(target), OVERLAY_COLOURS[0], f"target {target:.0%}")]
        if isinstance(target, int | float)
        else []
    )
    answer = entry.get("answer")
    vlines = (
        [(float(answer), LINE_COLOURS[1], f"answer {_level_text(entry, answer)}")]
        if isinstance(answer, int | float)
        else []
    )
    extra = [] if vlines else [LegendItem(FAILED, "no answer: no level passed", kind="cross")]
    unit = "req/s" if mode == "rate" else "requests in flight"
    return xy_plot(
        f"saturation-{mode}",
        f"SLO attainment against {mode} (steps in walk order)",
        f"{mode} ({unit}, log scale)",
        "SLO attainment",
        [series],
        y_max=1.0,
        x_log=True,
        hlines=hlines,
        vlines=vlines,
        extra_legend=extra,
    )


def saturation_plots(entries: Sequence[Mapping[str, Any]], overlays: Sequence[Overlay] = ()) -> list[str]:
    """One attainment plot per search."""
    return [svg for e in entries if (svg := saturation_plot(e)) is not None]


SATURATION = register(
    Section(
        "saturation",
        key="mode",
        figures=(
            Figure(
                "answer",
                "saturation level",
                "",
                HIGHER,
                digits=2,
                heading="Answer",
                definition="the highest rate (req/s) or concurrency whose SLO attainment reached the target; "
                "none when even the low bound missed it",
            ),
            Figure(
                "lowest_failing",
                "lowest failing level",
                digits=2,
                heading="Lowest failing",
                definition="the lowest level probed above the answer whose attainment missed the target",
            ),
            Figure("target", "attainment target", digits=2, heading="Target"),
            Figure("steps", "probes made", digits=0, heading="Probes"),
        ),
        title="Saturation",
        entry_label="{}",
        order=12,
        tables=saturation_tables,
        terminal=saturation_terminal,
        plots=saturation_plots,
    )
)
