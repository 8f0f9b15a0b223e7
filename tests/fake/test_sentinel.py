"""The engine sentinel against the twin's faults: alive under load, dead with the log's cause, hung.

The twin is the engine here because its faults look on the wire and in the log as vLLM's do; the
sentinel reads nothing of the twin but /health, /metrics, the log file and a canary completion.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_gx10.client import VllmClient, abort_open_streams, resume_streams
from pytest_gx10.fake import FakeServer
from pytest_gx10.observe import EngineState, FileLogSource, Sentinel, Verdict, parse_line
from pytest_gx10.observe.sentinel import _cause
from pytest_gx10.servers import Server, VllmServer
from pytest_gx10.workload import canary

CPU = "smollm2-cpu"
REFERENCE = "qwen3.5-397b-fp8-mtp2-gx10x4"


def _until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s:g} s")
        time.sleep(0.05)


def test_alive_while_the_engine_decodes() -> None:
    """Requests running and tokens moving: every poll says alive."""
    with FakeServer(CPU, time_scale=1) as server:  # 32 tokens at 25 tok/s: over a second of decoding
        client = VllmClient(server.url, timeout_s=5)
        sentinel = Sentinel(client, server=VllmServer(client), poll_s=0.1, hung_after_s=0.3, canary=canary)
        worker = threading.Thread(
            target=lambda: client.chat_stream(
                {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 64, "ignore_eos": True}
            )
        )
        worker.start()
        verdicts = []
        while worker.is_alive():
            verdicts.append(sentinel.poll())
            time.sleep(0.1)
        worker.join()
        assert len(verdicts) >= 3
        assert all(v.alive for v in verdicts)


def test_death_is_named_by_the_log(tmp_path: Path) -> None:
    """The post's crash: the verdict is dead, with the illegal memory access as the cause."""
    log = tmp_path / "vllm.log"
    with FakeServer(REFERENCE, time_scale=200, log_path=log) as server:
        client = VllmClient(server.url, timeout_s=5)
        seen: list[Verdict] = []
        sentinel = Sentinel(
            client, FileLogSource(log), server=VllmServer(client), poll_s=0.05, on_verdict=seen.append
        )
        assert sentinel.poll().alive
        client.raw(
            "POST", "/v1/completions", '{"prompt": "x", "max_tokens": 2}', headers={"x-gx10-fault": "death"}
        )
        _until(lambda: not sentinel.poll().alive, "verdict")
        verdict = sentinel.verdict
        assert verdict.state == EngineState.DEAD
        assert verdict.cause == "CUDA error: an illegal memory access was encountered"
        assert (
            verdict.line()
            == f"engine dead since {verdict.since}: CUDA error: an illegal memory access was encountered"
        )
        assert seen == [verdict]  # told once
        assert sentinel.poll() is verdict  # sticky


def test_death_without_a_log_is_seen_on_health() -> None:
    """No log source: /health's 503 says the engine is dead."""
    with FakeServer(CPU, time_scale=200) as server:
        client = VllmClient(server.url, timeout_s=5)
        sentinel = Sentinel(client, server=VllmServer(client), poll_s=0.05)
        client.raw(
            "POST",
            "/v1/completions",
            '{"prompt": "x", "max_tokens": 2}',
            headers={"x-gx10-fault": "death:grace_s=600"},
        )
        verdict = sentinel.poll()
        assert (verdict.state, verdict.cause) == (
            EngineState.DEAD,
            "/health answered 503 (the engine is dead)",
        )


def test_a_refused_health_needs_confirming() -> None:
    """A server gone: the first refusal is a suspicion, a confirmed one a death."""
    server = FakeServer(CPU, time_scale=200).start()
    client = VllmClient(server.url, timeout_s=2)
    sentinel = Sentinel(client, server=VllmServer(client), poll_s=0.05)
    server.stop()
    assert sentinel.poll().alive
    assert sentinel.suspect
    verdict = sentinel.poll(confirm=True)
    assert verdict.state == EngineState.DEAD
    assert verdict.cause.startswith("/health connection refused")


@pytest.fixture
def streams_resumed_after() -> Iterator[None]:
    """A verdict aborts every stream of this process; the tests after this one start with them running."""
    yield
    resume_streams()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # see test_faults' zombie
@pytest.mark.usefixtures("streams_resumed_after")
@pytest.mark.parametrize("adapter", [VllmServer, Server], ids=["vllm-metrics", "no-metrics"])
def test_zombie_is_hung_and_streams_in_flight_are_aborted(adapter: type[Server]) -> None:
    """Health 200, tokens frozen with a request running, the canary unanswered: hung; the stream ends.

    With vLLM's adapter the evidence is its token counter; with the generic one (an engine without
    metrics) it is our own stream, whose events stop.
    """
    with FakeServer(CPU, time_scale=20) as server:
        client = VllmClient(server.url, timeout_s=5)
        sentinel = Sentinel(
            client,
            server=adapter(client),
            poll_s=0.05,
            hung_after_s=0.5,
            canary_timeout_s=0.5,
            canary=canary,
            on_verdict=lambda v: abort_open_streams(v.line()),
        )
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4000, "ignore_eos": True}
        results = []
        worker = threading.Thread(
            target=lambda: results.append(client.chat_stream(body, stall_timeout_s=120))
        )
        worker.start()
        _until(lambda: server.state is not None and server.state.engine.num_running == 1, "request running")
        # The request that freezes the engine hangs with it: sent aside, bounded by its own timeout.
        threading.Thread(
            target=client.raw,
            args=("POST", "/v1/completions", '{"prompt": "x", "max_tokens": 1}'),
            kwargs={"headers": {"x-gx10-fault": "zombie"}, "timeout_s": 3},
            daemon=True,
        ).start()
        _until(lambda: not sentinel.poll().alive, "verdict")
        verdict = sentinel.verdict
        assert verdict.state == EngineState.HUNG
        assert "canary did not finish within 0.5 s" in verdict.cause
        assert client.health() == 200
        worker.join(10)
        assert not worker.is_alive(), "the stream was not aborted"
        (result,) = results
        assert result.outcome == "cut"
        assert result.error == f"aborted by pytest-gx10: {verdict.line()}"
    gc.collect()  # abandoned connections of the frozen engine, collected under this test's filter


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        (
            "(RayWorkerWrapper pid=7265) torch.AcceleratorError: CUDA error: an illegal memory access was encountered",
            "CUDA error: an illegal memory access was encountered",
        ),
        (
            "ERROR 06-13 16:14:15 [async_llm.py:704] vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue.",
            "EngineDeadError: EngineCore encountered an issue.",
        ),
        (
            "ERROR 06-13 16:14:15 [ray_executor_v2.py:464] RayWorkerProc rank=[0] died unexpectedly, shutting down executor.",
            "RayWorkerProc rank=[0] died unexpectedly, shutting down executor.",
        ),
    ],
)
def test_cause_reads_like_the_post(raw: str, cause: str) -> None:
    """Module paths and process tags go; the error's own words stay."""
    assert _cause(parse_line(raw)) == cause
