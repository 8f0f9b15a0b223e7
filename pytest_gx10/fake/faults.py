"""Fault injection in the twin: what goes wrong, when, and how it looks on the wire (as vLLM 0.32 shows it).

A fault is written ``KIND[:key=value,...]``, the same on the command line
(``python -m pytest_gx10.fake --fault KIND[:key=value,...]``, repeatable), in a request header
(``x-gx10-fault: KIND[:key=value,...]``: that request only, or the whole engine for ``death`` and
``zombie``) and, as a table with the same keys, in a profile::

    [[twin.faults]]
    kind = "death"
    running = 8
    delay_s = 20.0

Kinds, and what a client sees:

- ``death``: the engine core dies (vLLM's EngineDeadError path). Streams in flight get an in-band
  ``data: {"error": {...}}`` frame (HTTP 200 was already sent) and ``data: [DONE]``; non-streaming
  requests in flight, and requests that arrive afterwards, get HTTP 500 with vLLM's JSON error body;
  ``/health`` answers 503 for ``grace_s``, then the listening socket closes and connections are
  refused while the process stays up (a container whose PID 1 outlives the API server). The log gets
  the crash lines: illegal memory access, NCCL watchdog, Ray worker death, EngineDeadError.
- ``zombie``: ``/health`` keeps answering 200 but the engine makes no progress: no token, frozen
  counters, requests hang until the client gives up.
- ``http_500``: HTTP 500 instead of the completion; ``body=json`` (vLLM's error body, the default),
  ``text`` (``Internal Server Error``, as uvicorn answers an unhandled exception) or ``empty`` (as
  vLLM's launcher answers an engine error it catches).
- ``error_fraction``: ``http_500`` on a fraction ``p`` of the requests, drawn from a generator
  seeded with ``seed`` (the same requests fail on every run).
- ``zero_tokens``: HTTP 200 with no generated token: empty text, ``completion_tokens`` 0,
  finish_reason ``stop`` (streamed: no token chunk, the usage chunk, ``[DONE]``).
- ``abort``: finish_reason ``abort`` after ``tokens`` tokens.
- ``cut``: the stream ends after ``tokens`` tokens without usage chunk or ``[DONE]``.
- ``stall``: after ``tokens`` tokens nothing is sent for ``stall_s``; ``then=continue`` (default)
  resumes the stream, ``abort`` ends it with finish_reason ``abort``, ``cut`` ends it without ``[DONE]``.
- ``slow_ttft``: ``extra_s`` more before the request reaches the engine (and so its first token).

Triggers. Generation requests (``/v1/completions``, ``/v1/chat/completions``) are numbered as they
arrive. ``after=K`` lets the first K through; ``running=N`` waits for N requests at once: for
``death`` and ``zombie``, N or more in the engine's running batch (checked after every step, so the
fault lands mid-run); for the per-request kinds, a request arriving while it makes N or more in the
engine (itself included). With both, both must hold; with neither, ``death`` and ``zombie`` fire at
start and the per-request kinds apply to every request. ``delay_s`` puts simulated seconds between
the trigger and an engine fault (mid-step rather than at admission). ``count=C`` limits a per-request
fault to its first C requests (default: no limit). The first rule that applies to a request wins.

Keys (seconds are simulated seconds, the twin's clock, divided by its time scale on the wall):

=============== ==================================== ===========
key             kinds                                default
=============== ==================================== ===========
after           all                                  0
running         all                                  none
count           per-request kinds                    unlimited
delay_s         death, zombie                        0
grace_s         death                                5 (vLLM's API-server watchdog period)
body            http_500, error_fraction             json
p, seed         error_fraction                       0.1, 0
tokens          abort, cut, stall                    8
stall_s, then   stall                                30, continue
extra_s         slow_ttft                            10
=============== ==================================== ===========
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pytest_gx10.fake.engine import Engine, StepStats
from pytest_gx10.fake.logs import LogEmitter
from pytest_gx10.profiles.faults import (
    ENGINE_KINDS,
    KINDS,
    Fault,
    FaultSpecError,
    fault_from_table,
    parse_fault,
)

__all__ = [
    "ENGINE_KINDS",
    "FAULT_HEADER",
    "KINDS",
    "Fault",
    "FaultInjector",
    "FaultSpecError",
    "StreamFault",
    "engine_dead_body",
    "fault_from_table",
    "parse_fault",
]

FAULT_HEADER = "x-gx10-fault"


def engine_dead_body() -> dict[str, Any]:
    """vLLM's error body for a request that met a dead engine (create_error_response of EngineDeadError)."""
    message = "EngineCore encountered an issue. See stack trace (above) for the root cause."
    return {"error": {"message": message, "type": "InternalServerError", "param": None, "code": 500}}


@dataclass
class _Rule:
    fault: Fault
    left: int | None  # requests this rule may still take (None: no limit)
    fired: bool = False
    rng: random.Random | None = None


class FaultInjector:
    """The twin's faults at run time: picks each request's fault, fires engine faults, tracks death.

    Built with the configured faults (profile and command line); a request header adds one for that
    request (or fires an engine fault). ``close_listener`` is set by whoever owns the listening
    socket (FakeServer) and called when a dead engine's API server would exit.
    """

    def __init__(self, faults: Sequence[Fault], engine: Engine, log: LogEmitter, time_scale: float) -> None:
        self.rules = [
            _Rule(f, f.count, rng=random.Random(f.seed) if f.kind == "error_fraction" else None)
            for f in faults
        ]
        self.engine = engine
        self.log = log
        self.time_scale = time_scale
        self.requests_seen = 0
        self.died_at_s: float | None = None  # simulated time of death
        self.listening = True
        self.close_listener: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        engine.observers.append(self)

    @property
    def dead(self) -> bool:
        """True once the engine has died."""
        return self.engine.dead

    def start(self) -> None:
        """On the serving event loop: fire the engine faults that have no trigger."""
        self._loop = asyncio.get_running_loop()
        for rule in self.rules:
            if rule.fault.engine_wide and rule.fault.after == 0 and rule.fault.running is None:
                self._fire(rule)

    # --- triggers ----------------------------------------------------------------------------------------

    def on_request(self, header: str | None = None) -> Fault | None:
        """A generation request arrived: count it, fire due engine faults, return its own fault (or None).

        ``header`` is the request's ``x-gx10-fault`` value; a malformed one raises FaultSpecError.
        """
        self.requests_seen += 1
        n = self.requests_seen
        in_engine = self.engine.num_running + self.engine.num_waiting + 1
        if header is not None:
            fault = parse_fault(header)
            if not fault.engine_wide:
                return fault
            if fault.after or fault.running is not None:
                self.rules.append(_Rule(fault, None))  # triggers count from the twin's start
            else:
                self._fire(_Rule(fault, None))
        for rule in self.rules:
            f = rule.fault
            if f.engine_wide:
                if not rule.fired and f.running is None and n > f.after:
                    self._fire(rule)
                continue
            if rule.left == 0 or n <= f.after or (f.running is not None and in_engine < f.running):
                continue
            if rule.rng is not None and rule.rng.random() >= f.p:
                continue
            if rule.left is not None:
                rule.left -= 1
            return f
        return None

    def on_step(self, stats: StepStats) -> None:
        """After every engine step: fire the engine faults whose running batch has been reached."""
        for rule in self.rules:
            f = rule.fault
            if (
                f.engine_wide
                and not rule.fired
                and f.running is not None
                and stats.num_running >= f.running
                and self.requests_seen > f.after
            ):
                self._fire(rule)

    def _fire(self, rule: _Rule) -> None:
        rule.fired = True
        loop = self._loop or asyncio.get_running_loop()
        action = self._die if rule.fault.kind == "death" else self._freeze
        # Never inside a step: the engine learns of a death between steps, as vLLM's output handler does.
        loop.call_later(rule.fault.delay_s / self.time_scale, action, rule.fault)

    # --- effects -----------------------------------------------------------------------------------------

    def _freeze(self, fault: Fault) -> None:
        if not self.engine.dead:
            self.engine.freeze()

    def _die(self, fault: Fault) -> None:
        if self.engine.dead:
            return
        self.died_at_s = self.engine.now_s()
        self.log.engine_death()
        self.engine.die()
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(fault.grace_s / self.time_scale, self._exit_api_server)

    def _exit_api_server(self) -> None:
        """vLLM's watchdog: the API server shuts down, its socket closes; the process (container) stays."""
        if not self.listening:
            return
        self.listening = False
        self.log.api_server_exit()
        if self.close_listener is not None:
            self.close_listener()

    def health_status(self) -> int:
        """What /health answers: 503 once the engine is dead (until the socket closes), else 200."""
        return HTTPStatus.SERVICE_UNAVAILABLE if self.engine.dead else HTTPStatus.OK

    @staticmethod
    def finish_at(fault: Fault | None) -> tuple[int, str] | None:
        """The engine's ``finish_at`` for a request fault: zero tokens (stop) or an abort after some."""
        if fault is None:
            return None
        if fault.kind == "zero_tokens":
            return (0, "stop")
        if fault.kind == "abort":
            return (fault.tokens, "abort")
        return None


class StreamFault:
    """Applies ``cut`` and ``stall`` to one stream: ask :meth:`cut` after each chunk sent."""

    def __init__(self, fault: Fault, time_scale: float, abort: Callable[[], None]) -> None:
        self.fault = fault
        self.time_scale = time_scale
        self.abort = abort
        self.done = False

    @classmethod
    def of(cls, fault: Fault | None, time_scale: float, abort: Callable[[], None]) -> StreamFault | None:
        """The stream shaper for ``fault``, or None when the fault does not act on the stream."""
        if fault is None or fault.kind not in ("cut", "stall"):
            return None
        return cls(fault, time_scale, abort)

    async def cut(self, tokens_sent: int) -> bool:
        """Called with the tokens sent so far; True when the stream must end here, without ``[DONE]``.

        A stall sleeps here (the engine keeps generating; its tokens follow in a burst), then
        continues, aborts the request (finish_reason "abort" follows) or cuts.
        """
        if self.done or tokens_sent < self.fault.tokens:
            return False
        self.done = True
        if self.fault.kind == "cut":
            return True
        await asyncio.sleep(self.fault.stall_s / self.time_scale)
        if self.fault.then == "abort":
            self.abort()
        return self.fault.then == "cut"
