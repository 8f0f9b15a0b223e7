"""What every launcher shares: the :class:`Launcher` interface, the wait for /health within a boot
budget, progress, free ports, the stop of a process group.

A launched server is ready when ``GET <url>/health`` answers 200. Until then the wait polls once a
second, asks the launcher whether what it started is still alive, and reports progress (elapsed
time and the last log line) to a callback. A server that exits early, or is not ready within the
budget, raises :class:`LaunchError` naming the URL, what was expected and the tail of its log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_gx10.launch.recipes import Recipe
from pytest_gx10.launch.target import LaunchError, Target

__all__ = [
    "BootListener",
    "BootProgress",
    "Launcher",
    "RecipeLauncher",
    "cache_dir",
    "file_tail",
    "free_port",
    "last_line",
    "stop_process_group",
    "wait_for_health",
]


@dataclass(frozen=True)
class BootProgress:
    """Where a launch is: the phase (``containers``, ``ray``, ``serve``), time spent, last log line."""

    phase: str
    elapsed_s: float
    budget_s: float
    last_line: str


BootListener = Callable[[BootProgress], None]


class Launcher(ABC):
    """One way to start, watch and stop the run's target: the embedded twin, a process, containers.

    The run holds one launcher. It starts it once, may relaunch it once after a crash (on the URL
    it had, so the run's clients keep theirs), and stops it at the end.
    """

    keep: bool = False  # leave the deployment running at stop (--gx10-keep)
    url: str | None = None  # the endpoint, once started

    @abstractmethod
    def start(self, progress: BootListener | None = None) -> Target:
        """Start the deployment; return its target once it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Tear it down, unless ``keep``; stopping what is stopped does nothing."""

    @property
    @abstractmethod
    def alive(self) -> bool:
        """True while what was started runs."""

    @abstractmethod
    def log_tail(self) -> str:
        """The end of the server's log: the context of a launch error, the line progress shows."""

    @abstractmethod
    def _use_port(self, port: int) -> None:
        """Listen on ``port`` at the next start (the one the target had)."""

    def facts(self) -> dict[str, Any]:
        """What this launcher knows of the deployment it started (none by default)."""
        return {}

    def relaunch(self, progress: BootListener | None = None) -> Target:
        """Stop it, kept or not, and start it again on the URL it had; return the new target.

        ``--gx10-keep`` keeps a healthy deployment, not a dead one: the stop tears it down whatever
        ``keep`` says, and ``keep`` holds again for the new one.
        """
        keep, self.keep = self.keep, False
        try:
            self.stop()
        finally:
            self.keep = keep
        port = urlsplit(self.url).port if self.url else None
        if port is not None:
            self._use_port(port)
        return self.start(progress)


class RecipeLauncher(Launcher):
    """A launcher of a recipe (a local process, containers): its server is ready when
    ``GET <url><health_path>`` answers 200 within the recipe's boot budget.
    """

    recipe: Recipe
    serve_argv: list[str] | None = None  # the server's command line as started (None before start)

    def facts(self) -> dict[str, Any]:
        """The recipe's kind and name, its nodes, Ray, and the server's command line as started
        (``serve_argv``, unredacted: whoever writes it out redacts it)."""
        recipe = self.recipe
        facts: dict[str, Any] = {"launch": f"{recipe.kind} recipe {recipe.name}"}
        if recipe.kind == "docker":
            facts["nodes"] = len(recipe.nodes)
            facts["ray"] = recipe.ray is not None
        if self.serve_argv is not None:
            facts["serve_argv"] = list(self.serve_argv)
        return facts

    @abstractmethod
    def _exited(self) -> str | None:
        """None while the server runs, else how it ended (``exited with status 3``)."""

    def _wait_ready(
        self, url: str, *, what: str, hint: str, progress: BootListener | None, started_ns: int
    ) -> None:
        """Wait for /health (see :func:`wait_for_health`); ``what`` and ``hint`` name the server."""
        wait_for_health(
            url,
            what=what,
            health_path=self.recipe.health_path,
            budget_s=self.recipe.boot_budget_s,
            exited=self._exited,
            log_tail=self.log_tail,
            progress=progress,
            started_ns=started_ns,
            hint=hint,
        )

    def _use_port(self, port: int) -> None:
        if self.recipe.url is None:  # a recipe that names its URL keeps it
            self.recipe = replace(self.recipe, serve=replace(self.recipe.serve, port=port))


def cache_dir() -> Path:
    """``$GX10_CACHE`` or ``~/.cache/pytest-gx10``: where launchers keep logs and pid files."""
    return Path(os.environ.get("GX10_CACHE") or Path.home() / ".cache" / "pytest-gx10")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def file_tail(path: Path, max_bytes: int = 16384) -> str:
    """The last ``max_bytes`` of a log file, decoded leniently; empty when it cannot be read."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def stop_process_group(process: subprocess.Popen[Any] | int, grace_s: float) -> None:
    """Stop the process group ``process`` leads: SIGTERM, SIGKILL after ``grace_s``, then wait.

    Returns once the group is gone (or 5 s after the SIGKILL). A child of ours (a ``Popen``) is
    waited for too, so no zombie stays; a bare pid is a group an earlier run left. The group is
    stopped even when its leader has exited: what the leader started (an engine) may still run.
    """
    pid = process if isinstance(process, int) else process.pid
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.05)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    if not isinstance(process, int):
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _group_alive(pgid: int) -> bool:
    if not _group_exists(pgid):
        return False
    # A zombie leader still counts as a group member; reaped children of ours are handled by wait().
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    return _group_exists(pgid)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: it exists
    return True


def last_line(text: str) -> str:
    """The last non-empty line of a log tail (progress shows it)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:200]
    return ""


def _health_status(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"


def wait_for_health(
    url: str,
    *,
    what: str,
    health_path: str,
    budget_s: float,
    exited: Callable[[], str | None],
    log_tail: Callable[[], str],
    progress: BootListener | None = None,
    started_ns: int | None = None,
    hint: str = "",
) -> float:
    """Poll ``url + health_path`` until 200; return the seconds it took from ``started_ns``.

    ``exited()`` returns a description (``exited with status 3``) once the server is gone, else None.
    Raises :class:`LaunchError` on an early exit or when ``budget_s`` runs out.
    """
    start = time.perf_counter_ns() if started_ns is None else started_ns
    health = url.rstrip("/") + health_path
    last = "no answer yet"
    while True:
        elapsed_s = (time.perf_counter_ns() - start) / 1e9
        last = _health_status(health)
        if last == "200":
            return elapsed_s
        gone = exited()
        if gone is not None:
            raise LaunchError(
                f"{what} {gone} after {elapsed_s:.0f} s, before GET {health} answered 200"
                f"{hint}; last lines of its log:\n{_tail(log_tail)}"
            )
        if elapsed_s >= budget_s:
            raise LaunchError(
                f"{what} did not answer GET {health} with 200 within the boot budget of {budget_s:g} s "
                f"(last answer: {last}){hint}; last lines of its log:\n{_tail(log_tail)}"
            )
        if progress is not None:
            progress(BootProgress("serve", elapsed_s, budget_s, last_line(_safe(log_tail))))
        time.sleep(min(1.0, max(0.05, budget_s - elapsed_s)))


def _safe(log_tail: Callable[[], str]) -> str:
    try:
        return log_tail()
    except Exception as exc:  # a log that cannot be read must not hide the launch's own error
        return f"(log unreadable: {type(exc).__name__}: {exc})"


def _tail(log_tail: Callable[[], str], lines: int = 30) -> str:
    text = _safe(log_tail)
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join("    " + line for line in tail) if tail else "    (the log is empty)"
