"""Baselines: every figure of a run saved with its software, deployment and client facts, and a later
run held to it.

A figure is gated when its declaration (:mod:`pytest_gx10.figures`, written by the suite that
measures it) gives it a direction: better higher (rates), better lower (times) or must stay true (a
needle retrieved). It is a regression when it moves the wrong way by more than its tolerance
(default 10 %, overridden per figure name or per figure id), when the baseline has it and the new
run does not (a point that crashed), and, for greedy outputs, when the exact-match rate falls below
``greedy_match_min``. Tail figures (declared ``tail``: TTFT and inter-token percentiles) are kept
and gated only when given a tolerance of their own. A baseline file keeps the declarations of its
figures, so a later run is held to the directions it was saved with. Every regression is listed
together. The deployment's facts (:mod:`pytest_gx10.report.provenance`: GPU, server build, image
and digest, flags) and the client machine's are compared too, and each difference is noted. This
module imports nothing from pytest.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_gx10.config import parse_tolerance, parse_tolerances
from pytest_gx10.figures import HIGHER, LOWER, TRUE, Figure, Section, declared, sections_in
from pytest_gx10.load.repeats import Spread, beyond_noise, noise_words
from pytest_gx10.profiles import Profile, ProfileError
from pytest_gx10.report.greedy import ANSWER, LEGACY, GreedyMatch, GreedyOutputs, match_greedy
from pytest_gx10.report.provenance import (
    BUILD_FACTS,
    SETUP_FACTS,
    client_differences,
    client_facts,
    deployment_differences,
)
from pytest_gx10.report.redact import Redactor

__all__ = [
    "BASELINE_FORMAT",
    "BASELINE_VERSION",
    "DEFAULT_GREEDY_MATCH_MIN",
    "DEFAULT_TOLERANCE",
    "Baseline",
    "BaselineError",
    "GateResult",
    "Tolerances",
    "client_facts",
    "compare",
    "figure_of",
    "figures",
    "load_baseline",
    "parse_tolerance",
    "parse_tolerances",
    "profile_gate",
    "run_facts",
    "save_baseline",
    "software_facts",
    "spreads",
]

BASELINE_FORMAT = "pytest-gx10-baseline"
BASELINE_VERSION = 1
DEFAULT_TOLERANCE = 0.10
DEFAULT_GREEDY_MATCH_MIN = 0.8

# Facts that, when they differ, make the comparison one of different things: a warning, not a failure.
COMPARED_FACTS = ("model", "profile", "target_kind", "time_scale")


class BaselineError(ValueError):
    """A baseline file or tolerance that cannot be used; the message names it and the problem."""


def figures(document: Mapping[str, Any]) -> dict[str, Any]:
    """Every gated figure of a results document by id (``sweep[N=8].agg_decode_tps``).

    Only declared figures with a direction count; per-request rows and counts stay out, and a
    figure declared ``each`` (per-position rates) gives one id per position. An entry that says
    ``"gated": false`` stays out whole (a saturation probe: its level is wherever the search went).
    """
    out: dict[str, Any] = {}
    for name, section, entries in sections_in(document):
        if section is None:
            continue
        for entry in entries:
            label = section.label_of(entry)
            if label is None or entry.get("gated") is False:
                continue
            for figure in section.figures:
                if not figure.gated or figure.name not in entry:
                    continue
                value = entry[figure.name]
                if figure.each and isinstance(value, list):
                    for i, item in enumerate(value):
                        out[f"{name}[{label}].{figure.name}[{i}]"] = item
                elif value is None or isinstance(value, int | float):
                    out[f"{name}[{label}].{figure.name}"] = value
    return out


def spreads(document: Mapping[str, Any]) -> dict[str, Spread]:
    """The spread over repeats of every gated figure that has one, by figure id (``--gx10-repeat``)."""
    out: dict[str, Spread] = {}
    for name, section, entries in sections_in(document):
        if section is None:
            continue
        for entry in entries:
            label, measured = section.label_of(entry), entry.get("spread")
            if label is None or not isinstance(measured, Mapping):
                continue
            for figure in section.figures:
                data = measured.get(figure.name)
                spread = Spread.from_dict(data) if figure.gated and isinstance(data, Mapping) else None
                if spread is not None:
                    out[f"{name}[{label}].{figure.name}"] = spread
    return out


def _name(metric_id: str) -> str:
    return metric_id.rsplit(".", 1)[-1].split("[", 1)[0]


def figure_of(metric_id: str, sections: Mapping[str, Section] | None = None) -> Figure | None:
    """The declaration of a figure id: from ``sections`` (a baseline's own), else the run's."""
    name = metric_id.split("[", 1)[0]
    section = (sections or {}).get(name) or declared(name)
    return None if section is None else section.figure(_name(metric_id))


def _declarations(document: Mapping[str, Any]) -> dict[str, Any]:
    return {name: section.data() for name, section, _ in sections_in(document) if section is not None}


@dataclass(frozen=True)
class Tolerances:
    """Tolerance per figure: by id, then by name, then the default."""

    default: float = DEFAULT_TOLERANCE
    overrides: Mapping[str, float] = field(default_factory=dict)

    def of(self, metric_id: str) -> float:
        """The tolerance that applies to a figure id."""
        if metric_id in self.overrides:
            return self.overrides[metric_id]
        return self.overrides.get(_name(metric_id), self.default)

    def explicit(self, metric_id: str) -> bool:
        """True when a tolerance was given for this figure (by id or name), not just the default."""
        return metric_id in self.overrides or _name(metric_id) in self.overrides

    def unknown(self, figure_ids: Iterable[str]) -> list[str]:
        """Each tolerance naming no figure of ``figure_ids`` (by id or name), with the closest match."""
        ids = set(figure_ids)
        known = ids | {_name(i) for i in ids}
        problems = []
        for name in sorted(self.overrides):
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"a tolerance for {name!r}, which names no figure of the baseline{hint}")
        return problems

    def with_overrides(self, pairs: Sequence[tuple[str, float]]) -> Tolerances:
        """These tolerances with ``pairs`` on top (``default`` replaces the default)."""
        default = self.default
        overrides = dict(self.overrides)
        for name, value in pairs:
            if name == "default":
                default = value
            else:
                overrides[name] = value
        return Tolerances(default, overrides)


def profile_gate(profile: Profile) -> tuple[Tolerances, float]:
    """The profile's ``[baseline]`` table: tolerances and ``greedy_match_min``. Raises ProfileError."""
    raw = profile.raw.get("baseline") or {}
    pairs: list[tuple[str, float]] = []
    for name, value in (raw.get("tolerances") or {}).items():
        try:
            pairs.append((name, parse_tolerance(value)))
        except ValueError as exc:
            raise ProfileError(profile.path, f"baseline.tolerances.{name}", str(exc)) from None
    minimum = raw.get("greedy_match_min", DEFAULT_GREEDY_MATCH_MIN)
    if isinstance(minimum, bool) or not isinstance(minimum, int | float) or not 0 <= minimum <= 1:
        raise ProfileError(
            profile.path, "baseline.greedy_match_min", f"expected a rate between 0 and 1, got {minimum!r}"
        )
    return Tolerances().with_overrides(pairs), float(minimum)


def software_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """The target's facts a results document carries."""
    keys = (
        "server",
        "server_version",
        "model",
        "profile",
        "target_kind",
        "time_scale",
        "launch_recipe",
        "serve_flags",
    )
    return {k: document.get(k) for k in keys if document.get(k) is not None}


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline file."""

    path: Path
    created_at: str
    software: Mapping[str, Any]
    client: Mapping[str, Any]  # the machine that ran the client (``hardware`` in older files)
    figures: Mapping[str, Any]
    greedy: GreedyOutputs | None
    results: Mapping[str, Any]
    sections: Mapping[str, Section] = field(default_factory=dict)  # the declarations it was saved with
    deployment: Mapping[str, Any] = field(default_factory=dict)  # fact -> {value, source}; older: none

    def describe(self) -> str:
        """One line for people: file, date, server version, model, profile."""
        sw = self.software
        return (
            f"{self.path} (saved {self.created_at}, server {sw.get('server_version', '?')}, "
            f"model {sw.get('model', '?')}, profile {sw.get('profile', '?')})"
        )


def run_facts(document: Mapping[str, Any]) -> dict[str, Any]:
    """What ran on each side of a results document: its software, deployment and client blocks.

    A document from before the client block was recorded gets this machine's.
    """
    return {
        "software": software_facts(document),
        "deployment": dict(document.get("deployment") or {}),
        "client": dict(document.get("client") or client_facts()),
    }


def save_baseline(
    path: Path, document: Mapping[str, Any], greedy: GreedyOutputs | None, redactor: Redactor | None = None
) -> dict[str, Any]:
    """Write a versioned baseline of the run (atomically, redacted); returns what was written."""
    doc: dict[str, Any] = {
        "format": BASELINE_FORMAT,
        "version": BASELINE_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **run_facts(document),
        "figures": figures(document),
        "sections": _declarations(document),
        "greedy": None if greedy is None else greedy.as_dict(),
        "results": dict(document),
    }
    if redactor is not None:
        doc = redactor.value(doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gx10-", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as out:
        json.dump(doc, out, indent=2, default=str)
        out.write("\n")
    os.replace(tmp, path)
    return doc


def load_baseline(path: Path) -> Baseline:
    """Read and check a baseline file; raises :class:`BaselineError` naming the file and the problem."""

    def bad(problem: str) -> BaselineError:
        return BaselineError(
            f"malformed baseline {path}: {problem}; write one with --gx10-save-baseline={path}"
        )

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise bad("not UTF-8 text") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise bad(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise bad(f'not a pytest-gx10 baseline (no "format": "{BASELINE_FORMAT}")')
    if data.get("version") != BASELINE_VERSION:
        raise bad(f"version {data.get('version')!r}, this pytest-gx10 reads version {BASELINE_VERSION}")
    # Files written before the deployment was recorded call the client's block "hardware".
    client_key = "client" if "client" in data else "hardware"
    for key in ("software", client_key, "figures"):
        if not isinstance(data.get(key), dict):
            raise bad(f"'{key}' is not an object")
    if not isinstance(data.get("deployment") or {}, dict):
        raise bad("'deployment' is not an object")
    for metric_id, value in data["figures"].items():
        if value is not None and not isinstance(value, bool | int | float):
            raise bad(f"figure '{metric_id}' is {value!r}, not a number")
    sections: dict[str, Section] = {}
    declared_sections = data.get("sections") or {}
    if not isinstance(declared_sections, dict):
        raise bad("'sections' is not an object")
    for name, declaration in declared_sections.items():
        try:
            sections[name] = Section.from_data(declaration)
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"section '{name}' is malformed ({exc})") from None
    greedy = None
    if data.get("greedy") is not None:
        try:
            greedy = GreedyOutputs.from_dict(data["greedy"])
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"'greedy' is malformed ({exc})") from None
    return Baseline(
        path=path,
        created_at=str(data.get("created_at", "?")),
        software=data["software"],
        client=data[client_key],
        deployment=data.get("deployment") or {},
        figures=data["figures"],
        greedy=greedy,
        results=data.get("results") or {},
        sections=sections,
    )


@dataclass
class GateResult:
    """The comparison: every regression, every warning, how much was checked."""

    baseline: Baseline
    regressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0
    greedy: GreedyMatch | None = None
    greedy_min: float = DEFAULT_GREEDY_MATCH_MIN
    figures: list[dict[str, Any]] = field(default_factory=list)  # one row per figure checked

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the verdict, the baseline, each figure's baseline, value, change and verdict."""
        return {
            "passed": self.passed,
            "headline": self.headline,
            "baseline": str(self.baseline.path),
            "checked": self.checked,
            "regressions": list(self.regressions),
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "figures": list(self.figures),
            "greedy": None
            if self.greedy is None
            else {
                "matched": self.greedy.matched,
                "compared": self.greedy.compared,
                "minimum": self.greedy_min,
                "judged": self.greedy.judged,
            },
        }

    @property
    def passed(self) -> bool:
        """True when nothing regressed."""
        return not self.regressions

    @property
    def headline(self) -> str:
        """``passed: 12 figures within tolerance`` or ``failed: 3 regressions``."""
        if self.passed:
            noisy = sum(1 for row in self.figures if row.get("verdict") == "within noise")
            within = f" ({noisy} past it but within the measured noise)" if noisy else ""
            return f"passed: {self.checked} figures within tolerance of {self.baseline.path}{within}"
        n = sum(1 for r in self.regressions if not r.startswith(" "))  # indented lines detail the one above
        return f"failed: {n} regression{'s' if n != 1 else ''} against {self.baseline.path}"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _check(figure: Figure, metric_id: str, base: Any, now: Any, tolerance: float) -> str | None:
    rule = figure.better
    unit = f" {figure.unit}" if figure.unit else ""
    if now is None:
        return f"{metric_id}: missing from this run (baseline {_fmt(base)}{unit}): not measured, crashed or not run"
    if rule == TRUE:
        return (
            None if (now is True or base is not True) else f"{metric_id}: was true in the baseline, now {now}"
        )
    if not isinstance(base, int | float) or not isinstance(now, int | float):
        return None
    change = (now - base) / base if base else 0.0
    if rule == HIGHER and now < base * (1 - tolerance):
        limit = base * (1 - tolerance)
        return (
            f"{metric_id}: {_fmt(now)}{unit} < baseline {_fmt(base)}{unit} - {tolerance:.0%} "
            f"({_fmt(limit)}{unit}), {change:+.1%}"
        )
    if rule == LOWER and now > base * (1 + tolerance):
        limit = base * (1 + tolerance)
        return (
            f"{metric_id}: {_fmt(now)}{unit} > baseline {_fmt(base)}{unit} + {tolerance:.0%} "
            f"({_fmt(limit)}{unit}), {change:+.1%}"
        )
    return None


def _short(text: str | None, limit: int = 160) -> str:
    if text is None:
        return "(no output)"
    return repr(text if len(text) <= limit else text[:limit] + "...")


def compare(
    baseline: Baseline,
    document: Mapping[str, Any],
    *,
    tolerances: Tolerances,
    greedy: GreedyOutputs | None = None,
    greedy_min: float = DEFAULT_GREEDY_MATCH_MIN,
    strict_facts: bool = False,
) -> GateResult:
    """Hold a run's results document (and greedy outputs) to a baseline.

    A different model, profile, target kind, time scale, deployment setup (GPU, driver, TP, flags,
    cache config) or client machine is noted once; with ``strict_facts`` it is a regression instead.
    A different build (server version, image, its packages) is always only noted.
    """
    result = GateResult(baseline=baseline, greedy_min=greedy_min)
    now = figures(document)
    run_spreads, base_spreads = spreads(document), spreads(baseline.results)
    within = beyond = 0
    for metric_id, base in baseline.figures.items():
        figure = figure_of(metric_id, baseline.sections)
        if base is None or figure is None or not figure.gated:
            continue
        if figure.tail and not tolerances.explicit(metric_id):
            continue
        result.checked += 1
        value, tolerance = now.get(metric_id), tolerances.of(metric_id)
        problem = _check(figure, metric_id, base, value, tolerance)
        numbers = (
            isinstance(base, int | float) and isinstance(value, int | float) and not isinstance(base, bool)
        )
        change = (value - base) / base if numbers and base else None
        noise = None
        if numbers and change is not None and isinstance(value, int | float):
            noise = beyond_noise(base, value, run_spreads.get(metric_id), base_spreads.get(metric_id))
        verdict = "missing" if value is None else "regressed" if problem else "ok"
        if noise is not None and change is not None:
            words = noise_words(change, noise[1], noise[0])
            beyond, within = beyond + noise[0], within + (not noise[0])
            if problem is not None and not noise[0]:
                # Past the tolerance, but the repeats cannot tell it from noise: said, not counted.
                result.warnings.append(
                    f"{problem}, {words.split(', ', 1)[1]}: not counted as a regression; "
                    "more repeats (--gx10-repeat) would decide it"
                )
                problem, verdict = None, "within noise"
            elif problem is not None:
                problem += ", " + words.split(", ", 1)[1]  # the change is already on the line
            elif noise[0]:
                result.notes.append(f"{metric_id}: {words}, inside the {tolerance:.0%} tolerance")
        if problem is not None:
            result.regressions.append(problem)
        result.figures.append(
            {
                "figure": metric_id,
                "better": figure.better,
                "unit": figure.unit,
                "baseline": base,
                "value": value,
                "change": change,
                "tolerance": tolerance,
                "noise": None if noise is None else noise[1],
                "beyond_noise": None if noise is None else noise[0],
                "verdict": verdict,
            }
        )
    if within or beyond:
        runs = "/".join(str(k) for k in sorted({spread.n for spread in run_spreads.values()}))
        combined = ", combined with the baseline's" if base_spreads else ""
        result.notes.insert(
            0,
            f"measured noise (95 % interval over {runs} repeats{combined}): {within} of {within + beyond} "
            f"figures changed within it, {beyond} beyond it; a median past its tolerance is a "
            "regression only when its change is beyond the noise too",
        )
    if baseline.greedy is not None:
        if greedy is None or greedy.error is not None:
            why = "not collected" if greedy is None else greedy.error
            result.regressions.append(f"greedy outputs: could not be collected in this run: {why}")
        else:
            match = match_greedy(baseline.greedy, greedy)
            result.greedy = match
            result.checked += 1
            line = (
                f"greedy outputs: {match.matched}/{match.compared} exact matches ({match.rate:.0%}), "
                f"minimum {greedy_min:.0%}"
            )
            if match.judged == LEGACY:
                line += (
                    " (reasoning+answer compared, as the baseline was saved before greedy answers were "
                    "judged on their own; save a new baseline to judge the answers)"
                )
            sides: list[str] = []
            for diff in match.differing:
                sides.append(
                    f"  prompt {diff.prompt!r}: baseline {_short(diff.expected)} | this run {_short(diff.got)}"
                )
                if match.judged == ANSWER and (diff.expected_reasoning or diff.got_reasoning):
                    sides.append(
                        f"    reasoning (not compared): baseline {_short(diff.expected_reasoning or '')} "
                        f"| this run {_short(diff.got_reasoning or '')}"
                    )
            target = result.regressions if match.rate < greedy_min else result.notes
            target += [line, *sides]
    facts_now = {**software_facts(document)}
    differs: list[str] = []
    for key in COMPARED_FACTS:
        before, after = baseline.software.get(key), facts_now.get(key)
        if before is not None and after is not None and before != after:
            differs.append(f"{key} differs: baseline {before}, this run {after}")
    deployment_now = document.get("deployment") or {}
    differs += deployment_differences(baseline.deployment, deployment_now, SETUP_FACTS)
    differs += client_differences(baseline.client, document.get("client") or client_facts())
    (result.regressions if strict_facts else result.notes).extend(differs)
    before_v, after_v = baseline.software.get("server_version"), facts_now.get("server_version")
    if before_v != after_v:
        result.notes.append(f"server version: baseline {before_v}, this run {after_v}")
    # What a new build changes by design (the image, its packages) is what the gate is for: noted.
    result.notes += deployment_differences(baseline.deployment, deployment_now, BUILD_FACTS)
    return result
