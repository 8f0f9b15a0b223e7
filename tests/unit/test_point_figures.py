"""Our figure definitions reproduce the reference post's aggregate table from its per-request tables."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_gx10.client.results import Chunk, StreamEnd, StreamResult
from pytest_gx10.load.points import percentile, point_figures, point_status
from pytest_gx10.profiles.reference_post import AGGREGATE, INPUT_TOKENS, OUTPUT_TOKENS, PER_REQUEST

S = 1_000_000_000


def _request(ttft_s: float, duration_s: float, send_ns: int = 0, chunks: int = 1) -> StreamResult:
    first = send_ns + int(ttft_s * S)
    end = send_ns + int(duration_s * S)
    step = (end - first) // max(chunks, 1)
    return StreamResult(
        endpoint="chat",
        url="x",
        send_ns=send_ns,
        status=200,
        end_ns=end,
        ended=StreamEnd.DONE,
        chunks=[Chunk(t_ns=first + i * step, content="ab") for i in range(chunks)],
        prompt_tokens=INPUT_TOKENS,
        completion_tokens=OUTPUT_TOKENS,
        usage_chunks=1,
    )


@pytest.mark.parametrize("n", sorted(PER_REQUEST))
def test_post_aggregate_table_from_its_request_tables(n: int) -> None:
    """wall, aggregate prefill and decode, median TTFT and decode: as the post printed them."""
    fig = point_figures(n, [_request(ttft, dur) for ttft, dur, _, _ in PER_REQUEST[n]])
    wall, agg_prefill, agg_decode, median_ttft, median_decode = AGGREGATE[n]
    assert fig.wall_s == pytest.approx(wall, abs=0.051)
    assert fig.agg_prefill_tps == pytest.approx(agg_prefill, rel=0.005)
    assert fig.agg_decode_tps == pytest.approx(agg_decode, rel=0.005)
    assert fig.median_ttft_s == pytest.approx(median_ttft, abs=0.006)
    assert fig.median_decode_tps == pytest.approx(median_decode, abs=0.06)
    assert (fig.ok_requests, fig.failed_requests) == (n, 0)


def test_per_request_figures_match_the_post() -> None:
    """prefill_tps and decode_tps per request, N=2."""
    for ttft, dur, prefill, decode in PER_REQUEST[2]:
        r = _request(ttft, dur)
        assert r.prefill_tps == pytest.approx(prefill, rel=0.005)
        assert r.decode_tps == pytest.approx(decode, abs=0.06)


def test_failed_requests_are_listed_not_averaged() -> None:
    """A request that ended in an error stays in the listing and out of the aggregates."""
    bad = StreamResult(
        endpoint="chat",
        url="x",
        send_ns=0,
        status=500,
        end_ns=S,
        ended=StreamEnd.HTTP_ERROR,
        error={"message": "engine dead"},
    )
    fig = point_figures(2, [_request(5.37, 30.78), bad])
    assert (fig.ok_requests, fig.failed_requests) == (1, 1)
    assert fig.agg_decode_tps == pytest.approx(40.3, rel=0.005)
    assert fig.requests[1]["status"] == 500


def test_dispatch_skew_and_time_scale() -> None:
    """Skew is the spread of send times; a twin's time scale stretches durations, not skew."""
    a, b = _request(1.0, 10.0, send_ns=0), _request(1.0, 10.0, send_ns=3_000_000)
    b.time_scale = a.time_scale = 10.0
    fig = point_figures(2, [a, b])
    assert fig.dispatch_skew_ms == pytest.approx(3.0)
    assert fig.wall_s == pytest.approx(100.0)


def test_token_aware_inter_token_latency() -> None:
    """Chunks 100 ms apart each carrying half the tokens: 100 ms per chunk over its token share."""
    r = _request(1.0, 1.2, chunks=3)
    r.completion_tokens = 3  # one token per chunk
    fig = point_figures(1, [r])
    assert fig.itl_p50_ms == pytest.approx(1000 * 0.2 / 3, rel=0.01)


def test_inter_token_latency_counts_each_chunks_tokens_when_the_usage_says_them() -> None:
    """Speculative chunks of 1, 3 and 2 tokens whose text lengths say otherwise (12, 2 and 2
    characters): with the usage in every chunk the gaps are spread over the tokens counted, not over
    the characters."""
    r = _request(1.0, 1.2, chunks=3)
    r.completion_tokens = 6
    step = r.chunks[1].t_ns - r.chunks[0].t_ns
    texts, counts = ["abcdefghijkl", "ab", "cd"], [1, 3, 2]
    r.chunks = [
        dataclasses.replace(c, content=t, tokens=k) for c, t, k in zip(r.chunks, texts, counts, strict=True)
    ]
    fig = point_figures(1, [r])
    gap_ms = step / 1e6
    # Two gaps: 3 tokens and 2 tokens; the token-weighted median is the 3-token chunk's.
    assert fig.itl_p50_ms == pytest.approx(gap_ms / 3, rel=0.01)
    assert fig.itl_p99_ms == pytest.approx(gap_ms / 2, rel=0.01)
    # Without the counts the characters decide: 2 of 16 characters each, 0.75 tokens a chunk.
    r.chunks = [dataclasses.replace(c, tokens=None) for c in r.chunks]
    assert point_figures(1, [r]).itl_p50_ms == pytest.approx(gap_ms / 0.75, rel=0.01)


def test_percentile_interpolates() -> None:
    """Linear interpolation between ranks."""
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([], 90) is None


@pytest.mark.parametrize(
    ("outcomes", "engine_dead", "status"),
    [
        ({"ok": 4}, False, "ok"),
        ({"ok": 4}, True, "ok"),  # the engine died after a point that fully succeeded
        ({"ok": 3, "zero_tokens": 1}, False, "zero-token"),
        ({"ok": 2, "zero_tokens": 1, "cut": 1}, False, "failed"),
        ({"inband_error": 8}, True, "engine dead"),
        ({"ok": 0, "http_error": 2}, False, "failed"),
    ],
)
def test_point_status_says_what_became_of_the_point(
    outcomes: dict[str, int], engine_dead: bool, status: str
) -> None:
    """The post's words: the N=4 0-token reply, the N=8 death, a point that simply failed."""
    assert point_status(outcomes, engine_dead=engine_dead) == status


def test_a_point_with_a_zero_token_reply_keeps_the_figures_of_the_others() -> None:
    """Status zero-token, and the three good replies still make the point's figures."""
    good = [_request(2.0, 30.0) for _ in range(3)]
    empty = dataclasses.replace(_request(2.0, 5.0), completion_tokens=0, chunks=[])
    fig = point_figures(4, [*good, empty])
    assert fig.status == "zero-token"
    assert fig.ok_requests == 3
    assert fig.agg_decode_tps is not None
