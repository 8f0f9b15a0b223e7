"""What every launcher shares: the wait for /health within a boot budget, progress, free ports.

A launched server is ready when ``GET <url>/health`` answers 200. Until then the wait polls once a
second, asks the launcher whether what it started is still alive, and reports progress (elapsed
time and the last log line) to a callback. A server that exits early, or is not ready within the
budget, raises :class:`LaunchError` naming the URL, what was expected and the tail of its log.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_gx10.launch.target import LaunchError

__all__ = ["BootProgress", "Progress", "cache_dir", "free_port", "last_line", "wait_for_health"]


@dataclass(frozen=True)
class BootProgress:
    """Where a launch is: the phase (``containers``, ``ray``, ``serve``), time spent, last log line."""

    phase: str
    elapsed_s: float
    budget_s: float
    last_line: str


Progress = Callable[[BootProgress], None]


def cache_dir() -> Path:
    """``$GX10_CACHE`` or ``~/.cache/pytest-gx10``: where launchers keep logs and pid files."""
    return Path(os.environ.get("GX10_CACHE") or Path.home() / ".cache" / "pytest-gx10")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


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
    progress: Progress | None = None,
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
