"""The plugin's per-run state, kept in ``config.stash[GX10_STATE]``."""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_gx10.client import VllmClient, abort_open_streams, estimate_work_s, open_work_s, resume_streams
from pytest_gx10.launch import BootProgress, Launcher, LaunchError, Target, TwinLauncher, make_launcher
from pytest_gx10.matrix import Cell
from pytest_gx10.observe import FileLogSource, LogSource, LogSourceError, Sentinel, Verdict, open_log_source
from pytest_gx10.report import ResultsStore, provenance
from pytest_gx10.servers import Server, choose
from pytest_gx10.settings import Settings
from pytest_gx10.tomlfile import dumps
from pytest_gx10.workload import canary

if TYPE_CHECKING:
    from pytest_gx10.cells import MatrixRun

__all__ = ["GX10_STATE", "RECORD_PROPERTY", "Gx10State", "record_property", "records_of", "server_log"]

RECORD_PROPERTY = "gx10"  # the user_properties name under which tests record figures


def record_property(value: Mapping[str, Any]) -> tuple[str, str]:
    """A record as a report's user property: JSON text, so JUnit XML carries JSON, not a repr."""
    return RECORD_PROPERTY, json.dumps(value, default=str)


def records_of(report: pytest.TestReport) -> list[dict[str, Any]]:
    """The records a test put on its report (JSON text, or a mapping from an older writer)."""
    found = []
    for name, value in report.user_properties:
        if name != RECORD_PROPERTY:
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict):
            found.append(value)
    return found


CANARY_BODY = {"prompt": "x" * 400, "max_tokens": 16}  # at least the canary's size, for its deadline


@dataclass
class Gx10State:
    """Everything the plugin knows about this run's target."""

    settings: Settings
    controller_target: Target | None = None  # set on xdist workers: the controller's target
    results: ResultsStore = field(default_factory=ResultsStore)
    is_worker: bool = False
    sentinel: Sentinel | None = None  # watching the target once a test has reached it
    relaunches: list[dict[str, Any]] = field(default_factory=list)
    relaunch_tried: bool = False
    controller_error: str | None = None  # set on xdist workers when the controller's launch failed
    launcher: Launcher | None = None  # what this process started: the twin, a recipe's deployment
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    launch_error: str | None = None  # a failed launch is not retried by every test that needs it
    discovery: dict[str, Any] | None = None  # the profile built from the server (no --gx10-profile)
    server_class: type[Server] | None = None  # the target's adapter, chosen once per run
    matrix: MatrixRun | None = None  # the cells of a matrix run (--gx10-matrix, --gx10-ceiling)
    cell: Cell | None = None  # the matrix cell whose deployment is under test now
    _target: Target | None = field(default=None, repr=False)
    _cell_dir: Path | None = field(default=None, repr=False)  # the cell's profile file for the twin

    @property
    def store(self) -> ResultsStore:
        """Where this process's findings go: the cell's block of the results in a matrix run."""
        return self.results.cell(self.cell.id) if self.cell is not None else self.results

    def enter_cell(self, cell: Cell) -> None:
        """Make ``cell`` the deployment under test: its settings, and nothing of the last cell's.

        Whatever the last cell started is stopped first (its tests are over: pytest tears the
        cell's fixtures down before the next cell's are set up).
        """
        assert self.matrix is not None
        self.leave_cell()
        self.cell = cell
        self.settings = self.matrix.settings[cell.id]
        self.store.update_meta(self.matrix.cell_facts(cell))
        self.store.write()

    def leave_cell(self) -> None:
        """Stop the cell's deployment, record how the cell ended, forget its target."""
        cell = self.cell
        if cell is None:
            return
        assert self.matrix is not None
        outcome = self.matrix.outcome(cell.id)
        if self.launch_error is not None:
            outcome.boot_error = self.launch_error
        if self.sentinel is not None and not (verdict := self.sentinel.verdict).alive:
            outcome.engine = verdict.line()
        self.close()
        self.store.update_meta(self.matrix.end_facts(cell.id))
        self.store.write()
        self.cell = None
        self._target, self.launch_error, self.server_class = None, None, None
        self.relaunch_tried, self.relaunches = False, []
        if self._cell_dir is not None:
            shutil.rmtree(self._cell_dir, ignore_errors=True)
            self._cell_dir = None

    def server_for(self, client: VllmClient) -> Server:
        """The target's adapter bound to ``client``: the one named (``--gx10-server``, the profile's
        ``[server] adapter``, the launched recipe's ``server``), else detected from what the server
        says, once per run.
        """
        if self.server_class is None:
            launch = self.settings.launch
            named = self.settings.server or (launch.server if launch is not None else None)
            self.server_class = type(choose(client, named))
        return self.server_class(client)

    @property
    def existing_target(self) -> Target | None:
        """The target if this process has started or attached it already; never starts one."""
        return self._target

    def target(self) -> Target:
        """The run's one target; starts the embedded twin or the recipe's deployment on first use."""
        if self._target is not None:
            return self._target
        if self.controller_target is not None:
            self._target = self.controller_target
        elif self.is_worker and self.settings.launch is not None:
            # Only the controller launches; a worker never starts (or reaps) a deployment of its own.
            raise LaunchError(self.controller_error or "the xdist controller did not launch the recipe")
        elif (launcher := self._new_launcher()) is not None:
            if self.launch_error is not None:
                raise LaunchError(self.launch_error)
            _stop_on_sigterm()
            try:
                self._target = launcher.start(_progress_printer())
            except LaunchError as exc:
                self.launch_error = str(exc)
                raise
            self.launcher = launcher
            self._note_launch()
        else:
            assert self.settings.endpoint is not None
            self._target = Target(
                url=self.settings.endpoint, kind="attach", description=f"attached to {self.settings.endpoint}"
            )
        return self._target

    def _note_launch(self) -> None:
        """The launcher's facts (image, its id and digests, the serve command) into the results'
        deployment block: only the process that launched knows them."""
        if self.launcher is not None:
            found = provenance.recipe_facts(self.launcher.facts())
            if found:
                self.store.update_meta({"deployment": provenance.facts_of("recipe", found)})

    def deployment(self, target: Target, server: Server, model: str) -> dict[str, Any]:
        """The deployment block this process can gather: what the server says, its boot log, the
        profile (and, for the twin, that it is one). The launch's facts join it in the results."""
        twin = target.kind == "twin"
        observed = provenance.TWIN if twin else "server"
        block = provenance.facts_of("profile", provenance.profile_facts(self.settings.profile))
        if "engine_config_log" in server.offers:
            source = self.log_source(target)
            if source is not None:
                try:
                    text = source.text()
                except Exception:  # a log that cannot be read here is the gx10_logs fixture's to report
                    text = ""
                found = provenance.log_facts(text)
                block = provenance.merge(
                    block, provenance.facts_of(provenance.TWIN if twin else "log", found)
                )
        block = provenance.merge(block, provenance.facts_of(observed, server.deployment_facts(model)))
        if twin:
            name = self.settings.profile.name
            note = (
                f"pytest-gx10's embedded vLLM twin of profile {name}: no GPU; the GPU facts are the profile's"
            )
            block = provenance.merge(block, provenance.facts_of(provenance.TWIN, {"twin": note}))
        return block

    def _new_launcher(self) -> Launcher | None:
        """What starts this run's target: the embedded twin, a recipe's launcher, or None (attach)."""
        if self.settings.use_twin:
            return TwinLauncher(self._twin_profile_path(), api_key=self.settings.api_key)
        if self.settings.launch is not None:
            return make_launcher(self.settings.launch, run_id=self.run_id, keep=self.settings.keep)
        return None

    def _twin_profile_path(self) -> str:
        """The profile file the twin serves: the profile's own, or a matrix cell's written out."""
        profile = self.settings.profile
        if profile.path.is_file():
            return str(profile.path)
        if self._cell_dir is None:
            self._cell_dir = Path(tempfile.mkdtemp(prefix="gx10-cell-"))
        path = self._cell_dir / "profile.toml"
        cell = f" for matrix cell {self.cell.id}" if self.cell is not None else ""
        path.write_text(dumps(dict(profile.raw), header=f"{profile.path}{cell}, written by pytest-gx10"))
        return str(path)

    # --- the engine sentinel ------------------------------------------------------------------------

    def log_source(self, target: Target) -> LogSource | None:
        """``--gx10-logs``, else the log of the twin or launched server, else None."""
        try:
            return server_log(self.settings.logs, lambda: target)
        except LogSourceError:
            return None  # the gx10_logs fixture reports it; the sentinel goes by /health alone

    @property
    def speed(self) -> tuple[float, float] | None:
        """(prefill tok/s, decode tok/s) one request alone gets, when the profile says or discovery measured.

        A profile's ``[twin]`` table describes the deployment's speed (a twin of it runs at that
        speed); a profile without one says nothing about speed, and the waits stay fixed. Its
        ``speed_factor`` (an effect's ``speed``) slows or speeds both.
        """
        profile = self.settings.profile
        if "twin" not in profile.raw or "prefill_tps" not in profile.raw["twin"]:
            return None
        factor = profile.twin.speed_factor
        return profile.twin.prefill_tps * factor, profile.twin.decode_tps * factor

    def watch(self, target: Target) -> Sentinel:
        """Start the sentinel on the target (once per process); it aborts open streams on a verdict."""
        if self.sentinel is None:
            settings, crash = self.settings, self.settings.profile.crash
            client = VllmClient(target.url, api_key=settings.api_key, timeout_s=settings.timeout_s)
            # The canary has its own client: it may wait behind a long prefill for canary_timeout_s.
            canary_client = VllmClient(
                target.url, api_key=settings.api_key, timeout_s=crash.canary_timeout_s, model=settings.model
            )

            def on_verdict(verdict: Verdict) -> None:
                if not verdict.alive:
                    abort_open_streams(verdict.line())

            speed = self.speed
            self.sentinel = Sentinel(
                client,
                self.log_source(target),
                server=self.server_for(client),
                poll_s=crash.poll_s,
                hung_after_s=crash.hung_after_s,
                canary_timeout_s=crash.canary_timeout_s,
                canary=lambda _client: canary(canary_client),
                on_verdict=on_verdict,
                # Knowing the deployment's speed, wait only as long as the open requests could need.
                work=open_work_s if speed is not None else None,
                canary_work_s=sum(estimate_work_s(CANARY_BODY, speed)) if speed is not None else 0.0,
            ).start()
        return self.sentinel

    @property
    def can_relaunch(self) -> bool:
        """True when --gx10-relaunch-on-crash is on, this process started the target, and has not yet."""
        return self.settings.relaunch_on_crash and self.launcher is not None and not self.relaunch_tried

    def relaunch(self, verdict: Verdict) -> Target:
        """Start the target again after ``verdict``, on the URL it had; recorded in the results."""
        assert self.launcher is not None
        self.relaunch_tried = True  # once, even when it fails: a later test must not boot it again
        if self.sentinel is not None:
            self.sentinel.stop()
            self.sentinel = None
        self._target = self.launcher.relaunch(_progress_printer())
        self._note_launch()
        self.relaunches.append(
            {"at": datetime.now().strftime("%H:%M:%S"), "after": verdict.as_dict(), "url": self._target.url}
        )
        self.store.update_meta({"relaunches": self.relaunches})
        self.store.write()
        resume_streams()
        self.watch(self._target)
        return self._target

    def close(self) -> None:
        """Stop whatever this process started; its verdict stops aborting this process's streams."""
        if self.sentinel is not None:
            self.sentinel.stop()
            self.sentinel = None
            resume_streams()  # another run in this process (pytester) has a target of its own
        if self.launcher is not None:
            launcher, self.launcher = self.launcher, None
            kept = launcher.keep and launcher.alive  # not a deployment whose relaunch failed
            launcher.stop()
            if kept and self._target is not None and sys.__stderr__ is not None:
                sys.__stderr__.write(
                    f"gx10: --gx10-keep: {self._target.description} left running at {self._target.url}\n"
                )


def server_log(logs: str | None, target: Callable[[], Target]) -> LogSource | None:
    """The server's log: ``logs`` (``--gx10-logs``), else the log of the twin or launched server.

    ``target`` is asked only without ``logs``. None when there is no log (an attached endpoint);
    raises :class:`LogSourceError` saying which of the two could not be opened.
    """
    if logs:
        try:
            return open_log_source(logs)
        except LogSourceError as exc:
            raise LogSourceError(f"--gx10-logs: {exc}") from None
    found = target()
    if found.log_uri is not None:
        try:
            return open_log_source(found.log_uri)
        except LogSourceError as exc:
            raise LogSourceError(f"log of the launched target: {exc}") from None
    return FileLogSource(found.log_path) if found.log_path is not None else None


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
