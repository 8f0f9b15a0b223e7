"""A small client for an OpenAI-compatible server (vLLM, llama.cpp, ...), built for measuring it.

Every call names the URL and what went wrong when it fails (refused, timed out, HTTP status, not an
OpenAI-compatible API), in one line. Streaming calls never raise for what the server did: they return a
:class:`StreamResult` saying how the stream ended, because a server that misbehaves mid-stream is
exactly what the suites want to see. The API key is sent as a Bearer token and never appears in an
error message, a repr or a result.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from pytest_gx10.client.results import Chunk, StreamEnd, StreamResult
from pytest_gx10.client.sse import SseParser

__all__ = [
    "EndpointError",
    "RawResponse",
    "SseReader",
    "StreamRequest",
    "VllmClient",
    "abort_open_streams",
    "estimate_work_s",
    "open_stream_count",
    "open_work_s",
    "resume_streams",
    "stream_events_seen",
]

TIME_SCALE_HEADER = "x-gx10-time-scale"
# Asked of the embedded twin only (VllmClient(virtual_time=True)): it then tells its virtual times,
# the arrival in VIRTUAL_ARRIVAL_HEADER and each event's in a comment ": t=<seconds>" before it.
VIRTUAL_TIME_HEADER = "x-gx10-virtual-time"
VIRTUAL_ARRIVAL_HEADER = "x-gx10-virtual-arrival"


# Streams being read right now, by any client in this process: an engine found dead or hung should
# not leave a test waiting out a stall timeout of minutes on a stream that will never speak again.
# A stream is a key (its socket, or its event-loop protocol) with a way to end it from any thread.
_OPEN_STREAMS: dict[object, str | None] = {}  # key -> why it was aborted (None: it was not)
_CLOSERS: dict[object, Callable[[], object]] = {}  # key -> ends the stream, from any thread
# key -> (prefill seconds, decode seconds) the request should take alone at the deployment's speed,
# for streams whose client knows that speed (see open_work_s)
_OPEN_WORK: dict[object, tuple[float, float]] = {}
_OPEN_LOCK = threading.Lock()


def _register_stream(key: object, closer: Callable[[], object], work: tuple[float, float] | None) -> None:
    """From here on the sentinel can end the stream ``key`` (by calling ``closer``), headers or not."""
    with _OPEN_LOCK:
        _OPEN_STREAMS[key] = None
        _CLOSERS[key] = closer
        if work is not None:
            _OPEN_WORK[key] = work


def _unregister_stream(key: object) -> str | None:
    """The stream ``key`` is over; why it was aborted (None: it was not)."""
    with _OPEN_LOCK:
        _CLOSERS.pop(key, None)
        _OPEN_WORK.pop(key, None)
        return _OPEN_STREAMS.pop(key, None)


def open_work_s() -> float | None:
    """How long the streams open in this process should take at most, at the deployment's speed.

    Prefills queue (their times add up); decodes run together (the longest counts). None when no open
    stream carries an estimate. The sentinel sizes its patience with a frozen engine by this.
    """
    with _OPEN_LOCK:
        work = list(_OPEN_WORK.values())
    if not work:
        return None
    return sum(p for p, _ in work) + max(d for _, d in work)


def open_stream_count() -> int:
    """How many streams this process is reading now (aborted ones left out)."""
    with _OPEN_LOCK:
        return sum(1 for why in _OPEN_STREAMS.values() if why is None)


def estimate_work_s(body: Mapping[str, Any], speed: tuple[float, float]) -> tuple[float, float]:
    """(prefill, decode) seconds for ``body`` alone at ``speed`` = (prefill tok/s, decode tok/s).

    Prompt tokens are counted from characters, generously (three per token; tokenizers average about
    four on English), so an estimate errs long; max_tokens (or 256 when unset) bounds the decode.
    """
    prefill_tps, decode_tps = speed
    prompt = body.get("prompt")
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        tokens = float(len(prompt))
    else:
        text = json.dumps(body.get("messages") if prompt is None else prompt, ensure_ascii=False)
        tokens = len(text) / 3 + 32
    limit = body.get("max_tokens") or body.get("max_completion_tokens") or 256
    max_tokens = limit if isinstance(limit, int) and 0 < limit < 10**7 else 256
    return tokens / max(prefill_tps, 1e-9), max_tokens / max(decode_tps, 1e-9)


class _Aborted:
    reason: str | None = None  # set: streams started from now on end at once with this reason


_ABORTED = _Aborted()


def abort_open_streams(reason: str) -> int:
    """End every stream being read in this process now, and every stream started later, until
    :func:`resume_streams`; each result's error says ``reason``. Returns how many were open.
    """
    with _OPEN_LOCK:
        _ABORTED.reason = reason
        keys = [k for k, why in _OPEN_STREAMS.items() if why is None]
        for key in keys:
            _OPEN_STREAMS[key] = reason
        closers = [_CLOSERS[k] for k in keys if k in _CLOSERS]
    for close in closers:
        # already closed by its reader (OSError, ValueError), or its event loop is gone (RuntimeError)
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            close()
    return len(keys)


def resume_streams() -> None:
    """Let streams run again (a relaunched target)."""
    with _OPEN_LOCK:
        _ABORTED.reason = None


@dataclass(frozen=True)
class StreamRequest:
    """A streaming request ready to leave: the whole of its bytes, built before its send time."""

    endpoint: str  # "chat" or "completions"
    url: str
    data: bytes = field(repr=False)  # head and body; the head holds the API key
    work: tuple[float, float] | None = None  # (prefill s, decode s) at the deployment's speed


class EndpointError(Exception):
    """The endpoint could not answer a call: names the URL and what happened, in one line."""

    def __init__(self, url: str, what: str, status: int | None = None, body: str = "") -> None:
        self.url = url
        self.what = what
        self.status = status
        self.body = body
        super().__init__(f"{url}: {what}")


def _transport_error(url: str, exc: BaseException, timeout_s: float) -> EndpointError:
    """A call to ``url`` that failed on the network, named in one line (see :func:`_network_failure`)."""
    return EndpointError(url, _network_failure(exc, timeout_s))


def _network_failure(exc: BaseException, timeout_s: float) -> str:
    """What went wrong on the network, the way an operator would say it.

    ``exc`` is a socket's or http.client's (the raw and streaming calls) or a requests exception,
    which says what happened only in its text.
    """
    text = str(exc)
    if isinstance(exc, TimeoutError | requests.Timeout) or "timed out" in text:
        return f"timed out after {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError) or "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    if isinstance(exc, socket.gaierror) or "Name or service not known" in text or "Failed to resolve" in text:
        return "host name does not resolve"
    if isinstance(exc, http.client.RemoteDisconnected) or (  # a ConnectionResetError too: first
        isinstance(exc, requests.ConnectionError)
        and ("RemoteDisconnected" in text or "Connection aborted" in text or "reset" in text)
    ):
        return "connection closed without a response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, BrokenPipeError):
        return "connection closed while sending"
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({type(exc).__name__})"  # its text is the pool's, URL and all
    if isinstance(exc, requests.RequestException):
        return f"request failed ({type(exc).__name__}: {text[:200]})"
    return f"connection failed ({type(exc).__name__}: {text[:200]})"


def _error_message(body: str) -> str:
    """The message of an error body (OpenAI's and older shapes), or the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
    return body[:200]


@dataclass(frozen=True)
class RawResponse:
    """What one raw request got: an HTTP answer, or a connection that ended without one.

    ``status`` is None exactly when ``dropped`` says why no response came (closed, reset, timed out);
    ``body_head`` is the start of the body, decoded leniently; ``truncated`` says the body went on
    past what was read.
    """

    status: int | None
    headers: Mapping[str, str] = field(default_factory=dict)
    body_head: str = ""
    dropped: str | None = None
    truncated: bool = False

    @property
    def error_message(self) -> str:
        """The message of an error body (OpenAI's and older shapes), or the start of the body."""
        return _error_message(self.body_head)

    def describe(self, limit: int = 200) -> str:
        """One line for people: ``HTTP 400: max_tokens must be ...`` or ``no response (reset)``."""
        if self.status is None:
            return f"no response ({self.dropped})"
        return f"HTTP {self.status}: {self.error_message[:limit]!r}"


class VllmClient:
    """Talks to one OpenAI-compatible server.

    ``timeout_s`` bounds connecting and every non-streaming call. Streams use ``stall_timeout_s``
    between bytes instead: a 200k-token prefill sends nothing for minutes, and that is not a fault.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 10.0,
        stall_timeout_s: float = 600.0,
        model: str | None = None,
        speed: tuple[float, float] | None = None,
        virtual_time: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # The target is the embedded twin: streams ask for its virtual times and are stamped with
        # them, so that the host's scheduling (magnified by the time scale) stays out of the figures.
        self.virtual_time = virtual_time
        self.timeout_s = timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.model = model
        self.speed = speed  # (prefill tok/s, decode tok/s) of the deployment: streams say their work
        self._session = requests.Session()
        self._session.headers["User-Agent"] = "pytest-gx10"
        if api_key:
            self._session.headers["Authorization"] = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return f"VllmClient({self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        """Close pooled connections."""
        self._session.close()

    def __enter__(self) -> VllmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plain calls ----------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: Any = None, *, timeout_s: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send one request and return the response whatever its status; raise only on transport."""
        url = self.base_url + path
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if body is not None:
            kwargs["json"] = body
        try:
            return self._session.request(method, url, timeout=timeout, **kwargs)
        except requests.RequestException as exc:
            raise _transport_error(url, exc, timeout) from None

    def get_json(self, path: str) -> Any:
        """GET ``path``; the JSON body of a 200 answer (an :class:`EndpointError` otherwise)."""
        return self._json("GET", path)

    def post_json(self, path: str, body: Any) -> Any:
        """POST ``body`` to ``path``; the JSON body of a 200 answer (an :class:`EndpointError` otherwise)."""
        return self._json("POST", path, body)

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        url = self.base_url + path
        if response.status_code != 200:
            raise EndpointError(
                url,
                f"HTTP {response.status_code}: {_error_message(response.text)}",
                status=response.status_code,
                body=response.text[:2000],
            )
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise EndpointError(
                url, f"not an OpenAI-compatible API (HTTP 200 but not JSON: {kind})"
            ) from None

    def time_scale(self) -> float:
        """How much faster than real time the target runs (a twin says so in a header; vLLM is 1)."""
        return _time_scale(self.request("GET", "/health").headers)

    def health(self) -> int:
        """GET /health; the status code (200 healthy, 503 engine dead)."""
        return self.request("GET", "/health").status_code

    def models(self) -> list[dict[str, Any]]:
        """GET /v1/models; the served model cards (each with ``id`` and ``max_model_len``)."""
        url = self.base_url + "/v1/models"
        try:
            data = self._json("GET", "/v1/models")
        except EndpointError as exc:
            if exc.status in (404, 405):
                raise EndpointError(
                    url,
                    f"not an OpenAI-compatible API (GET /v1/models gave HTTP {exc.status})",
                    status=exc.status,
                ) from None
            raise
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise EndpointError(url, f"not an OpenAI-compatible API (no model list in {str(data)[:100]})")
        return [m for m in data["data"] if isinstance(m, dict)]

    def served_model(self) -> str:
        """The model to talk to: the one set, or the only one served."""
        if self.model:
            return self.model
        names = [str(m.get("id")) for m in self.models()]
        if len(names) != 1:
            raise EndpointError(
                self.base_url + "/v1/models",
                f"serves {len(names)} models ({', '.join(names)}); choose one with --gx10-model",
            )
        self.model = names[0]
        return self.model

    def metrics_text(self) -> str:
        """GET /metrics; Prometheus text."""
        response = self.request("GET", "/metrics")
        if response.status_code != 200:
            raise EndpointError(
                self.base_url + "/metrics", f"HTTP {response.status_code}", status=response.status_code
            )
        return response.text

    def complete(self, body: Mapping[str, Any], *, chat: bool = False) -> dict[str, Any]:
        """A non-streaming completion or chat completion; the response JSON."""
        path = "/v1/chat/completions" if chat else "/v1/completions"
        payload = {"model": self.served_model(), **body, "stream": False}
        data = self._json("POST", path, payload)
        if not isinstance(data, dict):
            raise EndpointError(self.base_url + path, f"not an OpenAI-compatible API ({str(data)[:100]})")
        return data

    def raw(
        self,
        method: str,
        path: str,
        body: bytes | str | None = None,
        *,
        content_type: str | None = "application/json",
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        max_body_bytes: int = 65536,
    ) -> RawResponse:
        """Send exactly these bytes and report what came back, never raising for what the server did.

        For bodies no JSON encoder would write: not an object, malformed, without a content type
        (``content_type=None``), under huge headers, very large. A server that closes or resets the
        connection instead of answering gives ``status=None`` and ``dropped`` naming what happened;
        one that answers while the body is still being sent (an early 413 or 400) is an answer.
        Only ``max_body_bytes`` of the body are read.
        """
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else (body or b"")
        timeout = self.timeout_s if timeout_s is None else timeout_s
        head = self._request_head(
            method,
            path,
            content_type=content_type,
            content_length=len(data) if body is not None or method not in ("GET", "HEAD") else None,
            headers=headers,
        )
        try:
            sock = self._connect()
        except OSError as exc:
            return RawResponse(None, dropped=_network_failure(exc, timeout))
        try:
            sock.settimeout(timeout)
            sent_error: BaseException | None = None
            try:
                sock.sendall(head + data)
            except OSError as exc:
                sent_error = exc  # the server may have answered before it stopped reading
            response = http.client.HTTPResponse(sock, method=method)
            try:
                response.begin()
            except (OSError, http.client.HTTPException) as exc:
                return RawResponse(None, dropped=_network_failure(sent_error or exc, timeout))
            truncated = False
            try:
                got = response.read(max_body_bytes)
            except (OSError, http.client.HTTPException) as exc:
                got = getattr(exc, "partial", b"") or b""
            if len(got) == max_body_bytes:
                try:
                    truncated = bool(response.read(1))
                except (OSError, http.client.HTTPException):
                    truncated = True  # more was coming: the body is cut short either way
            return RawResponse(
                status=response.status,
                headers={k.lower(): v for k, v in response.getheaders()},
                body_head=got.decode("utf-8", "replace"),
                truncated=truncated,
            )
        finally:
            sock.close()

    # --- streaming ------------------------------------------------------------------------------

    def chat_stream(self, body: Mapping[str, Any], **kwargs: Any) -> StreamResult:
        """Stream a chat completion and measure it (see :meth:`stream`)."""
        return self.stream("/v1/chat/completions", body, **kwargs)

    def completion_stream(self, body: Mapping[str, Any], **kwargs: Any) -> StreamResult:
        """Stream a completion and measure it (see :meth:`stream`)."""
        return self.stream("/v1/completions", body, **kwargs)

    def stream(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        include_usage: bool = True,
        stall_timeout_s: float | None = None,
        watch: Callable[[StreamResult], object] | None = None,
    ) -> StreamResult:
        """POST a streaming request and record every chunk with its arrival time.

        ``watch`` is called once with the result as soon as the request leaves: the result fills in
        as chunks arrive, so another thread can show progress (first token yet? how many chunks?).

        The body is encoded and the connection opened before the send time is taken, so that the
        request then only writes its bytes. Many requests at once go through
        :mod:`pytest_gx10.client.aio` (one event loop), which measures the same way.
        """
        request = self.stream_request(path, body, include_usage=include_usage)
        url = request.url
        stall = self.stall_timeout_s if stall_timeout_s is None else stall_timeout_s
        connect_error: EndpointError | None = None
        sock: socket.socket | None = None
        try:
            sock = self._connect()
        except OSError as exc:
            connect_error = _transport_error(url, exc, self.timeout_s)
        result = StreamResult(endpoint=request.endpoint, url=url, send_ns=time.perf_counter_ns())
        if watch is not None:
            watch(result)
        if _ABORTED.reason is not None:  # the engine is gone: do not wait a stall timeout to learn it
            if sock is not None:
                sock.close()
            _aborted(result, _ABORTED.reason)
            return result
        if sock is not None:
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would tear down the
            # TLS object under the reading thread's feet.
            _register_stream(
                sock, functools.partial(socket.socket.shutdown, sock, socket.SHUT_RDWR), request.work
            )
        try:
            try:
                if connect_error is not None or sock is None:
                    raise connect_error or EndpointError(url, "no connection")
                try:
                    sock.sendall(request.data)
                    sock.settimeout(stall)
                    response = http.client.HTTPResponse(sock, method="POST")
                    response.begin()
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    raise _transport_error(url, exc, stall) from None
            except EndpointError as exc:
                result.end_ns = time.perf_counter_ns()
                result.ended = StreamEnd.UNREACHABLE
                result.error = str(exc)
                return result
            try:
                result.status = response.status
                head = {k.lower(): v for k, v in response.getheaders()}
                result.time_scale = _time_scale(head)
                result.virtual_arrival_s = _virtual_arrival(head)
                if not _is_event_stream(response.status, response.getheader("content-type")):
                    _read_error(response, result)
                else:
                    _read_stream(response, result, stall)
            finally:
                response.close()
        finally:
            if sock is not None:
                aborted = _unregister_stream(sock)
                sock.close()
                if aborted is not None and result.ended != StreamEnd.DONE:
                    _aborted(result, aborted)
        return result

    def stream_request(
        self, path: str, body: Mapping[str, Any], *, include_usage: bool = True
    ) -> StreamRequest:
        """The bytes of a streaming POST of ``body`` to ``path`` (the model filled in), built once."""
        payload: dict[str, Any] = {"model": body.get("model") or self.served_model(), **body, "stream": True}
        if include_usage:
            payload["stream_options"] = {"include_usage": True, **payload.get("stream_options", {})}
        data = json.dumps(payload).encode()
        head = self._request_head(
            "POST",
            path,
            content_type="application/json",
            content_length=len(data),
            headers={
                "Accept": "text/event-stream",
                **({VIRTUAL_TIME_HEADER: "1"} if self.virtual_time else {}),
            },
        )
        return StreamRequest(
            endpoint="chat" if "chat" in path else "completions",
            url=self.base_url + path,
            data=head + data,  # the whole request, so that sending it is one write
            work=estimate_work_s(payload, self.speed) if self.speed is not None else None,
        )

    def _connect(self) -> socket.socket:
        """A connected socket to the server (TLS for https), made before the request is due."""
        parts = urlsplit(self.base_url)
        https = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        sock = socket.create_connection((host, parts.port or (443 if https else 80)), timeout=self.timeout_s)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if https:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        return sock

    def _request_head(
        self,
        method: str,
        path: str,
        *,
        content_type: str | None,
        content_length: int | None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """The head of an HTTP/1.1 request on a connection of its own, the API key included."""
        parts = urlsplit(self.base_url)
        lines = [
            f"{method} {parts.path.rstrip('/')}{path} HTTP/1.1",
            f"Host: {parts.netloc}",
            "User-Agent: pytest-gx10",
        ]
        if content_type is not None:
            lines.append(f"Content-Type: {content_type}")
        if content_length is not None:
            lines.append(f"Content-Length: {content_length}")
        lines.append("Connection: close")
        auth = self._session.headers.get("Authorization")
        if auth:
            lines.append(f"Authorization: {auth!s}")
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _read_error(response: http.client.HTTPResponse, result: StreamResult) -> None:
    """A non-200 (or non-SSE) answer: its body is the error."""
    try:
        text = response.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as exc:
        text = f"(body unreadable: {type(exc).__name__})"
    _error_answer(result, text)


def _error_answer(result: StreamResult, text: str) -> None:
    """Record an error answer whose body was ``text`` (JSON kept as such)."""
    result.end_ns = time.perf_counter_ns()
    result.ended = StreamEnd.HTTP_ERROR
    try:
        result.error = json.loads(text)
    except ValueError:
        result.error = text[:2000]


def _read_stream(response: http.client.HTTPResponse, result: StreamResult, stall_s: float) -> None:
    """Read SSE as bytes arrive (``read1`` returns whatever the socket has), stamping each read."""
    reader = SseReader(result)
    try:
        while True:
            raw = response.read1(65536)
            t_ns = time.perf_counter_ns()
            if not raw:
                break
            reader.feed(raw, t_ns)
    except TimeoutError:
        reader.stalled(stall_s)
        return
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # IncompleteRead: the server closed mid-chunk; reset: it went away; ValueError: a TLS socket
        # shut down under the reader.
        reader.broke(type(exc).__name__)
        return
    reader.close()


class SseReader:
    """Folds an event stream's bytes into a :class:`StreamResult`: every client of this package
    reads a stream through it, so they cannot disagree on what a stream did."""

    __slots__ = ("_parser", "done", "result")

    def __init__(self, result: StreamResult) -> None:
        self.result = result
        self._parser = SseParser()
        self.done = False  # data: [DONE] arrived

    def feed(self, raw: bytes, t_ns: int) -> None:
        """Bytes that arrived at ``t_ns``.

        From the embedded twin that told its virtual times, an event is stamped with its virtual
        time instead (see :meth:`_stamp`), and the stream's end with its last event's.
        """
        result = self.result
        virtual = result.virtual_arrival_s is not None
        if not virtual:
            result.end_ns = t_ns
        for event in self._parser.feed(raw, t_ns):
            if virtual:
                event_ns = self._stamp(event.comment, t_ns)
                result.end_ns = event_ns
                result.wall_end_ns = t_ns
            else:
                event_ns = t_ns
            result.events += 1
            if self.done:
                result.events_after_done += 1
                continue
            if event.data.strip() == "[DONE]":
                self.done = True
                continue
            _apply(result, event.data, event_ns)

    def _stamp(self, comment: str | None, t_ns: int) -> int:
        """``send_ns`` plus the twin's virtual seconds since the arrival, in this clock's nanoseconds.

        The figures subtract stamps and multiply by the time scale: they then read the twin's
        virtual seconds exactly. An event without a virtual time keeps its arrival ``t_ns``.
        """
        result = self.result
        if comment is None or not comment.startswith("t=") or result.virtual_arrival_s is None:
            return t_ns
        try:
            t_s = float(comment[2:])
        except ValueError:
            return t_ns
        return result.send_ns + round((t_s - result.virtual_arrival_s) / result.time_scale * 1e9)

    def close(self) -> None:
        """The body ended where its framing says it ends (or the connection closed, unframed)."""
        self._parser.close()
        result = self.result
        if result.error is not None:
            result.ended = StreamEnd.ERROR
        elif self.done:
            result.ended = StreamEnd.DONE
        else:
            result.ended = StreamEnd.CUT

    def stalled(self, stall_s: float) -> None:
        """No byte came for ``stall_s`` seconds."""
        result = self.result
        result.end_ns = time.perf_counter_ns()
        result.wall_end_ns = None  # the end is the client's: no byte came
        result.ended = StreamEnd.STALL
        result.error = result.error or f"no byte for {stall_s:g} s"

    def broke(self, what: str) -> None:
        """The connection failed mid-body (``what``: the exception's name, as http.client raises it)."""
        result = self.result
        result.end_ns = time.perf_counter_ns()
        result.wall_end_ns = None  # the end is the client's: the connection broke
        result.ended = StreamEnd.ERROR if result.error is not None else StreamEnd.CUT
        result.error = result.error or f"stream broke: {what}"


def _is_event_stream(status: int, content_type: str | None) -> bool:
    """A 200 with an event stream: anything else is an error answer, whose body is the error."""
    return status == 200 and "text/event-stream" in (content_type or "")


def _aborted(result: StreamResult, reason: str) -> None:
    """The sentinel ended the stream (or it was due while streams are aborted)."""
    result.end_ns = result.end_ns or time.perf_counter_ns()
    result.ended = StreamEnd.CUT
    result.error = f"aborted by pytest-gx10: {reason}"


def _virtual_arrival(headers: Mapping[str, str]) -> float | None:
    """The twin's virtual time of the request's arrival, when it told it (asked with the header)."""
    try:
        return float(headers[VIRTUAL_ARRIVAL_HEADER])
    except (KeyError, ValueError):
        return None


def _time_scale(headers: Mapping[str, str]) -> float:
    try:
        scale = float(headers.get(TIME_SCALE_HEADER, "1"))
    except ValueError:
        return 1.0
    return scale if scale > 0 else 1.0


def stream_events_seen() -> int:
    """How many SSE events the streams of this process have received so far.

    The sentinel's own evidence of progress, beside the server's counters: an engine without
    metrics still shows it is generating by the events it sends.
    """
    return _EVENTS_SEEN[0]


_EVENTS_SEEN = [0]  # a lost increment between threads is harmless: only movement is read


def _apply(result: StreamResult, data: str, t_ns: int) -> None:
    """Fold one SSE data payload into the result."""
    _EVENTS_SEEN[0] += 1
    try:
        frame = json.loads(data)
    except ValueError:
        result.error = result.error or f"undecodable SSE data: {data[:200]}"
        return
    if not isinstance(frame, dict):
        result.error = result.error or f"unexpected SSE data: {data[:200]}"
        return
    if "error" in frame:
        result.error = frame["error"]
        return
    result.response_id = result.response_id or frame.get("id")
    usage = frame.get("usage")
    choices = frame.get("choices")
    tokens = None
    if usage and choices:
        # The usage in every chunk (continuous_usage_stats): this chunk's tokens are the rise.
        before = result.completion_tokens or 0
        after = usage.get("completion_tokens")
        tokens = after - before if isinstance(after, int) and after >= before else None
    if usage:
        result.usage_chunks += 1
        result.prompt_tokens = usage.get("prompt_tokens")
        result.completion_tokens = usage.get("completion_tokens")
        result.total_tokens = usage.get("total_tokens")
        details = usage.get("completion_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("reasoning_tokens"), int):
            result.reasoning_tokens = details["reasoning_tokens"]
        prompt_details = usage.get("prompt_tokens_details")
        if isinstance(prompt_details, dict) and isinstance(prompt_details.get("cached_tokens"), int):
            result.cached_tokens = prompt_details["cached_tokens"]
    if not choices:
        return
    choice = choices[0]
    delta = choice.get("delta")
    if isinstance(delta, dict):  # chat
        if result.events == 1 and delta.get("role") == "assistant":
            result.role_chunk = True
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning") or delta.get("reasoning_content") or ""
    else:
        content = choice.get("text") or ""
        reasoning = ""
    finish = choice.get("finish_reason")
    result.content += content
    result.reasoning += reasoning
    if finish:
        result.finish_reason = finish
    result.chunks.append(
        Chunk(t_ns=t_ns, content=content, reasoning=reasoning, finish_reason=finish, tokens=tokens)
    )
