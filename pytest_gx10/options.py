"""The gx10 settings' declaration: each setting's names, parser, default and help.

:data:`SETTINGS` declares every setting once; :mod:`pytest_gx10.settings` resolves them (CLI >
environment > ini > profile > default), :mod:`pytest_gx10.profiles` checks a profile's ``[settings]``
table against them with :func:`profile_settings_problems`, and :func:`options_markdown` writes the
options reference from them. This module imports only leaf modules (:mod:`pytest_gx10.config` and the
standard library), so both the profiles and the settings can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_gx10.config import Problem, convert, parse_slo, parse_tolerances, unknown_key

__all__ = [
    "DEFAULT_PROFILE",
    "SETTINGS",
    "SettingSpec",
    "options_markdown",
    "profile_settings_problems",
]

DEFAULT_PROFILE = "qwen3.5-397b-fp8-mtp2-gx10x4"  # the bundled profile a run uses when none is given


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


def _count_or_zero(value: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number, e.g. 10") from None
    if number < 0:
        raise ValueError("must be 0 or a positive whole number, e.g. 10")
    return number


def _repeats(value: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number of repeats, e.g. 3") from None
    if number < 1:
        raise ValueError(f"each point runs at least once: K must be 1 or more, got {number}")
    return number


LOAD_MODES = ("burst", "concurrency", "rate")
ARRIVALS = ("constant", "poisson", "gamma")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text

    return parse


def _rates(value: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in str(value).replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError("not a comma-separated list of requests per second, e.g. 0.5,1,2") from None
    if not rates or any(not r > 0 for r in rates):
        raise ValueError("needs at least one positive rate in requests per second, e.g. 0.5,1,2")
    return rates


def _warmup(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("not a number of seconds") from None
    if seconds < 0:
        raise ValueError("must be 0 or more seconds")
    return seconds


def _slo(value: Any) -> tuple[tuple[str, float], ...]:
    return parse_slo(value)


def _path(value: str) -> Path:
    return Path(_text(value)).expanduser()


def _tolerances(value: str) -> tuple[tuple[str, float], ...]:
    return parse_tolerances(value)


def _matrix_axes(value: str) -> tuple[str, ...]:
    # Read into axes by pytest_gx10.matrix when the settings are resolved.
    axes = tuple(part.strip() for part in value.split(";") if part.strip())
    for axis in axes:
        if "=" not in axis:
            raise ValueError(f"{axis!r} is not PATH=V1,V2,..., e.g. serve.gpu_memory_utilization=0.90,0.92")
    return axes


def _ceiling(value: str) -> str:
    text = value.strip()
    if "=" not in text or ".." not in text:
        raise ValueError(
            f"{text!r} is not PATH=LO..HI:STEP, e.g. serve.gpu_memory_utilization=0.85..0.95:0.01"
        )
    return text


def _positive_int_text(value: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number, e.g. 6") from None
    if number < 1:
        raise ValueError(f"must be 1 or more, got {number}")
    return number


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
    repeatable: bool = False  # the flag may be given several times; the values are joined with ``joiner``
    joiner: str = ","  # what joins a repeated flag's values (and separates them in env and ini)
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
        "repeat",
        "run each concurrency point K times (fresh prompts each time); the point's figures are the "
        "medians, kept with each repeat's and their spread (95 % interval from K=3), which the "
        "release gate weighs changes against",
        _repeats,
        default=1,
        profile_key="perf.repeat",
        metavar="K",
    ),
    SettingSpec(
        "load_mode",
        "how the perf suite loads the server: burst (N requests released together, the sweep), "
        "concurrency (N kept in flight for the duration) or rate (open-loop arrivals at the rates) "
        "(default: the profile's perf.load_mode)",
        _choice(*LOAD_MODES),
        default="burst",
        profile_key="perf.load_mode",
        metavar="MODE",
    ),
    SettingSpec(
        "rate",
        "arrival rates in requests per second of the rate load mode, e.g. 0.5,1,2; they replace "
        "the concurrency list (default: the profile's perf.rate)",
        _rates,
        default=(1.0, 2.0),
        profile_key="perf.rate",
        metavar="R,R,...",
    ),
    SettingSpec(
        "arrival",
        "arrival process of the rate load mode: constant, poisson or gamma (burstiness from "
        "the profile's perf.burstiness; seeded by perf.seed) (default: the profile's perf.arrival)",
        _choice(*ARRIVALS),
        default="poisson",
        profile_key="perf.arrival",
        metavar="KIND",
    ),
    SettingSpec(
        "duration",
        "seconds a concurrency or rate point sends requests (in the target's time) "
        "(default: the profile's perf.duration)",
        _seconds,
        default=30.0,
        profile_key="perf.duration",
        metavar="SECONDS",
    ),
    SettingSpec(
        "requests",
        "requests each concurrency or rate point sends, in place of the duration: the rate "
        "mode's first N arrivals, or N through the closed loop (default: the profile's perf.requests; "
        "none: send for the duration)",
        _count,
        default=None,
        profile_key="perf.requests",
        metavar="N",
    ),
    SettingSpec(
        "ramp_up",
        "seconds over which the rate mode's arrival rate climbs linearly from 0 to R before "
        "holding it (default: the profile's perf.ramp_up; 0: no ramp)",
        _warmup,
        default=0.0,
        profile_key="perf.ramp_up",
        metavar="SECONDS",
    ),
    SettingSpec(
        "warmup",
        "seconds from a concurrency or rate point's start whose requests (by send time) are left "
        "out of its figures (default: the profile's perf.warmup)",
        _warmup,
        default=5.0,
        profile_key="perf.warmup",
        metavar="SECONDS",
    ),
    SettingSpec(
        "warmup_requests",
        "the first N requests of a concurrency or rate point (by send time) left out of its "
        "figures, besides those of the warm-up seconds (default: the profile's perf.warmup_requests)",
        _count_or_zero,
        default=0,
        profile_key="perf.warmup_requests",
        metavar="N",
    ),
    SettingSpec(
        "slo",
        "per-request objectives of a concurrency or rate point, units required, e.g. "
        "ttft=2s,tpot=100ms,e2e=30s; goodput counts the requests meeting all of them "
        "(default: the profile's [perf.slo])",
        _slo,
        default=(),
        profile_key="perf.slo",
        metavar="NAME=TIME,...",
    ),
    SettingSpec(
        "saturate",
        "search for the highest rate (rate mode) or concurrency (the other modes) whose SLO attainment "
        "stays at the profile's perf.saturation.attainment (0.9 by default), by bisection between "
        "perf.saturation.low and high; needs objectives (--gx10-slo or [perf.slo]); its probes "
        "replace the perf suite's plain points (default: the profile's perf.saturation.enabled)",
        _flag,
        default=False,
        profile_key="perf.saturation.enabled",
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
        "history",
        "append this run (results, run facts, the gate's verdict) to this folder as one JSON file; "
        "python -m pytest_gx10 compare --history DIR shows the trends",
        _path,
        metavar="DIR",
    ),
    SettingSpec(
        "fit_twin",
        "at the end of the run, fit a twin to its perf sweep and open-loop load and write it as a "
        "profile here (as python -m pytest_gx10 fit does); --gx10-fake --gx10-profile=PATH serves it",
        _path,
        metavar="PATH",
    ),
    SettingSpec(
        "workload",
        "what the perf suite's requests are: filler (synthetic text of the profile's lengths), dataset "
        "(--gx10-dataset), shared-prefix (groups sharing a system prompt) or multi-turn (conversations "
        "resending their history each turn) (default: the profile's perf.workload, else filler)",
        _choice("filler", "dataset", "shared-prefix", "multi-turn"),
        default="filler",
        profile_key="perf.workload",
        metavar="NAME",
    ),
    SettingSpec(
        "dataset",
        "a JSONL file of prompts or chat messages, or a ShareGPT JSON file, for --gx10-workload=dataset "
        "(its name and hash go in the results)",
        _path,
        profile_key="perf.dataset",
        metavar="PATH",
    ),
    SettingSpec(
        "input_len",
        "prompt lengths in tokens: 1000, uniform:500:1500, normal:MEAN:SD, lognormal:MEDIAN:SIGMA, each "
        "with optional :min=A,max=B (default: the profile's perf.input_tokens)",
        _text,
        profile_key="perf.input_len",
        metavar="SPEC",
    ),
    SettingSpec(
        "output_len",
        "output lengths (max_tokens) in tokens, in the forms the input lengths take (default: the "
        "profile's perf.max_tokens)",
        _text,
        profile_key="perf.output_len",
        metavar="SPEC",
    ),
    SettingSpec(
        "turns",
        "turns of each conversation of the multi-turn workload; each turn's new message has the input "
        "length (default: the profile's perf.turns, else 4)",
        _count,
        default=4,
        profile_key="perf.turns",
        metavar="T",
    ),
    SettingSpec(
        "matrix",
        "launch, test and tear down one deployment per cell: PATH=V1,V2,... sets a recipe key (serve.…) "
        "or, on the twin, a profile key (deployment.…); repeat for more axes (their product); in env "
        "and ini, axes are separated by ';'",
        _matrix_axes,
        default=(),
        metavar="PATH=V1,V2",
        repeatable=True,
        joiner=";",
    ),
    SettingSpec(
        "ceiling",
        "find the highest value of PATH whose deployment passes the tests run, launching the grid "
        "LO, LO+STEP, ..., HI by bisection, e.g. serve.gpu_memory_utilization=0.85..0.95:0.01",
        _ceiling,
        metavar="PATH=LO..HI:STEP",
    ),
    SettingSpec(
        "reference_cell",
        "the matrix cell the others are compared with (its id, e.g. k=2; default: the first cell)",
        _text,
        metavar="ID",
    ),
    SettingSpec(
        "ceiling_launches",
        "at most this many launches for --gx10-ceiling (default: as many as the grid needs)",
        _positive_int_text,
        metavar="N",
    ),
    SettingSpec(
        "ceiling_time",
        "start no launch of --gx10-ceiling after this many seconds of the search (default: no bound)",
        _seconds,
        metavar="SECONDS",
    ),
    SettingSpec(
        "launch",
        "start the deployment from this recipe (TOML path or bundled name), test it, tear it down",
        _text,
        metavar="RECIPE",
    ),
    SettingSpec(
        "gate_facts",
        "fail the release gate when the model, profile, target kind, time scale, deployment setup "
        "(GPU, driver, TP, serve flags) or client machine differs from the baseline's (default: each "
        "difference is noted once; a new build's server version and image are always only noted)",
        _flag,
        default=False,
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
        "<!-- Generated from pytest_gx10/options.py; regenerate with:",
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
