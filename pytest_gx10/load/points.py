"""Figures of one concurrency point, by the reference post's definitions (see the README).

The post's aggregate table follows from its per-request tables with exactly these formulas; extra
figures (TTFT percentiles, token-aware inter-token latency, the barrier's dispatch skew) sit beside
them and never replace them.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_gx10.client.results import Outcome, StreamResult

__all__ = ["PointFigures", "PointStatus", "percentile", "point_figures", "point_status", "reasoning_figures"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _weighted_percentiles(samples: Sequence[tuple[float, float]], qs: Sequence[float]) -> list[float | None]:
    """Percentiles of values each standing for ``weight`` observations."""
    if not samples:
        return [None for _ in qs]
    ordered = sorted(samples)
    total = sum(w for _, w in ordered)
    out: list[float | None] = []
    for q in qs:
        goal = total * q / 100.0
        acc = 0.0
        value = ordered[-1][0]
        for v, w in ordered:
            acc += w
            if acc >= goal:
                value = v
                break
        out.append(value)
    return out


def inter_token_samples(result: StreamResult) -> list[tuple[float, float]]:
    """(seconds per token, tokens) for each gap between token-carrying chunks.

    A speculative-decoding chunk carries several tokens, so a gap is spread over the tokens of the
    chunk that closes it. Where every chunk carried the usage (``continuous_usage_stats``, asked of
    a server that offers it) the chunk's tokens are the rise in its count; otherwise the stream does
    not say, and the usage count is shared out by each chunk's share of the generated characters.
    """
    chunks = [c for c in result.chunks if c.has_token]
    tokens = result.completion_tokens or 0
    chars = sum(len(c.content) + len(c.reasoning) for c in chunks)
    if len(chunks) < 2 or tokens < 2 or chars == 0:
        return []
    counted = all(c.tokens for c in chunks)
    samples = []
    for prev, cur in itertools.pairwise(chunks):
        if counted and cur.tokens:
            share = float(cur.tokens)
        else:
            share = max(tokens * (len(cur.content) + len(cur.reasoning)) / chars, 1e-9)
        gap_s = (cur.t_ns - prev.t_ns) / 1e9 * result.time_scale
        samples.append((gap_s / share, share))
    return samples


@dataclass(frozen=True)
class PointFigures:
    """One concurrency point, measured."""

    concurrency: int
    wall_s: float | None
    agg_prefill_tps: float | None
    agg_decode_tps: float | None
    median_ttft_s: float | None
    median_decode_tps: float | None
    p90_ttft_s: float | None
    p99_ttft_s: float | None
    itl_p50_ms: float | None
    itl_p90_ms: float | None
    itl_p99_ms: float | None
    dispatch_skew_ms: float | None
    ok_requests: int
    failed_requests: int
    outcomes: dict[str, int] = field(default_factory=dict)  # requests by Outcome ("ok": 3, "zero_tokens": 1)
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: str = "ok"  # one of PointStatus: what a reader of the table needs to know first

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, requests included."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class PointStatus:
    """A point's status in one word, as the post's tables say it."""

    OK = "ok"  # every request succeeded
    ZERO_TOKEN = "zero-token"  # the only failures were replies of 0 tokens
    FAILED = "failed"  # some requests failed, the engine lived on
    ENGINE_DEAD = "engine dead"  # requests failed and the engine was dead after the point
    NOT_ATTEMPTED = "not attempted"  # the engine was dead before the point began


def point_status(outcomes: Mapping[str, int], *, engine_dead: bool = False) -> str:
    """The status of a point whose requests ended with ``outcomes`` (counts by Outcome)."""
    failed = {k: v for k, v in outcomes.items() if k != Outcome.OK and v}
    if not failed:
        return PointStatus.OK
    if engine_dead:
        return PointStatus.ENGINE_DEAD
    if set(failed) == {Outcome.ZERO_TOKENS}:
        return PointStatus.ZERO_TOKEN
    return PointStatus.FAILED


def reasoning_figures(ok: Sequence[StreamResult]) -> dict[str, Any]:
    """For a reasoning model's requests: when the answer starts, and how long the thinking was.

    ``median_ttfat_s``: the median time to the first answer (content) token, beside TTFT, which for
    a reasoning model is the first thinking token; ``reasoning_requests``: the requests that thought;
    ``mean_reasoning_tokens``: their thinking tokens (the usage's ``reasoning_tokens``, else None).
    Empty when no request streamed reasoning.
    """
    thinking = [r for r in ok if r.reasoning]
    if not thinking:
        return {}
    answers = [t for r in ok if (t := r.ttfat_s) is not None]
    counted = [r.reasoning_tokens for r in thinking if r.reasoning_tokens is not None]
    return {
        "median_ttfat_s": statistics.median(answers) if answers else None,
        "reasoning_requests": len(thinking),
        "mean_reasoning_tokens": statistics.fmean(counted) if counted else None,
    }


def point_figures(
    concurrency: int, results: Sequence[StreamResult], *, engine_dead: bool = False
) -> PointFigures:
    """Aggregate a point's requests. Failed requests are listed but kept out of the figures.

    ``engine_dead``: the engine sentinel's verdict right after the point (its status says so).
    """
    ok = [r for r in results if r.ok and r.ttft_s is not None and r.completion_tokens is not None]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    decodes = [d for r in ok if (d := r.decode_tps) is not None]
    wall = max((r.duration_s for r in ok), default=None)
    agg_prefill = agg_decode = None
    if ok and ttfts:
        prompt_sum = sum(r.prompt_tokens or 0 for r in ok)
        agg_prefill = prompt_sum / max(ttfts) if max(ttfts) > 0 else None
        window = (wall or 0.0) - min(ttfts)
        agg_decode = sum(r.completion_tokens or 0 for r in ok) / window if window > 0 else None
    itl = _weighted_percentiles([s for r in ok for s in inter_token_samples(r)], (50, 90, 99))
    outcomes = Counter(r.outcome for r in results)
    sends = [r.send_ns for r in results]
    skew = (max(sends) - min(sends)) / 1e6 if len(sends) > 1 else 0.0 if sends else None
    return PointFigures(
        concurrency=concurrency,
        wall_s=wall,
        agg_prefill_tps=agg_prefill,
        agg_decode_tps=agg_decode,
        median_ttft_s=statistics.median(ttfts) if ttfts else None,
        median_decode_tps=statistics.median(decodes) if decodes else None,
        p90_ttft_s=percentile(ttfts, 90),
        p99_ttft_s=percentile(ttfts, 99),
        itl_p50_ms=None if itl[0] is None else itl[0] * 1000,
        itl_p90_ms=None if itl[1] is None else itl[1] * 1000,
        itl_p99_ms=None if itl[2] is None else itl[2] * 1000,
        dispatch_skew_ms=skew,
        ok_requests=len(ok),
        failed_requests=len(results) - len(ok),
        outcomes=dict(outcomes),
        requests=[r.summary() for r in results],
        status=point_status(outcomes, engine_dead=engine_dead),
    )
