"""Run the twin in-process: uvicorn on a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TextIO

import uvicorn

from pytest_gx10.fake.app import TwinState, create_app, route_table
from pytest_gx10.fake.logs import LogEmitter
from pytest_gx10.profiles import DEFAULT_PROFILE, Profile, load_profile
from pytest_gx10.profiles.faults import Fault

__all__ = ["FakeServer"]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


class FakeServer:
    """The embedded vLLM twin of ``profile``, served over real HTTP.

    >>> with FakeServer("smollm2-cpu", time_scale=100) as server:  # doctest: +SKIP
    ...     requests.get(f"{server.url}/health").status_code
    200

    ``port=0`` picks a free port (read it from ``.port`` or ``.url`` after ``start()``). ``time_scale``
    (default: the profile's) runs the simulation that many times faster than real time; every response
    says so in the ``x-gx10-time-scale`` header. The vLLM-style log goes to ``log_path`` (appended) or
    ``log_stream``; with neither it is discarded. With ``api_key``, ``/v1/*`` requires
    ``Authorization: Bearer <key>``. ``faults`` are injected besides the profile's ``[[twin.faults]]``
    (see :mod:`pytest_gx10.fake.faults`). When an injected engine death closes the listening socket,
    the server keeps running (``running`` stays True) until :meth:`stop`, like a container whose API
    server died under a PID 1 that did not.
    """

    def __init__(
        self,
        profile: Profile | str | Path = DEFAULT_PROFILE,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float | None = None,
        log_path: str | Path | None = None,
        api_key: str | None = None,
        *,
        log_stream: TextIO | None = None,
        faults: Sequence[Fault] = (),
    ) -> None:
        self.profile = profile if isinstance(profile, Profile) else load_profile(profile)
        self.host = host
        self.port = port
        self.time_scale = float(time_scale if time_scale is not None else self.profile.twin.time_scale)
        if self.time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale}")
        self.log_path = Path(log_path) if log_path is not None else None
        self._api_key = api_key
        self._log_stream = log_stream
        self.faults = tuple(faults)
        self._owned_stream: TextIO | None = None
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self.state: TwinState | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def served_model_name(self) -> str:
        """The model name the twin answers to."""
        return self.profile.deployment.served_model_name

    @property
    def running(self) -> bool:
        """True between a successful start() and stop()."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> FakeServer:
        """Bind, start serving and return once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeServer already started")
        stream = self._log_stream
        if stream is None:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                stream = self._owned_stream = self.log_path.open("a", encoding="utf-8", buffering=1)
            else:
                stream = self._owned_stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP said outright: asyncio sets TCP_NODELAY only on sockets whose protocol says TCP,
        # and without it a keep-alive response's headers and body (two writes) meet Nagle's algorithm
        # and the client's delayed ACK: 40 ms per request. vLLM's uvloop sets it on every connection.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            self._close_log()
            raise
        self.port = sock.getsockname()[1]
        log = LogEmitter(self.profile, stream)
        state = TwinState(self.profile, self.time_scale, log, api_key=self._api_key, faults=self.faults)
        state.injector.close_listener = self._close_listener
        self.state = state
        app = create_app(state)
        log.boot(self.host, self.port, self.time_scale, state.engine.kv_cache_tokens, route_table(app))
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, args=(sock,), name="gx10-twin", daemon=True)
        self._thread.start()
        deadline = _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive():
                self._thread.join()
                self._thread = None
                self._close_log()
                raise RuntimeError(f"the twin failed to start on {self.url}: {self._error!r}")
            self._thread.join(0.005)
            deadline -= 0.005
            if deadline <= 0:
                self.stop()
                raise RuntimeError(
                    f"the twin did not start listening on {self.url} within {_START_TIMEOUT_S} s"
                )
        return self

    def _run(self, sock: socket.socket) -> None:
        assert self._server is not None
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            sock.close()
            # A connection still open now (a request the server gave up on after its graceful
            # shutdown timeout) would otherwise be collected later as an unclosed transport.
            _drop_connections(self._server)
            try:
                loop.run_until_complete(asyncio.sleep(0))  # let the transports' close callbacks run
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def _close_listener(self) -> None:
        """Stop accepting connections (on the server's loop): what a dead vLLM API server leaves behind.

        Idle keep-alive connections close too; new connections are refused. uvicorn itself keeps
        running, so the process stays up until stop().
        """
        server = self._server
        if server is None:
            return
        for listener in server.servers:
            listener.close()

        _close_connections(server)
        # A connection accepted just before the close gets its transport a moment later: sweep again.
        loop = asyncio.get_running_loop()
        for delay_s in (0.05, 0.5):
            loop.call_later(delay_s, _close_connections, server)

    def stop(self) -> None:
        """Abort in-flight requests, shut down cleanly and join the server thread."""
        thread, server, loop = self._thread, self._server, self._loop
        if thread is None or server is None:
            self._close_log()
            return
        state = self.state
        if loop is not None and state is not None and not loop.is_closed():
            # Streams end with finish_reason "abort" instead of holding the shutdown open.
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(state.engine.abort_all)
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            # Requests a frozen engine (a zombie) never finishes hold the shutdown open: drop their
            # connections, so that no transport outlives the server unclosed.
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_drop_connections, server)
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        self._thread = None
        self._server = None
        self._loop = None
        if state is not None and state.injector.listening:  # a dead engine's server said goodbye already
            state.log.shutdown()
        self._close_log()

    def _close_log(self) -> None:
        if self._owned_stream is not None:
            self._owned_stream.close()
            self._owned_stream = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<FakeServer {self.profile.name} {self.url} time_scale={self.time_scale:g} {state}>"


def _close_connections(server: uvicorn.Server) -> None:
    """Close every open connection politely, or drop it when h11 refuses (a half-received request)."""
    for connection in list(server.server_state.connections):
        try:
            connection.shutdown()
        except Exception:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()


def _drop_connections(server: uvicorn.Server) -> None:
    """Close every open connection's transport now, mid-response or not."""
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.close()
