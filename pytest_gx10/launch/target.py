"""The one target of a run, and the embedded twin started as a child process.

The twin runs in its own process rather than a thread of the test process: the load generator and
the server must not share a GIL (that would skew every latency we measure), and a process gives
the twin a log file that the plugin reads as a log source exactly as it would read vLLM's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LaunchError", "Target", "TwinProcess"]


class LaunchError(RuntimeError):
    """A target could not be started: names what was expected and the tail of its log."""


@dataclass(frozen=True)
class Target:
    """Where the run's requests go and what stands behind that URL."""

    url: str
    kind: str  # "attach" | "twin" | "launch" | "controller"
    description: str
    log_path: Path | None = None
    log_uri: str | None = None  # a log source URI (docker://NAME[@ssh://...]) when not a local file


class TwinProcess:
    """``python -m pytest_gx10.fake`` on a loopback port (a free one by default), stopped with its group."""

    def __init__(
        self,
        profile: str,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float | None = None,
        log_dir: Path | None = None,
        boot_timeout_s: float = 60.0,
    ) -> None:
        self.profile = profile
        self.host = host
        self.port = port
        self.time_scale = time_scale
        self.boot_timeout_s = boot_timeout_s
        self._api_key = api_key
        self._log_dir = log_dir
        self._own_dir: Path | None = None  # a temporary log directory we made, removed at stop
        self._proc: subprocess.Popen[str] | None = None
        self.url: str | None = None
        self.log_path: Path | None = None
        self.banner = ""

    def start(self) -> str:
        """Start the twin and return its URL once it listens."""
        log_dir = self._log_dir
        if log_dir is None:
            log_dir = self._own_dir = Path(tempfile.mkdtemp(prefix="gx10-twin-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "twin-server.log"
        argv = [
            sys.executable,
            "-m",
            "pytest_gx10.fake",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--profile",
            self.profile,
            "--log-file",
            str(self.log_path),
            "--exit-with-parent",
        ]
        if self.time_scale is not None:
            argv += ["--time-scale", repr(self.time_scale)]
        env = dict(os.environ)
        env.pop("GX10_API_KEY", None)
        if self._api_key:
            env["GX10_API_KEY"] = self._api_key  # by environment: argv is visible to every user
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
        line = self._first_line()
        if " at http" not in line:
            assert self._proc is not None
            if self._proc.poll() is None:  # still silent: kill it so its output can be read to the end
                _signal_group(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
            tail = self._drain()
            self.stop()
            raise LaunchError(
                f"the embedded twin ({' '.join(argv[1:5])} ...) did not announce its URL "
                f"within {self.boot_timeout_s:g} s; it printed: {(line + tail)[-2000:]!r}"
            )
        self.banner = line.strip()
        self.url = line.strip().rsplit(" at ", 1)[1]
        # Keep draining stdout so the child never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        return self.url

    def _first_line(self) -> str:
        stdout = self._proc.stdout if self._proc is not None else None
        if stdout is None:
            return ""
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.boot_timeout_s)
        return box[0] if box else ""

    def _drain(self) -> str:
        if self._proc is None or self._proc.stdout is None:
            return ""
        try:
            return self._proc.stdout.read() or ""
        except (OSError, ValueError):
            return ""

    @property
    def alive(self) -> bool:
        """True while the child runs."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the twin's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)
