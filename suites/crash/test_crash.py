"""Crash-freedom: a sustained concurrent load where nothing goes wrong, and the same engine after it.

The post's MTP-5 run died at N=8 with an illegal memory access after one reply had come back with 0
completion tokens. This suite runs the load the profile's ``[crash]`` table describes (waves of
``concurrency`` streaming requests until ``requests`` have been sent, or for ``duration_s``) and then
holds the deployment to it, one test per kind of trouble: no 5xx and no dropped streams, no in-band
error frames, no empty or aborted completions, /health fine after, no crash line in the server's
log, and the greedy canary answering after the load exactly what it answered before.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_gx10.client import EndpointError, Outcome, StreamResult, VllmClient
from pytest_gx10.load import run_concurrent
from pytest_gx10.observe import LogSource, LogSourceError, SignatureHit, crash_hits, parse_lines
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.workload import CanaryResult, canary, sized_prompt

from .figures import CRASH

pytestmark = pytest.mark.gx10_load  # the load runs alone, never beside another

Recorder = Callable[[str, Mapping[str, Any]], None]


@dataclass
class LoadRun:
    """What the sustained load saw, and the engine before and after it."""

    results: list[StreamResult]
    elapsed_s: float
    canary_before: CanaryResult
    canary_after: CanaryResult | None
    canary_error: str | None
    health_after: int | None
    health_error: str | None
    log_hits: list[SignatureHit] | None  # None: no log source (see log_skip)
    log_skip: str | None

    @property
    def outcomes(self) -> Counter[str]:
        """Requests by outcome."""
        return Counter(r.outcome for r in self.results)

    def failing(self, *outcomes: str, status: Callable[[int], bool] | None = None) -> list[str]:
        """One line per request whose outcome is one of ``outcomes`` (HTTP errors: where ``status`` holds)."""
        lines = []
        for i, r in enumerate(self.results):
            if r.outcome not in outcomes:
                continue
            if r.outcome == Outcome.HTTP_ERROR and status is not None and not status(r.status or 0):
                continue
            lines.append(f"request {i}: {r.describe()}")
        return lines


def _bodies(server: Server, profile: Profile, wave: int) -> list[dict[str, Any]]:
    spec = profile.crash

    def count(text: str) -> int:
        return server.count_tokens(messages=[{"role": "user", "content": text}])

    bodies = []
    for i in range(spec.concurrency):
        prompt = sized_prompt(
            count, spec.input_tokens, seed=f"crash wave {wave} request {i}", header=f"Load {wave}.{i}.\n\n"
        )
        bodies.append(
            {**prompt.body(), "max_tokens": spec.max_tokens, "temperature": 0.7, "seed": wave * 1000 + i}
        )
    return bodies


def _log_source(request: pytest.FixtureRequest) -> tuple[LogSource | None, int, str | None]:
    try:
        logs: LogSource = request.getfixturevalue("gx10_logs")
    except pytest.skip.Exception as exc:
        return None, 0, str(exc.msg)
    try:
        return logs, logs.mark(), None
    except LogSourceError as exc:
        return None, 0, str(exc)


@pytest.fixture(scope="module")
def sustained(
    request: pytest.FixtureRequest,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_profile: Profile,
) -> LoadRun:
    """Run the profile's sustained load once for the module, with the canary before and after."""
    spec = gx10_profile.crash
    logs, mark, log_skip = _log_source(request)
    try:
        before = canary(gx10_client)
    except EndpointError as exc:
        pytest.fail(f"the canary failed before the load: {exc}", pytrace=False)
    results: list[StreamResult] = []
    start = time.perf_counter()
    wave = 0

    def more() -> bool:
        if spec.duration_s > 0:
            return time.perf_counter() - start < spec.duration_s
        return len(results) < spec.requests

    while more():
        results += run_concurrent(
            gx10_client,
            "/v1/chat/completions",
            _bodies(gx10_server, gx10_profile, wave),
            stall_timeout_s=spec.stall_timeout_s,
        )
        wave += 1
    elapsed = time.perf_counter() - start

    health: int | None = None
    health_error = canary_error = None
    after: CanaryResult | None = None
    try:
        health = gx10_client.health()
    except EndpointError as exc:
        health_error = str(exc)
    try:
        after = canary(gx10_client)
    except EndpointError as exc:
        canary_error = str(exc)
    hits = None
    if logs is not None:
        try:
            hits = crash_hits(parse_lines(logs.text_since(mark)), gx10_server.crash_signatures)
        except LogSourceError as exc:
            log_skip = str(exc)
    return LoadRun(results, elapsed, before, after, canary_error, health, health_error, hits, log_skip)


@pytest.fixture
def record_load(sustained: LoadRun, gx10_record: Recorder) -> None:
    """Put the load's figures on the first test's report (so they reach the results file)."""
    gx10_record(
        CRASH.name,
        {
            "name": "sustained",
            "requests": len(sustained.results),
            "elapsed_s": sustained.elapsed_s,
            "outcomes": dict(sustained.outcomes),
            "statuses": dict(Counter(str(r.status) for r in sustained.results)),
            "completion_tokens": sum(r.completion_tokens or 0 for r in sustained.results),
            "health_after": sustained.health_after,
            "canary_before": sustained.canary_before.text,
            "canary_after": None if sustained.canary_after is None else sustained.canary_after.text,
            "crash_lines": None if sustained.log_hits is None else [h.line for h in sustained.log_hits[:20]],
        },
    )


def test_no_server_errors_or_dropped_streams(
    sustained: LoadRun, gx10_profile: Profile, record_load: None
) -> None:
    """No 5xx, no refused or reset connection, no stream cut short or stalled."""
    assert len(sustained.results) >= min(gx10_profile.crash.requests, gx10_profile.crash.concurrency)
    # Every HTTP error but a 4xx (the next test's): a 5xx, and anything odd (a 200 without SSE, a 3xx).
    bad = sustained.failing(Outcome.HTTP_ERROR, status=lambda code: code not in range(400, 500))
    bad += sustained.failing(Outcome.UNREACHABLE, Outcome.CUT, Outcome.STALL)
    assert not bad, f"{len(bad)} of {len(sustained.results)} requests failed:\n" + "\n".join(bad[:20])


def test_no_client_errors(sustained: LoadRun) -> None:
    """Well-formed requests within limits: no 4xx either."""
    bad = sustained.failing(Outcome.HTTP_ERROR, status=lambda code: code in range(400, 500))
    assert not bad, f"{len(bad)} request(s) refused:\n" + "\n".join(bad[:20])


def test_no_inband_errors(sustained: LoadRun) -> None:
    """No ``data: {"error": ...}`` frame inside a 200 stream."""
    bad = sustained.failing(Outcome.INBAND_ERROR)
    assert not bad, f"{len(bad)} in-band error frame(s):\n" + "\n".join(bad[:20])


def test_no_empty_or_aborted_completions(sustained: LoadRun) -> None:
    """Every completion has tokens and a natural finish (the post's 0-token reply before the crash)."""
    bad = sustained.failing(Outcome.ZERO_TOKENS, Outcome.ABORT)
    assert not bad, f"{len(bad)} empty or aborted completion(s):\n" + "\n".join(bad[:20])


def test_health_after_load(sustained: LoadRun) -> None:
    """/health answers 200 once the load is over."""
    assert sustained.health_after == 200, (
        f"/health after the load: {sustained.health_error or sustained.health_after}"
    )


def test_no_crash_lines_in_the_log(sustained: LoadRun) -> None:
    """The server's log shows no crash signature while the load ran."""
    if sustained.log_hits is None:
        pytest.skip(sustained.log_skip or "no log source")
    lines = [f"{hit.name}: {hit.line}" for hit in sustained.log_hits]
    assert not lines, f"{len(lines)} crash line(s) in the log:\n" + "\n".join(lines[:20])


def test_canary_unchanged_by_the_load(sustained: LoadRun) -> None:
    """The greedy canary answers after the load exactly what it answered before."""
    assert sustained.canary_after is not None, f"the canary failed after the load: {sustained.canary_error}"
    change = sustained.canary_after.differs_from(sustained.canary_before)
    assert change is None, change
