"""The event-loop client against small local servers: each way a stream can end, as the threaded
client reads it, and the sentinel's abort reaching a stream on a loop in another thread."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gx10.client import StreamEnd, StreamResult, VllmClient, abort_open_streams, aio, resume_streams
from pytest_gx10.client.aio import _StreamProtocol
from pytest_gx10.client.http import open_stream_count

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
BODY = {"model": "m", "prompt": "hi", "max_tokens": 3}


def frame(text: str, finish: str | None = None) -> bytes:
    data = json.dumps({"id": "cmpl-1", "choices": [{"index": 0, "text": text, "finish_reason": finish}]})
    return f"data: {data}\n\n".encode()


USAGE = b'data: {"id": "cmpl-1", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}\n\n'
EVENTS = frame("Hello") + frame(" world", "length") + USAGE + b"data: [DONE]\n\n"


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)


class Scripted:
    """A server that answers every connection with ``script``: bytes to send, or a float to wait;
    then closes (``hold_s`` waits before closing). Records each request it read."""

    def __init__(self, script: Sequence[bytes | float], hold_s: float = 0.0) -> None:
        self.script = script
        self.hold_s = hold_s
        self.requests: list[bytes] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            got = b""
            while b"\r\n\r\n" not in got:
                got += conn.recv(65536)
            head, _, body = got.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + body)
            try:
                for step in self.script:
                    if isinstance(step, float):
                        time.sleep(step)
                    else:
                        conn.sendall(step)
                time.sleep(self.hold_s)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


def both(url: str, body: dict[str, object] = BODY, **kwargs: float) -> tuple[StreamResult, StreamResult]:
    """The same request through the threaded client and the event-loop client."""
    client = VllmClient(url, api_key="sk-secret", timeout_s=2.0)
    threaded = client.stream("/v1/completions", body, **kwargs)
    looped = asyncio.run(aio.stream(client, "/v1/completions", body, **kwargs))
    return threaded, looped


def same(a: StreamResult, b: StreamResult) -> None:
    """Field by field, times left out."""
    for f in fields(StreamResult):
        if f.name in ("send_ns", "end_ns"):
            continue
        if f.name == "chunks":
            assert [(c.content, c.reasoning, c.finish_reason) for c in a.chunks] == [
                (c.content, c.reasoning, c.finish_reason) for c in b.chunks
            ]
            continue
        assert getattr(a, f.name) == getattr(b, f.name), f.name
    assert a.send_ns <= a.end_ns
    assert b.send_ns <= b.end_ns


@pytest.fixture
def serve() -> Iterator[list[Scripted]]:
    servers: list[Scripted] = []
    yield servers
    for s in servers:
        s.close()


def scripted(servers: list[Scripted], script: Sequence[bytes | float], hold_s: float = 0.0) -> Scripted:
    server = Scripted(script, hold_s)
    servers.append(server)
    return server


def test_a_whole_stream_reads_alike_and_carries_the_key(serve: list[Scripted]) -> None:
    server = scripted(serve, [SSE_HEAD, chunked(EVENTS[:40], EVENTS[40:]), 0.01, b"0\r\n\r\n"])
    threaded, looped = both(server.url)
    same(threaded, looped)
    assert (looped.ended, looped.content, looped.completion_tokens) == (StreamEnd.DONE, "Hello world", 2)
    assert looped.ok
    assert server.requests[0] == server.requests[1]  # the same bytes, the key in them
    assert b"Authorization: Bearer sk-secret\r\n" in server.requests[1]
    assert "sk-secret" not in repr(looped) + looped.describe()


def test_a_stream_of_known_length_or_until_the_close(serve: list[Scripted]) -> None:
    length = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(EVENTS)
    close = b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
    for head in (length, close):
        server = scripted(
            serve, [head, EVENTS[:50], 0.01, EVENTS[50:]], hold_s=0.5 if head is length else 0.0
        )
        threaded, looped = both(server.url)
        same(threaded, looped)
        assert looped.ended == StreamEnd.DONE
        assert looped.content == "Hello world"


def test_refused(serve: list[Scripted]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        threaded, looped = both(f"http://127.0.0.1:{port}")
    same(threaded, looped)
    assert looped.ended == StreamEnd.UNREACHABLE
    assert looped.error == f"http://127.0.0.1:{port}/v1/completions: connection refused"


def test_a_400_with_an_openai_error_body(serve: list[Scripted]) -> None:
    error = {"error": {"message": "max_tokens is too large", "type": "BadRequestError", "code": 400}}
    data = json.dumps(error).encode()
    server = scripted(
        serve,
        [
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % len(data),
            data,
        ],
        hold_s=0.5,
    )
    threaded, looped = both(server.url)
    same(threaded, looped)
    assert (looped.status, looped.ended, looped.error) == (400, StreamEnd.HTTP_ERROR, error)
    assert "max_tokens is too large" in looped.describe()


def test_a_stall_mid_stream(serve: list[Scripted]) -> None:
    server = scripted(serve, [SSE_HEAD, chunked(frame("Hello")), 3.0])
    start = time.perf_counter()
    threaded, looped = both(server.url, stall_timeout_s=0.3)
    assert time.perf_counter() - start < 2.5  # each gave up after 0.3 s, not at the close
    same(threaded, looped)
    assert (looped.ended, looped.error, looped.content) == (StreamEnd.STALL, "no byte for 0.3 s", "Hello")
    assert looped.duration_s >= 0.3


def test_no_answer_within_the_stall_timeout(serve: list[Scripted]) -> None:
    server = scripted(serve, [3.0])
    threaded, looped = both(server.url, stall_timeout_s=0.3)
    same(threaded, looped)
    assert looped.ended == StreamEnd.UNREACHABLE
    assert looped.error == f"{server.url}/v1/completions: timed out after 0.3 s"


@pytest.mark.parametrize("cut_at", ["between chunks", "inside a chunk"])
def test_a_close_mid_stream(serve: list[Scripted], cut_at: str) -> None:
    whole = chunked(frame("Hello"), frame(" world"))
    body = whole if cut_at == "between chunks" else whole[:-10]
    server = scripted(serve, [SSE_HEAD, body])
    threaded, looped = both(server.url)
    same(threaded, looped)
    assert looped.ended == StreamEnd.CUT
    assert looped.error == "stream broke: IncompleteRead"
    assert looped.content.startswith("Hello")


def test_a_close_before_any_answer(serve: list[Scripted]) -> None:
    server = scripted(serve, [])
    threaded, looped = both(server.url)
    same(threaded, looped)
    assert looped.error == f"{server.url}/v1/completions: connection closed without a response"


def test_abort_open_streams_ends_a_stream_on_a_loop_in_another_thread(serve: list[Scripted]) -> None:
    server = scripted(serve, [SSE_HEAD, chunked(frame("Hello")), 30.0])
    client = VllmClient(server.url)
    got: list[StreamResult] = []
    worker = threading.Thread(
        target=lambda: got.append(
            asyncio.run(aio.stream(client, "/v1/completions", BODY, stall_timeout_s=60))
        ),
        daemon=True,
    )
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while open_stream_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert open_stream_count() == 1
        time.sleep(0.1)  # the first chunk read
        start = time.perf_counter()
        assert abort_open_streams("engine dead (test)") == 1
        worker.join(5)
        assert not worker.is_alive(), "the stream was not aborted"
        assert time.perf_counter() - start < 1.0
        (result,) = got
        assert (result.ended, result.error) == (StreamEnd.CUT, "aborted by pytest-gx10: engine dead (test)")
        assert result.content == "Hello"
        assert open_stream_count() == 0
        # streams started while aborted end at once, without a request
        late = asyncio.run(aio.stream(client, "/v1/completions", BODY))
        assert (late.ended, late.error) == (StreamEnd.CUT, "aborted by pytest-gx10: engine dead (test)")
        assert len(server.requests) == 1
    finally:
        resume_streams()


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        pass

    def abort(self) -> None:
        self.closed = True


async def _fed(pieces: Sequence[bytes]) -> StreamResult:
    client = VllmClient("http://h:1", model="m")
    protocol = _StreamProtocol(
        asyncio.get_running_loop(), client.stream_request("/v1/completions", BODY), 60.0
    )
    protocol.connection_made(_Transport())
    result = StreamResult(
        endpoint="completions", url="http://h:1/v1/completions", send_ns=time.perf_counter_ns()
    )
    protocol.send(result)
    for piece in pieces:
        protocol.data_received(piece)
    protocol.connection_lost(None)
    await protocol.ended
    return result


WIRE = SSE_HEAD + chunked(frame("Hel"), frame("lo wörld", "stop"), USAGE, b"data: [DONE]\n\n") + b"0\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=12))
def test_any_split_of_the_bytes_reads_the_same(cuts: list[int]) -> None:
    """Head, chunk sizes, CRLFs and UTF-8 split anywhere: the same result."""
    at = sorted(set(cuts))
    pieces = [WIRE[a:b] for a, b in zip([0, *at], [*at, len(WIRE)], strict=True)]
    result = asyncio.run(_fed(pieces))
    assert (result.ended, result.content, result.finish_reason) == (StreamEnd.DONE, "Hello wörld", "stop")
    assert (result.completion_tokens, result.events, result.events_after_done) == (2, 4, 0)


def test_a_connection_closed_before_the_send(serve: list[Scripted]) -> None:
    """Opened, then closed by the server before the request went: unreachable, not a stream left open."""
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    client = VllmClient(url, model="m")

    async def late() -> StreamResult:
        opened = await aio.open_stream(client, client.stream_request("/v1/completions", BODY))
        conn, _ = server.accept()
        conn.close()
        await asyncio.sleep(0.2)  # the close reaches the loop
        opened.send()
        return await asyncio.wait_for(opened.finished(), 5)

    try:
        result = asyncio.run(late())
    finally:
        server.close()
    assert (result.ended, result.error) == (
        StreamEnd.UNREACHABLE,
        f"{url}/v1/completions: connection closed without a response",
    )
    assert open_stream_count() == 0


# The final usage chunk as each server writes it: llama.cpp's server always says its cached prompt
# tokens (tools/server, usage_json_oaicompat: n_prompt_tokens_cache); vLLM says them only with
# --enable-prompt-tokens-details (0 is said, not dropped), and drops the null details without it.
LLAMA_CPP_USAGE = (
    b'data: {"choices":[],"created":1795753268,"id":"chatcmpl-Xq3","model":"m",'
    b'"system_fingerprint":"b6402-3ed8e16","object":"text_completion",'
    b'"usage":{"completion_tokens":2,"prompt_tokens":300,"total_tokens":302,'
    b'"prompt_tokens_details":{"cached_tokens":299}},'
    b'"timings":{"cache_n":299,"prompt_n":1,"prompt_ms":8.1,"predicted_n":2,"predicted_ms":40.2}}\n\n'
)
VLLM_USAGE = (
    b'data: {"id":"cmpl-883ed4513140a450","object":"text_completion","created":1795753268,"model":"m",'
    b'"choices":[],"usage":{"prompt_tokens":300,"total_tokens":302,"completion_tokens":2,'
    b'"prompt_tokens_details":{"cached_tokens":%d}},"system_fingerprint":"vllm-0.32.0-ca50c111"}\n\n'
)
VLLM_USAGE_PLAIN = (
    b'data: {"id":"cmpl-883ed4513140a450","object":"text_completion","created":1795753268,"model":"m",'
    b'"choices":[],"usage":{"prompt_tokens":300,"total_tokens":302,"completion_tokens":2},'
    b'"system_fingerprint":"vllm-0.32.0-ca50c111"}\n\n'
)


@pytest.mark.parametrize(
    ("usage", "cached"),
    [(LLAMA_CPP_USAGE, 299), (VLLM_USAGE % 288, 288), (VLLM_USAGE % 0, 0), (VLLM_USAGE_PLAIN, None)],
    ids=["llama.cpp", "vllm", "vllm-nothing-cached", "vllm-without-details"],
)
def test_the_final_usage_says_the_cached_prompt_tokens(
    serve: list[Scripted], usage: bytes, cached: int | None
) -> None:
    events = frame("Hello") + frame(" world", "length") + usage + b"data: [DONE]\n\n"
    server = scripted(serve, [SSE_HEAD, chunked(events), b"0\r\n\r\n"])
    threaded, looped = both(server.url)
    same(threaded, looped)
    assert (looped.prompt_tokens, looped.completion_tokens, looped.cached_tokens) == (300, 2, cached)
    assert looped.summary()["cached_tokens"] == cached
