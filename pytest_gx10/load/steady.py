"""Figures of a sustained load point (``concurrency`` or ``rate`` mode), its objectives and goodput.

A point sends requests for a while: closed loop (N kept in flight, each finished request replaced
at once) or open loop (arrivals at R requests/s on a schedule). Its figures are steady-state ones:

* **Warm-up.** A request whose actual send time is within ``warmup_s`` of the point's start, or
  that is among the first ``warmup_count`` requests sent, is left out of every figure (counted as
  ``warmup_requests``). Both rules go by send time, in both modes.
* **Window.** From the first measured request's send to the last measured request's end; every
  rate (requests/s, tokens/s, goodput) is a count of measured requests divided by it.
* **Throughput.** Completed (ok) requests per second; input, output and total tokens per second
  from the usage counts of the completed requests.
* **Latencies**, as mean, median, p90 and p99 over the completed requests: TTFT (send to the first
  token-carrying chunk), TPOT (decode time over output tokens minus one: (e2e - TTFT) / (tokens - 1),
  for requests of 2 tokens or more), ITL (the gaps between chunks, each spread over the tokens its
  chunk carries, by token) and end-to-end latency (send to the stream's last byte).
* **Send lag** (open loop only): actual minus scheduled send time, p50 / p99 / max. A late send is
  the client's fault; it is reported, never hidden or corrected.
* **Objectives.** A measured request meets the objectives when it completed and each given bound
  holds (TTFT, TPOT, e2e; a 1-token request has no TPOT and meets that bound). ``goodput_rps`` and
  ``goodput_tps`` are the requests and output tokens of those requests per second of the window;
  ``attainment`` is their share of all measured requests (failed ones count as missing). Without
  objectives every completed request counts.

Times are the target's (a twin's ``time_scale`` applied). No pytest here, no network.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.client.results import StreamResult
from pytest_gx10.load.points import (
    _weighted_percentiles,
    inter_token_samples,
    percentile,
    point_status,
    reasoning_figures,
)

__all__ = ["STATS", "Sent", "load_figures", "meets", "point_name", "tpot_s"]

STATS = ("mean", "p50", "p90", "p99")  # every latency figure is given as these four


@dataclass(frozen=True)
class Sent:
    """One request of a sustained point: its result and, in the rate mode, when it was due."""

    result: StreamResult
    scheduled_ns: int | None = None  # perf_counter_ns the schedule set for its send; None in closed loop


def point_name(mode: str, level: float) -> str:
    """``rate 2/s`` or ``concurrency 8``: a point's label in ids, tables and messages."""
    return f"rate {level:g}/s" if mode == "rate" else f"concurrency {int(level)}"


def tpot_s(result: StreamResult) -> float | None:
    """Time per output token after the first: (e2e - TTFT) / (output tokens - 1); None under 2 tokens."""
    ttft, tokens = result.ttft_s, result.completion_tokens
    if ttft is None or tokens is None or tokens < 2:
        return None
    return (result.duration_s - ttft) / (tokens - 1)


def meets(result: StreamResult, slo: Mapping[str, float]) -> bool:
    """True when the request completed and every objective in ``slo`` (seconds) holds."""
    if not result.ok:
        return False
    measured = {"ttft": result.ttft_s, "tpot": tpot_s(result), "e2e": result.duration_s}
    for name, bound in slo.items():
        value = measured.get(name)
        if name == "tpot" and value is None:
            continue  # one token: no time per output token to hold
        if value is None or value > bound:
            return False
    return True


def _stats(prefix: str, unit: str, values: Sequence[float], scale: float = 1.0) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for stat in STATS:
        if not values:
            value = None
        elif stat == "mean":
            value = statistics.fmean(values)
        else:
            value = percentile(values, float(stat[1:]))
        out[f"{prefix}_{stat}_{unit}"] = None if value is None else value * scale
    return out


def load_figures(
    mode: str,
    level: float,
    sent: Sequence[Sent],
    *,
    start_ns: int,
    warmup_s: float,
    warmup_count: int = 0,
    slo: Mapping[str, float] | None = None,
    time_scale: float = 1.0,
    engine_dead: bool = False,
) -> dict[str, Any]:
    """A sustained point's entry for the ``load`` section (JSON-ready, each request included).

    ``start_ns`` is the point's start (perf_counter_ns), ``warmup_s`` in the target's time, ``slo``
    maps ttft / tpot / e2e to bounds in seconds; ``engine_dead`` the sentinel's verdict after the point.
    """
    objectives = dict(slo or {})

    def since_start(ns: int) -> float:
        return (ns - start_ns) / 1e9 * time_scale

    earliest = {id(s) for s in sorted(sent, key=lambda s: s.result.send_ns)[:warmup_count]}
    measured = [s for s in sent if since_start(s.result.send_ns) >= warmup_s and id(s) not in earliest]
    results = [s.result for s in measured]
    ok = [r for r in results if r.ok and r.ttft_s is not None and r.completion_tokens is not None]
    window = None
    if results:
        first = min(r.send_ns for r in results)
        last = max(r.end_ns for r in results)
        window = (last - first) / 1e9 * time_scale if last > first else None
    window_start = since_start(min(r.send_ns for r in results)) if results else None

    def per_s(count: float) -> float | None:
        return count / window if window else None

    good = [r for r in ok if meets(r, objectives)]
    prompt = sum(r.prompt_tokens or 0 for r in ok)
    output = sum(r.completion_tokens or 0 for r in ok)
    tpots = [t for r in ok if (t := tpot_s(r)) is not None]
    itl = [s for r in ok for s in inter_token_samples(r)]
    itl_weight = sum(w for _, w in itl)
    p50, p90, p99 = _weighted_percentiles(itl, (50, 90, 99))
    itl_mean = sum(v * w for v, w in itl) / itl_weight if itl_weight else None
    lags = [
        (s.result.send_ns - s.scheduled_ns) / 1e6 * time_scale for s in measured if s.scheduled_ns is not None
    ]
    outcomes = Counter(r.outcome for r in results)
    every = Counter(s.result.outcome for s in sent)
    entry: dict[str, Any] = {
        "point": point_name(mode, level),
        "mode": mode,
        "level": level,
        "offered_rps": level if mode == "rate" else None,
        "sent": len(sent),
        "warmup_requests": len(sent) - len(measured),
        "measured": len(measured),
        "ok_requests": len(ok),
        "failed_requests": len(results) - len(ok),
        "outcomes": dict(outcomes),
        "warmup_s": warmup_s,
        "warmup_count": warmup_count,
        "window_start_s": window_start,
        "window_s": window,
        "request_throughput_rps": per_s(len(ok)),
        "input_tps": per_s(prompt),
        "output_tps": per_s(output),
        "total_tps": per_s(prompt + output),
        **_stats("ttft", "s", [r.ttft_s for r in ok if r.ttft_s is not None]),
        **_stats("tpot", "ms", tpots, 1000.0),
        "itl_mean_ms": None if itl_mean is None else itl_mean * 1000,
        "itl_p50_ms": None if p50 is None else p50 * 1000,
        "itl_p90_ms": None if p90 is None else p90 * 1000,
        "itl_p99_ms": None if p99 is None else p99 * 1000,
        **_stats("e2e", "s", [r.duration_s for r in ok]),
        **reasoning_figures(ok),
        "send_lag_p50_ms": percentile(lags, 50),
        "send_lag_p99_ms": percentile(lags, 99),
        "send_lag_max_ms": max(lags) if lags else None,
        "slo": objectives,
        "goodput_rps": per_s(len(good)),
        "goodput_tps": per_s(sum(r.completion_tokens or 0 for r in good)),
        "attainment": len(good) / len(results) if results else None,
        "status": point_status(every, engine_dead=engine_dead),
        "requests": [
            _request(s, since_start, objectives, {id(m) for m in measured}, time_scale) for s in sent
        ],
    }
    return entry


def _request(
    s: Sent,
    since_start: Callable[[int], float],
    objectives: Mapping[str, float],
    measured: set[int],
    time_scale: float,
) -> dict[str, Any]:
    r = s.result
    send = since_start(r.send_ns)
    return {
        **r.summary(),
        "scheduled_s": None if s.scheduled_ns is None else since_start(s.scheduled_ns),
        "send_s": send,
        "lag_ms": None if s.scheduled_ns is None else (r.send_ns - s.scheduled_ns) / 1e6 * time_scale,
        "measured": id(s) in measured,
        "tpot_s": tpot_s(r),
        "meets_slo": meets(r, objectives),
    }
