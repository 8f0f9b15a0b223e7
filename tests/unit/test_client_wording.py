"""The client's raw and streaming requests share one request head and one wording of network failures."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest
import requests

from pytest_gx10.client import VllmClient
from pytest_gx10.client.http import _network_failure, _transport_error


@pytest.mark.parametrize(
    ("exc", "said"),
    [
        (TimeoutError("timed out"), "timed out after 2 s"),
        (requests.ConnectTimeout("pool: connect timeout"), "timed out after 2 s"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (
            requests.ConnectionError("NewConnectionError: [Errno 111] Connection refused"),
            "connection refused",
        ),
        (socket.gaierror(-2, "Name or service not known"), "host name does not resolve"),
        (requests.ConnectionError("Failed to resolve 'nowhere.invalid'"), "host name does not resolve"),
        (http.client.RemoteDisconnected("Remote end closed"), "connection closed without a response"),
        (
            requests.ConnectionError("('Connection aborted.', ConnectionResetError(104, 'reset by peer'))"),
            "connection closed without a response",
        ),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset"),
        (BrokenPipeError(32, "Broken pipe"), "connection closed while sending"),
        (requests.ConnectionError("something else"), "connection failed (ConnectionError)"),
        (requests.TooManyRedirects("30 redirects"), "request failed (TooManyRedirects: 30 redirects)"),
        (ValueError("I/O on a closed socket"), "connection failed (ValueError: I/O on a closed socket)"),
    ],
)
def test_network_failures_are_worded_once_for_sockets_and_requests(exc: BaseException, said: str) -> None:
    """A socket's error and a requests error of the same kind read the same."""
    assert _network_failure(exc, 2.0) == said
    assert str(_transport_error("http://h:1/v1/models", exc, 2.0)) == f"http://h:1/v1/models: {said}"


def test_raw_and_stream_heads_differ_only_in_what_they_send() -> None:
    """The same request line, host, agent, key and Connection: close; the body's headers as given."""
    client = VllmClient("http://h:8000/base/", api_key="k-1")
    get = client._request_head("GET", "/health", content_type=None, content_length=None).decode()
    assert get == (
        "GET /base/health HTTP/1.1\r\nHost: h:8000\r\nUser-Agent: pytest-gx10\r\n"
        "Connection: close\r\nAuthorization: Bearer k-1\r\n\r\n"
    )
    post = client._request_head(
        "POST",
        "/v1/completions",
        content_type="application/json",
        content_length=12,
        headers={"Accept": "text/event-stream"},
    ).decode()
    assert post.startswith("POST /base/v1/completions HTTP/1.1\r\nHost: h:8000\r\n")
    lines = post.split("\r\n")
    for header in ("Content-Type: application/json", "Content-Length: 12", "Accept: text/event-stream"):
        assert header in lines
    assert post.endswith("\r\n\r\n")


def test_a_server_that_hangs_up_is_named_alike_by_raw_and_stream() -> None:
    """A server that reads the request and closes: raw says so in ``dropped``, a stream in its error."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with VllmClient(f"http://127.0.0.1:{port}", timeout_s=5, model="m") as client:
            raw = client.raw("POST", "/v1/completions", "{}")
            stream = client.completion_stream({"prompt": "hi"})
    finally:
        thread.join(10)
        server.close()
    assert raw.dropped == "connection closed without a response"
    assert stream.error == f"http://127.0.0.1:{port}/v1/completions: connection closed without a response"
