"""What the server saw while a load point ran: its /metrics scraped at a fixed interval.

A point wraps its load in :func:`sample_telemetry`::

    with sample_telemetry(server) as sampler:
        results = run_concurrent(client, path, bodies)
    figures.update(telemetry_figures(sampler.series(), client_completion_tokens=...))

A daemon thread scrapes ``/metrics`` through the engine's adapter (:meth:`Server.telemetry`) every
``interval_s`` (0.5 s by default, never slower), from just before the point's first send (one
scrape on entering the block) to just after its last end (one on leaving it), however the block
ends. The series is kept as one list per field (``t_s``, ``running``, ...; index i is sample i):
the gauges as scraped, the counters counted from the point's first good scrape. A scrape that fails
is a gap (a sample of None values and its error), never an exception in the test; a server without
/metrics gives an empty series and the reason. Memory is bounded: past ``max_samples`` every other
sample is dropped (the first and the latest are kept) and from then on every second scrape is
kept; the peaks and counts are taken over every scrape all the same. No pytest here.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_gx10.servers.base import Server, Telemetry

__all__ = [
    "FIELDS",
    "KV_FULL_USAGE",
    "MAX_INTERVAL_S",
    "TelemetrySampler",
    "TelemetrySeries",
    "combine_telemetry",
    "sample_telemetry",
    "server_scrape",
    "telemetry_figures",
    "telemetry_words",
]

MAX_INTERVAL_S = 0.5  # the default and the slowest allowed: a burst's peak lasts a second or two
KV_FULL_USAGE = 0.99  # a point whose peak KV cache usage reached this is flagged kv_full
DEFAULT_MAX_SAMPLES = 2400  # 20 minutes at 0.5 s before the series thins out
_MAX_GAP_ERRORS = 20

# The series' fields, in order: the gauges as scraped, then the counters. ``preemptions_total`` is
# the server's own cumulative count; every other counter is counted from the point's first scrape.
GAUGES = ("running", "waiting", "kv_usage")
COUNTERS = (
    "preemptions",
    "prefix_cache_queries",
    "prefix_cache_hits",
    "spec_drafts",
    "spec_draft_tokens",
    "spec_accepted_tokens",
    "prompt_tokens",
    "generation_tokens",
)
FIELDS = ("t_s", *GAUGES, "preemptions_total", *COUNTERS)


def _reading(seen: Telemetry) -> dict[str, float | None]:
    """A scrape's gauges and cumulative counters by the series' names."""
    spec = seen.spec
    return {
        "running": seen.running,
        "waiting": seen.waiting,
        "kv_usage": seen.kv_usage,
        "preemptions": seen.preemptions,
        "prefix_cache_queries": seen.prefix_cache_queries,
        "prefix_cache_hits": seen.prefix_cache_hits,
        "spec_drafts": spec.drafts if spec else None,
        "spec_draft_tokens": spec.draft_tokens if spec else None,
        "spec_accepted_tokens": spec.accepted if spec else None,
        "prompt_tokens": seen.prompt_tokens,
        "generation_tokens": seen.generated_tokens,
    }


@dataclass(frozen=True)
class TelemetrySeries:
    """A point's telemetry: the samples as one list per field, the peaks, the counts during the point.

    ``columns`` maps each of :data:`FIELDS` to its values (None in a gap, or where the engine has no
    such metric). ``peaks`` are the gauges' highest values and ``deltas`` the counters' change
    between the first and the last good scrape, both over every scrape (also those thinned out).
    ``reason`` says why the series is empty or holds only gaps.
    """

    interval_s: float
    columns: dict[str, list[float | None]] = field(default_factory=dict)
    peaks: dict[str, float | None] = field(default_factory=dict)
    deltas: dict[str, float | None] = field(default_factory=dict)
    scrapes: int = 0
    gaps: int = 0
    gap_errors: list[tuple[float, str]] = field(default_factory=list)
    stride: int = 1
    reason: str | None = None

    @property
    def samples(self) -> int:
        """How many samples are kept (gaps included)."""
        return len(self.columns.get("t_s", ()))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready and compact: ``layout`` says the lists are per field, index i being sample i."""
        return {
            "layout": "columns",
            "interval_s": self.interval_s,
            "stride": self.stride,
            "scrapes": self.scrapes,
            "gaps": self.gaps,
            "gap_errors": [[round(t, 3), why] for t, why in self.gap_errors],
            "reason": self.reason,
            **{name: list(self.columns.get(name, ())) for name in FIELDS},
        }


class TelemetrySampler:
    """Scrapes ``scrape()`` every ``interval_s`` on a daemon thread between :meth:`start` and :meth:`stop`.

    ``scrape`` returns one :class:`Telemetry` or raises (a gap); None means the server has no
    /metrics (``reason`` says why) and nothing is scraped. ``clock`` is for tests.
    """

    def __init__(
        self,
        scrape: Callable[[], Telemetry] | None,
        *,
        interval_s: float = MAX_INTERVAL_S,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        reason: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not 0 < interval_s <= MAX_INTERVAL_S:
            raise ValueError(
                f"telemetry interval must be above 0 and at most {MAX_INTERVAL_S} s, not {interval_s}"
            )
        if max_samples < 4:
            raise ValueError(f"max_samples must be 4 or more, not {max_samples}")
        self.scrape = scrape
        self.interval_s = interval_s
        self.max_samples = max_samples
        self.reason = reason
        self.clock = clock
        self._rows: list[tuple[float, dict[str, float | None] | None]] = []
        self._peaks: dict[str, float | None] = dict.fromkeys(GAUGES)
        self._first: dict[str, float | None] | None = None
        self._last: dict[str, float | None] | None = None
        self._scrapes = 0
        self._gaps = 0
        self._gap_errors: list[tuple[float, str]] = []
        self._stride = 1
        self._t0 = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- running ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Scrape once now (t = 0) and start the thread."""
        if self._thread is not None:
            raise RuntimeError("telemetry sampler already started")
        self._t0 = self.clock()
        if self.scrape is None:
            return
        self._take()
        self._thread = threading.Thread(target=self._run, name="gx10-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> TelemetrySeries:
        """Stop and join the thread, scrape once more, and return the series."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._take(final=True)
        return self.series()

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> TelemetrySampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        tick = 1
        while not self._stop.wait(max(self._t0 + tick * self.interval_s - self.clock(), 0.0)):
            self._take()
            # A slow scrape skips the ticks it overran rather than bunching scrapes to catch up.
            tick = max(tick + 1, math.floor((self.clock() - self._t0) / self.interval_s) + 1)

    def _take(self, *, final: bool = False) -> None:
        assert self.scrape is not None
        t_s = self.clock() - self._t0
        try:
            reading: dict[str, float | None] | None = _reading(self.scrape())
            error = ""
        except Exception as exc:  # any failed scrape is a gap, never the test's exception
            reading, error = None, f"{type(exc).__name__}: {exc}"[:200]
        with self._lock:
            self._scrapes += 1
            if reading is None:
                self._gaps += 1
                if len(self._gap_errors) < _MAX_GAP_ERRORS:
                    self._gap_errors.append((t_s, error))
            else:
                if self._first is None:
                    self._first = reading
                self._last = reading
                for name in GAUGES:
                    value, peak = reading[name], self._peaks[name]
                    if value is not None and (peak is None or value > peak):
                        self._peaks[name] = value
            if final or (self._scrapes - 1) % self._stride == 0:
                self._rows.append((t_s, reading))
                if len(self._rows) > self.max_samples:
                    self._rows = [*self._rows[0:-1:2], self._rows[-1]]
                    self._stride *= 2

    # --- the result ------------------------------------------------------------------------------

    def series(self) -> TelemetrySeries:
        """The samples so far, counters counted from the first good scrape."""
        with self._lock:
            rows = list(self._rows)
            first, last = self._first, self._last
            peaks = dict(self._peaks)
            scrapes, gaps, errors, stride = self._scrapes, self._gaps, list(self._gap_errors), self._stride
        columns: dict[str, list[float | None]] = {name: [] for name in FIELDS}
        for t_s, reading in rows:
            columns["t_s"].append(round(t_s, 4))
            for name in GAUGES:
                columns[name].append(reading[name] if reading else None)
            columns["preemptions_total"].append(reading["preemptions"] if reading else None)
            for name in COUNTERS:
                columns[name].append(_since(reading, first, name))
        deltas = {name: _since(last, first, name) for name in COUNTERS}
        reason = self.reason
        if reason is None and scrapes and first is None:
            reason = f"every scrape of /metrics failed ({errors[-1][1] if errors else 'no error kept'})"
        return TelemetrySeries(
            interval_s=self.interval_s,
            columns=columns,
            peaks=peaks,
            deltas=deltas,
            scrapes=scrapes,
            gaps=gaps,
            gap_errors=errors,
            stride=stride,
            reason=reason,
        )


def _since(
    reading: Mapping[str, float | None] | None, first: Mapping[str, float | None] | None, name: str
) -> float | None:
    if reading is None or first is None:
        return None
    now, then = reading[name], first[name]
    if now is None:
        return None
    return now - (then or 0.0)


def server_scrape(server: Server, model: str | None = None) -> Callable[[], Telemetry]:
    """One scrape of the server's ``/metrics``, read by its adapter's metric names."""

    def scrape() -> Telemetry:
        return server.telemetry(server.client.metrics_text(), model)

    return scrape


@contextlib.contextmanager
def sample_telemetry(
    server: Server,
    model: str | None = None,
    *,
    interval_s: float = MAX_INTERVAL_S,
    max_samples: int = DEFAULT_MAX_SAMPLES,
) -> Iterator[TelemetrySampler]:
    """Sample the server's telemetry while the block runs; ``sampler.series()`` after it.

    A server whose adapter offers no ``/metrics`` gives an empty series naming why.
    """
    if "metrics" in server.offers:
        sampler = TelemetrySampler(
            server_scrape(server, model), interval_s=interval_s, max_samples=max_samples
        )
    else:
        why = f"{server.label} gives no /metrics ({server.name} adapter)"
        sampler = TelemetrySampler(None, interval_s=interval_s, max_samples=max_samples, reason=why)
    sampler.start()
    try:
        yield sampler
    finally:
        sampler.stop()


def telemetry_figures(series: TelemetrySeries, *, client_completion_tokens: int | None) -> dict[str, Any]:
    """A point's telemetry figures: the series (``telemetry``) and its summary.

    ``peak_running``, ``peak_waiting``, ``peak_kv_usage`` (0-1), ``preemptions`` during the point,
    ``prefix_cache_hit_rate`` (hits / queries during the point; None when nothing was queried),
    ``server_generation_tokens`` (the server's count during the point) beside
    ``client_completion_tokens`` (the sum of the requests' usage), and the flags ``kv_full`` (peak
    usage at or above :data:`KV_FULL_USAGE`) and ``preempted`` (a preemption during the point).
    """
    peaks, deltas = series.peaks, series.deltas
    queries, hits = deltas.get("prefix_cache_queries"), deltas.get("prefix_cache_hits")
    kv = peaks.get("kv_usage")
    preemptions = deltas.get("preemptions")
    return {
        "peak_running": peaks.get("running"),
        "peak_waiting": peaks.get("waiting"),
        "peak_kv_usage": kv,
        "preemptions": preemptions,
        "prefix_cache_hit_rate": hits / queries if queries and hits is not None else None,
        "server_generation_tokens": deltas.get("generation_tokens"),
        "client_completion_tokens": client_completion_tokens,
        "kv_full": kv is not None and kv >= KV_FULL_USAGE,
        "preempted": bool(preemptions and preemptions > 0),
        "telemetry": series.as_dict(),
    }


def telemetry_words(point: Mapping[str, Any]) -> str:
    """The flags in words, for a point's status: ``KV cache full, 3 preemptions``; empty when neither."""
    words = []
    if point.get("kv_full"):
        words.append("KV cache full")
    preemptions = point.get("preemptions")
    if point.get("preempted") and isinstance(preemptions, int | float):
        count = round(preemptions)
        words.append(f"{count} preemption{'s' if count != 1 else ''}")
    return ", ".join(words)


def combine_telemetry(point: Mapping[str, Any], repeats: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A repeated point's telemetry summary: the highest peaks, the preemptions of all repeats, and
    a flag raised when any repeat raised it (the medians of :func:`combine_repeats` would hide a
    single full KV cache). The token counts stay medians; ``telemetry`` is the last repeat's series,
    each repeat keeping its own under ``repeats``."""
    out = dict(point)
    if len(repeats) < 2:
        return out

    def numbers(name: str) -> list[float]:
        return [
            float(v) for r in repeats if isinstance(v := r.get(name), int | float) and not isinstance(v, bool)
        ]

    for name in ("peak_running", "peak_waiting", "peak_kv_usage"):
        values = numbers(name)
        out[name] = max(values) if values else None
    counted = numbers("preemptions")
    out["preemptions"] = sum(counted) if counted else None
    for flag in ("kv_full", "preempted"):
        out[flag] = any(bool(r.get(flag)) for r in repeats)
    return out
