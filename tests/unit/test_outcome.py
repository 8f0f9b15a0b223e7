"""Every request is classified as exactly one outcome, from what the wire showed."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_gx10.client.results import Chunk, Outcome, StreamEnd, StreamResult
from pytest_gx10.load.points import point_figures


def _result(**overrides: Any) -> StreamResult:
    fields: dict[str, Any] = {
        "endpoint": "chat",
        "url": "http://127.0.0.1:1/v1/chat/completions",
        "send_ns": 0,
        "status": 200,
        "end_ns": 2_000_000_000,
        "ended": StreamEnd.DONE,
        "chunks": [Chunk(t_ns=1_000_000_000, content="hello")],
        "content": "hello",
        "finish_reason": "length",
        "prompt_tokens": 10,
        "completion_tokens": 4,
        "usage_chunks": 1,
    }
    fields.update(overrides)
    return StreamResult(**fields)


@pytest.mark.parametrize(
    ("overrides", "outcome"),
    [
        ({}, Outcome.OK),
        ({"status": 500, "ended": StreamEnd.HTTP_ERROR, "error": {"code": 500}}, Outcome.HTTP_ERROR),
        ({"status": 400, "ended": StreamEnd.HTTP_ERROR}, Outcome.HTTP_ERROR),
        (
            {"ended": StreamEnd.ERROR, "error": {"message": "EngineCore encountered an issue"}},
            Outcome.INBAND_ERROR,
        ),
        ({"completion_tokens": 0, "content": "", "chunks": []}, Outcome.ZERO_TOKENS),
        ({"completion_tokens": None, "content": "", "chunks": [], "usage_chunks": 0}, Outcome.ZERO_TOKENS),
        ({"ended": StreamEnd.CUT}, Outcome.CUT),
        ({"ended": StreamEnd.STALL, "error": "no byte for 5 s"}, Outcome.STALL),
        ({"finish_reason": "abort"}, Outcome.ABORT),
        (
            {"status": None, "ended": StreamEnd.UNREACHABLE, "error": "connection refused"},
            Outcome.UNREACHABLE,
        ),
    ],
    ids=[
        "ok",
        "http-500",
        "http-400",
        "inband",
        "zero-usage",
        "zero-no-usage",
        "cut",
        "stall",
        "abort",
        "refused",
    ],
)
def test_outcome(overrides: dict[str, Any], outcome: str) -> None:
    """One outcome per request; only a complete, non-empty, non-aborted stream is ok."""
    result = _result(**overrides)
    assert result.outcome == outcome
    assert result.ok is (outcome == Outcome.OK)
    assert result.describe().startswith(f"{outcome}: ")
    assert result.summary()["outcome"] == outcome


def test_point_counts_outcomes_and_keeps_the_zero_token_reply_out_of_the_figures() -> None:
    """The post's N=4 under MTP-5: one 0-token reply among four; the point says so and keeps three."""
    good = [_result(send_ns=i) for i in range(3)]
    empty = _result(send_ns=3, completion_tokens=0, content="", chunks=[])
    fig = point_figures(4, [*good, empty])
    assert fig.outcomes == {Outcome.OK: 3, Outcome.ZERO_TOKENS: 1}
    assert (fig.ok_requests, fig.failed_requests) == (3, 1)
    assert fig.agg_decode_tps == pytest.approx(3 * 4 / (2.0 - 1.0))
    assert [r["outcome"] for r in fig.requests] == ["ok", "ok", "ok", "zero_tokens"]
