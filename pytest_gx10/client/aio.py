"""Streams on one asyncio event loop: many requests in flight without a thread each.

The same measurement as :meth:`VllmClient.stream`: the same request bytes (built by
:meth:`VllmClient.stream_request`, API key and all), the same event-stream reading
(:class:`SseReader`, so both clients fill a :class:`StreamResult` alike), the same words for what
went wrong. What differs is the transport: an :class:`asyncio.Protocol` stamps each arrival with
``time.perf_counter_ns()`` as the loop hands it the bytes, and parses HTTP/1.1 itself (status,
headers, chunked, content-length or close-delimited bodies), so one core keeps up with thousands of
streams and sends N prepared requests back to back in one pass of the loop.

A stream has two steps, so that a burst can open every connection first and then write every
request at one moment: ``await open_stream(...)`` connects, ``.send()`` writes (its send time is
taken at the write) and ``await .finished()`` waits for the end. :func:`stream` does all three.
The sentinel's :func:`~pytest_gx10.client.http.abort_open_streams` ends these streams from its own
thread through ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pytest_gx10.client.http import (
    _ABORTED,
    EndpointError,
    SseReader,
    StreamRequest,
    VllmClient,
    _aborted,
    _error_answer,
    _is_event_stream,
    _network_failure,
    _register_stream,
    _time_scale,
    _transport_error,
    _unregister_stream,
    _virtual_arrival,
)
from pytest_gx10.client.results import StreamEnd, StreamResult

__all__ = ["OpenStream", "open_stream", "stream"]

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_MAX_HEAD_BYTES = 65536 * 2


async def stream(
    client: VllmClient,
    path: str,
    body: Mapping[str, Any],
    *,
    include_usage: bool = True,
    stall_timeout_s: float | None = None,
) -> StreamResult:
    """Stream one request on the running loop and measure it, as :meth:`VllmClient.stream` does."""
    request = client.stream_request(path, body, include_usage=include_usage)
    opened = await open_stream(client, request, stall_timeout_s=stall_timeout_s)
    opened.send()
    return await opened.finished()


async def open_stream(
    client: VllmClient, request: StreamRequest, *, stall_timeout_s: float | None = None
) -> OpenStream:
    """Open the connection of ``request`` (built by :meth:`VllmClient.stream_request`) to send it later.

    ``client.timeout_s`` bounds connecting; never raises for the network: a connection that failed
    gives a result saying so once sent.
    """
    stall = client.stall_timeout_s if stall_timeout_s is None else stall_timeout_s
    loop = asyncio.get_running_loop()
    parts = urlsplit(client.base_url)
    https = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    protocol: _StreamProtocol | None = None
    error: EndpointError | None = None
    try:
        _, protocol = await asyncio.wait_for(
            loop.create_connection(
                lambda: _StreamProtocol(loop, request, stall),
                host,
                parts.port or (443 if https else 80),
                ssl=ssl.create_default_context() if https else None,
                server_hostname=host if https else None,
            ),
            client.timeout_s,
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        error = _transport_error(request.url, exc, client.timeout_s)
    return OpenStream(request, protocol, error)


class OpenStream:
    """A request whose connection is open (or failed to open), not yet sent."""

    def __init__(self, request: StreamRequest, protocol: _StreamProtocol | None, error: EndpointError | None):
        self.request = request
        self.result: StreamResult | None = None  # from send() on: fills in as chunks arrive
        self._protocol = protocol
        self._error = error

    def __repr__(self) -> str:
        return f"OpenStream({self.request.url!r}, sent={self.result is not None})"

    def send(self) -> StreamResult:
        """Write the request now (its send time is taken here) and return the result, which fills in."""
        if self.result is not None:
            raise RuntimeError("this stream was sent already")
        request, protocol = self.request, self._protocol
        result = self.result = StreamResult(
            endpoint=request.endpoint, url=request.url, send_ns=time.perf_counter_ns()
        )
        if _ABORTED.reason is not None:  # the engine is gone: do not wait a stall timeout to learn it
            if protocol is not None:
                protocol.abandon()
            _aborted(result, _ABORTED.reason)
        elif protocol is None:
            result.end_ns = time.perf_counter_ns()
            result.ended = StreamEnd.UNREACHABLE
            result.error = str(self._error or EndpointError(request.url, "no connection"))
        else:
            protocol.send(result)
        return result

    async def finished(self) -> StreamResult:
        """The result once the stream has ended (sent first)."""
        if self.result is None:
            raise RuntimeError("send() the stream before waiting for it")
        if self._protocol is not None and self._protocol.result is not None:
            await self._protocol.ended
        return self.result


# Where a response is: in its head, in a body of known length, chunked, or read until the close.
_HEAD, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
# Where a chunked body is: at a size line, in a chunk's data, after it (its CRLF), in the trailer.
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class _StreamProtocol(asyncio.Protocol):
    """One request's connection: writes the request, reads the answer as bytes arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, request: StreamRequest, stall_s: float) -> None:
        self._loop = loop
        self._request = request
        self._stall_s = stall_s
        self._transport: asyncio.Transport | None = None
        self.ended: asyncio.Future[None] = loop.create_future()
        self.result: StreamResult | None = None
        self._reader: SseReader | None = None  # a 200 event stream: its reader
        self._error_body: list[bytes] = []  # any other answer: its body, the error
        self._state = _HEAD
        self._buffer = b""  # a head, or a chunk size line, not whole yet
        self._left = 0  # bytes left of the body (_LENGTH) or of the chunk (_DATA)
        self._chunk = _SIZE
        self._last_ns = 0
        self._timer: asyncio.TimerHandle | None = None

    # --- the loop's calls -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        t_ns = time.perf_counter_ns()
        self._last_ns = t_ns
        if self.result is None or self.ended.done():
            return  # not sent (a server speaking first), or over
        if self._state == _HEAD:
            data = self._head(data)
            if not data:
                return
        if self._state == _CHUNKED:
            self._dechunk(data, t_ns)
        elif self._state == _LENGTH:
            if len(data) >= self._left:
                data = data[: self._left]
                self._left = 0
                self._body(data, t_ns)
                self._complete()
            else:
                self._left -= len(data)
                self._body(data, t_ns)
        else:
            self._body(data, t_ns)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost says the rest

    def connection_lost(self, exc: Exception | None) -> None:
        if self.result is None or self.ended.done():  # not sent yet (send says so), or over
            self._settle()
            return
        if self._state == _HEAD:
            # http.client's RemoteDisconnected on a clean close, the error itself otherwise
            what = (
                "connection closed without a response"
                if exc is None
                else _network_failure(exc, self._stall_s)
            )
            self._unreachable(what)
        elif exc is not None:
            self._broke(type(exc).__name__)
        elif self._state == _CHUNKED and self._chunk != _TRAILER:
            self._broke("IncompleteRead")  # as http.client says a chunked body cut short
        elif self._state == _LENGTH and self._reader is None:
            self._broke("IncompleteRead")  # and an error body of known length
        else:
            # an event stream of known length cut short reads as its end, as http.client's read1 has it
            self._complete()

    # --- sending --------------------------------------------------------------------------------

    def send(self, result: StreamResult) -> None:
        """Write the request (``result`` is its record, send time taken)."""
        self.result = result
        transport = self._transport
        assert transport is not None
        if self.ended.done():  # the server closed the connection before the request went
            result.end_ns = time.perf_counter_ns()
            result.ended = StreamEnd.UNREACHABLE
            result.error = f"{self._request.url}: connection closed without a response"
            return
        _register_stream(self, self._abort_from_any_thread, self._request.work)
        self._last_ns = result.send_ns
        self._timer = self._loop.call_later(self._stall_s, self._check_stall)
        transport.write(self._request.data)

    def abandon(self) -> None:
        """Close a connection that will carry nothing."""
        if self._transport is not None:
            self._transport.abort()

    def _abort_from_any_thread(self) -> None:
        self._loop.call_soon_threadsafe(self._abort)

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()  # connection_lost follows, and the registry says why

    def _check_stall(self) -> None:
        if self.ended.done():
            return
        quiet_s = (time.perf_counter_ns() - self._last_ns) / 1e9
        if quiet_s < self._stall_s:
            self._timer = self._loop.call_later(self._stall_s - quiet_s, self._check_stall)
            return
        if self._state == _HEAD:
            self._unreachable(f"timed out after {self._stall_s:g} s")
        elif self._reader is not None:
            self._reader.stalled(self._stall_s)
            self._end()
        else:
            self._error_end("(body unreadable: TimeoutError)")

    # --- reading --------------------------------------------------------------------------------

    def _head(self, data: bytes) -> bytes:
        """Take the response head from ``data``; the bytes after it (the body's first)."""
        buffer = self._buffer + data if self._buffer else data
        while True:
            found = _HEAD_END.search(buffer)
            if found is None:
                if len(buffer) > _MAX_HEAD_BYTES:
                    self._unreachable("connection failed (LineTooLong: response head too long)")
                    return b""
                self._buffer = buffer
                return b""
            lines = buffer[: found.start()].decode("latin-1").splitlines()
            rest = buffer[found.end() :]
            version, _, status_text = lines[0].partition(" ")
            code = status_text[:3]
            if not version.startswith("HTTP/") or not code.isdigit():
                self._unreachable(f"connection failed (BadStatusLine: {lines[0][:200]!r})")
                return b""
            status = int(code)
            if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                buffer = rest
                continue
            break
        self._buffer = b""
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        result = self.result
        assert result is not None
        result.status = status
        result.time_scale = _time_scale(headers)
        result.virtual_arrival_s = _virtual_arrival(headers)
        if _is_event_stream(status, headers.get("content-type")):
            self._reader = SseReader(result)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = _CHUNKED
        elif status in (204, 304) or headers.get("content-length", "").strip() == "0":
            self._state = _LENGTH
            self._left = 0
            self._complete()
            return b""
        elif (length := headers.get("content-length", "").strip()).isdigit():
            self._state = _LENGTH
            self._left = int(length)
        else:
            self._state = _UNTIL_CLOSE
        return rest

    def _dechunk(self, data: bytes, t_ns: int) -> None:
        """Take the chunked body's payload out of ``data`` and read it as one arrival."""
        if self._buffer:
            data = self._buffer + data
            self._buffer = b""
        pieces: list[bytes] = []
        at, size = 0, len(data)
        whole = False
        while at < size:
            if self._chunk == _DATA:
                end = min(at + self._left, size)
                pieces.append(data[at:end])
                self._left -= end - at
                at = end
                if self._left == 0:
                    self._chunk = _DATA_END
                continue
            newline = data.find(b"\n", at)
            if newline < 0:  # a line in flight
                self._buffer = data[at:]
                break
            line = data[at:newline].strip()
            at = newline + 1
            if self._chunk == _DATA_END:
                self._chunk = _SIZE
            elif self._chunk == _TRAILER:
                if not line:
                    whole = True
                    break
            else:
                try:
                    self._left = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    if pieces:
                        self._body(b"".join(pieces), t_ns)
                    self._broke("IncompleteRead")  # as http.client names a size line it cannot read
                    return
                self._chunk = _DATA if self._left else _TRAILER
        if pieces:
            self._body(b"".join(pieces), t_ns)
        if whole:
            self._complete()

    def _body(self, data: bytes, t_ns: int) -> None:
        if self._reader is not None:
            self._reader.feed(data, t_ns)
        else:
            self._error_body.append(data)

    # --- ending ---------------------------------------------------------------------------------

    def _complete(self) -> None:
        """The body ended where its framing says (or at the close, unframed)."""
        if self.ended.done():
            return
        if self._reader is not None:
            self._reader.close()
            self._end()
        else:
            self._error_end(b"".join(self._error_body).decode("utf-8", "replace"))

    def _broke(self, what: str) -> None:
        if self._reader is not None:
            self._reader.broke(what)
            self._end()
        else:
            self._error_end(f"(body unreadable: {what})")

    def _error_end(self, text: str) -> None:
        assert self.result is not None
        _error_answer(self.result, text)
        self._end()

    def _unreachable(self, what: str) -> None:
        result = self.result
        assert result is not None
        result.end_ns = time.perf_counter_ns()
        result.ended = StreamEnd.UNREACHABLE
        result.error = f"{self._request.url}: {what}"
        self._end()

    def _end(self) -> None:
        """The result is final: close the connection, leave the registry, say so to the waiter."""
        if self.ended.done():
            return
        if self._transport is not None:
            self._transport.abort()  # Connection: close; nothing more to read or to say
        self._settle()

    def _settle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.ended.done():
            return
        result = self.result
        if result is not None:
            aborted = _unregister_stream(self)
            if aborted is not None and result.ended != StreamEnd.DONE:
                _aborted(result, aborted)
        self.ended.set_result(None)
