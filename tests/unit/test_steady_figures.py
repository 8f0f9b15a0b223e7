"""Sustained load figures on synthetic requests: warm-up, window, throughput, TPOT, send lag, goodput."""

from __future__ import annotations

import itertools
import math

import pytest

from pytest_gx10.client.results import Chunk, StreamEnd, StreamResult
from pytest_gx10.config import parse_slo
from pytest_gx10.load.arrivals import arrival_times
from pytest_gx10.load.steady import Sent, load_figures, meets, tpot_s

S = 1_000_000_000


def _request(send_s: float, ttft_s: float, e2e_s: float, tokens: int = 11, ok: bool = True) -> StreamResult:
    send = int(send_s * S)
    first, end = send + int(ttft_s * S), send + int(e2e_s * S)
    step = (end - first) // tokens
    return StreamResult(
        endpoint="chat",
        url="x",
        send_ns=send,
        status=200 if ok else 500,
        end_ns=end,
        ended=StreamEnd.DONE if ok else StreamEnd.HTTP_ERROR,
        chunks=[Chunk(t_ns=first + i * step, content="ab") for i in range(tokens)] if ok else [],
        prompt_tokens=100,
        completion_tokens=tokens if ok else None,
        usage_chunks=1,
    )


def test_tpot_is_decode_time_over_tokens_after_the_first() -> None:
    r = _request(0.0, 0.5, 1.5, tokens=11)
    assert tpot_s(r) == pytest.approx(0.1)
    assert tpot_s(_request(0.0, 0.5, 0.5, tokens=1)) is None


def test_warmup_by_send_time_window_and_throughput() -> None:
    """Two requests sent in the warm-up are left out; the window runs from the first measured send
    to the last measured end, and every rate divides by it."""
    sent = [Sent(_request(t, 0.2, 1.2)) for t in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)]
    fig = load_figures("concurrency", 2, sent, start_ns=0, warmup_s=1.0)
    assert (fig["sent"], fig["warmup_requests"], fig["measured"], fig["ok_requests"]) == (6, 2, 4, 4)
    assert fig["window_start_s"] == pytest.approx(1.0)
    assert fig["window_s"] == pytest.approx(2.5 + 1.2 - 1.0)
    assert fig["request_throughput_rps"] == pytest.approx(4 / 2.7)
    assert fig["output_tps"] == pytest.approx(44 / 2.7)
    assert fig["input_tps"] == pytest.approx(400 / 2.7)
    assert fig["total_tps"] == pytest.approx(444 / 2.7)
    assert fig["ttft_p50_s"] == pytest.approx(0.2)
    assert fig["e2e_mean_s"] == pytest.approx(1.2)
    assert fig["tpot_p99_ms"] == pytest.approx(100.0)
    assert fig["itl_p50_ms"] is not None
    assert fig["itl_p50_ms"] > 0
    assert fig["send_lag_p50_ms"] is None  # closed loop: nothing was scheduled
    assert [r["measured"] for r in fig["requests"]] == [False, False, True, True, True, True]
    assert fig["status"] == "ok"


def test_send_lag_is_actual_minus_scheduled() -> None:
    sent = [
        Sent(_request(t + lag, 0.1, 0.5), scheduled_ns=int(t * S))
        for t, lag in ((0, 0.001), (1, 0.003), (2, 0.2))
    ]
    fig = load_figures("rate", 1.0, sent, start_ns=0, warmup_s=0.0)
    assert fig["send_lag_max_ms"] == pytest.approx(200.0, abs=0.01)
    assert fig["send_lag_p50_ms"] == pytest.approx(3.0, abs=0.01)
    assert fig["offered_rps"] == 1.0
    assert fig["point"] == "rate 1/s"


def test_goodput_counts_requests_meeting_every_objective() -> None:
    """Of four measured requests one is too slow to first token and one failed: goodput is the other two."""
    fast, slow = _request(0.0, 0.2, 1.2), _request(0.5, 3.0, 4.0)
    failed = _request(1.0, 0.2, 0.3, ok=False)
    sent = [Sent(fast), Sent(slow), Sent(failed), Sent(_request(1.5, 0.2, 1.2))]
    slo = dict(parse_slo("ttft=2s,tpot=150ms,e2e=30s"))
    fig = load_figures("rate", 2.0, sent, start_ns=0, warmup_s=0.0, slo=slo)
    assert (fig["ok_requests"], fig["failed_requests"]) == (3, 1)
    assert fig["attainment"] == pytest.approx(0.5)
    assert fig["goodput_rps"] == pytest.approx(2 / fig["window_s"])
    assert fig["goodput_rps"] < fig["request_throughput_rps"]
    assert fig["goodput_tps"] == pytest.approx(22 / fig["window_s"])
    assert fig["status"] == "failed"
    assert not meets(slow, slo)
    assert meets(fast, slo)
    assert not meets(failed, {})
    # Without objectives every completed request counts.
    free = load_figures("rate", 2.0, sent, start_ns=0, warmup_s=0.0)
    assert free["goodput_rps"] == pytest.approx(free["request_throughput_rps"])
    assert free["attainment"] == pytest.approx(0.75)


def test_slo_parsing_needs_units() -> None:
    assert parse_slo("ttft=2s,tpot=100ms,e2e=30s") == (("ttft", 2.0), ("tpot", 0.1), ("e2e", 30.0))
    assert parse_slo({"e2e": "1.5s"}) == (("e2e", 1.5),)
    for bad, why in (
        ("ttft=2", "with its unit"),
        ("ttfb=2s", "unknown objective"),
        ("ttft=2s,ttft=3s", "given twice"),
        ("ttft=-1s", "more than 0"),
        ("", "no objective"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_slo(bad)


@pytest.mark.parametrize("kind", ["constant", "poisson", "gamma"])
def test_arrivals_keep_the_rate_and_the_seed(kind: str) -> None:
    times = arrival_times(20.0, 50.0, kind, seed=3, burstiness=0.5)
    assert times[0] == 0.0
    assert times == sorted(times)
    assert times[-1] < 50.0
    assert len(times) == pytest.approx(1000, rel=0.15)
    assert times == arrival_times(20.0, 50.0, kind, seed=3, burstiness=0.5)
    if kind != "constant":
        assert times != arrival_times(20.0, 50.0, kind, seed=4, burstiness=0.5)


def test_gamma_burstiness_spreads_the_gaps() -> None:
    def spread(shape: float) -> float:
        t = arrival_times(10.0, 200.0, "gamma", burstiness=shape)
        gaps = [b - a for a, b in itertools.pairwise(t)]
        mean = sum(gaps) / len(gaps)
        return sum((g - mean) ** 2 for g in gaps) / len(gaps) / mean**2

    assert spread(0.25) > 2 * spread(1.0) > 2 * spread(4.0)


@pytest.mark.parametrize("kind", ["constant", "poisson", "gamma"])
def test_a_ramp_up_climbs_to_the_rate_then_holds_it(kind: str) -> None:
    rate, ramp, duration = 20.0, 40.0, 100.0
    times = arrival_times(rate, duration, kind, seed=5, burstiness=2.0, ramp_up_s=ramp)
    assert times == sorted(times)
    assert times[0] == 0.0
    assert times[-1] < duration

    def count(lo: float, hi: float) -> int:
        return sum(1 for t in times if lo <= t < hi)

    # Expected arrivals: R t² / 2S in the ramp (its quarters hold 1, 3, 5, 7 sixteenths of R S / 2).
    quarters = [count(i * ramp / 4, (i + 1) * ramp / 4) for i in range(4)]
    expected = [rate * ramp / 2 * k / 16 for k in (1, 3, 5, 7)]
    for seen, want in zip(quarters, expected, strict=True):
        assert seen == pytest.approx(want, rel=0.3, abs=3)
    assert quarters == sorted(quarters)
    assert count(ramp, duration) == pytest.approx(rate * (duration - ramp), rel=0.1)
    without = arrival_times(rate, duration, kind, seed=5, burstiness=2.0)
    assert len(times) == pytest.approx(len(without) - rate * ramp / 2, rel=0.1)


def test_a_ramp_up_longer_than_the_point_keeps_its_slope() -> None:
    times = arrival_times(10.0, 10.0, "constant", ramp_up_s=30.0)
    assert len(times) == math.ceil(10.0 * 10.0**2 / (2 * 30.0))  # R D² / 2S expected by the end
    with pytest.raises(ValueError, match="ramp-up"):
        arrival_times(10.0, 10.0, "constant", ramp_up_s=-1.0)


def test_warmup_by_count_leaves_out_the_first_requests_sent() -> None:
    """The first N by send time (not by list order) are left out, besides those of the warm-up seconds."""
    sent = [Sent(_request(t, 0.2, 1.2)) for t in (1.0, 0.0, 0.5, 1.5, 2.0, 2.5)]
    fig = load_figures("rate", 2, sent, start_ns=0, warmup_s=0.0, warmup_count=2)
    assert (fig["warmup_requests"], fig["measured"], fig["warmup_count"]) == (2, 4, 2)
    assert [r["measured"] for r in fig["requests"]] == [True, False, False, True, True, True]
    assert fig["window_start_s"] == pytest.approx(1.0)
    both = load_figures("rate", 2, sent, start_ns=0, warmup_s=1.6, warmup_count=2)
    assert both["measured"] == 2  # 2.0 and 2.5: the seconds rule reaches further than the count


def test_arrivals_bounded_by_a_count() -> None:
    assert arrival_times(2.0, None, "constant", count=5) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert len(arrival_times(2.0, 1.0, "constant", count=5)) == 2  # the duration came first
    assert len(arrival_times(50.0, None, "poisson", count=37, seed=1)) == 37
    with pytest.raises(ValueError, match="a duration, a count or both"):
        arrival_times(2.0, None, "constant")
    with pytest.raises(ValueError, match="at least 1"):
        arrival_times(2.0, None, "constant", count=0)
