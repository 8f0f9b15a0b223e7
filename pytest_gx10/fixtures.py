"""Fixtures of pytest-gx10: thin views of the plugin state, in three layers.

Settings fixtures (``gx10_settings``, ``gx10_profile``) may be overridden in a conftest; the
session-scoped ``gx10_target`` starts or attaches once and checks the endpoint answers like an
OpenAI-compatible server; ``gx10_client``, ``gx10_server`` (the engine's adapter: token counts,
version, metrics) and ``gx10_model`` build on it. When the target cannot be reached every test that
needs it errors at once with one line naming the URL and what happened.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.figures import declaration_data
from pytest_gx10.launch import LaunchError, Target
from pytest_gx10.load.saturation import SaturationPlan
from pytest_gx10.matrix import Cell
from pytest_gx10.observe import LogSource, LogSourceError
from pytest_gx10.observe.sentinel import ALIVE, Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.report import provenance
from pytest_gx10.servers import NotOffered, Server
from pytest_gx10.settings import Settings
from pytest_gx10.state import GX10_STATE, record_property, server_log

__all__ = [
    "gx10_cell",
    "gx10_client",
    "gx10_logs",
    "gx10_model",
    "gx10_note_deployment",
    "gx10_profile",
    "gx10_progress",
    "gx10_record",
    "gx10_run_facts",
    "gx10_saturation",
    "gx10_server",
    "gx10_settings",
    "gx10_target",
]


@pytest.fixture(scope="session")
def gx10_cell(request: pytest.FixtureRequest) -> Iterator[Cell | None]:
    """The matrix cell under test (``--gx10-matrix``, ``--gx10-ceiling``), None in a run of one deployment.

    Parametrized with the cells, it makes every test that reaches the target run once per cell; pytest
    runs a cell's tests together, and its teardown stops the cell's deployment before the next starts.
    """
    cell: Cell | None = getattr(request, "param", None)
    if cell is None:
        yield None
        return
    state = request.config.stash[GX10_STATE]
    state.enter_cell(cell)
    try:
        yield cell
    finally:
        state.leave_cell()


@pytest.fixture(scope="session")
def gx10_settings(pytestconfig: pytest.Config, gx10_cell: Cell | None) -> Settings:
    """The resolved gx10 settings (CLI > env > ini > profile > default); a matrix cell's own."""
    return pytestconfig.stash[GX10_STATE].settings


@pytest.fixture(scope="session")
def gx10_profile(gx10_settings: Settings) -> Profile:
    """The deployment profile the run holds the target to."""
    return gx10_settings.profile


@pytest.fixture(scope="session")
def gx10_target(pytestconfig: pytest.Config, gx10_settings: Settings) -> Target:
    """The run's one target, started or attached once and checked to answer like an OpenAI server.

    Fails (each test that uses it errors with the same one line) when the endpoint is refused,
    times out, answers with an HTTP error or is not an OpenAI-compatible API.
    """
    state = pytestconfig.stash[GX10_STATE]
    try:
        target = state.target()
    except LaunchError as exc:
        pytest.fail(f"gx10 target did not start: {exc}", pytrace=False)
    probe = VllmClient(target.url, api_key=gx10_settings.api_key, timeout_s=gx10_settings.timeout_s)
    try:
        probe.models()
    except EndpointError as exc:
        hint = "" if target.kind != "attach" else " (check --gx10-endpoint)"
        pytest.fail(f"gx10 endpoint {exc}{hint}", pytrace=False)
    finally:
        probe.close()
    state.watch(target)  # the engine sentinel: from now on a dead or hung engine fails tests fast
    return target


@pytest.fixture(scope="session")
def gx10_client(
    pytestconfig: pytest.Config, gx10_target: Target, gx10_settings: Settings
) -> Iterator[VllmClient]:
    """A client of the target, bound to the model under test."""
    client = VllmClient(
        gx10_target.url,
        api_key=gx10_settings.api_key,
        timeout_s=gx10_settings.timeout_s,
        model=gx10_settings.model,
        speed=pytestconfig.stash[GX10_STATE].speed,  # its streams tell the sentinel their work
        virtual_time=gx10_target.kind == "twin",  # the embedded twin stamps its streams in virtual time
    )
    try:
        client.served_model()
    except EndpointError as exc:
        client.close()
        pytest.fail(f"gx10 endpoint {exc}", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="session")
def gx10_server(pytestconfig: pytest.Config, gx10_client: VllmClient) -> Server:
    """The target's engine adapter, bound to ``gx10_client``: token counts, version, metrics' meaning.

    Named by ``--gx10-server`` or the profile's ``[server] adapter``, else detected from what the
    server says. A check that needs a fact the engine does not give skips naming it
    (:class:`pytest_gx10.servers.NotOffered`).
    """
    return pytestconfig.stash[GX10_STATE].server_for(gx10_client)


@pytest.fixture(scope="session")
def gx10_model(gx10_client: VllmClient) -> str:
    """The served model name under test (``--gx10-model``, or the only one the server lists)."""
    return gx10_client.served_model()


@pytest.fixture(scope="session")
def gx10_run_facts(
    pytestconfig: pytest.Config,
    gx10_target: Target,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_settings: Settings,
) -> dict[str, Any]:
    """Facts about this run that every results file carries: target, server, model, profile, version,
    and the ``deployment`` block (each fact with its source: server, log, profile; the twin's own)."""
    try:
        version: str | None = gx10_server.version()
    except (EndpointError, NotOffered):
        version = None
    try:
        time_scale = gx10_client.time_scale()
    except EndpointError:
        time_scale = 1.0
    state = pytestconfig.stash[GX10_STATE]
    return {
        "cell": state.cell.id if state.cell is not None else None,
        "target_label": f"twin, time scale {time_scale:g}"
        if gx10_target.kind == "twin"
        else gx10_target.kind,
        "time_scale": time_scale,
        "target": gx10_target.url,
        "target_kind": gx10_target.kind,
        "target_description": gx10_target.description,
        "model": gx10_client.served_model(),
        "profile": gx10_settings.profile.name,
        "workload": gx10_settings.workload_facts(),
        **gx10_server.facts(),
        "server_version": version,
        "deployment": state.deployment(gx10_target, gx10_server, gx10_client.served_model()),
    }


Recorder = Callable[[str, Mapping[str, Any]], None]


@pytest.fixture
def gx10_record(request: pytest.FixtureRequest, gx10_run_facts: dict[str, Any]) -> Recorder:
    """``gx10_record(section, entry)`` puts figures on this test's report.

    They travel with the report (to the xdist controller too) and land in ``--gx10-json`` even when
    the test then fails. The section's declaration (:mod:`pytest_gx10.figures`) travels with them,
    so a controller that never imported the suite knows the figures' labels, units and directions.
    """

    def record(section: str, entry: Mapping[str, Any]) -> None:
        value = {
            "section": section,
            "entry": dict(entry),
            "meta": gx10_run_facts,
            "declared": declaration_data(section),
        }
        request.node.user_properties.append(record_property(value))

    return record


@pytest.fixture
def gx10_note_deployment(request: pytest.FixtureRequest) -> Callable[[str, Mapping[str, Any]], None]:
    """``gx10_note_deployment(source, facts)`` adds deployment facts a test found to the results.

    ``source`` says where they come from (``image`` for what the image suite found inside the
    image); they join the results' ``deployment`` block, a more direct source's facts winning. It
    needs no target: the image suite probes an image without launching it.
    """

    def note(source: str, facts: Mapping[str, Any]) -> None:
        block = provenance.facts_of(source, facts)
        if block:
            record = {"section": None, "entry": None, "meta": {"deployment": block}}
            request.node.user_properties.append(record_property(record))

    return note


@pytest.fixture
def gx10_engine(pytestconfig: pytest.Config, gx10_target: Target) -> Callable[[], Verdict]:
    """``gx10_engine()`` is the engine sentinel's verdict now (alive, dead or hung, since when, why).

    It asks the server again rather than waiting for the next tick, so a test can say whether the
    engine outlived what it just did; with no sentinel watching it is always alive.
    """

    def verdict() -> Verdict:
        sentinel = pytestconfig.stash[GX10_STATE].sentinel
        return ALIVE if sentinel is None else sentinel.poll(confirm=True)

    return verdict


@pytest.fixture(scope="session")
def gx10_saturation(gx10_settings: Settings) -> SaturationPlan:
    """The saturation search ``--gx10-saturate`` asks for: mode, attainment target, bounds, limits.

    A test asking for it is collected only with ``--gx10-saturate`` (which then leaves the perf
    suite's plain points out). Override it in a conftest to search other bounds.
    """
    return gx10_settings.saturation_plan()


@pytest.fixture
def gx10_progress(pytestconfig: pytest.Config) -> Iterator[Callable[[str], None]]:
    """``gx10_progress(text)`` shows a live status line on a terminal; silent otherwise.

    The line is drawn with the output capture suspended and erased before the test ends, so pytest's
    own output is never garbled; when stderr is not a terminal (CI logs, pipes) nothing is written.
    """
    stream = sys.__stderr__
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    live = stream is not None and stream.isatty() and capture is not None
    drawn = False

    def show(text: str) -> None:
        nonlocal drawn
        if not live or stream is None:
            return
        with capture.global_and_fixture_disabled():
            # Save the cursor, clear to the end of the line, draw, restore: pytest's own text on
            # the line stays, and its next character lands where it would have.
            stream.write("\x1b7\x1b[K " + text[:70] + "\x1b8")
            stream.flush()
        drawn = True

    yield show
    if drawn and stream is not None:
        with capture.global_and_fixture_disabled():
            stream.write("\x1b[K")
            stream.flush()


NO_LOG_SOURCE = "no log source: pass --gx10-logs=docker://NAME or file:///path"


@pytest.fixture(scope="session")
def gx10_logs(request: pytest.FixtureRequest, gx10_settings: Settings) -> LogSource:
    """The server's log: ``--gx10-logs``, else the log of the twin or launched server.

    Skips, naming the option, when attached to an endpoint without ``--gx10-logs``; a malformed
    ``--gx10-logs`` fails every test that uses it with the reason.
    """
    try:
        source = server_log(gx10_settings.logs, lambda: request.getfixturevalue("gx10_target"))
    except LogSourceError as exc:
        pytest.fail(str(exc), pytrace=False)
    if source is None:
        pytest.skip(NO_LOG_SOURCE)
    return source
