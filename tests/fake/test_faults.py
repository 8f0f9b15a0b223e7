"""Each injected fault as a client sees it on the wire, death's whole sequence, triggers, and the three
ways to choose a fault (profile, command line, request header).

Plain HTTP (requests, raw reads of the SSE body) except where our client is the natural reader. The
twin runs fast; where a fault needs a request to be in flight, the request asks for many tokens.
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pytest_gx10.client import StreamEnd, VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.observe.signatures import crash_hits
from pytest_gx10.profiles.faults import Fault, parse_fault

ROOT = Path(__file__).resolve().parents[2]
CPU = "smollm2-cpu"
REFERENCE = "qwen3.5-397b-fp8-mtp2-gx10x4"
FAST = 100.0  # smollm2-cpu decodes 25 tok/s: 2 500 tok/s of wall clock at this scale
DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."
DEAD_BODY = {"error": {"message": DEAD_MESSAGE, "type": "InternalServerError", "param": None, "code": 500}}
WAIT_S = 15.0  # bound on every poll below


def chat(max_tokens: int = 32, stream: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "Tell me a story about a lighthouse."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def events(response: requests.Response) -> list[str]:
    """The SSE data payloads of a whole (or cut) body, in order."""
    text = response.content.decode()
    return [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]


def frames(payloads: list[str]) -> list[dict[str, Any]]:
    return [json.loads(p) for p in payloads if p != "[DONE]"]


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S:g} s: {what}")
        time.sleep(0.02)


def refused(url: str) -> bool:
    try:
        requests.get(url + "/health", timeout=1)
    except requests.Timeout:
        return False  # caught in the closing moment; the next attempt tells
    except requests.ConnectionError as exc:
        return "refused" in str(exc).lower()
    return False


@pytest.fixture(scope="module")
def twin() -> Iterator[FakeServer]:
    """A twin without configured faults: header faults only."""
    with FakeServer(CPU, time_scale=FAST) as server:
        yield server


def post(
    server: FakeServer, body: dict[str, Any], fault: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {"x-gx10-fault": fault} if fault else {}
    kwargs.setdefault("timeout", 20)
    return requests.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, **kwargs)


# --- per-request faults by header -----------------------------------------------------------------------


def test_zero_tokens_streamed(twin: FakeServer) -> None:
    r = post(twin, chat(), "zero_tokens")
    assert r.status_code == 200
    payloads = events(r)
    assert payloads[-1] == "[DONE]"
    chunks = frames(payloads)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert not any(d.get("content") or d.get("reasoning") for d in deltas[1:])
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 0


def test_zero_tokens_whole(twin: FakeServer) -> None:
    r = post(twin, chat(stream=False), "zero_tokens")
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"] == ""
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 0


def test_abort_after_some_tokens(twin: FakeServer) -> None:
    r = post(twin, chat(max_tokens=64), "abort:tokens=5")
    chunks = frames(events(r))
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "abort"
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    whole = post(twin, chat(max_tokens=64, stream=False), "abort:tokens=7").json()
    assert (whole["choices"][0]["finish_reason"], whole["usage"]["completion_tokens"]) == ("abort", 7)


def test_cut_ends_without_done(twin: FakeServer) -> None:
    r = post(twin, chat(max_tokens=64), "cut:tokens=5")
    assert r.status_code == 200
    payloads = events(r)
    assert "[DONE]" not in payloads
    chunks = frames(payloads)
    assert chunks, "some tokens before the cut"
    assert not any("usage" in c for c in chunks)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


def test_cut_as_our_client_reads_it() -> None:
    with (
        FakeServer(CPU, time_scale=FAST, faults=[parse_fault("cut:tokens=5")]) as server,
        VllmClient(server.url) as client,
    ):
        result = client.stream("/v1/chat/completions", chat(max_tokens=64))
    assert (result.status, result.ended, result.completion_tokens) == (200, StreamEnd.CUT, None)
    assert result.content


def test_http_500_bodies(twin: FakeServer) -> None:
    json_500 = post(twin, chat(), "http_500")
    assert json_500.status_code == 500
    assert json_500.json() == {
        "error": {
            "message": "Internal server error",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        }
    }
    text_500 = post(twin, chat(), "http_500:body=text")
    assert (text_500.status_code, text_500.text) == (500, "Internal Server Error")
    assert text_500.headers["content-type"].startswith("text/plain")
    empty_500 = post(twin, chat(stream=False), "http_500:body=empty")
    assert (empty_500.status_code, empty_500.content) == (500, b"")


def test_stall_goes_quiet_then_continues(twin: FakeServer) -> None:
    # 300 simulated seconds of silence are 3 s of wall clock: a 0.5 s read timeout sees tokens, then nothing.
    with post(twin, chat(max_tokens=64), "stall:tokens=4,stall_s=300", stream=True, timeout=(5, 0.5)) as r:
        got: list[bytes] = []
        with pytest.raises(requests.ConnectionError):  # requests' ReadTimeout while streaming
            got.extend(r.iter_content(chunk_size=None))
        got_bytes = b"".join(got)
    assert b'"content":' in got_bytes
    assert b"[DONE]" not in got_bytes
    resumed = post(twin, chat(max_tokens=64), "stall:tokens=4,stall_s=50")
    chunks = frames(events(resumed))
    assert events(resumed)[-1] == "[DONE]"
    assert chunks[-1]["usage"]["completion_tokens"] == 64


@pytest.mark.parametrize(
    ("then", "ended", "finish"), [("abort", StreamEnd.DONE, "abort"), ("cut", StreamEnd.CUT, None)]
)
def test_stall_then_ends(then: str, ended: str, finish: str | None) -> None:
    fault = parse_fault(f"stall:tokens=4,stall_s=5,then={then}")
    with FakeServer(CPU, time_scale=FAST, faults=[fault]) as server, VllmClient(server.url) as client:
        result = client.stream("/v1/chat/completions", chat(max_tokens=2000))
    assert (result.status, result.ended, result.finish_reason) == (200, ended, finish)
    assert result.content
    if then == "abort":
        assert result.completion_tokens is not None
        assert 4 <= result.completion_tokens < 2000


def test_slow_ttft_delays_the_first_token() -> None:
    # Read by our client, in the twin's simulated seconds: the delay is a sleep, so this is a lower bound.
    fault = parse_fault("slow_ttft:extra_s=150,count=1")
    with FakeServer(CPU, time_scale=FAST, faults=[fault]) as server, VllmClient(server.url) as client:
        slow = client.stream("/v1/chat/completions", chat())
        normal = client.stream("/v1/chat/completions", chat())
    assert slow.ok
    assert slow.completion_tokens == 32
    assert slow.ttft_s is not None
    assert slow.ttft_s >= 150
    assert normal.ttft_s is not None
    assert normal.ttft_s < 150


def test_a_bad_header_is_a_400(twin: FakeServer) -> None:
    r = post(twin, chat(), "stall:then=maybe")
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "x-gx10-fault"
    assert "then: expected one of continue, abort, cut" in error["message"]


# --- triggers -------------------------------------------------------------------------------------------


def statuses(server: FakeServer, n: int) -> list[int]:
    return [post(server, chat(max_tokens=2, stream=False)).status_code for _ in range(n)]


def test_after_and_count() -> None:
    with FakeServer(CPU, time_scale=FAST, faults=[parse_fault("http_500:after=1,count=2")]) as server:
        assert statuses(server, 5) == [200, 500, 500, 200, 200]


def test_error_fraction_is_seeded() -> None:
    fault = parse_fault("error_fraction:p=0.5,seed=3")
    rng = random.Random(3)
    expected = [500 if rng.random() < 0.5 else 200 for _ in range(12)]
    assert 200 in expected
    assert 500 in expected
    for _ in range(2):  # the same requests fail on every run
        with FakeServer(CPU, time_scale=FAST, faults=[fault]) as server:
            assert statuses(server, 12) == expected


def concurrently(server: FakeServer, n: int, max_tokens: int) -> list[requests.Response]:
    barrier = threading.Barrier(n)
    out: list[requests.Response | None] = [None] * n

    def one(i: int) -> None:
        barrier.wait(10)
        out[i] = post(server, chat(max_tokens=max_tokens))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(r is not None for r in out)
    return [r for r in out if r is not None]


def completion_tokens(r: requests.Response) -> int:
    return int(frames(events(r))[-1]["usage"]["completion_tokens"])


def test_per_request_fault_at_concurrency() -> None:
    with FakeServer(CPU, time_scale=20, faults=[parse_fault("zero_tokens:running=2,count=1")]) as server:
        assert completion_tokens(post(server, chat(max_tokens=40))) == 40  # alone: untouched
        pair = concurrently(server, 2, max_tokens=400)
        assert sorted(completion_tokens(r) for r in pair) == [0, 400]
        again = concurrently(server, 2, max_tokens=40)
        assert [completion_tokens(r) for r in again] == [40, 40]  # count=1: used up


def test_death_when_the_running_batch_reaches_n() -> None:
    with FakeServer(CPU, time_scale=20, faults=[parse_fault("death:running=3,grace_s=1000")]) as server:
        pair = concurrently(server, 2, max_tokens=200)
        assert [completion_tokens(r) for r in pair] == [200, 200]
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
        three = concurrently(server, 3, max_tokens=2000)
        for r in three:
            payloads = events(r)
            assert r.status_code == 200
            assert json.loads(payloads[-2]) == DEAD_BODY
            assert payloads[-1] == "[DONE]"
        assert requests.get(server.url + "/health", timeout=5).status_code == 503


def test_death_after_k_requests() -> None:
    with FakeServer(CPU, time_scale=FAST, faults=[parse_fault("death:after=2,grace_s=1000")]) as server:
        first = statuses(server, 2)
        third = post(server, chat(max_tokens=2, stream=False))
        assert first == [200, 200]
        assert (third.status_code, third.json()) == (500, DEAD_BODY)
        assert requests.get(server.url + "/health", timeout=5).status_code == 503


# --- engine faults ----------------------------------------------------------------------------------------


def test_death_sequence(tmp_path: Path) -> None:
    """In-band frame for a stream in flight, 500 for a whole request in flight and for new ones, /health
    503 for the grace, then connections refused while the server keeps running; crash lines in the log.
    """
    log = tmp_path / "vllm.log"
    with FakeServer(REFERENCE, time_scale=200, log_path=log) as server:
        url = server.url
        assert server.state is not None
        engine = server.state.engine
        streamed: dict[str, Any] = {}

        def stream() -> None:
            r = post(server, chat(max_tokens=20000))
            streamed["status"], streamed["payloads"] = r.status_code, events(r)

        def whole() -> None:
            r = post(server, chat(max_tokens=20000, stream=False))
            streamed["whole"] = (r.status_code, r.json())

        threads = [threading.Thread(target=stream), threading.Thread(target=whole)]
        for t in threads:
            t.start()
        wait_for(lambda: engine.num_running == 2 and engine.steps > 5, "two requests decoding")
        trigger = post(server, chat(max_tokens=8, stream=False), "death:grace_s=600")
        for t in threads:
            t.join(20)
        assert (trigger.status_code, trigger.json()) == (500, DEAD_BODY)
        assert streamed["status"] == 200
        payloads = streamed["payloads"]
        deltas = [f["choices"][0]["delta"] for f in frames(payloads[:-2]) if f["choices"]]
        assert any(d.get("content") or d.get("reasoning") for d in deltas), "tokens before the death"
        assert json.loads(payloads[-2]) == DEAD_BODY
        assert payloads[-1] == "[DONE]"
        assert streamed["whole"] == (500, DEAD_BODY)
        assert requests.get(url + "/health", timeout=5).status_code == 503
        late = post(server, chat(stream=True))
        assert (late.status_code, late.json()) == (500, DEAD_BODY)
        wait_for(lambda: refused(url), "connection refused")
        assert server.running  # engine dead, process (and server object) alive
        text = log.read_text()
    names = {hit.name for hit in crash_hits(text.splitlines())}
    assert {"illegal_memory_access", "nccl_watchdog", "ray_worker_died", "engine_dead"} <= names
    assert re.search(
        r"ERROR \d\d-\d\d \d\d:\d\d:\d\d \[ray_executor_v2\.py:464\] RayWorkerProc rank=\[0\] died", text
    )
    assert text.count("torch.AcceleratorError: CUDA error: an illegal memory access was encountered") == 4
    assert "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue." in text
    assert "Error in chat completion stream generator." in text


# A frozen engine never answers the request the client gave up on; the server's side of that
# connection can be left to the garbage collector at stop, which reports it as an unclosed transport.
# That is the zombie's own doing, and this test collects it here rather than in whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_zombie_keeps_health_but_makes_no_progress() -> None:
    with FakeServer(CPU, time_scale=FAST) as server:
        assert post(server, chat(max_tokens=4, stream=False), "zombie:delay_s=50").status_code == 200

        def generated() -> str:
            text = requests.get(server.url + "/metrics", timeout=5).text
            return re.findall(r"^vllm:generation_tokens_total\{[^}]*\} (\S+)$", text, re.M)[0]

        wait_for(lambda: server.state is not None and server.state.engine.frozen, "engine frozen")
        before = generated()
        with pytest.raises(requests.ReadTimeout):
            post(server, chat(max_tokens=4, stream=False), timeout=(5, 0.5))
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
        assert generated() == before
    gc.collect()  # the abandoned connection's transport, collected under this test's filter


# --- selection: profile, command line ---------------------------------------------------------------------


def test_profile_faults_apply(tmp_path: Path) -> None:
    path = tmp_path / "faulty.toml"
    path.write_text(
        '[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n\n[twin]\ntime_scale = 100.0\n\n'
        '[[twin.faults]]\nkind = "zero_tokens"\nafter = 1\ncount = 1\n'
    )
    with FakeServer(path) as server:
        counts = [
            post(server, chat(max_tokens=6, stream=False, model="m")).json()["usage"]["completion_tokens"]
            for _ in range(3)
        ]
    assert counts == [6, 0, 6]
    assert FakeServer(path).profile.twin.faults == (Fault("zero_tokens", after=1, count=1),)


def launch(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_gx10.fake", "--port", "0", "--profile", CPU, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def test_cli_faults_and_a_dead_engine_in_a_live_process(tmp_path: Path) -> None:
    log = tmp_path / "twin.log"
    proc = launch(
        "--time-scale",
        "100",
        "--log-file",
        str(log),
        "--fault",
        "http_500:count=1",
        "--fault",
        "death:after=2,grace_s=200",
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().rsplit(" at ", 1)[1]
        body = chat(max_tokens=2, stream=False)
        codes = [
            requests.post(url + "/v1/chat/completions", json=body, timeout=10).status_code for _ in range(3)
        ]
        assert codes == [500, 200, 500]
        wait_for(lambda: refused(url), "connection refused")
        assert proc.poll() is None  # the API server is gone, the process is not
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert {hit.name for hit in crash_hits(log.read_text().splitlines())} >= {
        "engine_dead",
        "illegal_memory_access",
    }
