"""suites/robustness through the plugin, against a small stub server that misbehaves on purpose.

The stub answers like vLLM (a 400 for everything odd, a fixed canary) except where a test wants it to
fail: a 500 for one input, a connection closed without an answer for another, a canary that changes
after a third. Each shows up as that case failing, with the status and the start of the body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROBUSTNESS = Path(__file__).resolve().parents[2] / "suites" / "robustness"
MODEL = "stub-model"


class _Stub(BaseHTTPRequestHandler):
    """vLLM-shaped enough for the suite; misbehaves on the inputs named above."""

    protocol_version = "HTTP/1.1"
    canary_text = " Paris."

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": {"message": message, "type": "Err", "param": None, "code": status}})

    def do_GET(self) -> None:
        """/health, /version, /v1/models."""
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/version":
            self._send(200, {"version": "0.32.0"})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL, "max_model_len": 64}]})
        else:
            self._error(404, "not found")

    def do_POST(self) -> None:
        """/tokenize counts words; completions answer the canary, a 400, or misbehave."""
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if raw == b"null":
            self.connection.close()  # no answer at all
            self.close_connection = True
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._error(400, "JSON decode error")
            return
        if self.path == "/tokenize":
            words = str(body.get("prompt", "")).split()
            self._send(
                200, {"count": len(words), "max_model_len": 64, "tokens": list(range(1, len(words) + 1))}
            )
        elif not isinstance(body, dict):
            self._error(400, "Input should be a valid dictionary")
        elif body.get("top_k") == -2 or self.path.endswith("/chat/completions"):
            self._error(500, "boom: the sampler crashed")
        elif body.get("prompt") == "The capital of France is" and body.get("temperature") == 0:
            choice = {"index": 0, "text": _Stub.canary_text, "finish_reason": "length"}
            self._send(200, {"choices": [choice], "usage": {"completion_tokens": 8}})
        else:
            if "logit_bias" in body:
                _Stub.canary_text = " Lyon."  # the engine is now corrupted
            self._error(400, "refused")


@pytest.fixture
def stub_url() -> Iterator[str]:
    """A fresh stub on a free loopback port (the canary starts healthy)."""
    _Stub.canary_text = " Paris."
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _run(pytester: pytest.Pytester, url: str, *args: str) -> pytest.RunResult:
    out = pytester.path / "out.json"
    return pytester.runpytest_subprocess(
        str(ROBUSTNESS),
        f"--gx10-endpoint={url}",
        "--gx10-profile=smollm2-cpu",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        *args,
    )


def test_a_500_fails_its_case_with_status_and_body(pytester: pytest.Pytester, stub_url: str) -> None:
    """top_k=-2 gets a 500: that case fails naming the status and the body; max_tokens=0's 400 passes."""
    result = _run(pytester, stub_url, "-k", "top-k-below-minus-1 or (max-tokens-0 and not echo)")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*top-k-below-minus-1: POST /v1/completions *top_k*: -2* got HTTP 500: 'boom: the sampler crashed'*"]
    )
    rows = {r["case"]: r for r in json.loads((pytester.path / "out.json").read_text())["robustness"]}
    assert rows["top-k-below-minus-1"]["status"] == 500
    assert rows["top-k-below-minus-1"]["message"].startswith("boom")
    assert rows["max-tokens-0"]["status"] == 400
    assert rows["max-tokens-0"]["engine_after"] == "ok"


def test_a_dropped_connection_fails_its_case(pytester: pytest.Pytester, stub_url: str) -> None:
    """A server that closes the connection instead of answering fails the case as 'no response'."""
    result = _run(pytester, stub_url, "-k", "body-json-null")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*body-json-null: POST /v1/completions null got no response (connection*"])


def test_a_changed_canary_fails_the_case_that_changed_it(pytester: pytest.Pytester, stub_url: str) -> None:
    """The server answers 400 but the canary differs afterwards: the case fails with both answers."""
    result = _run(pytester, stub_url, "-k", "logit-bias-nan")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*logit-bias-nan:*after it, canary answered ' Lyon.' *before it answered ' Paris.'*"]
    )


def test_fuzz_fails_on_a_500_and_records_its_examples(pytester: pytest.Pytester, stub_url: str) -> None:
    """The stub 500s on every chat body: the fuzz finds one within a few examples and says which."""
    result = _run(pytester, stub_url, "-k", "fuzz", "--gx10-fuzz-examples=10")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*POST /v1/chat/completions {*got HTTP 500: 'boom: the sampler crashed'*"])
    (row,) = json.loads((pytester.path / "out.json").read_text())["robustness"]
    assert row["case"] == "fuzz"
    assert 1 <= row["requests"] <= 11  # hypothesis sends the failing example once more to report it
    assert row["statuses"].get("500", 0) >= 1
    assert "HTTP 500" in row["failure"]
