"""What a fit reads from a results file (``--gx10-json``): the points' requests and the deployment.

Two kinds of point are read:

- the burst sweep (``sweep``: N requests released together), whose schedule is set by token counts
  alone, so the twin's scheduler replays it once;
- open-loop load points (``load`` entries of mode ``rate``): each request was sent on a clock that did
  not wait for the server, at ``send_s`` after the point began, so the twin replays those send times.
  Which step a request lands in then depends on the step times being fitted; the fit iterates.

Closed-loop load points (mode ``concurrency``) send each request when another finished: their arrivals
are themselves the timings being fitted, and they are left out, as the notes say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = ["FitError", "MeasuredPoint", "MeasuredRequest", "Run", "read_run", "run_from"]

# Requests whose first token came within this of the point's first one were in the engine's first step.
FIRST_GROUP_S = 0.005
FIRST_GROUP_SHARE = 0.01
# A point whose prefix cache served this share of its prompts, with no per-request count, is noted.
NOTED_HIT_RATE = 0.05


class FitError(Exception):
    """Input a fit cannot use; the message names the file."""


@dataclass(frozen=True)
class MeasuredRequest:
    """One request of a sweep point, as the client measured it (the target's seconds)."""

    ttft_s: float
    duration_s: float
    prompt_tokens: int
    completion_tokens: int
    send_s: float = 0.0  # when it was sent, after its point began (0 for every request of a burst)
    # Prompt tokens its server's prefix cache served (None: not said; its share of the point's hit
    # rate where only the server's counters said it).
    cached_tokens: int | None = None

    @property
    def decode_tps(self) -> float:
        """Completion tokens over the time after the first token (the post's per-request decode)."""
        return self.completion_tokens / max(self.duration_s - self.ttft_s, 1e-9)


@dataclass(frozen=True)
class MeasuredPoint:
    """N requests released together (``requests`` sorted by TTFT), or an open-loop point at ``rate``
    requests per second (``requests`` sorted by send time; ``concurrency`` is then 0)."""

    concurrency: int
    requests: tuple[MeasuredRequest, ...]
    rate: float | None = None
    take: int = 0  # which repeat of its point it was (--gx10-repeat), from 1; 0 for a point run once

    @property
    def timed(self) -> bool:
        """Its requests were sent on a clock (an open-loop point), not all at once."""
        return self.rate is not None

    @property
    def label(self) -> str:
        """``N=4`` (``N=4 #2``: its second repeat), or ``1.25/s`` for an open-loop point."""
        return f"{self.rate:g}/s" if self.rate is not None else _burst_label(self.concurrency, self.take)

    @property
    def first_group(self) -> int:
        """Requests whose first token came with the first one: they were all in the engine's first step."""
        first = self.requests[0].ttft_s
        return sum(1 for r in self.requests if r.ttft_s - first <= FIRST_GROUP_S + FIRST_GROUP_SHARE * first)


@dataclass(frozen=True)
class Run:
    """One results file: its points in the order they ran, and the deployment facts it recorded."""

    path: Path
    points: tuple[MeasuredPoint, ...]
    facts: Mapping[str, Any] = field(default_factory=dict)  # the deployment block's values, model etc.
    acceptance_per_position: tuple[float, ...] | None = None  # measured, when speculative decoding ran
    speculative_tokens: int = 0
    speculative_method: str | None = None
    reasoning: bool = False  # the model streamed reasoning (its first token is a <think>)
    time_scale: float = 1.0
    profile: str | None = None  # the profile the run was made with
    skipped: tuple[str, ...] = ()  # points left out and why, and what was estimated
    workload: Mapping[str, Any] = field(default_factory=dict)  # the results' workload block
    cached_said: bool = False  # its answers said what the prefix cache served each request


def _burst_label(n: int, take: int) -> str:
    return f"N={n}" + (f" #{take}" if take else "")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _request(row: Any, timed: bool = False) -> MeasuredRequest | None:
    if not isinstance(row, Mapping) or row.get("outcome", "ok") != "ok":
        return None
    ttft, duration = _number(row.get("ttft_s")), _number(row.get("duration_s"))
    prompt, completion = _number(row.get("prompt_tokens")), _number(row.get("completion_tokens"))
    send = _number(row.get("send_s")) if timed else 0.0
    if ttft is None or duration is None or prompt is None or completion is None or send is None:
        return None
    if ttft <= 0 or duration < ttft or prompt < 1 or completion < 1 or send < 0:
        return None
    cached = _number(row.get("cached_tokens"))
    if cached is not None:  # the last prompt token is always computed
        cached = min(max(cached, 0.0), prompt - 1)
    return MeasuredRequest(
        ttft, duration, int(prompt), int(completion), send, None if cached is None else int(cached)
    )


def _usable(
    entry: Mapping[str, Any], label: str, skipped: list[str], timed: bool = False
) -> list[MeasuredRequest] | None:
    """A point's requests, or None (and why, in ``skipped``) when any failed or lacks its timings (a
    failed request still took its place in the schedule) or the point is a multi-turn one (each turn
    was sent when the one before it was answered, and a burst's rows hold only the last turns): such
    a point cannot be replayed.

    What the server's prefix cache served each request is its row's ``cached_tokens`` (vLLM's
    ``prompt_tokens_details``, llama.cpp's cached prompt); where no row says, the point's hit rate
    (from the server's counters) is shared out in proportion to the prompts, said from 5 %.
    """
    workload = entry.get("workload")
    if (workload.get("kind") if isinstance(workload, Mapping) else workload) == "multi-turn":
        skipped.append(
            f"{label}: multi-turn: each turn was sent when the one before it was answered, so the point "
            "cannot be replayed as its sends"
        )
        return None
    rows = entry["requests"]
    usable = [r for r in (_request(row, timed) for row in rows) if r is not None]
    if len(usable) != len(rows):
        skipped.append(f"{label}: {len(rows) - len(usable)} of {len(rows)} requests failed or lack timings")
        return None
    rate = min(_number(entry.get("prefix_cache_hit_rate")) or 0.0, 1.0)
    if rate > 0 and all(r.cached_tokens is None for r in usable):
        if rate >= NOTED_HIT_RATE:
            skipped.append(
                f"{label}: the server's prefix cache served {rate:.0%} of the prompt tokens and the rows do "
                "not say whose: each request is taken to have its share (vLLM says each request's with "
                "--enable-prompt-tokens-details)"
            )
        usable = [replace(r, cached_tokens=int(rate * (r.prompt_tokens - 1))) for r in usable]
    return usable


def _points(path: Path, sweep: Any) -> tuple[list[MeasuredPoint], list[str]]:
    """The sweep's bursts in the order they ran: a point run K times (``--gx10-repeat``) is K bursts,
    each with its own requests (the point's ``requests`` are only its last repeat's)."""
    if not isinstance(sweep, list):
        raise FitError(f"{path}: 'sweep' is {type(sweep).__name__}, expected a list of points")
    points: list[MeasuredPoint] = []
    skipped: list[str] = []
    for i, entry in enumerate(sweep):
        n = entry.get("concurrency") if isinstance(entry, Mapping) else None
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise FitError(f"{path}: sweep[{i}] has no concurrency (expected a point of the perf sweep)")
        repeats = entry.get("repeats")
        takes = [t for t in repeats if isinstance(t, Mapping)] if isinstance(repeats, list) else []
        for k, take in list(enumerate(takes, 1)) if len(takes) > 1 else [(0, entry)]:
            label = _burst_label(n, k)
            rows = take.get("requests")
            if not isinstance(rows, list) or not rows:
                skipped.append(f"{label}: no per-request rows")
                continue
            usable = _usable(take, label, skipped)
            if usable is not None:
                points.append(MeasuredPoint(n, tuple(sorted(usable, key=lambda r: r.ttft_s)), take=k))
    return points, skipped


def _rate_points(path: Path, load: Any) -> tuple[list[MeasuredPoint], list[str]]:
    """The open-loop points of ``load``, every request of each (its warm-up too: it held the engine)."""
    if load is None:
        return [], []
    if not isinstance(load, list):
        raise FitError(f"{path}: 'load' is {type(load).__name__}, expected a list of points")
    points: list[MeasuredPoint] = []
    skipped: list[str] = []
    closed = 0
    for i, entry in enumerate(load):
        if not isinstance(entry, Mapping):
            raise FitError(f"{path}: load[{i}] is not a point of the perf suite's load")
        if entry.get("mode") != "rate":
            closed += 1
            continue
        rate = _number(entry.get("level"))
        rows = entry.get("requests")
        if rate is None or rate <= 0 or not isinstance(rows, list) or not rows:
            skipped.append(f"load[{i}]: no rate or no per-request rows")
            continue
        usable = _usable(entry, f"{rate:g}/s", skipped, timed=True)
        if usable is None:
            continue
        points.append(MeasuredPoint(0, tuple(sorted(usable, key=lambda r: r.send_s)), rate))
    if closed:
        skipped.append(
            f"{closed} closed-loop load point(s) left out: each send waited for an answer, so their "
            "arrivals are the timings being fitted (run --gx10-load-mode=rate to fit load)"
        )
    return points, skipped


def _values(block: Any) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        return {}
    return {k: v.get("value") if isinstance(v, Mapping) and "value" in v else v for k, v in block.items()}


def _acceptance(data: Mapping[str, Any]) -> tuple[float, ...] | None:
    """Per-position acceptance: the spec-decode window's, else shared out from the sweep's counters."""
    for entry in reversed(data.get("mtp") or []):
        if isinstance(entry, Mapping) and entry.get("name") == "window":
            rates = [_number(r) for r in entry.get("per_position") or []]
            if rates and all(r is not None for r in rates):
                return tuple(float(r) for r in rates if r is not None)
    return None


def _mean_accepted(points: Sequence[Any]) -> float | None:
    """Accepted draft tokens per draft, over the sweep's telemetry counters (None without any)."""
    drafts = accepted = 0.0
    for point in points:
        tel = point.get("telemetry") if isinstance(point, Mapping) else None
        if not isinstance(tel, Mapping):
            continue
        for name, acc in (("spec_drafts", "d"), ("spec_accepted_tokens", "a")):
            column = [v for v in tel.get(name) or [] if _number(v) is not None]
            if len(column) >= 2:
                rise = float(column[-1]) - float(column[0])
                if acc == "d":
                    drafts += rise
                else:
                    accepted += rise
    return accepted / drafts if drafts > 0 else None


def geometric_rates(mean_accepted: float, k: int) -> tuple[float, ...]:
    """``k`` unconditional per-position rates a, a^2, ... summing to ``mean_accepted`` (capped at k)."""
    target = min(max(mean_accepted, 0.0), k * 0.999)
    low, high = 0.0, 1.0
    for _ in range(60):
        mid = (low + high) / 2
        if sum(mid ** (i + 1) for i in range(k)) < target:
            low = mid
        else:
            high = mid
    return tuple(round(low ** (i + 1), 4) for i in range(k))


def read_run(path: Path) -> Run:
    """Read one results file; raises :class:`FitError` naming the file when it cannot be fitted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FitError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise FitError(f"{path}: not a JSON results file: {exc}") from None
    return run_from(data, path)


def run_from(data: Any, path: Path) -> Run:
    """A results document already in memory (a run's own, at its end); ``path`` names it in errors."""
    if not isinstance(data, Mapping):
        raise FitError(f"{path}: not a results file (expected a JSON object from --gx10-json)")
    if "sweep" not in data and "load" not in data:
        raise FitError(
            f"{path}: no 'sweep' or 'load' points: a fit needs a results file of the perf suite's burst "
            "sweep or open-loop load (pytest suites/perf --gx10-json=...)"
        )
    points, skipped = _points(path, data["sweep"]) if "sweep" in data else ([], [])
    timed, more = _rate_points(path, data.get("load"))
    points += timed
    skipped += more
    if not points:
        why = "; ".join(skipped) or "the sweep is empty"
        raise FitError(f"{path}: no sweep or rate point with usable per-request rows ({why})")
    every = [*(data.get("sweep") or []), *(data.get("load") or [])]  # the points, closed-loop ones too
    facts = _values(data.get("deployment"))
    for key in ("model", "server_version"):
        if data.get(key) is not None:
            facts.setdefault(key, data[key])
    method, k = None, 0
    spec = facts.get("speculative")
    if isinstance(spec, str) and spec:
        method = spec.split()[0]
        found = re.search(r"k=(\d+)", spec)
        k = int(found.group(1)) if found else 0
    rates = _acceptance(data)
    if rates is not None:
        k = len(rates)
    elif k or facts.get("speculative_tokens"):
        k = k or int(facts["speculative_tokens"])
        mean = _mean_accepted(every)
        rates = geometric_rates(mean, k) if mean is not None else None
        if rates is None:
            skipped.append(f"speculative decoding k={k} but no acceptance measured: drafts taken as rejected")
            rates = (0.0,) * k
    rows = [
        r for p in every if isinstance(p, Mapping) for r in p.get("requests") or [] if isinstance(r, Mapping)
    ]
    reasoning = any((_number(r.get("reasoning_tokens")) or 0) > 0 for r in rows)
    cached_said = any(_number(r.get("cached_tokens")) is not None for r in rows)
    scale = _number(data.get("time_scale")) or 1.0
    profile = data.get("profile") if isinstance(data.get("profile"), str) else None
    workload = data.get("workload")
    if not isinstance(workload, Mapping):
        workload = {}
    return Run(
        path,
        tuple(points),
        facts,
        rates,
        k,
        method,
        reasoning,
        scale,
        profile,
        tuple(skipped),
        workload,
        cached_said,
    )
