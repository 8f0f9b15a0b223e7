"""The telemetry sampler against a fake scrape: its interval, gaps, stop, cap and summary."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

import pytest

from pytest_gx10.load.telemetry import (
    KV_FULL_USAGE,
    TelemetrySampler,
    combine_telemetry,
    sample_telemetry,
    telemetry_figures,
    telemetry_words,
)
from pytest_gx10.observe.prometheus import SpecCounters
from pytest_gx10.servers import Server
from pytest_gx10.servers.base import Telemetry


class Counting:
    """A scrape whose counters move by a step each call; fails on the calls named in ``fail``."""

    def __init__(self, fail: set[int] | None = None, kv: float = 0.5) -> None:
        self.calls = 0
        self.times: list[float] = []
        self.fail = fail or set()
        self.kv = kv

    def __call__(self) -> Telemetry:
        self.calls += 1
        self.times.append(time.perf_counter())
        if self.calls in self.fail:
            raise ConnectionError("refused")
        n = float(self.calls)
        return Telemetry(
            running=n,
            waiting=10 - n,
            kv_usage=self.kv,
            generated_tokens=1000 + 5 * n,
            prompt_tokens=300 * n,
            preemptions=7 + (n > 2),
            prefix_cache_queries=100 * n,
            prefix_cache_hits=25 * n,
            spec=SpecCounters(drafts=n, draft_tokens=2 * n, accepted=n, accepted_per_pos=()),
        )


def test_interval_is_kept_within_tolerance() -> None:
    """0.1 s asked: the thread's scrapes land 0.1 s apart, never bunched to catch up after a late one
    (a busy machine may wake the thread late now and then; the median gap stays on the interval)."""
    scrape = Counting()
    with TelemetrySampler(scrape, interval_s=0.1) as sampler:
        time.sleep(0.75)
    series = sampler.series()
    gaps = [b - a for a, b in itertools.pairwise(scrape.times[:-1])]  # the last is the one on stopping
    assert len(gaps) >= 5, scrape.times
    assert all(g >= 0.06 for g in gaps), gaps
    assert 0.08 <= statistics.median(gaps) <= 0.14, gaps
    assert series.samples == scrape.calls
    assert series.columns["t_s"][0] < 0.05  # the first scrape is on entering the block
    assert series.columns["t_s"] == sorted(series.columns["t_s"])


def test_counters_run_from_the_first_scrape_and_gauges_peak() -> None:
    """Counters read 0 at the first sample; the summary is the change and the highest gauge."""
    scrape = Counting()
    with TelemetrySampler(scrape, interval_s=0.05) as sampler:
        time.sleep(0.2)
    series = sampler.series()
    n = scrape.calls
    assert series.columns["generation_tokens"][0] == 0
    assert series.columns["generation_tokens"][-1] == 5 * (n - 1)
    assert series.columns["preemptions_total"][0] == 7
    assert series.peaks == {"running": n, "waiting": 9, "kv_usage": 0.5}
    figures = telemetry_figures(series, client_completion_tokens=4)
    assert figures["server_generation_tokens"] == 5 * (n - 1)
    assert figures["client_completion_tokens"] == 4
    assert figures["prefix_cache_hit_rate"] == pytest.approx(0.25)
    assert figures["preemptions"] == 1
    assert figures["preempted"] is True
    assert figures["kv_full"] is False
    assert figures["telemetry"]["layout"] == "columns"
    assert figures["telemetry"]["spec_accepted_tokens"][-1] == n - 1
    assert telemetry_words(figures) == "1 preemption"


def test_a_failed_scrape_is_a_gap() -> None:
    """Scrapes 2 and 3 raise: two samples of None with their error, and the test goes on."""
    scrape = Counting(fail={2, 3})
    with TelemetrySampler(scrape, interval_s=0.05) as sampler:
        time.sleep(0.3)
    series = sampler.series()
    assert series.gaps == 2
    assert series.columns["running"][1:3] == [None, None]
    assert series.columns["running"][3] == 4
    assert [why for _, why in series.gap_errors] == ["ConnectionError: refused"] * 2
    assert series.reason is None


def test_every_scrape_failing_says_why() -> None:
    """No good scrape at all: the reason names the last error; the summary has no figures."""
    scrape = Counting(fail=set(range(1, 1000)))
    with TelemetrySampler(scrape, interval_s=0.05) as sampler:
        time.sleep(0.12)
    series = sampler.series()
    assert series.reason is not None
    assert "ConnectionError: refused" in series.reason
    figures = telemetry_figures(series, client_completion_tokens=3)
    assert figures["server_generation_tokens"] is None
    assert figures["peak_running"] is None
    assert figures["kv_full"] is False
    assert figures["preempted"] is False


def test_stop_joins_the_thread_however_the_block_ends() -> None:
    """An exception in the block still stops the thread, takes the last scrape, and propagates."""
    scrape = Counting()
    before = threading.active_count()
    sampler = TelemetrySampler(scrape, interval_s=0.05)

    def load() -> None:
        with sampler:
            assert sampler.running
            raise RuntimeError("load broke")

    with pytest.raises(RuntimeError, match="load broke"):
        load()
    assert not sampler.running
    assert threading.active_count() == before
    calls = scrape.calls
    time.sleep(0.15)
    assert scrape.calls == calls  # nothing scrapes after the block
    assert sampler.series().samples == calls


def test_cap_thins_the_series_but_keeps_the_ends_and_the_peaks() -> None:
    """Past max_samples every other sample goes; the first and last stay, the peak of all scrapes counts."""
    scrape = Counting()
    with TelemetrySampler(scrape, interval_s=0.01, max_samples=8) as sampler:
        time.sleep(0.4)
    series = sampler.series()
    assert scrape.calls > 16
    assert series.samples <= 8
    assert series.stride >= 2
    assert series.columns["running"][0] == 1
    assert series.columns["running"][-1] == scrape.calls
    assert series.peaks["running"] == scrape.calls
    assert series.deltas["generation_tokens"] == 5 * (scrape.calls - 1)


def test_an_interval_slower_than_half_a_second_is_refused() -> None:
    """The interval is 0.5 s at most (a burst's peak lasts a second or two)."""
    with pytest.raises(ValueError, match=r"at most 0\.5 s"):
        TelemetrySampler(Counting(), interval_s=1.0)


def test_kv_full_at_the_threshold() -> None:
    """Peak KV usage at the threshold flags kv_full and says so."""
    with TelemetrySampler(Counting(kv=KV_FULL_USAGE), interval_s=0.05) as sampler:
        pass
    figures = telemetry_figures(sampler.series(), client_completion_tokens=None)
    assert figures["kv_full"] is True
    assert telemetry_words(figures) == "KV cache full"


def test_a_server_without_metrics_gives_an_empty_series_and_why() -> None:
    """The generic adapter offers no /metrics: nothing is scraped, the reason names the adapter."""

    class NoClient:
        base_url = "http://nowhere"

        def metrics_text(self) -> str:
            raise AssertionError("never scraped")

    server = Server(NoClient())  # type: ignore[arg-type]
    with sample_telemetry(server) as sampler:
        pass
    series = sampler.series()
    assert series.samples == 0
    assert series.reason == "an OpenAI-compatible server gives no /metrics (openai adapter)"
    assert not sampler.running


def test_repeats_keep_the_highest_peak_and_every_preemption() -> None:
    """Over repeats: the peaks are the highest, preemptions summed, a flag raised by any repeat."""
    repeats = [
        {"peak_kv_usage": 0.5, "preemptions": 0.0, "kv_full": False, "preempted": False, "peak_running": 4.0},
        {"peak_kv_usage": 1.0, "preemptions": 3.0, "kv_full": True, "preempted": True, "peak_running": 3.0},
    ]
    point = combine_telemetry({"peak_kv_usage": 0.75, "kv_full": False}, repeats)
    assert point["peak_kv_usage"] == 1.0
    assert point["peak_running"] == 4.0
    assert point["preemptions"] == 3.0
    assert point["kv_full"] is True
    assert point["preempted"] is True
    assert telemetry_words(point) == "KV cache full, 3 preemptions"
