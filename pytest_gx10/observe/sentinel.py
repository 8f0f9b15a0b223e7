"""The engine sentinel: is the engine behind the endpoint alive, dead, or hung?

Three kinds of evidence, gathered by a background thread every ``poll_s`` and on demand:

- **health**: ``/health`` answering 503 is vLLM's own word for a dead engine (``EngineDeadError``;
  llama.cpp answers 503 only while it loads, before the sentinel starts);
  a refused or silent ``/health`` twice in a row is death too (the post's cluster: the container stayed
  up, ``/health`` refused connections);
- **the log**: a fatal crash signature of the engine (the adapter's: for vLLM an illegal memory
  access, NCCL watchdog, a Ray worker dying, ``EngineDeadError``, an engine core process gone) is
  death, with the line as the cause;
- **progress**: while requests are running, the engine's progress counter (vLLM's
  ``vllm:generation_tokens_total``, llama.cpp's ``llamacpp:n_decode_total``: the adapter says) or the
  events our own streams receive must move. When neither has moved for ``hung_after_s``, the sentinel sends the greedy canary; if that does not finish within
  ``canary_timeout_s`` while ``/health`` still says 200, the engine is hung (a zombie). With ``work``
  (how long the open requests should take at the deployment's speed) both waits shrink to what the
  requests could need: four times that work, at least ``min_wait_s``, never more than the fixed ones.

A verdict other than alive is sticky: an engine does not come back by itself (a relaunch makes a new
sentinel). The time a verdict gives is when the evidence was first seen: the log line's own time
when the log says it, the wall clock here otherwise. Nothing here imports pytest.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from pytest_gx10.client import EndpointError, VllmClient, open_stream_count, stream_events_seen
from pytest_gx10.observe.logs import FileLogSource, LogLine, LogSource, LogSourceError, parse_lines
from pytest_gx10.observe.prometheus import MetricsError
from pytest_gx10.observe.signatures import Signature

if TYPE_CHECKING:  # the adapters read metrics with this package's parser; the sentinel only asks them
    from pytest_gx10.servers import Server

__all__ = ["EngineState", "Sentinel", "Verdict"]


class EngineState:
    """The sentinel's three answers."""

    ALIVE = "alive"
    DEAD = "dead"
    HUNG = "hung"


@dataclass(frozen=True)
class Verdict:
    """What the sentinel concluded, when it first saw the evidence, and why."""

    state: str
    since: str = ""  # HH:MM:SS
    cause: str = ""

    @property
    def alive(self) -> bool:
        """True unless the engine is dead or hung."""
        return self.state == EngineState.ALIVE

    def line(self) -> str:
        """``engine dead since 16:13:25: CUDA error: an illegal memory access was encountered``."""
        if self.alive:
            return "engine alive"
        return f"engine {self.state} since {self.since}: {self.cause}"

    def as_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {"state": self.state, "since": self.since, "cause": self.cause}


ALIVE = Verdict(EngineState.ALIVE)

# "torch.AcceleratorError: CUDA error: ..." -> "CUDA error: ..."; "vllm.v1...EngineDeadError: X" -> "EngineDeadError: X"
_EXC_PREFIX = re.compile(r"^(?:[a-z_][\w]*\.)+(?=[A-Z]\w*(?:Error|Exception)\b)")
_ERROR_CLASS = re.compile(r"^[A-Z]\w*(?:Error|Exception): (?=\w)")


_PROCESS_TAG = re.compile(r"^\((?:[^()]*)\)\s+")  # "(RayWorkerWrapper pid=7265) " on an unparsed line


def _cause(line: LogLine) -> str:
    text = _EXC_PREFIX.sub("", _PROCESS_TAG.sub("", line.message.strip()))
    if not text.startswith("EngineDeadError"):
        text = _ERROR_CLASS.sub("", text)
    return text[:300]


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


class Sentinel:
    """Watches one endpoint (and its log, when there is one) and keeps a :class:`Verdict`."""

    def __init__(
        self,
        client: VllmClient,
        logs: LogSource | None = None,
        *,
        server: Server | None = None,
        poll_s: float = 1.0,
        hung_after_s: float = 60.0,
        canary_timeout_s: float = 30.0,
        canary: Callable[[VllmClient], object] | None = None,
        on_verdict: Callable[[Verdict], None] | None = None,
        work: Callable[[], float | None] | None = None,
        canary_work_s: float = 0.0,
        min_wait_s: float = 15.0,
    ) -> None:
        self.client = client
        self.logs = logs
        # The engine's adapter: its metrics and crash signatures. Without one, only /health and our
        # own streams speak.
        self.server = server
        self._fatal: tuple[Signature, ...] = server.fatal_signatures if server is not None else ()
        self.poll_s = poll_s
        self.hung_after_s = hung_after_s
        self.canary_timeout_s = canary_timeout_s
        self._canary = canary
        self._on_verdict = on_verdict
        self._work = work
        self.canary_work_s = canary_work_s  # the canary's own work alone, at the deployment's speed
        self.min_wait_s = min_wait_s
        self._lock = threading.Lock()
        self._verdict = ALIVE
        self._log_offset = logs.mark() if logs is not None else 0
        self._failed_health: tuple[str, str] | None = None  # (first seen, what) of a failed /health
        self._health_failures = 0  # in a row
        self._tokens: tuple[float | None, int] | None = None
        self._tokens_moved_at = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the verdict -----------------------------------------------------------------------------------

    @property
    def verdict(self) -> Verdict:
        """The latest verdict (the background thread keeps it fresh)."""
        with self._lock:
            return self._verdict

    def _conclude(self, verdict: Verdict) -> Verdict:
        with self._lock:
            if not self._verdict.alive:
                return self._verdict  # sticky: the first death is the one that counts
            self._verdict = verdict
        if self._on_verdict is not None:
            self._on_verdict(verdict)
        return verdict

    @property
    def suspect(self) -> bool:
        """True when /health failed once and the next poll decides."""
        return self._failed_health is not None

    def poll(self, *, confirm: bool = False) -> Verdict:
        """One round of evidence: the log, /health, then progress. Returns the verdict after it.

        ``confirm`` settles a first failed /health at once (asks again after a short pause) instead
        of at the next tick: for a caller that is about to report a failure and wants the reason.
        """
        if not self.verdict.alive:
            return self.verdict
        fatal = self._read_log()
        if fatal is not None:
            return self._conclude(fatal)
        by_health = self._check_health()
        for _ in range(2):  # settle a suspicion now rather than at the next tick
            if by_health is not None or not (confirm and self.suspect):
                break
            time.sleep(min(self.poll_s, 0.5))
            by_health = self._check_health()
        if by_health is not None:
            return self._conclude(self._prefer_log(by_health))
        hung = self._check_progress()
        if hung is not None:
            return self._conclude(hung)
        return self.verdict

    def _prefer_log(self, verdict: Verdict) -> Verdict:
        """A death seen on /health, explained by the log when it has a fatal line (read once more)."""
        fatal = self._read_log()
        return fatal if fatal is not None else verdict

    def _read_log(self) -> Verdict | None:
        if self.logs is None:
            return None
        try:
            if isinstance(self.logs, FileLogSource):
                lines, self._log_offset = self.logs.follow(self._log_offset)
            else:
                # Mark first: a line written while a slow (ssh) read runs is read twice, not lost.
                mark = self.logs.mark()
                lines = parse_lines(self.logs.text_since(self._log_offset))
                self._log_offset = mark
        except LogSourceError:
            return None  # an unreadable log is no evidence either way; /health still speaks
        for line in lines:
            for sig in self._fatal:
                if sig.search(line.message) or sig.search(line.raw):
                    since = line.time.split(" ")[-1] if line.time else _clock()
                    return Verdict(EngineState.DEAD, since, _cause(line))
        return None

    def _check_health(self) -> Verdict | None:
        try:
            status = self.client.health()
        except EndpointError as exc:
            # Once may be a blip; a refused or dropped connection twice in a row is an engine that has
            # gone. A slow answer is weaker evidence (a server under heavy load): three timeouts in a row.
            if self._failed_health is None:
                self._failed_health = (_clock(), exc.what)
            self._health_failures += 1
            needed = 3 if exc.what.startswith("timed out") else 2
            if self._health_failures < needed:
                return None
            since, what = self._failed_health
            return Verdict(EngineState.DEAD, since, f"/health {what}")
        self._failed_health = None
        self._health_failures = 0
        if status == 503:
            return Verdict(EngineState.DEAD, _clock(), "/health answered 503 (the engine is dead)")
        return None

    def _check_progress(self) -> Verdict | None:
        generated: float | None = None
        running = 0.0
        if self.server is not None and self.server.metric_names.progress is not None:
            try:
                seen = self.server.telemetry(self.client.metrics_text())
            except (EndpointError, MetricsError):
                # No scrape this time (llama.cpp answers /metrics from its busy task queue): the
                # counter is as last seen, not moved; our own streams still speak.
                generated = self._tokens[0] if self._tokens is not None else None
            else:
                generated, running = seen.progress, seen.running or 0.0
        # Progress is the engine's counter or the events our own streams receive, whichever moves.
        tokens = (generated, stream_events_seen())
        # A frozen engine may freeze its own gauges too (0 running, forever), and an engine without
        # metrics has none: our open streams are requests running whatever /metrics says.
        running = max(running, float(open_stream_count()))
        work = self._work() if self._work is not None else None
        now = time.monotonic()
        if tokens != self._tokens or (running == 0 and work is None):
            self._tokens, self._tokens_moved_at = tokens, now
            return None
        if running == 0:
            running = 1.0
        stuck_s = now - self._tokens_moved_at
        hung_after_s, canary_timeout_s = self._waits(work)
        if stuck_s < hung_after_s:
            return None
        if self._canary_finishes(canary_timeout_s):
            self._tokens_moved_at = now
            return None
        return Verdict(
            EngineState.HUNG,
            _clock(),
            f"/health answers 200 but no token was generated for {stuck_s:.0f} s with {running:g} "
            f"request(s) running, and the canary did not finish within {canary_timeout_s:g} s",
        )

    def _waits(self, work: float | None) -> tuple[float, float]:
        """(frozen tokens before the canary, the canary's time): fixed, or sized by the open work."""
        if work is None:
            return self.hung_after_s, self.canary_timeout_s
        hung = min(self.hung_after_s, max(self.min_wait_s, 4 * work))
        canary = min(self.canary_timeout_s, max(self.min_wait_s / 3, 4 * (work + self.canary_work_s)))
        return round(hung, 1), round(canary, 1)

    def _canary_finishes(self, timeout_s: float) -> bool:
        send = self._canary
        if send is None:
            return False
        box: list[bool] = []

        def run() -> None:
            try:
                send(self.client)
                box.append(True)
            except EndpointError:
                box.append(False)

        thread = threading.Thread(target=run, name="gx10-sentinel-canary", daemon=True)
        thread.start()
        thread.join(timeout_s)
        return bool(box and box[0])

    # --- the background thread -------------------------------------------------------------------------

    def start(self) -> Sentinel:
        """Poll every ``poll_s`` on a daemon thread until :meth:`stop` or a verdict other than alive."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="gx10-sentinel", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            if not self.poll().alive:
                return

    def stop(self) -> None:
        """Stop the background thread (a poll in flight finishes first, bounded by the client timeout)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(self.client.timeout_s + self.canary_timeout_s + 1)
