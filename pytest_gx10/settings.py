"""The gx10 settings: one value, resolved CLI > environment > ini > profile > default.

Each setting remembers where it came from, so the report header can say why a run targeted what it
did. The API key is a setting like the others except that it never appears in a repr, a header or
an error message. This module imports nothing from pytest; the plugin turns a
:class:`SettingsError` into a usage error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_gx10.config import ConfigError, Problem, convert, unknown_key
from pytest_gx10.launch.recipes import Recipe, RecipeError, load_recipe
from pytest_gx10.profiles import DEFAULT_PROFILE, Profile, ProfileError, load_profile, lookup
from pytest_gx10.report.baseline import parse_tolerances

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


def _endpoint(value: str) -> str:
    """The server's base URL; the OpenAI SDK's base URL (``.../v1``) is accepted and cut to it."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fix = f"; did you mean http://{text.split('://')[-1]}?" if "://" not in text and text else ""
        raise ValueError(f"not an http(s) URL with a host, e.g. http://head:8000{fix}")
    return _drop_v1(text.rstrip("/"))


def _drop_v1(url: str) -> str:
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if not seconds > 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _flag(value: str) -> bool:
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean (use 1/0, true/false, yes/no, on/off)")


def _fraction(value: str) -> float:
    """``10%``, ``10`` (per cent) or ``0.1``: a margin between 0 and 1."""
    text = str(value).strip()
    try:
        number = float(text.rstrip("%"))
    except ValueError:
        raise ValueError("not a percentage, e.g. 10% or 0.1") from None
    fraction = number / 100 if text.endswith("%") or number >= 1 else number
    if not 0 <= fraction < 1:
        raise ValueError("a margin must be from 0% to under 100%")
    return fraction


def _int_list(value: str) -> tuple[int, ...]:
    try:
        numbers = tuple(int(part) for part in str(value).replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError("not a comma-separated list of integers, e.g. 1,2,4") from None
    if not numbers or any(n <= 0 for n in numbers):
        raise ValueError("needs at least one positive integer, e.g. 1,2,4")
    return numbers


def _depths(value: str) -> tuple[float, ...]:
    try:
        depths = tuple(float(part) for part in str(value).replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError("not a comma-separated list of depths, e.g. 0.25,0.5") from None
    if not depths or any(not 0.0 <= d <= 1.0 for d in depths):
        raise ValueError("needs depths between 0 and 1, e.g. 0.25,0.5")
    return depths


def _count(value: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number, e.g. 50") from None
    if number <= 0:
        raise ValueError("must be a positive whole number, e.g. 50")
    return number


def _path(value: str) -> Path:
    return Path(_text(value)).expanduser()


def _tolerances(value: str) -> tuple[tuple[str, float], ...]:
    return parse_tolerances(value)


def _text(value: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    return text


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its names in each source, how to parse it, its default."""

    name: str
    help: str
    parse: Callable[[str], Any]
    default: Any = None
    profile_key: str | None = None  # dotted key in the profile that supplies a value
    secret: bool = False
    metavar: str = ""
    repeatable: bool = False  # the flag may be given several times; the values are joined with commas
    toml: Any = str  # the type of the value in a profile's [settings] table (profile_key settings.*)

    @property
    def is_flag(self) -> bool:
        """A yes/no setting: a flag without a value on the command line."""
        return self.parse is _flag

    @property
    def option(self) -> str:
        """The command-line flag."""
        return "--gx10-" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable."""
        return "GX10_" + self.name.upper()

    @property
    def ini(self) -> str:
        """The ini key."""
        return "gx10_" + self.name


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "endpoint",
        "URL of a running server (vLLM, llama.cpp, any OpenAI-compatible) to attach to; without it the embedded twin is the target",
        _endpoint,
        profile_key="settings.endpoint",
        metavar="URL",
    ),
    SettingSpec(
        "model",
        "served model name to test (default: the only model the server lists)",
        _text,
        profile_key="settings.model",
        metavar="NAME",
    ),
    SettingSpec(
        "server",
        "the engine's adapter: vllm, llama.cpp, openai (only the OpenAI API) or one a plugin registers "
        "(default: detected from what the server says)",
        _text,
        profile_key="server.adapter",
        metavar="NAME",
    ),
    SettingSpec(
        "api_key",
        "API key, sent as a Bearer token; never printed or stored",
        _text,
        secret=True,
        metavar="KEY",
    ),
    SettingSpec(
        "profile",
        "deployment profile: a bundled name or a path to a TOML file",
        _text,
        default=DEFAULT_PROFILE,
        metavar="NAME|PATH",
    ),
    SettingSpec(
        "timeout",
        "seconds to wait for the endpoint to connect or answer a plain call",
        _seconds,
        default=10.0,
        profile_key="settings.timeout",
        metavar="SECONDS",
        toml=float,
    ),
    SettingSpec(
        "fake",
        "target the embedded twin even when an endpoint is set",
        _flag,
        default=False,
    ),
    SettingSpec(
        "concurrency",
        "concurrency points of the throughput sweep, e.g. 1,2,4 (default: the profile's perf.concurrency)",
        _int_list,
        default=(1,),
        profile_key="perf.concurrency",
        metavar="N,N,...",
    ),
    SettingSpec(
        "logs",
        "where the server's log is: docker://CONTAINER[@ssh://user@host] or file:///path "
        "(default: the twin's or a launcher's own log)",
        _text,
        metavar="URI",
    ),
    SettingSpec(
        "needle_lengths",
        "haystack lengths in tokens for the needle suite, e.g. 2000,8000 (default: the profile's needle.lengths)",
        _int_list,
        default=(2000,),
        profile_key="needle.lengths",
        metavar="N,N,...",
    ),
    SettingSpec(
        "needle_depths",
        "needle depths between 0 and 1, e.g. 0.25,0.5 (default: the profile's needle.depths)",
        _depths,
        default=(0.5,),
        profile_key="needle.depths",
        metavar="D,D,...",
    ),
    SettingSpec(
        "needle_seed",
        "seed of the needle's secret code (default: a new code every run)",
        _int_list,
        profile_key="settings.needle_seed",
        metavar="SEED",
        toml=int,
    ),
    SettingSpec(
        "json",
        "write every figure measured to this JSON file, rewritten after each test",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "fuzz_examples",
        "request bodies the robustness suite's fuzz sends (default: the profile's robustness.fuzz_examples)",
        _count,
        default=50,
        profile_key="robustness.fuzz_examples",
        metavar="N",
    ),
    SettingSpec(
        "relaunch_on_crash",
        "when the engine the run started dies or hangs, start it again once, record it, and go on",
        _flag,
        default=False,
    ),
    SettingSpec(
        "markdown",
        "write the run's tables in Markdown (laid out like the reference post) to this file",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "write_profile",
        "write the server's facts (discovered or the profile's) and this run's figures as floors "
        "(--gx10-write-margin under what was measured) into a profile a later --gx10-profile run gates with",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "write_margin",
        "how far under this run --gx10-write-profile sets floors (times: over), e.g. 25%",
        _fraction,
        default=0.10,
        metavar="PCT",
    ),
    SettingSpec(
        "save_baseline",
        "save every figure, the greedy outputs and the run's facts to this baseline file",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "baseline",
        "compare the run with this baseline file; regressions beyond tolerance fail the run",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "tolerance",
        "tolerance per figure for --gx10-baseline, e.g. agg_decode_tps=5%,median_ttft_s=20% (repeatable; "
        "a bare 15% sets the default; the profile's [baseline] table gives more)",
        _tolerances,
        default=(),
        metavar="NAME=PCT",
        repeatable=True,
    ),
    SettingSpec(
        "launch",
        "start the deployment from this recipe (TOML path or bundled name), test it, tear it down",
        _text,
        metavar="RECIPE",
    ),
    SettingSpec(
        "no_summary",
        "leave the gx10 figures (sweep table, needle grid, acceptance, tallies) off the terminal",
        _flag,
        default=False,
    ),
    SettingSpec(
        "keep",
        "leave a launched deployment running after the run (the next launch of its recipe removes it)",
        _flag,
        default=False,
    ),
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
    api_key: str | None = field(default=None, repr=False)
    launch: Recipe | None = None
    keep: bool = _default("keep")
    no_summary: bool = _default("no_summary")
    server: str | None = _default("server")  # the engine adapter's name; None: detect

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

    def describe(self, name: str) -> str:
        """The setting's value for people: secrets masked, unset shown as such."""
        value = getattr(self, "timeout_s" if name == "timeout" else name)
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
        raw = ",".join(str(x) for x in raw)
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
) -> Settings:
    """Resolve every setting: CLI, then environment, then ini, then the profile, then the default.

    ``cli`` and ``ini`` map setting names to raw values (None when not given); ``env`` is the
    process environment. ``discovered`` is the profile built from the server, used when no profile
    was given. Raises :class:`SettingsError` (naming every setting that cannot be used) or
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
        api_key=values["api_key"],
        launch=recipe,
        keep=bool(values["keep"]),
        no_summary=bool(values["no_summary"]),
        server=values["server"],
    )


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


def profile_settings_problems(table: Mapping[str, Any], prefix: str = "settings.") -> list[Problem]:
    """The problems of a profile's ``[settings]`` table, each with its dotted key.

    Its keys are the settings declared with a ``profile_key`` under ``prefix``; a value must have the
    declared TOML type and pass the setting's own parser.
    """
    by_key = {
        spec.profile_key[len(prefix) :]: spec
        for spec in SETTINGS
        if spec.profile_key and spec.profile_key.startswith(prefix)
    }
    problems: list[Problem] = []
    for name, value in table.items():
        dotted = prefix + name
        spec = by_key.get(name)
        if spec is None:
            problems.append((dotted, unknown_key(name, list(by_key), prefix)))
            continue
        before = len(problems)
        converted = convert(spec.toml, value, dotted, problems)
        if len(problems) > before:
            continue
        try:
            spec.parse(str(converted))
        except ValueError as exc:
            problems.append((dotted, f"{exc}, got {value!r}"))
    return problems


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shown_default(spec: SettingSpec) -> str:
    value = spec.default
    if value is None or value == ():
        return "not set"
    if isinstance(value, bool):
        return "off" if not value else "on"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if spec.parse is _fraction:
        return f"{value:.0%}"
    return str(value)


def options_markdown() -> str:
    """The options reference (docs/options.md), generated from :data:`SETTINGS`."""
    lines = [
        "# Options",
        "",
        "<!-- Generated from pytest_gx10/settings.py; regenerate with:",
        "     python3 -m pytest_gx10.settings --markdown > docs/options.md -->",
        "",
        "Each setting is resolved command line, then environment variable, then ini key (`[pytest]` "
        "section), then the profile key where there is one, then the default; the report header says "
        "where each value came from.",
        "",
        "| Option | Environment / ini | Profile key | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for spec in SETTINGS:
        option = f"`{spec.option}`" if spec.is_flag else f"`{spec.option}={spec.metavar or 'VALUE'}`"
        profile_key = f"`{spec.profile_key}`" if spec.profile_key else ""
        default = _shown_default(spec)
        meaning = spec.help + (" (may be given several times)" if spec.repeatable else "")
        cells = [
            option,
            f"`{spec.env}`, `{spec.ini}`",
            profile_key,
            default if default in ("not set", "on", "off") else f"`{default}`",
            meaning,
        ]
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


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
