"""The closed loop against the twin: N in flight, ended by a duration, a request count or both."""

from __future__ import annotations

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load.runner import run_closed_loop
from pytest_gx10.load.steady import Sent

BODY = {"prompt": "The lighthouse keeper", "max_tokens": 8, "temperature": 0, "ignore_eos": True}


def _most_in_flight(sent: list[Sent]) -> int:
    events = sorted([(s.result.send_ns, 1) for s in sent] + [(s.result.end_ns, -1) for s in sent])
    peak = running = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_a_request_count_ends_the_closed_loop(cpu_twin: FakeServer) -> None:
    built: list[int] = []

    def body(i: int, slot: int) -> dict[str, object]:
        built.append(i)
        return BODY

    with VllmClient(cpu_twin.url, timeout_s=30) as client:
        start, sent = run_closed_loop(client, "/v1/completions", body, 3, None, max_requests=7)
    assert len(sent) == 7
    assert sorted(built) == list(range(7))  # no request built beyond the count
    assert all(s.result.ok and s.result.completion_tokens == 8 for s in sent)
    assert [s.result.send_ns for s in sent] == sorted(s.result.send_ns for s in sent)
    assert min(s.result.send_ns for s in sent) >= start
    assert 2 <= _most_in_flight(sent) <= 3  # never more than the slots; they overlap


def test_the_first_bound_reached_ends_the_closed_loop(cpu_twin: FakeServer) -> None:
    with VllmClient(cpu_twin.url, timeout_s=30) as client:
        _, by_time = run_closed_loop(
            client, "/v1/completions", lambda i, slot: BODY, 2, 0.2, max_requests=10_000
        )
        _, by_count = run_closed_loop(
            client, "/v1/completions", lambda i, slot: BODY, 2, 60.0, max_requests=4
        )
    assert 0 < len(by_time) < 10_000
    assert len(by_count) == 4


def test_a_closed_loop_needs_a_bound(cpu_twin: FakeServer) -> None:
    with VllmClient(cpu_twin.url, timeout_s=30) as client:
        with pytest.raises(ValueError, match="duration, a request count"):
            run_closed_loop(client, "/v1/completions", lambda i, slot: BODY, 2, None)
        with pytest.raises(ValueError, match="at least 1"):
            run_closed_loop(client, "/v1/completions", lambda i, slot: BODY, 2, None, max_requests=0)
