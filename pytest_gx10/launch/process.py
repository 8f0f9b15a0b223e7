"""A recipe of kind ``process``: the server (``vllm serve`` or any entry point) as a local child.

The server runs in its own process group (so stopping it takes its engine processes too), writes
stdout and stderr to a log file that is the run's log source, and carries ``GX10_LAUNCH_RECIPE``
and ``GX10_LAUNCH_RUN`` in its environment, so it can be counted and, after a killed run, found.
A pid file per recipe lets the next launch stop a server an earlier, killed run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import time
from pathlib import Path

from pytest_gx10.launch.boot import (
    BootListener,
    RecipeLauncher,
    cache_dir,
    file_tail,
    free_port,
    stop_process_group,
)
from pytest_gx10.launch.recipes import Recipe, expand
from pytest_gx10.launch.target import LaunchError, Target

__all__ = ["ProcessLauncher", "processes_of"]

RECIPE_ENV = "GX10_LAUNCH_RECIPE"
RUN_ENV = "GX10_LAUNCH_RUN"
# Servers left running on purpose (keep). A later launch in this process that reaps one waits for it
# here; one still running when this process exits is let go on purpose (see _let_go).
_KEPT: list[subprocess.Popen[bytes]] = []


@atexit.register
def _let_go() -> None:
    """A kept server outlives this process by design: say so, so that Python does not warn of it."""
    for proc in _KEPT:
        if proc.poll() is None:
            proc.returncode = 0  # not ours to wait for any more: it runs on for the next run
    _KEPT.clear()


def processes_of(recipe_name: str, run_id: str | None = None) -> list[int]:
    """Pids of live processes launched from this recipe (and run), found by their environment."""
    wanted = f"{RECIPE_ENV}={recipe_name}".encode()
    run = f"{RUN_ENV}={run_id}".encode() if run_id else None
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in environ and (run is None or run in environ):
            pids.append(int(entry.name))
    return sorted(pids)


class ProcessLauncher(RecipeLauncher):
    """Start, watch and stop the server of a ``process`` recipe."""

    def __init__(self, recipe: Recipe, *, run_id: str, keep: bool = False) -> None:
        if recipe.kind != "process":
            raise ValueError(f"recipe {recipe.name} is of kind {recipe.kind!r}, not 'process'")
        self.recipe = recipe
        self.run_id = run_id
        self.keep = keep
        self.run_dir = cache_dir() / "run"
        self.log_path = self.run_dir / f"launch-{recipe.name}.log"
        self.pid_path = self.run_dir / f"launch-{recipe.name}.pid"
        self.url: str | None = None
        self.reaped: list[int] = []
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, progress: BootListener | None = None) -> Target:
        """Start the server and return the target once ``/health`` answers 200."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.reap()
        port = self.recipe.serve.port or free_port()
        env = dict(os.environ)
        env.update({k: expand(v) for k, v in self.recipe.process.environment.items()})
        env[RECIPE_ENV] = self.recipe.name
        env[RUN_ENV] = self.run_id
        argv = self.recipe.serve_argv(port, env)
        self.serve_argv = argv
        host = (
            self.recipe.serve.host if self.recipe.serve.host not in (None, "0.0.0.0", "::") else "127.0.0.1"
        )
        self.url = self.recipe.url or f"http://{host}:{port}"
        cwd = self.recipe.process.cwd
        started = time.perf_counter_ns()
        with self.log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise LaunchError(
                    f"recipe {self.recipe.name} ({self.recipe.path}): cannot run {argv[0]!r}: "
                    f"{exc.strerror or exc}"
                ) from None
        self.pid_path.write_text(f"{self._proc.pid}\n")
        try:
            self._wait_ready(
                self.url,
                what=f"the server of recipe {self.recipe.name} (pid {self._proc.pid}, log {self.log_path})",
                hint=f"; command: {' '.join(argv)[:300]}",
                progress=progress,
                started_ns=started,
            )
        except BaseException:  # KeyboardInterrupt included: never leave a half-started server
            self._stop_now()
            raise
        return Target(
            url=self.url,
            kind="launch",
            description=f"recipe {self.recipe.name}: local process {self._proc.pid} ({' '.join(argv[:3])} ...)",
            log_path=self.log_path,
        )

    def _exited(self) -> str | None:
        if self._proc is None:
            return "was never started"
        code = self._proc.poll()
        if code is None:
            return None
        return f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}"

    def log_tail(self) -> str:
        """The end of the server's log file."""
        return file_tail(self.log_path)

    @property
    def alive(self) -> bool:
        """True while the server process runs."""
        return self._proc is not None and self._proc.poll() is None

    def reap(self) -> list[int]:
        """Stop a server an earlier run of this recipe left (by its pid file and its environment)."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return []
        if pid in processes_of(self.recipe.name):
            kept = next((proc for proc in _KEPT if proc.pid == pid), None)  # kept by this very process
            stop_process_group(pid, self.recipe.process.stop_timeout_s)
            if kept is not None:
                _KEPT.remove(kept)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    kept.wait(5)
            self.reaped.append(pid)
        self.pid_path.unlink(missing_ok=True)
        return self.reaped

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL); with ``keep`` leave it running."""
        if self.keep and self.alive and self._proc is not None:
            _KEPT.append(self._proc)
            self._proc = None
            return
        self._stop_now()

    def _stop_now(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process_group(proc, self.recipe.process.stop_timeout_s)
        self.pid_path.unlink(missing_ok=True)
