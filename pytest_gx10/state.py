"""The plugin's per-run state, kept in ``config.stash[GX10_STATE]``."""

from __future__ import annotations

import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from pytest_gx10.launch import BootProgress, Launcher, LaunchError, Target, TwinProcess, make_launcher
from pytest_gx10.report import ResultsStore
from pytest_gx10.settings import Settings

__all__ = ["GX10_STATE", "RECORD_PROPERTY", "Gx10State"]

RECORD_PROPERTY = "gx10"  # the user_properties name under which tests record figures


@dataclass
class Gx10State:
    """Everything the plugin knows about this run's target."""

    settings: Settings
    controller_target: Target | None = None  # set on xdist workers: the controller's target
    twin: TwinProcess | None = None
    results: ResultsStore = field(default_factory=ResultsStore)
    is_worker: bool = False
    controller_error: str | None = None  # set on xdist workers when the controller's launch failed
    launcher: Launcher | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    launch_error: str | None = None  # a failed launch is not retried by every test that needs it
    _target: Target | None = field(default=None, repr=False)

    def target(self) -> Target:
        """The run's one target; starts the embedded twin on first use when it is the target."""
        if self._target is not None:
            return self._target
        if self.controller_target is not None:
            self._target = self.controller_target
        elif self.is_worker and self.settings.launch is not None:
            # Only the controller launches; a worker never starts (or reaps) a deployment of its own.
            raise LaunchError(self.controller_error or "the xdist controller did not launch the recipe")
        elif self.settings.use_twin:
            profile = self.settings.profile
            self.twin = TwinProcess(str(profile.path), api_key=self.settings.api_key)
            try:
                url = self.twin.start()
            except LaunchError:
                self.twin = None
                raise
            self._target = Target(
                url=url, kind="twin", description=self.twin.banner, log_path=self.twin.log_path
            )
        elif self.settings.launch is not None:
            if self.launch_error is not None:
                raise LaunchError(self.launch_error)
            self.launcher = make_launcher(self.settings.launch, run_id=self.run_id, keep=self.settings.keep)
            _stop_on_sigterm()
            try:
                self._target = self.launcher.start(_progress_printer())
            except LaunchError as exc:
                self.launch_error = str(exc)
                self.launcher = None
                raise
        else:
            assert self.settings.endpoint is not None
            self._target = Target(
                url=self.settings.endpoint, kind="attach", description=f"attached to {self.settings.endpoint}"
            )
        return self._target

    def close(self) -> None:
        """Stop whatever this process started."""
        if self.twin is not None:
            self.twin.stop()
            self.twin = None
        if self.launcher is not None:
            launcher, self.launcher = self.launcher, None
            launcher.stop()
            if launcher.keep and self._target is not None and sys.__stderr__ is not None:
                sys.__stderr__.write(
                    f"gx10: --gx10-keep: {self._target.description} left running at {self._target.url}\n"
                )


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run as Ctrl-C does, so the launched deployment is torn down, not orphaned."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, interrupt)


def _progress_printer(every_s: float = 15.0) -> Any:
    """A progress callback that writes one line to the real stderr every ``every_s`` of a long boot."""
    last = time.monotonic()

    def show(p: BootProgress) -> None:
        nonlocal last
        if time.monotonic() - last < every_s or sys.__stderr__ is None:
            return
        last = time.monotonic()
        sys.__stderr__.write(
            f"gx10 launch [{p.phase}] {p.elapsed_s:.0f} s of {p.budget_s:g} s: {p.last_line[:120]}\n"
        )
        sys.__stderr__.flush()

    return show


GX10_STATE = pytest.StashKey[Gx10State]()
