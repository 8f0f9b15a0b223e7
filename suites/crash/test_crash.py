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
import uuid
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
from pytest_gx10.settings import Settings
from pytest_gx10.workload import CanaryResult, PromptSizeError, canary, parse_length, sized_prompt
from pytest_gx10.workload.conversation import Conversation

from .figures import CRASH

RUN_NONCE = uuid.uuid4().hex[:8]

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
    workload: dict[str, Any]

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


class _Waves:
    """The load's requests, wave by wave, from the profile's ``crash.workload``: filler of
    ``crash.input_tokens`` (the default, a header of its own per request), the run's dataset, shared
    prefixes, or conversations (each wave the next turn of the same ``concurrency`` conversations, a
    new one started where one ended). Sampled at temperature 0.7 with a seed per request."""

    def __init__(self, server: Server, settings: Settings) -> None:
        spec = settings.profile.crash
        self.server, self.spec = server, spec
        self.workload = settings.workload_for(
            "crash",
            RUN_NONCE,
            kind=spec.workload,
            input_len=parse_length(str(spec.input_tokens)),
            output_len=parse_length(str(spec.max_tokens)),
        )
        self.chats: list[Conversation | None] = [None] * spec.concurrency
        self.started = 0

    def bodies(self, wave: int) -> list[dict[str, Any]]:
        """Wave ``wave``'s ``concurrency`` request bodies."""
        n = self.spec.concurrency
        bodies = []
        for k in range(n):
            if self.workload.kind == "multi-turn":
                chat = self.chats[k]
                if chat is None or chat.done:
                    chat = self.chats[k] = self.workload.conversation(
                        self.started,
                        count=self.server.count_prompt,
                        chat=True,
                        point="",
                        max_tokens_default=self.spec.max_tokens,
                    )
                    self.started += 1
                body, _ = chat.next_body()
            elif self.workload.kind == "filler":
                # A header this short leaves room in the smallest prompts a load may ask for.
                prompt = sized_prompt(
                    lambda text: self.server.count_prompt([{"role": "user", "content": text}]),
                    self.spec.input_tokens,
                    seed=f"crash wave {wave} request {k}",
                    header=f"Load {wave}.{k}.\n\n",
                )
                body = {**prompt.body(), "max_tokens": self.spec.max_tokens}
            else:
                body, _ = self.workload.body(
                    wave * n + k,
                    count=self.server.count_prompt,
                    chat=True,
                    point="",
                    max_tokens_default=self.spec.max_tokens,
                )
            bodies.append({**body, "temperature": 0.7, "seed": wave * 1000 + k})
        return bodies

    def answered(self, results: list[StreamResult]) -> None:
        """The wave's answers go into their conversations (a failed turn ends its conversation)."""
        for chat, result in zip(self.chats, results, strict=False):
            if chat is not None and not chat.done:
                chat.answer(result.content if result.ok else None, result.completion_tokens)


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
    gx10_settings: Settings,
) -> LoadRun:
    """Run the profile's sustained load once for the module, with the canary before and after."""
    spec = gx10_profile.crash
    waves = _Waves(gx10_server, gx10_settings)
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
        try:
            bodies = waves.bodies(wave)
        except PromptSizeError as exc:
            pytest.fail(
                f"the {spec.workload} load's prompts cannot be built: {exc}; raise crash.input_tokens",
                pytrace=False,
            )
        wave_results = run_concurrent(
            gx10_client, "/v1/chat/completions", bodies, stall_timeout_s=spec.stall_timeout_s
        )
        waves.answered(wave_results)
        results += wave_results
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
    facts = waves.workload.facts()
    return LoadRun(results, elapsed, before, after, canary_error, health, health_error, hits, log_skip, facts)


@pytest.fixture
def record_load(sustained: LoadRun, gx10_record: Recorder) -> None:
    """Put the load's figures on the first test's report (so they reach the results file)."""
    gx10_record(
        CRASH.name,
        {
            "name": "sustained",
            "requests": len(sustained.results),
            "workload": sustained.workload,
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
