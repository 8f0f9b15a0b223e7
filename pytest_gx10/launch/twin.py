"""The embedded twin as a launcher: ``python -m pytest_gx10.fake`` as a child process.

The twin runs in its own process rather than a thread of the test process: the load generator and
the server must not share a GIL (that would skew every latency we measure), and a process gives
the twin a log file that the plugin reads as a log source exactly as it would read vLLM's. It is
never kept after the run (``--exit-with-parent``): ``--gx10-keep`` is for launched deployments.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pytest_gx10.launch.boot import BootListener, Launcher, file_tail, stop_process_group
from pytest_gx10.launch.target import LaunchError, Target

__all__ = ["TwinLauncher"]


class TwinLauncher(Launcher):
    """The twin of a profile on a loopback port (a free one by default), stopped with its group."""

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
        self.keep = False
        self.url: str | None = None
        self.log_path: Path | None = None
        self.banner = ""
        self._api_key = api_key
        self._log_dir = log_dir
        self._own_dir: Path | None = None  # a temporary log directory we made, removed at stop
        self._proc: subprocess.Popen[str] | None = None

    def start(self, progress: BootListener | None = None) -> Target:
        """Start the twin; return its target once it listens (it says so in its first line).

        The twin is up within a second or two, so there is no progress to show.
        """
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
            # Still silent, perhaps: kill it so that its output can be read to the end.
            stop_process_group(self._proc, grace_s=0.0)
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
        return Target(url=self.url, kind="twin", description=self.banner, log_path=self.log_path)

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

    def log_tail(self) -> str:
        """The end of the twin's log file."""
        return file_tail(self.log_path) if self.log_path is not None else ""

    def _use_port(self, port: int) -> None:
        self.port = port

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop the twin's whole process group: SIGTERM, then SIGKILL after ``grace_s``."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process_group(proc, grace_s)
        if proc.stdout is not None:
            proc.stdout.close()
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir = None
