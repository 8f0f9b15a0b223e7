"""pytest hooks of pytest-gx10: options, configuration, the report header, xdist wiring.

State lives in ``config.stash[GX10_STATE]``; fixtures (in :mod:`pytest_gx10.fixtures`) are thin
views of it. Under pytest-xdist the controller owns the one target and hands its URL to workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import pytest

from pytest_gx10 import hooks
from pytest_gx10.cells import CELL_FIXTURE, MatrixRun, plan_matrix, run_ceiling
from pytest_gx10.config import ConfigError
from pytest_gx10.discover import discover, profile_toml
from pytest_gx10.errors import Gx10Warning
from pytest_gx10.figures import adopt, declaration_data
from pytest_gx10.launch import LaunchError, Target
from pytest_gx10.load.points import PointStatus
from pytest_gx10.matrix import Cell
from pytest_gx10.observe import LogSourceError, open_log_source
from pytest_gx10.profiles import ProfileError, profile_from_data
from pytest_gx10.report import ResultsStore, provenance
from pytest_gx10.report.session import register_reporting
from pytest_gx10.report.terminal import summary_lines
from pytest_gx10.servers import (
    NotOffered,
    UnknownServer,
    adapter_class,
    load_entry_points,
    register,
)
from pytest_gx10.servers import reset as reset_servers
from pytest_gx10.settings import SETTINGS, Settings, resolve_settings
from pytest_gx10.state import GX10_STATE, Gx10State, record_property, records_of

__all__ = ["GX10_STATE", "Gx10State", "Gx10Warning"]

pytest_plugins = ["pytest_gx10.fixtures"]

_WORKER_ENDPOINT = "gx10_target_url"
_WORKER_TARGET = "gx10_target_description"
_WORKER_KIND = "gx10_target_kind"
_WORKER_LOGS = "gx10_target_logs"
_WORKER_ERROR = "gx10_target_error"
_WORKER_LOAD_LOCK = "gx10_load_lock"
_WORKER_DISCOVERY = "gx10_discovery"

LOAD_MARK = "gx10_load"
SWEEP_SECTION = "sweep"  # the section sweep points record into (suites/perf), keyed by concurrency
_MARKERS = (
    f"{LOAD_MARK}: a load test (a sweep point, the crash load, a needle, the speculative-decoding "
    "window); under pytest-xdist it never runs beside another, whatever --dist says",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``gx10`` option group; every option is also a GX10_* variable and a gx10_* ini key."""
    group = parser.getgroup("gx10", "pytest-gx10: test a served LLM deployment")
    for spec in SETTINGS:
        # argparse %-formats option help: a literal percent sign must be doubled.
        help_text = f"{spec.help} (env {spec.env}, ini {spec.ini})".replace("%", "%%")
        if spec.is_flag:
            group.addoption(
                spec.option, action="store_true", default=None, dest=f"gx10_{spec.name}", help=help_text
            )
        else:
            group.addoption(
                spec.option,
                action="append" if spec.repeatable else "store",
                default=None,
                dest=f"gx10_{spec.name}",
                metavar=spec.metavar or None,
                help=help_text,
            )
        parser.addini(spec.ini, help=spec.help, default=None)


def _settings(
    config: pytest.Config, discovered: Mapping[str, Any] | None = None, cell: Cell | None = None
) -> Settings:
    cli = {spec.name: config.getoption(f"gx10_{spec.name}") for spec in SETTINGS}
    ini = {spec.name: config.getini(spec.ini) for spec in SETTINGS}
    try:
        profile = None
        if discovered is not None:
            profile = profile_from_data(discovered["source"], discovered["data"])
        return resolve_settings(cli, os.environ, ini, discovered=profile, cell=cell)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None


def _discover(settings: Settings) -> dict[str, Any]:
    """Ask the attached server for its profile (once, in the controller); JSON-ready for workers."""
    assert settings.endpoint is not None
    logs = None
    if settings.logs:
        with contextlib.suppress(LogSourceError):
            logs = open_log_source(settings.logs)
    found = discover(
        settings.endpoint,
        api_key=settings.api_key,
        model=settings.model,
        timeout_s=settings.timeout_s,
        logs=logs,
        server=settings.server,
    )
    return {
        "source": f"discovered from {settings.endpoint}",
        "data": found.data,
        "line": found.line(),
        "unknown": found.unknown,
        "measured": found.measured,
        "error": found.error,
    }


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """The hooks other plugins implement: pytest_gx10_server_adapters."""
    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings once; a bad profile or value stops the run before any test."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    # Installed packages' adapters first, then the hooks': pluggy answers the latest registered plugin
    # first, so reversed, a conftest's adapter replaces an installed plugin's of the same name.
    load_entry_points()
    for adapters in reversed(config.hook.pytest_gx10_server_adapters()):
        register(adapters)
    settings = _settings(config)
    if settings.server:
        try:
            adapter_class(settings.server)
        except UnknownServer as exc:
            raise pytest.UsageError(f"gx10 server ({settings.sources['server']}): {exc}") from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    discovery: dict[str, Any] | None = None
    if workerinput is not None:
        discovery = workerinput.get(_WORKER_DISCOVERY)
    elif settings.discovers:
        discovery = _discover(settings)
    if discovery is not None:
        settings = _settings(config, discovery)
    state = Gx10State(
        settings=settings, results=ResultsStore(settings.json), is_worker=workerinput is not None
    )
    if workerinput is not None and workerinput.get(_WORKER_ENDPOINT):
        state.controller_target = Target(
            url=workerinput[_WORKER_ENDPOINT],
            kind=workerinput.get(_WORKER_KIND, "controller"),  # the results say "twin" the same with -n 2
            description=workerinput.get(_WORKER_TARGET, ""),
            log_uri=workerinput.get(_WORKER_LOGS),
        )
    elif workerinput is not None:
        state.controller_error = workerinput.get(_WORKER_ERROR)
    state.discovery = discovery
    state.matrix = plan_matrix(
        settings,
        lambda cell: _settings(config, discovery, cell),
        xdist_workers=bool(getattr(config.option, "numprocesses", None)) or workerinput is not None,
        attach=not settings.use_twin and settings.launch is None,
    )
    if workerinput is None:
        state.results.update_meta({"client": provenance.client_facts()})  # the machine running the client
    config.stash[GX10_STATE] = state
    if workerinput is not None and workerinput.get(_WORKER_LOAD_LOCK):
        config.pluginmanager.register(_LoadLock(Path(workerinput[_WORKER_LOAD_LOCK])), "gx10-load-lock")
    config.pluginmanager.register(_ResultsCollector(state), "gx10-recorder")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "gx10-xdist")
    register_reporting(config, state)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the twin (or anything else this process started); forget the run's adapters."""
    state = config.stash.get(GX10_STATE, None)
    if state is not None:
        state.close()
    reset_servers()  # another run in this process (pytester) registers its own


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Target, model, profile and timeout, each with where it came from, when a gx10 setting is given.

    A session that sets nothing of ours hears from us only if it collects a test that uses our
    fixtures (see :func:`pytest_collection_finish`).
    """
    state = config.stash.get(GX10_STATE, None)
    if state is None or not state.settings.explicit:
        return []
    return _header_lines(state)


def pytest_collection_finish(session: pytest.Session) -> None:
    """No gx10 setting, but tests that use the target: say what they will run against."""
    state = session.config.stash.get(GX10_STATE, None)
    if state is None or state.is_worker or state.settings.explicit:
        return
    if any(_uses_gx10(item) for item in session.items):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            for line in _header_lines(state):
                reporter.write_line(line)


# Non-destructive first: what may kill or wedge an engine (the crash load, bad inputs) runs last.
SUITE_ORDER = ("health", "image", "mtp", "perf", "needle", "crash", "robustness")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the shipped suites' tests in :data:`SUITE_ORDER`, however the paths were given.

    Only the places the suites' tests occupy are reordered (stably); any other test keeps its place.
    The load mode (``--gx10-load-mode``) picks the perf suite's points: the burst sweep's in the
    burst mode, the sustained ones in the others; the points of the other mode are not collected.
    With ``--gx10-saturate`` the search (a test asking for ``gx10_saturation``) takes their place.
    """
    state = config.stash.get(GX10_STATE, None)
    if state is not None:
        s = state.settings
        items[:] = [item for item in items if _mode_asks_for(item, s.load_mode, saturate=s.saturate)]

    def rank(item: pytest.Item) -> int | None:
        suite = suite_of(Path(str(item.path)).resolve())
        if suite is None:
            return None
        return SUITE_ORDER.index(suite) if suite in SUITE_ORDER else len(SUITE_ORDER)

    ranked = [(i, r) for i, item in enumerate(items) if (r := rank(item)) is not None]
    ordered = [items[i] for i, _ in sorted(ranked, key=lambda pair: pair[1])]  # stable: ties keep order
    for (i, _), item in zip(ranked, ordered, strict=True):
        items[i] = item
    if state is not None and state.matrix is not None:
        _group_by_cell(items, state.matrix)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A ceiling search that found its answer exits 0 when its only failures are the cells above it:
    finding where the deployment fails is what the search is for. Any other failure still fails."""
    state = session.config.stash.get(GX10_STATE, None)
    matrix = state.matrix if state is not None else None
    if matrix is None or matrix.search is None or exitstatus != pytest.ExitCode.TESTS_FAILED:
        return
    if matrix.above_ceiling_failures() == session.testsfailed:
        session.exitstatus = pytest.ExitCode.OK


def _group_by_cell(items: list[pytest.Item], matrix: MatrixRun) -> None:
    """A matrix run's tests, cell by cell in the matrix's order (each cell in the suites' order);
    the tests of no cell first. pytest would group them by the session-scoped cell too, but not
    across the suites' order."""
    order = {cell.id: i for i, cell in enumerate(matrix.cells)}
    matrix.cell_of.clear()
    for item in items:
        cell = getattr(getattr(item, "callspec", None), "params", {}).get(CELL_FIXTURE)
        if cell is not None:
            matrix.cell_of[item.nodeid] = cell.id
    keyed = sorted(
        enumerate(items), key=lambda pair: (order.get(matrix.cell_of.get(pair[1].nodeid, ""), -1), pair[0])
    )
    items[:] = [item for _, item in keyed]


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """``--gx10-ceiling``: run the cells the search walks to, in its order; else pytest's own loop."""
    state = session.config.stash.get(GX10_STATE, None)
    if state is None or state.matrix is None or state.matrix.ceiling is None:
        return None
    if session.config.option.collectonly:
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} error(s) during collection")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")

    def write(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    result = run_ceiling(session, state.matrix, write)
    state.results.update_meta({"ceiling": result.as_entry()})
    state.results.write()
    return True


def suite_of(path: Path) -> str | None:
    """The shipped suite a test file belongs to (``perf``), or None for any other file."""
    from pytest_gx10 import suites_dirs

    for d in suites_dirs():
        if d in path.parents:
            return path.relative_to(d).parts[0]
    return None


def _uses_gx10(item: pytest.Item) -> bool:
    return any(name.startswith("gx10_") for name in getattr(item, "fixturenames", ()))


def _header_lines(state: Gx10State) -> list[str]:
    s = state.settings
    if s.use_twin:
        why = "--gx10-fake" if s.fake else "no --gx10-endpoint"
        target = (
            f"embedded twin of profile {s.profile.name} (twin, time scale {s.profile.twin.time_scale:g}) "
            f"on a free loopback port [{why}]"
        )
    elif s.launch is not None:
        target = f"launched from {s.describe('launch')}" + (", kept running after the run" if s.keep else "")
    else:
        target = s.describe("endpoint")
    model = s.describe("model") if s.model else f"the only served model [{s.sources['model']}]"
    profile = s.describe("profile")
    if state.discovery is not None:
        profile = f"{state.discovery['line']} [{s.sources['profile']}]"
    if s.server:
        server = s.describe("server")
    elif s.launch is not None:
        server = f"{s.launch.server} [recipe {s.launch.name}]"
    elif s.use_twin:
        server = "vllm (the twin speaks vLLM) [detected]"
    else:
        server = "detected from what the server says, at the first test [default]"
    lines = [
        f"gx10 target: {target}",
        f"gx10 server: {server}",
        f"gx10 model: {model}",
        f"gx10 profile: {profile}",
        f"gx10 timeout: {s.timeout_s:g} s [{s.sources['timeout']}]; api key: {s.describe('api_key')}",
    ]
    deployment = _deployment_line(s)
    if deployment is not None:
        lines.append(f"gx10 deployment: {deployment}")
    if s.repeat != 1:
        lines.append(
            f"gx10 repeat: each sweep point {s.repeat} times, figures are medians [{s.sources['repeat']}]"
        )
    if s.saturate:
        plan = s.saturation_plan()
        lines.append(
            f"gx10 saturate: highest {plan.mode} with {plan.target:.0%} SLO attainment, "
            f"{plan.level_text(plan.low)} to {plan.level_text(plan.high)} ({plan.bounds_from}), "
            f"at most {plan.max_steps} probes [{s.sources['saturate']}]"
        )
    if state.discovery is not None:
        lines += [f"gx10 not discovered: {what}" for what in state.discovery["unknown"]]
    if state.matrix is not None:
        lines.append(f"gx10 matrix: {state.matrix.describe()}")
    return lines


def _deployment_line(s: Settings) -> str | None:
    """What the deployment runs on, as known before any test: the profile's word, the recipe's image.

    Only when that says something (GPUs, driver, CUDA, image); the twin is named as standing in.
    """
    block = provenance.facts_of("profile", provenance.profile_facts(s.profile))
    if s.launch is not None and s.launch.docker is not None:
        block = provenance.merge(block, provenance.facts_of("recipe", {"image": s.launch.docker.image}))
    line = provenance.deployment_line(block)
    if line is None or not s.use_twin:
        return line
    return f"the twin stands in for {line}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that asks for ``gx10_concurrency`` runs once per sweep point (N=1, N=2, ...), one that
    asks for ``gx10_load_level`` once per sustained point (a rate, or N in flight); the load mode
    keeps only its own (:func:`pytest_collection_modifyitems`). In a matrix run, every test that
    reaches the target (through ``gx10_settings``) runs once per cell."""
    state = metafunc.config.stash.get(GX10_STATE, None)
    if state is not None and state.matrix is not None and CELL_FIXTURE in metafunc.fixturenames:
        cells = state.matrix.cells
        metafunc.parametrize(CELL_FIXTURE, cells, ids=[c.id for c in cells], indirect=True, scope="session")
    if not {"gx10_concurrency", "gx10_load_level"} & set(metafunc.fixturenames):
        return
    settings = metafunc.config.stash[GX10_STATE].settings
    if "gx10_concurrency" in metafunc.fixturenames:
        points = settings.concurrency
        metafunc.parametrize("gx10_concurrency", points, ids=[f"N={n}" for n in points])
    if "gx10_load_level" in metafunc.fixturenames:
        # A sustained point per level: N in flight (concurrency mode) or R arrivals a second (rate mode).
        if settings.load_mode == "rate":
            metafunc.parametrize("gx10_load_level", settings.rate, ids=[f"rate={r:g}" for r in settings.rate])
        else:
            levels = settings.concurrency
            metafunc.parametrize("gx10_load_level", levels, ids=[f"concurrency={n}" for n in levels])


def _mode_asks_for(item: pytest.Item, load_mode: str, *, saturate: bool = False) -> bool:
    """False for a burst sweep point outside the burst mode, and a sustained point inside it.

    With ``saturate`` the search's probes are the load points: the plain points (the sweep's, the
    sustained ones) are not collected, the search's test (asking for ``gx10_saturation``) is; without
    it, the search's test is not collected.
    """
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "gx10_saturation" in getattr(item, "fixturenames", ()):
        return saturate
    if "gx10_concurrency" in params:
        return load_mode == "burst" and not saturate
    if "gx10_load_level" in params:
        return load_mode != "burst" and not saturate
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail fast: once the engine is dead or hung, a test that needs it errors at once, in one line.

    With ``--gx10-relaunch-on-crash`` a target this run started is started again once instead.
    """
    state = item.config.stash.get(GX10_STATE, None)
    if state is None or state.sentinel is None or "gx10_target" not in getattr(item, "fixturenames", ()):
        return
    verdict = state.sentinel.verdict
    if verdict.alive and state.sentinel.suspect:
        verdict = state.sentinel.poll(confirm=True)
    if verdict.alive:
        return
    if state.can_relaunch:
        try:
            state.relaunch(verdict)
            return
        except LaunchError as exc:
            pytest.fail(f"{verdict.line()}; the relaunch failed: {exc}", pytrace=False)
    pytest.fail(verdict.line(), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A test that fails while the engine dies says so first: the verdict leads its message."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(NotOffered) and report.when != "teardown":
        # A check that needs a fact the engine does not give skips, naming the fact and the engine.
        report.outcome = "skipped"
        report.longrepr = (str(item.path), (item.location[1] or 0) + 1, f"Skipped: {call.excinfo.value}")
        return
    state = item.config.stash.get(GX10_STATE, None)
    if state is None or state.sentinel is None or report.when == "teardown" or not report.failed:
        return  # a setup failure counts too: a module fixture that met the dead engine
    verdict = state.sentinel.poll(
        confirm=True
    )  # now, not at the next tick: the failure may be the first sign
    if verdict.alive:
        return
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None and verdict.line() not in crash.message:
        crash.message = f"{verdict.line()} | {crash.message}"
    report.sections.append(("gx10 engine", verdict.line()))
    report.user_properties.append(
        record_property({"section": None, "entry": None, "meta": {"engine": verdict.as_dict()}})
    )
    params = getattr(getattr(item, "callspec", None), "params", {})
    if report.when == "setup" and "gx10_concurrency" in params:
        # A sweep point the dead engine kept from starting: a row that says so, as the post's N=16.
        entry = {
            "concurrency": params["gx10_concurrency"],
            "status": PointStatus.NOT_ATTEMPTED,
            "why": verdict.line(),
        }
        report.user_properties.append(
            record_property(
                {"section": SWEEP_SECTION, "entry": entry, "declared": declaration_data(SWEEP_SECTION)}
            )
        )


class _ResultsCollector:
    """Folds the figures tests put on their reports into the results (controller side only)."""

    def __init__(self, state: Gx10State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every gx10 record on a report lands in the results file, whatever the test's outcome."""
        if self.state.is_worker:
            return  # the controller sees the same report and writes
        matrix = self.state.matrix
        if matrix is not None:
            matrix.count(report)
        for value in records_of(report):
            if isinstance(value.get("declared"), dict):
                adopt(value["declared"])  # under xdist: the worker's declaration of the section
            meta = value.get("meta") or {}
            store = self.state.results
            if matrix is not None:  # a cell's record goes in its block (its facts name it, else the cell now)
                cell_id = meta.get("cell") or matrix.cell_of.get(report.nodeid)
                store = store.cell(cell_id) if cell_id else self.state.store
            store.update_meta(meta)
            if value.get("section") is not None:
                store.add(value["section"], value["entry"])
            else:
                store.write()  # facts only (the engine's verdict)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the figures went; write the profile --gx10-write-profile asked for."""
        if self.state.is_worker:
            return
        lines = [] if self.state.settings.no_summary else summary_lines(self.state.results.document())
        if lines:
            terminalreporter.section("gx10")
            redact = self.state.results.redactor
            for line in lines:
                terminalreporter.write_line(redact.text(line) if redact is not None else line)
        path = self.state.results.path
        if path is not None and any(self.state.results.sections.values()):
            terminalreporter.write_line(f"gx10: figures written to {path}")
        target = self.state.settings.write_profile
        if target is not None:
            terminalreporter.write_line(f"gx10: {self._write_profile(target)}")

    def _write_profile(self, path: Path) -> str:
        settings, discovery = self.state.settings, self.state.discovery
        if discovery is not None and discovery["error"]:
            return f"profile not written to {path}: the server could not be asked ({discovery['error']})"
        data = discovery["data"] if discovery is not None else settings.profile.raw
        source = settings.endpoint or settings.profile.name
        margin = settings.write_margin
        text = profile_toml(
            data, self.state.results.sections, margin=margin, source=source, needle_seed=settings.needle_seed
        )
        try:
            profile_from_data(str(path), tomllib.loads(text))  # never write what a run cannot read
        except (ProfileError, tomllib.TOMLDecodeError) as exc:
            return f"profile not written to {path}: {exc}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        floors = sum(1 for line in text.splitlines() if line.startswith("[perf.floors."))
        return (
            f"profile written to {path} ({floors} sweep points with floors {margin:.0%} under this run); "
            f"gate a later run with --gx10-profile={path}"
        )


class _XdistHooks:
    """Registered only when pytest-xdist is present (its hooks are unknown otherwise)."""

    def __init__(self, state: Gx10State) -> None:
        self.state = state
        self.lock_dir: Path | None = None

    def pytest_configure_node(self, node: Any) -> None:
        """Controller side: start or attach the one target, hand its URL to the worker.

        Only in a session that is ours (a gx10 setting given, or the shipped suites among its
        paths): an unrelated project run with ``-n 2`` starts nothing.
        """
        if self.lock_dir is None:
            self.lock_dir = Path(tempfile.mkdtemp(prefix="gx10-xdist-"))
        node.workerinput[_WORKER_LOAD_LOCK] = str(self.lock_dir / "load.lock")
        node.workerinput[_WORKER_DISCOVERY] = self.state.discovery  # one discovery for every worker
        if not (self.state.settings.explicit or _names_our_suites(node.config)):
            return
        try:
            target = self.state.target()
        except LaunchError as exc:
            node.workerinput[_WORKER_ERROR] = str(exc)  # each worker reports it, never launches its own
            return
        node.workerinput[_WORKER_ENDPOINT] = target.url
        node.workerinput[_WORKER_TARGET] = target.description
        node.workerinput[_WORKER_KIND] = target.kind
        node.workerinput[_WORKER_LOGS] = target.log_uri or (
            target.log_path.as_uri() if target.log_path is not None else None
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Under ``--dist load`` (plain ``-n N``) or ``loadgroup``: the suites on one worker, in order."""
        if config.getvalue("dist") not in ("load", "loadgroup"):
            return None  # loadscope and loadfile keep a module together; the load lock does the rest
        from pytest_gx10.xdist_scheduling import SuitesScheduling

        return SuitesScheduling(
            config, log, is_suite=lambda path: suite_of(path) is not None, arguments=argument_paths(config)
        )

    def pytest_unconfigure(self) -> None:
        """Remove the load lock's directory."""
        if self.lock_dir is not None:
            shutil.rmtree(self.lock_dir, ignore_errors=True)


def argument_paths(config: pytest.Config) -> list[Path]:
    """The run's collection arguments as paths: a path from the invocation directory, a ``--pyargs``
    name of the shipped suites (``pytest_gx10.suites.perf``) as the file or folder it names in each
    suites folder, found without importing anything."""
    from pytest_gx10 import suites_dirs

    paths = []
    for arg in config.args:
        name = str(arg).split("::", 1)[0]
        if name == "pytest_gx10.suites" or name.startswith("pytest_gx10.suites."):
            for d in suites_dirs():
                named = d.joinpath(*name.split(".")[2:])
                paths.append(named if named.exists() else named.with_suffix(".py"))
        else:
            paths.append((Path(config.invocation_params.dir) / name).resolve())
    return paths


def _names_our_suites(config: pytest.Config) -> bool:
    """True when the run's arguments point into the shipped suites (a path or ``--pyargs``)."""
    from pytest_gx10 import suites_dirs

    return any(p == d or d in p.parents for p in argument_paths(config) for d in suites_dirs())


class _LoadLock:
    """Worker side: a load test holds a lock shared by every worker of the run from setup to teardown.

    Under plain ``-n N`` the scheduler (:mod:`pytest_gx10.xdist_scheduling`) already keeps the suites
    on one worker; other modes (worksteal, each, loadscope with a second suite on another worker) and
    a user's own ``gx10_load`` tests could still run two at once, so the lock is what keeps them apart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: IO[bytes] | None = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Take the lock before any fixture of a load test runs (a wait is not measured)."""
        if item.get_closest_marker(LOAD_MARK) is not None and self._held is None:
            self._held = self.path.open("ab")
            fcntl.flock(self._held, fcntl.LOCK_EX)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        """Release it after the test's fixtures are torn down."""
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(held, fcntl.LOCK_UN)
            held.close()
