"""The event-loop client and the threaded client read the twin alike: the same requests through both
give the same results, field by field (times aside), for whole streams and for each way one fails."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

import pytest

from pytest_gx10.client import StreamEnd, StreamResult, VllmClient, aio
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import point_figures, run_concurrent
from pytest_gx10.profiles.faults import parse_fault

CPU = "smollm2-cpu"
FAST = 100.0
KEY = "sk-twin-key"

CHAT = {
    "messages": [{"role": "user", "content": "Tell me about lighthouses."}],
    "max_tokens": 24,
    "temperature": 0,
}
COMPLETION = {"prompt": "The lighthouse keeper", "max_tokens": 24, "temperature": 0}
TIMES = {"send_ns", "end_ns", "response_id"}  # times, and the id the server gives each request


def compared(a: StreamResult, b: StreamResult) -> list[str]:
    """The fields on which two results differ (chunks by what they carried, not when)."""
    differ = []
    for f in fields(StreamResult):
        if f.name in TIMES:
            continue
        if f.name == "chunks":
            carried = [[(c.content, c.reasoning, c.finish_reason) for c in r.chunks] for r in (a, b)]
            if carried[0] != carried[1]:
                differ.append("chunks")
        elif getattr(a, f.name) != getattr(b, f.name):
            differ.append(f"{f.name}: {getattr(a, f.name)!r} != {getattr(b, f.name)!r}")
    return differ


def through_both(
    server: FakeServer, api_key: str | None = KEY, **kwargs: Any
) -> list[tuple[StreamResult, StreamResult]]:
    with VllmClient(server.url, api_key=KEY) as lookup:
        model = lookup.served_model()
    client = VllmClient(server.url, api_key=api_key, model=model)
    pairs = []
    for path, body in (("/v1/chat/completions", CHAT), ("/v1/completions", COMPLETION)):
        threaded = client.stream(path, body, **kwargs)
        looped = asyncio.run(aio.stream(client, path, body, **kwargs))
        pairs.append((threaded, looped))
    client.close()
    return pairs


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        (None, "ok"),
        ("http_500", "http_error"),
        ("http_500:body=text", "http_error"),
        ("http_500:body=empty", "http_error"),
        ("zero_tokens", "zero_tokens"),
        ("abort:tokens=3", "abort"),
        ("cut:tokens=5", "cut"),
    ],
)
def test_both_clients_read_the_twin_alike(fault: str | None, outcome: str) -> None:
    faults = [parse_fault(fault)] if fault else []
    with FakeServer(CPU, time_scale=FAST, api_key=KEY, faults=faults) as server:
        pairs = through_both(server)
    for threaded, looped in pairs:
        assert compared(threaded, looped) == []
        assert looped.outcome == outcome, looped.describe()


def test_a_wrong_key_and_a_stall_read_alike() -> None:
    stall = parse_fault("stall:tokens=4,stall_s=300")  # 3 s of wall clock: past a 0.4 s stall timeout
    with FakeServer(CPU, time_scale=FAST, api_key=KEY, faults=[stall]) as server:
        refused = through_both(server, api_key="sk-wrong")
        stalled = through_both(server, stall_timeout_s=0.4)
    for threaded, looped in refused:
        assert compared(threaded, looped) == []
        assert (looped.status, looped.ended) == (401, StreamEnd.HTTP_ERROR)
        assert "sk-wrong" not in str(looped.error)
    for threaded, looped in stalled:
        assert compared(threaded, looped) == []
        assert (looped.ended, looped.error) == (StreamEnd.STALL, "no byte for 0.4 s")
        assert looped.content


def test_a_burst_leaves_together() -> None:
    """A generous bound (the twin shares this process's GIL); the targets live in the benchmark."""
    with FakeServer(CPU, time_scale=FAST) as server, VllmClient(server.url) as client:
        bodies = [{**COMPLETION, "prompt": f"Request {i}", "max_tokens": 4} for i in range(64)]
        results = run_concurrent(client, "/v1/completions", bodies)
    assert [r.outcome for r in results] == ["ok"] * 64
    assert [r.completion_tokens for r in results] == [4] * 64
    skew = point_figures(64, results).dispatch_skew_ms
    assert skew is not None
    assert skew < 500.0
