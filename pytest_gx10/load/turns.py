"""A multi-turn run's figures per turn: how TTFT and prefill change as the history grows.

Each row gathers one turn of every conversation: the prompts (the whole history by then) and the new
message's tokens, median and p90 TTFT, the median prefill rate (each request's prompt tokens over its
TTFT: with a prefix cache serving the history, this rises turn by turn beyond what the engine
computes), the share of the turn's prompt tokens a prefix cache can serve (``expected_hit_rate_min``
and ``_max``, from :func:`~pytest_gx10.workload.conversation.cacheable_bounds`), the server's own hit
rate over the turn when it was measured by itself (a burst's turns are), and the mean of the
server's per-request ``cached_tokens`` when it reports them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10.client.results import StreamResult
from pytest_gx10.load.points import percentile
from pytest_gx10.workload.plan import RequestFacts

__all__ = ["expected_hit_rates", "turn_rows"]


def expected_hit_rates(facts: Sequence[RequestFacts]) -> tuple[float | None, float | None]:
    """The fewest and most of these requests' prompt tokens a prefix cache can serve, as shares."""
    total = sum(f.input_tokens for f in facts)
    if not facts or total <= 0 or any(f.cacheable_min_tokens is None for f in facts):
        return None, None
    low = sum(f.cacheable_min_tokens or 0 for f in facts)
    high = sum(f.cacheable_max_tokens or 0 for f in facts)
    return low / total, high / total


def turn_rows(
    pairs: Sequence[tuple[RequestFacts, StreamResult]],
    server_hit_rates: Mapping[int, float | None] | None = None,
) -> list[dict[str, Any]]:
    """One row per turn (``turn`` counts from 1) of the requests ``pairs`` (each with its facts).

    ``server_hit_rates`` maps a turn (from 1) to the server's hit rate measured over that turn alone.
    """
    by_turn: dict[int, list[tuple[RequestFacts, StreamResult]]] = {}
    for facts, result in pairs:
        if facts.turn is not None:
            by_turn.setdefault(facts.turn + 1, []).append((facts, result))
    rows = []
    for turn in sorted(by_turn):
        group = by_turn[turn]
        ok = [r for _, r in group if r.ok and r.ttft_s is not None]
        ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
        rates = [r.prompt_tokens / r.ttft_s for r in ok if r.prompt_tokens and r.ttft_s]
        cached = [r.cached_tokens for r in ok if r.cached_tokens is not None]
        low, high = expected_hit_rates([f for f, _ in group])
        rows.append(
            {
                "turn": turn,
                "requests": len(group),
                "ok": len(ok),
                "mean_input_tokens": statistics.fmean(f.input_tokens for f, _ in group),
                "mean_new_tokens": statistics.fmean(f.intended_input_tokens or 0 for f, _ in group),
                "median_ttft_s": statistics.median(ttfts) if ttfts else None,
                "p90_ttft_s": percentile(ttfts, 90),
                "median_prefill_tps": statistics.median(rates) if rates else None,
                "expected_hit_rate_min": low,
                "expected_hit_rate_max": high,
                "prefix_cache_hit_rate": (server_hit_rates or {}).get(turn),
                "mean_cached_tokens": statistics.fmean(cached) if cached else None,
            }
        )
    return rows
