"""pytest hooks of the reporting side: HTML extras and summary, Markdown, baselines, redaction.

Registered from :func:`pytest_gx10.plugin.pytest_configure` with :func:`register_reporting`. Only the
controller (or a run without xdist) writes files and compares baselines; figures reach it on the
test reports. The pytest-html hooks are registered only when pytest-html is active, so the plugin
works without it.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections import Counter
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.cells import MatrixReport, matrix_report, tally
from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.figures import Overlay, adopt
from pytest_gx10.launch import LaunchError
from pytest_gx10.profiles import ProfileError
from pytest_gx10.report.baseline import (
    Baseline,
    BaselineError,
    GateResult,
    compare,
    load_baseline,
    profile_gate,
    save_baseline,
)
from pytest_gx10.report.greedy import (
    ANSWER,
    GREEDY_MAX_TOKENS,
    GREEDY_PROMPTS,
    GreedyOutputs,
    collect_greedy,
)
from pytest_gx10.report.history import append_run
from pytest_gx10.report.html import report_title
from pytest_gx10.report.markdown import write_markdown, write_plots_beside
from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.reference import overlays
from pytest_gx10.report.tables import provenance_rows
from pytest_gx10.state import Gx10State, records_of

__all__ = ["Gx10Reporting", "register_reporting"]

_SUITE = re.compile(r"(?:^|/)suites/([^/]+)/")


JSON_PLOTS = ("latency-throughput",)  # written beside --gx10-json as <stem>-<plot>.svg
GATE_NODEID = "gx10::release_gate"  # the release gate's own test, reported after the run's tests


def suite_of(nodeid: str) -> str:
    """``suites/perf`` for a test under suites/perf/, else the test file's directory (or file)."""
    path = nodeid.split("::", 1)[0]
    match = _SUITE.search(path)
    if match:
        return f"suites/{match.group(1)}"
    parent = path.rsplit("/", 1)[0] if "/" in path else path
    return parent


def _records(report: pytest.TestReport) -> list[dict[str, Any]]:
    records = records_of(report)
    for record in records:
        if isinstance(record.get("declared"), dict):
            adopt(record["declared"])  # the HTML hook may see the report before the recorder does
    return records


class Gx10Reporting:
    """Suite verdicts, the Markdown file, the baseline save and gate (controller side)."""

    def __init__(self, config: pytest.Config, state: Gx10State) -> None:
        self.config = config
        self.state = state
        settings = state.settings
        self.redactor = Redactor.for_run(settings.api_key, os.environ)
        state.results.redactor = self.redactor
        self.suites: dict[str, Counter[str]] = {}
        self.gate: GateResult | None = None
        self.saved: Path | None = None
        self.history_entry: Path | None = None
        self.fitted: tuple[bool, str] | None = None  # (written, what to say) for --gx10-fit-twin
        self.saved_after_failures = 0
        self.greedy: GreedyOutputs | None = None  # the gate's
        self.saved_greedy: GreedyOutputs | None = None  # the saved baseline's (answers judged)
        self.baseline: Baseline | None = None
        self.matrix: MatrixReport | None = None
        try:
            tolerances, self.greedy_min = profile_gate(settings.profile)
        except ProfileError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.tolerances = tolerances.with_overrides(settings.tolerance)
        if settings.baseline is not None and not state.is_worker:
            try:
                self.baseline = load_baseline(settings.baseline)
            except BaselineError as exc:
                raise pytest.UsageError(str(exc)) from None
            unknown = self.tolerances.unknown(self.baseline.figures)
            if unknown:
                raise pytest.UsageError("gx10 tolerance: " + "; ".join(unknown))

    # --- per test --------------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count each test's outcome under its suite (a setup error or skip counts once)."""
        if self.state.is_worker or report.nodeid == GATE_NODEID:
            return
        tally(self.suites.setdefault(suite_of(report.nodeid), Counter()), report)

    # --- end of the run --------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """After the tests: greedy outputs, baseline save and gate, Markdown; a regression fails the run.

        The gate counts as one failed test (``session.testsfailed``), so the exit code is 1 and the
        tests' own outcomes are left as they were.
        """
        try:
            return (yield)
        finally:
            if not self.state.is_worker and not session.config.option.collectonly:
                self._finish(session)

    def _finish(self, session: pytest.Session) -> None:
        settings = self.state.settings
        document = self.state.results.document()
        if self.state.matrix is not None:
            self.matrix = matrix_report(document, self.state.matrix, self.tolerances)
        gating = settings.baseline is not None or settings.save_baseline is not None
        if gating and session.testscollected:
            # Held to a baseline saved before answers were judged, the run asks as that baseline's
            # run asked (reasoning+answer); a baseline saved now judges the answers.
            held = self.baseline.greedy if self.baseline is not None else None
            judged = ANSWER if held is None else held.judged
            self.greedy = self._collect_greedy(judged)
            self.saved_greedy = self.greedy
            if settings.save_baseline is not None and judged != ANSWER and self.greedy.error is None:
                self.saved_greedy = self._collect_greedy(ANSWER)
        if settings.save_baseline is not None:
            save_baseline(settings.save_baseline, document, self.saved_greedy, self.redactor)
            self.saved = settings.save_baseline
            self.saved_after_failures = session.testsfailed
        if self.baseline is not None:
            self.gate = compare(
                self.baseline,
                document,
                tolerances=self.tolerances,
                greedy=self.greedy,
                greedy_min=self.greedy_min,
                strict_facts=settings.gate_facts,
            )
            self.state.results.update_meta({"gate": self.gate.as_dict()})
            self.state.results.write()
            self._report_gate(session, self.gate)
        self.write_markdown()
        if settings.json is not None:
            # The one plot a reader of the JSON wants without the Markdown: latency against throughput.
            write_plots_beside(settings.json, self.state.results.document(), JSON_PLOTS, self.redactor)
        if settings.history is not None:
            gate = None if self.gate is None else self.gate.as_dict()
            self.history_entry = append_run(
                settings.history, self.state.results.document(), gate, self.redactor
            )
        if settings.fit_twin is not None:
            self.fitted = self._fit_twin(settings.fit_twin)

    def _fit_twin(self, path: Path) -> tuple[bool, str]:
        """``--gx10-fit-twin``: fit a twin to this run's sweep and open-loop points; a run without any
        (or whose points cannot be fitted) says why and keeps its outcome."""
        from pytest_gx10.fit import FitError, fit_runs, run_from

        document = self.redactor.value(self.state.results.document())
        try:
            fitted = fit_runs([run_from(document, Path("this run"))], name=path.stem)
        except FitError as exc:
            return False, f"no twin fitted: {exc}"
        text = fitted.toml(source="this run (--gx10-fit-twin)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            return False, f"no twin written to {path}: {exc.strerror or exc}"
        fit = fitted.fit
        rms = math.sqrt(fit.sse / max(fit.equations, 1))
        points = sum(len(r.points) for r in fitted.runs)
        unpinned = (
            "; these points do not pin its warm prefill speed down (its header says how far)"
            if fit.unpinned
            else ""
        )
        return True, (
            f"twin fitted to {points} point(s) of this run (rms residual {rms:.1%}) written to {path}; "
            f"serve it with --gx10-fake --gx10-profile={path}{unpinned}"
        )

    def _report_gate(self, session: pytest.Session, gate: GateResult) -> None:
        """The gate as a test of its own, ``gx10::release_gate``: JUnit XML, -rA, pytest-html and the
        exit code see it pass or fail with every regression listed (reported through the controller's
        hooks, so the same under xdist)."""
        nodeid, location = GATE_NODEID, ("gx10", None, "release_gate")
        hook = session.config.hook
        session.testscollected += 1  # one more test ran: the progress counts it, 100 % at the end
        lines = [
            gate.headline,
            f"baseline: {self.redactor.text(gate.baseline.describe())}",
            *gate.regressions,
        ]
        for when in ("setup", "call", "teardown"):
            failed = when == "call" and not gate.passed
            report = pytest.TestReport(
                nodeid=nodeid,
                location=location,
                keywords={"gx10": 1, "release_gate": 1},
                outcome="failed" if failed else "passed",
                longrepr="\n".join(lines) if failed else None,
                when=when,
                sections=[],  # the gate's notes are in the terminal's gate section, once
                duration=0.0,
                start=0.0,
                stop=0.0,
                user_properties=[("gate", json.dumps(gate.as_dict(), default=str))] if when == "call" else [],
            )
            hook.pytest_runtest_logreport(report=report)

    def _collect_greedy(self, judged: str = ANSWER) -> GreedyOutputs:
        settings = self.state.settings
        sentinel = self.state.sentinel
        if sentinel is not None and not sentinel.verdict.alive:
            return GreedyOutputs(GREEDY_PROMPTS, GREEDY_MAX_TOKENS, error=sentinel.verdict.line())
        target = self.state.existing_target
        if target is None:
            if settings.launch is not None or self.state.launch_error is not None:
                # Never boot a deployment at the end of a run (after Ctrl-C, or one no test reached).
                return GreedyOutputs(
                    GREEDY_PROMPTS, GREEDY_MAX_TOKENS, error="the recipe's target is not running"
                )
            try:
                target = self.state.target()
            except LaunchError as exc:
                return GreedyOutputs(GREEDY_PROMPTS, GREEDY_MAX_TOKENS, error=f"no target: {exc}")
        client = VllmClient(
            target.url,
            api_key=settings.api_key,
            timeout_s=max(settings.timeout_s, 60.0),
            model=settings.model,
        )
        try:
            client.served_model()
            return collect_greedy(lambda body: client.complete(body, chat=True), judged=judged)
        except EndpointError as exc:
            return GreedyOutputs(GREEDY_PROMPTS, GREEDY_MAX_TOKENS, error=str(exc))
        finally:
            client.close()

    def write_markdown(self) -> None:
        """Write ``--gx10-markdown`` and its plots beside it (controller only), redacted."""
        path = self.state.settings.markdown
        if path is None or self.state.is_worker:
            return
        document = self.state.results.document()
        write_markdown(
            path,
            document,
            self.redactor,
            facts=self.header_facts(),
            overlays=self.overlays(document),
            title=self.title(document),
            extra=self.matrix.all_tables() if self.matrix is not None else (),
        )

    def overlays(self, document: Mapping[str, Any]) -> list[Overlay]:
        """What the run is drawn and compared against: the baseline's figures, the reference post's."""
        return overlays(document, self.baseline.results if self.baseline is not None else None)

    def title(self, document: Mapping[str, Any]) -> str:
        """The report's title, from the profile."""
        return report_title(document, self.state.settings.profile.description)

    def facts(self) -> list[tuple[str, str]]:
        """(label, value) rows of the run's facts for the report's summary: the deployment first, each
        fact with its source, then the run's own, then the client machine; each fact once."""
        meta: Mapping[str, Any] = self.state.results.meta
        deployment, client = provenance_rows(meta)
        if deployment:
            shown = {"Model", "Server", "Deployment (profile)", "Serve args (profile)"}
            rows = [(label, value) for label, value in deployment]
            rows += [row for row in self._run_rows(meta) if row[0] not in shown]
            return rows + [(label, value) for label, value in client]
        return self._run_rows(meta) + [(label, value) for label, value in client]

    def header_facts(self) -> list[tuple[str, str]]:
        """The run's own rows for the report's header; the deployment and client blocks have tables
        of their own (what the deployment shows is not repeated)."""
        meta: Mapping[str, Any] = self.state.results.meta
        rows = self._run_rows(meta)
        if provenance_rows(meta)[0]:
            shown = {"Model", "Server", "Deployment (profile)", "Serve args (profile)"}
            rows = [row for row in rows if row[0] not in shown]
        return rows

    def _run_rows(self, meta: Mapping[str, Any]) -> list[tuple[str, str]]:
        settings = self.state.settings
        profile = settings.profile
        dep = profile.deployment
        rows: list[tuple[str, str]] = []
        target = meta.get("target_label")
        if target is None:
            target = "twin (embedded)" if settings.use_twin else f"attach {settings.endpoint}"
        rows.append(("Target", f"{target}" + (f" at {meta['target']}" if meta.get("target") else "")))
        rows.append(("Model", str(meta.get("model") or settings.model or dep.served_model_name)))
        rows.append(
            (
                "Server",
                f"{meta.get('server_label') or 'unknown'} {meta.get('server_version') or ''}".strip()
                if meta.get("server")
                else "unknown (no test reached the server)",
            )
        )
        if meta.get("token_counting"):
            rows.append(("Prompt sizes", str(meta["token_counting"])))
        rows.append(
            ("Profile", f"{profile.name}: {profile.description}" if profile.description else profile.name)
        )
        spec = dep.speculative
        rows.append(
            (
                "Deployment (profile)",
                f"TP={dep.tensor_parallel_size}, max_model_len={dep.max_model_len}, max_num_seqs={dep.max_num_seqs}, "
                f"kv_cache_dtype={dep.kv_cache_dtype}, "
                + (f"{spec.method} k={spec.num_speculative_tokens}" if spec else "no speculative decoding"),
            )
        )
        if meta.get("launch_recipe"):
            rows.append(("Launch recipe", str(meta["launch_recipe"])))
        flags = meta.get("serve_flags")
        if flags:
            rows.append(("Serve flags", " ".join(map(str, flags)) if isinstance(flags, list) else str(flags)))
        elif dep.serve_args:
            rows.append(("Serve args (profile)", ", ".join(f"{k}={v}" for k, v in dep.serve_args.items())))
        return rows

    def suite_counts(self) -> dict[str, dict[str, int]]:
        """Outcome counts per suite, in the order suites first ran."""
        return {name: dict(counts) for name, counts in self.suites.items()}

    def gate_summary(self) -> tuple[bool, str, list[str], list[str]] | None:
        """(passed, headline, regressions, warnings) for the report, or None without a baseline."""
        if self.gate is None:
            return None
        return (
            self.gate.passed,
            self.gate.headline,
            self.gate.regressions,
            self.gate.warnings + self.gate.notes,
        )

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The gate's verdict with every regression listed together; where files went."""
        if self.state.is_worker:
            return
        write = terminalreporter.write_line
        if self.matrix is not None:
            terminalreporter.section("gx10 matrix")
            for line in self.matrix.text().splitlines():
                write(self.redactor.text(line))
        if self.gate is not None:
            terminalreporter.section("gx10 release gate", red=not self.gate.passed, green=self.gate.passed)
            write(f"baseline: {self.redactor.text(self.gate.baseline.describe())}")
            for note in self.gate.notes:
                write(self.redactor.text(note))
            for warning in self.gate.warnings:
                write(f"warning: {self.redactor.text(warning)}")
            if self.gate.regressions:
                write(f"FAILED: {self.gate.headline.removeprefix('failed: ')}", red=True, bold=True)
                for line in self.gate.regressions:
                    write(f"  {self.redactor.text(line)}")
            else:
                write(self.gate.headline, green=True)
        if self.saved is not None:
            extra = ""
            saved = self.saved_greedy
            if saved is not None:
                extra = (
                    f" (greedy outputs not collected: {saved.error})"
                    if saved.error
                    else f" with {len(saved.outputs)} greedy outputs"
                )
            if self.saved_after_failures:
                extra += (
                    f"; {self.saved_after_failures} tests failed in this run: their figures may be missing"
                )
            write(f"gx10: baseline saved to {self.saved}{self.redactor.text(extra)}")
        if self.state.settings.markdown is not None:
            write(f"gx10: Markdown tables written to {self.state.settings.markdown}")
        if self.history_entry is not None:
            write(f"gx10: run appended to the history: {self.history_entry}")
        if self.fitted is not None:
            written, line = self.fitted
            write(f"gx10: {self.redactor.text(line)}", yellow=not written)


class Gx10HtmlHooks:
    """pytest-html integration: per-test tables and JSON extras, the summary block, redacted logs."""

    def __init__(self, reporting: Gx10Reporting) -> None:
        self.reporting = reporting
        self._attached: set[str] = set()
        self._report: Any = None  # pytest-html's report data, given at the session's start

    def pytest_html_report_title(self, report: Any) -> None:
        """The page's title and heading say what ran (the profile), not the file's name."""
        self._report = report
        report.title = self.reporting.title(self.reporting.state.results.document())

    def _environment(self) -> dict[str, Any]:
        """pytest-html's environment table (pytest-metadata), taken out of its place above the gx10
        section: the gx10 section shows it once, with the client's facts after the deployment's."""
        data = getattr(self._report, "data", None)
        if not isinstance(data, dict) or not isinstance(data.get("environment"), Mapping):
            return {}
        environment = dict(data["environment"])
        self._report.set_data("environment", {})
        return environment

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Put a test's figures on its report before pytest-html reads it (call phase, else teardown)."""
        from pytest_html import extras

        if self.reporting.state.is_worker or report.nodeid in self._attached:
            return
        if report.when not in ("call", "teardown"):
            return
        # A record of engine facts only (no section) is the run's, shown once in the gx10 section.
        records = [r for r in _records(report) if isinstance(r.get("section"), str) and r.get("entry")]
        if not records:
            return
        self._attached.add(report.nodeid)
        from pytest_gx10.report.html import entry_html

        redactor = self.reporting.redactor
        added = []
        for record in records:
            section, entry = str(record["section"]), record["entry"]
            added.append(extras.html(entry_html(section, entry, redactor)))
            added.append(
                extras.json(redactor.value({"section": section, **entry}), name=f"gx10 {section} figures")
            )
        report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: Any
    ) -> None:
        """The gx10 section, first in the report: the run's facts once, a verdict per suite, the gate,
        each section's plots and tables."""
        from pytest_gx10.report.html import summary_html

        r = self.reporting
        document = r.state.results.document()
        prefix.append(
            summary_html(
                document,
                facts=r.header_facts(),
                suites=r.suite_counts(),
                gate=r.gate_summary(),
                redactor=r.redactor,
                overlays=r.overlays(document),
                environment=self._environment(),
                extra=r.matrix.all_tables() if r.matrix is not None else (),
            )
        )

    def pytest_html_results_table_html(self, report: Any, data: list[str]) -> None:
        """Captured output and tracebacks can quote a secret too: redact them."""
        data[:] = [self.reporting.redactor.text(d) for d in data]


def register_reporting(config: pytest.Config, state: Gx10State) -> Gx10Reporting:
    """Register the reporting hooks (and the pytest-html ones when pytest-html is active)."""
    reporting = Gx10Reporting(config, state)
    config.pluginmanager.register(reporting, "gx10-reporting")
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(Gx10HtmlHooks(reporting), "gx10-html")
    return reporting
