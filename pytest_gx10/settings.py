"""The gx10 settings: one value, resolved CLI > environment > ini > profile > default.

Each setting remembers where it came from, so the report header can say why a run targeted what it
did. The API key is a setting like the others except that it never appears in a repr, a header or
an error message. The settings themselves are declared in :mod:`pytest_gx10.options`. This module
imports nothing from pytest; the plugin turns a :class:`SettingsError` into a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gx10.config import ConfigError
from pytest_gx10.launch.recipes import RECIPE_TABLES, Recipe, RecipeError, load_recipe, recipe_from_data
from pytest_gx10.load.saturation import SaturationPlan, plan_search
from pytest_gx10.matrix import (
    Axis,
    Ceiling,
    Cell,
    apply_overrides,
    format_path,
    parse_axis,
    parse_ceiling,
)
from pytest_gx10.options import (
    DEFAULT_PROFILE,
    SETTINGS,
    SettingSpec,
    options_markdown,
    profile_settings_problems,
)
from pytest_gx10.profiles import Profile, ProfileError, load_profile, lookup, profile_from_data
from pytest_gx10.workload.dataset import Dataset, load_dataset
from pytest_gx10.workload.lengths import LengthSpec, parse_length
from pytest_gx10.workload.plan import Workload
from pytest_gx10.workload.shared import BLOCK_SIZE, SharedPrefixPlan

__all__ = [
    "SETTINGS",
    "SettingSpec",
    "Settings",
    "SettingsError",
    "options_markdown",
    "profile_settings_problems",
    "resolve_settings",
]


class SettingsError(ConfigError):
    """Settings with values we cannot use; each line names the setting, its source and a fix."""

    what = "setting"

    def __init__(self, *messages: str) -> None:
        super().__init__("", problems=[("", m) for m in messages])

    def _message(self) -> str:
        if len(self.problems) == 1:
            return self.problem
        return "\n".join(
            [f"{len(self.problems)} settings cannot be used:"] + [f"  {p}" for _, p in self.problems]
        )


_BY_NAME = {spec.name: spec for spec in SETTINGS}


def _default(name: str) -> Any:
    """The declared default of a setting, for the fields of :class:`Settings`."""
    return _BY_NAME[name].default


@dataclass(frozen=True)
class Settings:
    """The resolved gx10 settings of one run."""

    endpoint: str | None
    model: str | None
    profile: Profile
    timeout_s: float
    fake: bool
    sources: Mapping[str, str]
    endpoint_given: str | None = None  # as the user wrote it (``http://head:8000/v1``)
    concurrency: tuple[int, ...] = _default("concurrency")
    repeat: int = _default("repeat")
    load_mode: str = _default("load_mode")
    rate: tuple[float, ...] = _default("rate")
    arrival: str = _default("arrival")
    duration_s: float = _default("duration")
    requests: int | None = _default("requests")
    ramp_up_s: float = _default("ramp_up")
    warmup_s: float = _default("warmup")
    warmup_requests: int = _default("warmup_requests")
    slo: tuple[tuple[str, float], ...] = _default("slo")
    saturate: bool = _default("saturate")
    json: Path | None = None
    logs: str | None = None
    needle_lengths: tuple[int, ...] = _default("needle_lengths")
    needle_depths: tuple[float, ...] = _default("needle_depths")
    needle_seed: int | None = None
    fuzz_examples: int = _default("fuzz_examples")
    relaunch_on_crash: bool = _default("relaunch_on_crash")
    markdown: Path | None = None
    save_baseline: Path | None = None
    write_profile: Path | None = None
    write_margin: float = _default("write_margin")
    baseline: Path | None = None
    tolerance: tuple[tuple[str, float], ...] = _default("tolerance")
    history: Path | None = None
    fit_twin: Path | None = None
    api_key: str | None = field(default=None, repr=False)
    launch: Recipe | None = None
    keep: bool = _default("keep")
    no_summary: bool = _default("no_summary")
    gate_facts: bool = _default("gate_facts")
    server: str | None = _default("server")  # the engine adapter's name; None: detect
    matrix: tuple[Axis, ...] = _default("matrix")
    ceiling: Ceiling | None = None
    reference_cell: str | None = None
    ceiling_launches: int | None = None
    ceiling_time_s: float | None = None
    workload: str = _default("workload")
    turns: int = _default("turns")
    dataset: Dataset | None = None
    input_len: LengthSpec | None = None  # None: the profile's perf.input_tokens, fixed
    output_len: LengthSpec | None = None  # None: the profile's perf.max_tokens, fixed

    def workload_for(
        self,
        point: str,
        edition: str,
        block_size: int = BLOCK_SIZE,
        *,
        kind: str | None = None,
        input_len: LengthSpec | None = None,
        output_len: LengthSpec | None = None,
    ) -> Workload:
        """The requests of one load point: the workload asked for, its lengths, and for a shared prefix
        group prompts of this point and run only (``edition``), so no point warms another's cache;
        ``block_size`` is the server's KV block, what its prefix cache shares in.

        ``kind``, ``input_len`` and ``output_len`` replace the perf suite's own (another suite's load
        says its own: the crash suite's ``crash.workload``)."""
        perf = self.profile.perf
        kind = kind or self.workload
        shared = None
        if kind == "shared-prefix":
            shared = SharedPrefixPlan(
                groups=perf.shared_groups,
                prefix_tokens=perf.shared_prefix_tokens,
                per_group=max(1, max(self.concurrency) // perf.shared_groups),
                seed=f"{edition} {point}",
            )
        return Workload(
            kind=kind,
            input_len=input_len or self.input_len or parse_length(perf.input_tokens),
            output_len=output_len or self.output_len,
            dataset=self.dataset if kind == "dataset" else None,
            shared=shared,
            seed=perf.seed,
            edition=edition,
            turns=self.turns,
            block_size=block_size,
        )

    def workload_facts(self) -> dict[str, Any]:
        """What the results say of the workload: its kind, lengths, file and hash, sharing plan."""
        facts = self.workload_for("", "").facts()
        facts.pop("expected_prefix_hit_rate", None)  # a point's own, from its requests
        if facts.get("shared"):
            facts["shared"].pop("seed", None)
            facts["shared"].pop("per_group", None)
        return facts

    @property
    def explicit(self) -> bool:
        """True when any gx10 setting was given (option, environment variable, ini key or recipe)."""
        return any(source.startswith(("--", "env ", "ini ", "recipe ")) for source in self.sources.values())

    @property
    def discovers(self) -> bool:
        """True when the profile is to be built from the server: attached, and no profile given."""
        return (
            self.endpoint is not None
            and not self.fake
            and self.launch is None
            and self.sources["profile"] in ("default", "no --gx10-profile")
        )

    @property
    def use_twin(self) -> bool:
        """True when the embedded twin is the target."""
        return self.fake or (self.endpoint is None and self.launch is None)

    def saturation_plan(self) -> SaturationPlan:
        """The saturation search asked for: the mode's levels and the profile's [perf.saturation]."""
        rate = self.load_mode == "rate"
        levels: tuple[float, ...] = self.rate if rate else tuple(float(n) for n in self.concurrency)
        given = self.sources.get("rate" if rate else "concurrency", "default") != "default"
        return plan_search(self.load_mode, levels, self.profile.perf.saturation, levels_given=given)

    def describe(self, name: str) -> str:
        """The setting's value for people: secrets masked, unset shown as such."""
        attr = {
            "timeout": "timeout_s",
            "duration": "duration_s",
            "warmup": "warmup_s",
            "ramp_up": "ramp_up_s",
        }.get(name, name)
        value = getattr(self, attr)
        if name == "profile":
            value = self.profile.name + ("" if self.profile.bundled else f" ({self.profile.path})")
        elif name == "launch" and self.launch is not None:
            value = f"recipe {self.launch.name} ({self.launch.path})"
        elif _BY_NAME[name].secret:
            value = "set" if value else "not set"
        elif value is None:
            value = "not set"
        elif name == "endpoint" and self.endpoint_given and self.endpoint_given != value:
            value = f"{value} (given as {self.endpoint_given}; the /v1 is added per request)"
        return f"{value} [{self.sources[name]}]"


def _raw_value(
    spec: SettingSpec, cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]
) -> tuple[Any, str] | None:
    if cli.get(spec.name) not in (None, ""):
        return cli[spec.name], spec.option
    if env.get(spec.env, "") != "":
        return env[spec.env], f"env {spec.env}"
    if ini.get(spec.name) not in (None, ""):
        return ini[spec.name], f"ini {spec.ini}"
    return None


def _parse(spec: SettingSpec, raw: Any, source: str) -> Any:
    if isinstance(raw, list | tuple):
        raw = spec.joiner.join(str(x) for x in raw)
    elif isinstance(raw, bool | float | int):
        raw = str(raw)
    try:
        return spec.parse(raw)
    except ValueError as exc:
        shown = "(hidden)" if spec.secret else repr(raw)
        raise SettingsError(
            f"{spec.name} = {shown} from {source}: {exc}; set it with {spec.option}"
        ) from None


def resolve_settings(
    cli: Mapping[str, Any],
    env: Mapping[str, str],
    ini: Mapping[str, Any],
    *,
    discovered: Profile | None = None,
    cell: Cell | None = None,
) -> Settings:
    """Resolve every setting: CLI, then environment, then ini, then the profile, then the default.

    ``cli`` and ``ini`` map setting names to raw values (None when not given); ``env`` is the
    process environment. ``discovered`` is the profile built from the server, used when no profile
    was given. ``cell`` is a matrix cell: its values are set in the recipe (a path under one of the
    recipe's tables, ``serve.…``) or in the profile (``deployment.…``) before either is read, so the
    settings the profile supplies are the cell's. Raises :class:`SettingsError` (naming every setting that cannot be used) or
    :class:`ProfileError`.
    """
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    recipe, sources["launch"] = _recipe(cli, env, ini)
    found = _raw_value(_BY_NAME["profile"], cli, env, ini)
    if found is None and recipe is not None and recipe.profile is not None:
        found = (recipe.profile, f"recipe {recipe.name}")
    profile_ref, profile_source = found if found else (DEFAULT_PROFILE, "default")
    if found is None and discovered is not None:
        values["profile"], profile = str(discovered.path), discovered
        sources["profile"] = "no --gx10-profile"
    else:
        values["profile"] = _parse(_BY_NAME["profile"], profile_ref, profile_source)
        sources["profile"] = profile_source
        profile = load_profile(values["profile"])
    if cell is not None:
        recipe, profile = _cell_of(cell, recipe, profile)

    mistakes: list[str] = []
    for spec in SETTINGS:
        if spec.name in ("profile", "launch"):
            continue
        found = _raw_value(spec, cli, env, ini)
        if found is None and spec.profile_key and lookup(profile.raw, spec.profile_key) is not None:
            found = (lookup(profile.raw, spec.profile_key), f"profile {profile.name}")
        if found is None:
            values[spec.name] = spec.default
            sources[spec.name] = "default"
            continue
        sources[spec.name] = found[1]
        try:
            values[spec.name] = _parse(spec, found[0], found[1])
        except SettingsError as exc:
            mistakes.append(str(exc))
    if values["saturate"] and not values["slo"] and not mistakes:
        mistakes.append(
            f"saturate from {sources['saturate']}: the saturation search needs objectives to hold "
            "(no SLO given); set them with --gx10-slo=ttft=2s,tpot=100ms (or GX10_SLO, gx10_slo) "
            'or in the profile\'s [perf.slo] table (ttft = "2s")'
        )
    axes: tuple[Axis, ...] = ()
    ceiling: Ceiling | None = None
    try:
        axes = tuple(parse_axis(text) for text in values.get("matrix", ()))
    except ValueError as exc:
        mistakes.append(f"matrix from {sources['matrix']}: {exc}")
    try:
        ceiling = parse_ceiling(values["ceiling"]) if values.get("ceiling") else None
    except ValueError as exc:
        mistakes.append(f"ceiling from {sources['ceiling']}: {exc}")
    workload_parts = _workload_parts(values, sources, profile, mistakes)
    if mistakes:
        raise SettingsError(*mistakes)

    return Settings(
        endpoint=values["endpoint"],
        model=values["model"],
        profile=profile,
        timeout_s=float(values["timeout"]),
        fake=bool(values["fake"]),
        sources=sources,
        endpoint_given=_endpoint_given(cli, env, ini),
        concurrency=tuple(values["concurrency"]),
        repeat=int(values["repeat"]),
        load_mode=str(values["load_mode"]),
        rate=tuple(values["rate"]),
        arrival=str(values["arrival"]),
        duration_s=float(values["duration"]),
        requests=None if values["requests"] is None else int(values["requests"]),
        ramp_up_s=float(values["ramp_up"]),
        warmup_s=float(values["warmup"]),
        warmup_requests=int(values["warmup_requests"]),
        slo=tuple(values["slo"]),
        saturate=bool(values["saturate"]),
        json=values["json"],
        logs=values["logs"],
        needle_lengths=tuple(values["needle_lengths"]),
        needle_depths=tuple(values["needle_depths"]),
        needle_seed=values["needle_seed"][0] if values["needle_seed"] else None,
        fuzz_examples=int(values["fuzz_examples"]),
        relaunch_on_crash=bool(values["relaunch_on_crash"]),
        markdown=values["markdown"],
        save_baseline=values["save_baseline"],
        write_profile=values["write_profile"],
        write_margin=float(values["write_margin"]),
        baseline=values["baseline"],
        tolerance=tuple(values["tolerance"]),
        history=values["history"],
        fit_twin=values["fit_twin"],
        api_key=values["api_key"],
        launch=recipe,
        keep=bool(values["keep"]),
        no_summary=bool(values["no_summary"]),
        gate_facts=bool(values["gate_facts"]),
        server=values["server"],
        matrix=axes,
        ceiling=ceiling,
        reference_cell=values["reference_cell"],
        ceiling_launches=values["ceiling_launches"],
        ceiling_time_s=values["ceiling_time"],
        turns=int(values["turns"]),
        **workload_parts,
    )


def _workload_parts(
    values: Mapping[str, Any], sources: dict[str, str], profile: Profile, mistakes: list[str]
) -> dict[str, Any]:
    """The workload's lengths and file, read and checked (a mistake is added to ``mistakes``)."""
    parts: dict[str, Any] = {}
    for name in ("input_len", "output_len"):
        text = values.get(name)
        try:
            parts[name] = parse_length(text) if text else None
        except ValueError as exc:
            mistakes.append(
                f"{name} from {sources.get(name)}: {exc}; set it with --gx10-{name.replace('_', '-')}"
            )
    kind, path = values.get("workload", "filler"), values.get("dataset")
    crash_reads = profile.crash.workload == "dataset"  # the crash suite's load reads the run's file too
    if crash_reads and path is None:
        mistakes.append(
            f"{profile.name}: crash.workload is dataset, and the run gives no file; give "
            "--gx10-dataset=PATH (or perf.dataset)"
        )
    if path is not None and kind != "dataset" and not crash_reads:
        if sources.get("workload") == "default":
            kind = "dataset"  # a file given is a file to send
        else:
            mistakes.append(
                f"dataset from {sources.get('dataset')}: a file for --gx10-workload=dataset, but the "
                f"workload is {kind} (from {sources.get('workload')})"
            )
    if kind == "dataset" or (crash_reads and path is not None):
        if path is None:
            mistakes.append(
                f"workload dataset from {sources.get('workload')}: needs a file; give --gx10-dataset=PATH "
                "(JSONL of prompts or messages, or ShareGPT JSON)"
            )
        else:
            try:
                parts["dataset"] = load_dataset(path)
            except ValueError as exc:
                mistakes.append(f"dataset from {sources.get('dataset')}: {exc}")
    parts["workload"] = kind
    return parts


def _cell_of(cell: Cell, recipe: Recipe | None, profile: Profile) -> tuple[Recipe | None, Profile]:
    """The recipe and the profile with the cell's values set (each rebuilt and checked anew)."""
    to_recipe = {p: v for p, v in cell.overrides.items() if recipe is not None and p[0] in RECIPE_TABLES}
    to_profile = {p: v for p, v in cell.overrides.items() if p not in to_recipe}
    stray = [format_path(p) for p in to_profile if p[0] in RECIPE_TABLES]
    if stray:
        raise SettingsError(
            f"matrix cell {cell.id}: {', '.join(stray)} sets a recipe's key, and no recipe is launched; "
            "give --gx10-launch=RECIPE, or on the twin set the profile's keys (deployment.serve_args.…, "
            "deployment.speculative.…)"
        )
    where = f"{profile.path} [{cell.id}]"
    try:
        if to_recipe and recipe is not None:
            recipe = recipe_from_data(recipe.path, apply_overrides(recipe.raw, to_recipe))
        if to_profile:
            profile = profile_from_data(where, apply_overrides(profile.raw, to_profile))
    except ValueError as exc:  # a path through a value, or a cell the recipe or profile refuses
        raise SettingsError(f"matrix cell {cell.id}: {exc}") from None
    return recipe, profile


def _endpoint_given(cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]) -> str | None:
    found = _raw_value(_BY_NAME["endpoint"], cli, env, ini)
    return str(found[0]).strip().rstrip("/") if found else None


def _recipe(
    cli: Mapping[str, Any], env: Mapping[str, str], ini: Mapping[str, Any]
) -> tuple[Recipe | None, str]:
    found = _raw_value(_BY_NAME["launch"], cli, env, ini)
    if found is None:
        return None, "default"
    ref = _parse(_BY_NAME["launch"], found[0], found[1])
    try:
        return load_recipe(ref), found[1]
    except RecipeError as exc:
        raise SettingsError(f"{exc} (from {found[1]})") from None


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m pytest_gx10.settings --markdown``: print the options reference."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--markdown"]:
        print("usage: python3 -m pytest_gx10.settings --markdown > docs/options.md", file=sys.stderr)
        return 2
    sys.stdout.write(options_markdown())
    return 0


__all__ += ["ProfileError"]

if __name__ == "__main__":
    sys.exit(main())
