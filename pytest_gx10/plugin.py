"""pytest hooks of pytest-gx10: options, configuration, the report header, xdist wiring.

State lives in ``config.stash[GX10_STATE]``; fixtures (in :mod:`pytest_gx10.fixtures`) are thin
views of it. Under pytest-xdist the controller owns the one target and hands its URL to workers.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_gx10.launch import LaunchError, Target
from pytest_gx10.profiles import ProfileError
from pytest_gx10.report import ResultsStore
from pytest_gx10.reporting import register_reporting
from pytest_gx10.settings import SETTINGS, Settings, SettingsError, resolve_settings
from pytest_gx10.state import GX10_STATE, RECORD_PROPERTY, Gx10State

__all__ = ["GX10_STATE", "Gx10State", "Gx10Warning"]

pytest_plugins = ["pytest_gx10.fixtures"]

_WORKER_ENDPOINT = "gx10_target_url"
_WORKER_TARGET = "gx10_target_description"
_WORKER_KIND = "gx10_target_kind"
_WORKER_LOGS = "gx10_target_logs"
_WORKER_ERROR = "gx10_target_error"


class Gx10Warning(pytest.PytestWarning):
    """Something about the target a user should know, that does not fail a test."""


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``gx10`` option group; every option is also a GX10_* variable and a gx10_* ini key."""
    group = parser.getgroup("gx10", "pytest-gx10: test a served LLM deployment")
    for spec in SETTINGS:
        help_text = f"{spec.help} (env {spec.env}, ini {spec.ini})"
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


def _settings(config: pytest.Config) -> Settings:
    cli = {spec.name: config.getoption(f"gx10_{spec.name}") for spec in SETTINGS}
    ini = {spec.name: config.getini(spec.ini) for spec in SETTINGS}
    try:
        return resolve_settings(cli, os.environ, ini)
    except (ProfileError, SettingsError) as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_configure(config: pytest.Config) -> None:
    """Resolve the settings once; a bad profile or value stops the run before any test."""
    settings = _settings(config)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
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
    config.stash[GX10_STATE] = state
    config.pluginmanager.register(_Recorder(state), "gx10-recorder")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(state), "gx10-xdist")
    register_reporting(config, state)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop the twin (or anything else this process started)."""
    state = config.stash.get(GX10_STATE, None)
    if state is not None:
        state.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Target, model, profile and timeout, each with where it came from."""
    state = config.stash.get(GX10_STATE, None)
    if state is None:
        return []
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
    return [
        f"gx10 target: {target}",
        f"gx10 model: {model}",
        f"gx10 profile: {s.describe('profile')}",
        f"gx10 timeout: {s.timeout_s:g} s [{s.sources['timeout']}]; api key: {s.describe('api_key')}",
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that asks for ``gx10_concurrency`` runs once per sweep point (N=1, N=2, ...)."""
    if "gx10_concurrency" in metafunc.fixturenames:
        points = metafunc.config.stash[GX10_STATE].settings.concurrency
        metafunc.parametrize("gx10_concurrency", points, ids=[f"N={n}" for n in points])


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
        (RECORD_PROPERTY, {"section": None, "entry": None, "meta": {"engine": verdict.as_dict()}})
    )


class _Recorder:
    """Folds the figures tests put on their reports into the results (controller side only)."""

    def __init__(self, state: Gx10State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Every gx10 record on a report lands in the results file, whatever the test's outcome."""
        if self.state.is_worker:
            return  # the controller sees the same report and writes
        for name, value in report.user_properties:
            if name == RECORD_PROPERTY and isinstance(value, dict):
                self.state.results.update_meta(value.get("meta", {}))
                if value.get("section") is not None:
                    self.state.results.add(value["section"], value["entry"])
                else:
                    self.state.results.write()  # facts only (the engine's verdict)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Say where the figures went."""
        path = self.state.results.path
        if path is not None and not self.state.is_worker and any(self.state.results.sections.values()):
            terminalreporter.write_line(f"gx10: figures written to {path}")


class _XdistHooks:
    """Registered only when pytest-xdist is present (its hooks are unknown otherwise)."""

    def __init__(self, state: Gx10State) -> None:
        self.state = state

    def pytest_configure_node(self, node: Any) -> None:
        """Controller side: start or attach the one target, hand its URL to the worker."""
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
