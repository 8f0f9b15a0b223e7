"""FakeServer's lifecycle: start, port resolution, clean stop with requests in flight, no leaks."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

from pytest_gx10.fake import FakeServer


def test_start_resolves_port_and_stop_joins_the_thread() -> None:
    server = FakeServer("smollm2-cpu", time_scale=100)
    assert not server.running
    before = threading.active_count()
    server.start()
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.running
        assert requests.get(server.url + "/health", timeout=5).status_code == 200
    finally:
        server.stop()
    assert not server.running
    assert threading.active_count() == before
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/health", timeout=2)
    server.stop()  # idempotent


def test_stop_aborts_a_stream_in_flight() -> None:
    server = FakeServer("smollm2-cpu", time_scale=1).start()
    lines: list[bytes] = []
    body = {"prompt": "Once", "max_tokens": 5000, "ignore_eos": True, "stream": True}

    def consume() -> None:
        with requests.post(server.url + "/v1/completions", json=body, stream=True, timeout=30) as response:
            lines.extend(line for line in response.iter_lines() if line)

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    started = time.perf_counter()
    server.stop()
    reader.join(10)
    assert time.perf_counter() - started < 5
    assert not reader.is_alive()
    assert lines[-1] == b"data: [DONE]"
    assert b'"finish_reason":"abort"' in lines[-2]


def test_time_scale_defaults_to_the_profile_and_is_announced() -> None:
    with FakeServer("smollm2-cpu") as server:
        assert server.time_scale == 1.0
        assert requests.get(server.url + "/version", timeout=5).headers["x-gx10-time-scale"] == "1"


def test_bad_time_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="time_scale"):
        FakeServer("smollm2-cpu", time_scale=0)


def test_connections_are_accepted_with_nodelay() -> None:
    """A keep-alive response (headers, then body: two writes) must not wait on Nagle's algorithm.

    Without TCP_NODELAY on the accepted socket every request after a connection's first waits out
    the client's delayed ACK (40 ms on Linux); vLLM's uvloop sets it on every connection.
    """
    with FakeServer("smollm2-cpu") as twin, requests.Session() as session:
        for _ in range(2):  # the second rides the kept-alive connection
            assert session.get(f"{twin.url}/v1/models", timeout=10).ok
        server = twin._server
        assert server is not None
        connections = list(server.server_state.connections)
        assert connections, "the session's connection should still be open"
        for connection in connections:
            sock = connection.transport.get_extra_info("socket")  # type: ignore[attr-defined]
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
