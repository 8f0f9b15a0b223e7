"""Deployment profiles: what a deployment should be, and the floors the suites hold it to.

A profile is a TOML file. The bundled ones live next to this module and are found by name
(``qwen3.5-397b-fp8-mtp2-gx10x4``); any other is given by path. Each table is a dataclass below
and each of its fields declares one key (type, default, range; see :mod:`pytest_gx10.config`), so
a typo is an error that names the file and the key, not a silently ignored setting, and a file
with several mistakes names them all at once. A profile's ``[[twin.effects]]`` say what a key's
value changes in the deployment (:mod:`pytest_gx10.profiles.effects`); they apply as the profile is
built, so a matrix cell that sets that key gets them. This module is core: it imports nothing from
pytest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gx10.config import ConfigError, Invalid, Problem, build_table, convert, key, parse_slo
from pytest_gx10.options import DEFAULT_PROFILE, profile_settings_problems
from pytest_gx10.profiles.effects import apply_effects, read_effects
from pytest_gx10.profiles.faults import Fault, FaultSpecError, fault_from_table
from pytest_gx10.tomlfile import read_toml

__all__ = [
    "BUNDLED_DIR",
    "DEFAULT_PROFILE",
    "BaselineSpec",
    "CrashSpec",
    "Deployment",
    "MtpSpec",
    "NeedleSpec",
    "PerfSpec",
    "Profile",
    "ProfileError",
    "ProfileMeta",
    "RobustnessSpec",
    "SaturationSpec",
    "ServerSpec",
    "SpeculativeSpec",
    "TwinSpec",
    "bundled_profiles",
    "load_profile",
    "lookup",
    "profile_from_data",
]

BUNDLED_DIR = Path(__file__).parent


class ProfileError(ConfigError):
    """A profile that cannot be used: names the file, each key and the problem."""

    what = "profile"


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"not a regular expression: {exc}"
    return None


@dataclass(frozen=True)
class SpeculativeSpec:
    """The speculative-decoding config the deployment should run with."""

    method: str = key(help="speculative method vLLM runs, e.g. qwen3_next_mtp")
    num_speculative_tokens: int = key(gt=0, help="draft tokens per step")
    acceptance_per_position: tuple[float, ...] = key(
        (),
        ge=0,
        le=1,
        expect="expected a rate between 0 and 1",
        help="per-position draft acceptance the twin reproduces (reference: 0.889, 0.833)",
    )


@dataclass(frozen=True)
class Deployment:
    """Facts a healthy deployment of this profile shows on the wire and in its log."""

    served_model_name: str = key(help="the model name the server lists")
    max_model_len: int = key(gt=0, help="the context length the server reports")
    model_path: str = ""
    server_version: str | None = key(
        None, check=_regex, help="a regular expression matched at the start of the server's version"
    )
    tensor_parallel_size: int = key(1, gt=0)
    max_num_seqs: int = key(256, gt=0)
    max_num_batched_tokens: int = key(8192, gt=0)
    kv_cache_dtype: str = "auto"
    reasoning_parser: str | None = None
    # vLLM's --enable-prompt-tokens-details: each response's usage says how many prompt tokens the
    # prefix cache served (prompt_tokens_details.cached_tokens); off, the field is null.
    enable_prompt_tokens_details: bool = key(
        False, help="usage carries prompt_tokens_details.cached_tokens (--enable-prompt-tokens-details)"
    )
    speculative: SpeculativeSpec | None = None
    serve_args: Mapping[str, Any] = key(factory=dict, help="any other vLLM flags the server runs with")
    # What cannot be seen from outside the deployment: the report shows it as the profile's word.
    gpu: str | None = key(None, help="the accelerator, e.g. NVIDIA GB10")
    gpu_count: int | None = key(None, ge=0, help="accelerators in the whole deployment")
    gpu_memory: str | None = key(None, help="memory per accelerator, e.g. 128 GiB unified")
    nodes: int | None = key(None, gt=0, help="machines the deployment spans")
    driver: str | None = key(None, help="the GPU driver version on the nodes")
    cuda: str | None = key(None, help="the CUDA version the server runs with")
    torch: str | None = key(None, help="the torch build in the server's environment, e.g. 2.11.0+cu130")
    image: str | None = key(None, help="the container image the server runs in")

    def version_matches(self, version: str) -> bool:
        """True when ``version`` matches the profile's pattern (or there is none)."""
        return self.server_version is None or re.match(self.server_version, version) is not None


def _decode_steps(value: Any) -> tuple[tuple[int, float], ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected array, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    pairs: list[tuple[int, float]] = []
    for i, entry in enumerate(value):
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or isinstance(entry[0], bool)
            or not isinstance(entry[0], int)
            or entry[0] < 1
            or isinstance(entry[1], bool)
            or not isinstance(entry[1], int | float)
            or entry[1] <= 0
        ):
            problems.append((f"[{i}]", f"expected [batch size >= 1, seconds > 0], got {entry!r}"))
        else:
            pairs.append((entry[0], float(entry[1])))
    sizes = [n for n, _ in pairs]
    if sizes != sorted(set(sizes)):
        problems.append(("", f"batch sizes must increase, got {sizes!r}"))
    if problems:
        raise Invalid(problems=problems)
    return tuple(pairs)


def _faults(value: Any) -> tuple[Fault, ...]:
    if not isinstance(value, list):
        raise Invalid(f"expected array, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    faults: list[Fault] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            problems.append((f"[{i}]", f"expected a table ([[twin.faults]]), got {type(entry).__name__}"))
            continue
        try:
            faults.append(fault_from_table(entry))
        except FaultSpecError as exc:
            problems.append((f"[{i}]", str(exc)))
    if problems:
        raise Invalid(problems=problems)
    return tuple(faults)


def _token_range(value: tuple[int, int]) -> str | None:
    low, high = value
    if low > high:
        return f"expected [min, max] with min <= max, got [{low}, {high}]"
    return None


@dataclass(frozen=True)
class TwinSpec:
    """How the embedded twin behaves when it stands in for this deployment."""

    version: str = key("0.32.0", help="the vLLM version the twin reports")
    prefill_tps: float = key(2000.0, gt=0, help="prefill tokens per second, one sequence alone")
    decode_tps: float = key(
        40.0, gt=0, help="decode tokens per second, one sequence alone, including accepted drafts"
    )
    time_scale: float = key(1.0, gt=0, help=">1 runs faster than real time")
    # The deployment's own speed against the calibration: every simulated duration (a step's prefill
    # and decode cost, the warm-up) is divided by it. An effect's speed multiplies it
    # ([[twin.effects]], pytest_gx10.profiles.effects); unlike time_scale it changes the figures.
    speed_factor: float = key(
        1.0, gt=0, help="<1 serves slower than the calibration (every step takes time / speed_factor)"
    )
    log_interval_s: float = key(10.0, gt=0, help='the periodic "Engine 000: Avg prompt throughput" line')
    default_output_tokens: int = key(64, help="when the request does not say max_tokens")
    # Scheduler: at most this many prompts in chunked prefill at once, sharing the step's token budget
    # equally (a lone prompt takes it all); 0 keeps vLLM V1's plain first-come chunking.
    max_num_partial_prefills: int = key(0, ge=0)
    # Out of idle, vLLM's engine core drains every request already in its input queue before its first
    # schedule, so a burst that lands within moments shares that first step (the CPU server's N=2 does).
    # Requests arriving within this many (simulated) seconds of the one that woke an idle twin join its
    # first step, stamped with the waking one's arrival; 0 starts the step with the waking one alone.
    idle_gather_s: float = key(
        0.0, ge=0, help="requests within this of the one that wakes an idle engine join its first step"
    )
    # The KV cache pool, in tokens: what vLLM's boot log reports as "KV cache size", in blocks of
    # block_size tokens (kv_cache_tokens // block_size of them). When the running requests' next tokens
    # do not fit, the last one admitted is preempted and computed again later, as vLLM V1 does. None:
    # 2.1 x max_model_len; never less than max_model_len.
    kv_cache_tokens: int | None = key(
        None, gt=0, help='KV cache token slots, as the server\'s boot log says "KV cache size: N tokens"'
    )
    # vLLM's KV block: 16 tokens on GPUs, 128 on its CPU build. The prefix cache keeps and serves whole
    # blocks only; /metrics says it in vllm:cache_config_info.
    block_size: int = key(16, gt=0, help="tokens per KV cache block, as vllm:cache_config_info says")
    # vLLM's CPU build sizes its KV cache from VLLM_CPU_KVCACHE_SPACE (GiB) and then reports the bytes in
    # vllm:cache_config_info (kv_cache_memory_bytes), with the SSM cache dtype forced to float32.
    cpu_kv_cache_space_gib: float | None = key(
        None, gt=0, help="the twin plays vLLM's CPU build with VLLM_CPU_KVCACHE_SPACE of this many GiB"
    )
    # Calibrated step-time model (pytest_gx10.fake.steptime.CalibratedStepTime); without a
    # decode_step_s table the twin uses the linear model built from prefill_tps and decode_tps.
    decode_step_s: tuple[tuple[int, float], ...] = key(
        (), parse=_decode_steps, help="[decode batch size, seconds per step] pairs, sizes increasing"
    )
    prefill_token_s: float = key(0.0, ge=0, help="warm seconds per prefill token; 0 means 1 / prefill_tps")
    prefill_context_s: float = key(0.0, ge=0, help="warm seconds per token-position of context")
    warmup_s: float = key(0.0, ge=0, help="once, on the first long prefill step")
    warmup_min_prefill_tokens: int = key(1, gt=0, help="prefill tokens that make a step a long prefill")
    cold_prefill_factor: float = key(0.0, ge=0, help="extra prefill cost at start, fading to 0 ...")
    cold_prefill_tokens: int = key(0, ge=0, help="... over this many long-prefill tokens")
    # A reasoning model's <think> block: its length is drawn from [min, max] per request, <think> and
    # the fixed opening words counted (the usage's reasoning_tokens is one more: it leaves <think> out
    # and counts the closing "." and newline); never shorter than the opening (pytest_gx10.fake.model).
    reasoning_tokens: tuple[int, int] = key(
        (24, 120),
        ge=0,
        check=_token_range,
        help="[min, max] tokens of a reasoning model's <think> block, drawn per request",
    )
    # The twin finds a needle only in prompts up to this many tokens, and answers a wrong code beyond
    # (as a small model loses track in a long context); None finds it at any length.
    needle_horizon_tokens: int | None = None
    # Faults the twin injects (``[[twin.faults]]``; see pytest_gx10.fake.faults for the kinds and keys).
    faults: tuple[Fault, ...] = key((), parse=_faults)


@dataclass(frozen=True)
class MtpSpec:
    """The speculative-decoding suite: the generation window and the floors on acceptance."""

    window_tokens: int = key(512, gt=0, help="tokens generated between the two /metrics scrapes")
    acceptance_rate_min: float | None = key(None, ge=0, le=1, help="accepted / drafted")
    acceptance_length_min: float | None = key(None, help="1 + accepted / drafts")
    per_position_min: tuple[float, ...] = key((), ge=0, le=1)
    log_tolerance: float = key(0.10, ge=0, le=1, help="SpecDecoding log lines against /metrics, relative")


@dataclass(frozen=True)
class NeedleSpec:
    """The needle-in-a-haystack grid: haystack lengths (tokens) by needle depths (0..1)."""

    lengths: tuple[int, ...] = key((2000,), gt=0, nonempty=True, help="haystack lengths in tokens")
    depths: tuple[float, ...] = key((0.5,), ge=0, le=1, nonempty=True, help="needle depths, 0 to 1")
    max_tokens: int = key(1024, gt=0, help="room for a reasoning trace before the answer")
    # A miss fails the cell; false reports it (xfail) instead, as a discovered profile does: the
    # user asserted nothing about what their model retrieves.
    required: bool = True


@dataclass(frozen=True)
class RobustnessSpec:
    """The robustness suite: how much fuzzing, and how big the very large body and header are."""

    fuzz_examples: int = key(50, gt=0, help="request bodies the hypothesis fuzz sends")
    large_body_mb: int = key(8, gt=0, help="the very large body: a prompt of this many MiB of text")
    huge_header_kb: int = key(64, gt=0, help="the huge header: one header of this many KiB")


@dataclass(frozen=True)
class CrashSpec:
    """The crash suite's sustained load, and the engine sentinel's patience."""

    concurrency: int = key(4, gt=0, help="requests in flight at once")
    requests: int = key(16, gt=0, help="requests in all (waves of concurrency) ...")
    duration_s: float = key(0.0, ge=0, help="... or, when positive, waves until this many seconds")
    input_tokens: int = key(256, gt=0)
    max_tokens: int = key(64, gt=0)
    workload: str = key(
        "filler",
        choices=("filler", "dataset", "shared-prefix", "multi-turn"),
        help="what the load's requests are (dataset: the run's --gx10-dataset or perf.dataset; "
        "multi-turn: each wave is the next turn of the same conversations)",
    )
    # The sentinel: /health and the log every poll_s; a request stream silent for stall_timeout_s
    # ends as a stall; generation tokens frozen for hung_after_s with requests running, and then a
    # canary unfinished after canary_timeout_s, make the engine hung. A long prefill generates no
    # token either (the reference cluster takes about two minutes over a 200k-token prompt, and a
    # canary queued behind it waits), so hung_after_s must outlast the longest prefill.
    poll_s: float = key(1.0, gt=0)
    stall_timeout_s: float = key(600.0, gt=0)
    hung_after_s: float = key(300.0, gt=0)
    canary_timeout_s: float = key(60.0, gt=0)


def _floors(value: Any) -> Mapping[int, Mapping[str, float]]:
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    floors: dict[int, dict[str, float]] = {}
    for point, metrics in value.items():
        if not point.isdigit() or int(point) <= 0:
            problems.append((f".{point}", "floor tables are keyed by concurrency, e.g. [perf.floors.8]"))
            continue
        converted = convert(Mapping[str, float], metrics, f".{point}", problems)
        if isinstance(converted, dict):
            floors[int(point)] = converted
    if problems:
        raise Invalid(problems=problems)
    return floors


def _level(mode: str, text: str) -> float | None:
    try:
        level = float(text) if mode == "rate" else int(text)
    except ValueError:
        return None
    return level if level > 0 else None


def _load_floors(value: Any) -> Mapping[str, Mapping[float, Mapping[str, float]]]:
    # [perf.load_floors.rate."0.5"] and [perf.load_floors.concurrency.8]: figure = floor (or ceiling).
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    problems: list[Problem] = []
    floors: dict[str, dict[float, dict[str, float]]] = {}
    for mode, levels in value.items():
        if mode not in ("concurrency", "rate") or not isinstance(levels, dict):
            problems.append(
                (f".{mode}", "load floors are keyed by mode then level, e.g. [perf.load_floors.rate.2]")
            )
            continue
        for text, metrics in levels.items():
            level = _level(mode, text)
            if level is None:
                example = '"0.5"' if mode == "rate" else "8"
                problems.append(
                    (f".{mode}.{text}", f"not a {mode} level, e.g. [perf.load_floors.{mode}.{example}]")
                )
                continue
            converted = convert(Mapping[str, float], metrics, f".{mode}.{text}", problems)
            if isinstance(converted, dict):
                floors.setdefault(mode, {})[float(level)] = converted
    if problems:
        raise Invalid(problems=problems)
    return floors


def _slo_table(value: Any) -> tuple[tuple[str, float], ...]:
    try:
        return parse_slo(value) if isinstance(value, dict) else parse_slo(str(value))
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _saturation_problem(spec: SaturationSpec) -> str | None:
    if spec.low is not None and spec.high is not None and not spec.low < spec.high:
        return f"low ({spec.low:g}) must be under high ({spec.high:g})"
    return None


@dataclass(frozen=True)
class SaturationSpec:
    """[perf.saturation]: the search for the highest level whose SLO attainment holds a target."""

    enabled: bool = key(False, help="run the search (as --gx10-saturate does)")
    attainment: float = key(
        0.9, gt=0, le=1, help="the share of requests that must meet every objective for a level to pass"
    )
    low: float | None = key(
        None, gt=0, help="the lowest level probed (default: the rate or concurrency list's smallest)"
    )
    high: float | None = key(
        None, gt=0, help="the highest level probed (default: the rate or concurrency list's largest)"
    )
    max_steps: int = key(6, ge=2, help="probes at most, the two bounds included")
    max_time_s: float = key(1800.0, gt=0, help="no probe starts that would end past this (client seconds)")
    resolution: float = key(
        0.1, gt=0, lt=1, help="stop when the lowest failing level is within this fraction of the passing one"
    )
    floor: float | None = key(None, gt=0, help="the answer must reach this level, else test_saturation fails")


@dataclass(frozen=True)
class PerfSpec:
    """The throughput sweep: workload and floors per concurrency point."""

    concurrency: tuple[int, ...] = key((1, 2, 4), gt=0, nonempty=True, help="concurrency points of the sweep")
    repeat: int = key(1, gt=0, help="runs of each point; its figures are the medians")
    endpoint: str = key("chat", choices=("chat", "completions"), help="the API the sweep calls")
    ignore_eos: bool = key(True, help="every request decodes exactly max_tokens")
    input_tokens: int = key(1000, gt=0)
    max_tokens: int = key(128, gt=0)
    workload: str = key(
        "filler",
        choices=("filler", "dataset", "shared-prefix", "multi-turn"),
        help="what the perf suite's requests are",
    )
    dataset: str | None = key(None, help="the JSONL or ShareGPT file of the dataset workload")
    input_len: str | None = key(None, help="prompt lengths, e.g. uniform:500:1500 (default: input_tokens)")
    output_len: str | None = key(None, help="output lengths, e.g. lognormal:200:0.5 (default: max_tokens)")
    shared_groups: int = key(4, gt=0, help="the shared-prefix workload's groups (system prompts)")
    shared_prefix_tokens: int = key(256, gt=0, help="the tokens of each group's shared system prompt")
    turns: int = key(4, gt=0, help="the multi-turn workload's turns per conversation")
    floors: Mapping[int, Mapping[str, float]] = key(
        factory=dict, parse=_floors, help="[perf.floors.N]: figure = floor at concurrency N"
    )
    load_mode: str = key("burst", choices=("burst", "concurrency", "rate"), help="burst, concurrency or rate")
    rate: tuple[float, ...] = key(
        (1.0, 2.0), gt=0, nonempty=True, help="arrival rates (req/s) of the rate mode"
    )
    arrival: str = key(
        "poisson", choices=("constant", "poisson", "gamma"), help="arrival process of the rate mode"
    )
    burstiness: float = key(
        1.0, gt=0, help="gamma arrivals' shape: under 1 burstier than poisson, over 1 smoother"
    )
    seed: int = key(0, help="seed of the poisson and gamma arrival times")
    duration: float = key(30.0, gt=0, help="seconds a concurrency or rate point sends (target's time)")
    requests: int | None = key(
        None, gt=0, help="requests a concurrency or rate point sends, in place of the duration"
    )
    ramp_up: float = key(0.0, ge=0, help="seconds the rate mode's arrival rate takes to climb from 0 to R")
    warmup: float = key(
        5.0, ge=0, help="seconds from a point's start whose requests are left out of its figures"
    )
    warmup_requests: int = key(
        0, ge=0, help="a point's first requests (by send time) left out of its figures"
    )
    max_in_flight: int = key(
        256, gt=0, help="the rate mode's cap on requests in flight (each an open connection)"
    )
    slo: tuple[tuple[str, float], ...] = key(
        (), parse=_slo_table, help='[perf.slo]: ttft = "2s", tpot = "100ms", e2e = "30s"'
    )
    load_floors: Mapping[str, Mapping[float, Mapping[str, float]]] = key(
        factory=dict, parse=_load_floors, help="[perf.load_floors.rate.R] / [perf.load_floors.concurrency.N]"
    )
    # key() returns a dataclasses.field with a default_factory: no instance is shared between profiles.
    saturation: SaturationSpec = key(  # noqa: RUF009
        factory=SaturationSpec, check=_saturation_problem, help="[perf.saturation]: the saturation search"
    )


@dataclass(frozen=True)
class ServerSpec:
    """The server the profile describes."""

    adapter: str | None = key(None, help="the engine adapter (default: detected from the server)")


@dataclass(frozen=True)
class BaselineSpec:
    """Release gating against a baseline (pytest_gx10.report.baseline reads the tolerances)."""

    greedy_match_min: float | None = key(None, ge=0, le=1, expect="expected a rate between 0 and 1")
    tolerances: Mapping[str, Any] = key(factory=dict, help='tolerance per figure, "5%" or 0.05')


@dataclass(frozen=True)
class ProfileMeta:
    """The ``[profile]`` table: what the profile is called and what it is for."""

    name: str | None = key(None, help="default: the file's name")
    description: str = ""


def _settings_table(value: Any) -> dict[str, Any]:
    # The [settings] keys are the gx10 settings a profile may set (pytest_gx10.options declares them).
    if not isinstance(value, dict):
        raise Invalid(f"expected a table, got {type(value).__name__} {value!r}")
    problems = profile_settings_problems(value, "settings.")
    if problems:
        raise Invalid(problems=[(at[len("settings") :], text) for at, text in problems])
    return dict(value)


@dataclass(frozen=True)
class _ProfileFile:
    """The tables of a profile file."""

    deployment: Deployment
    profile: ProfileMeta = field(default_factory=ProfileMeta)
    settings: Mapping[str, Any] = key(factory=dict, parse=_settings_table)
    server: ServerSpec = field(default_factory=ServerSpec)
    twin: TwinSpec = field(default_factory=TwinSpec)
    perf: PerfSpec = field(default_factory=PerfSpec)
    mtp: MtpSpec = field(default_factory=MtpSpec)
    needle: NeedleSpec = field(default_factory=NeedleSpec)
    robustness: RobustnessSpec = field(default_factory=RobustnessSpec)
    crash: CrashSpec = field(default_factory=CrashSpec)
    baseline: BaselineSpec = field(default_factory=BaselineSpec)


@dataclass(frozen=True)
class Profile:
    """A loaded, validated profile."""

    name: str
    path: Path
    description: str
    deployment: Deployment
    twin: TwinSpec
    perf: PerfSpec
    settings: Mapping[str, Any]  # defaults for gx10 settings (endpoint, model, timeout)
    raw: Mapping[str, Any]
    mtp: MtpSpec = field(default_factory=MtpSpec)
    needle: NeedleSpec = field(default_factory=NeedleSpec)
    robustness: RobustnessSpec = field(default_factory=RobustnessSpec)
    crash: CrashSpec = field(default_factory=CrashSpec)
    server: ServerSpec = field(default_factory=ServerSpec)
    # What each [[twin.effects]] entry that applied did (its note, or "when k=5: set 3 keys, 2 faults").
    effects_applied: tuple[str, ...] = ()

    @property
    def bundled(self) -> bool:
        """True when the profile ships with pytest-gx10."""
        return self.path.parent == BUNDLED_DIR


def lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key (``perf.concurrency``) of a nested mapping, or None."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _cross_checks(tables: _ProfileFile) -> list[Problem]:
    """What no single key can say: keys that must agree with each other."""
    problems: list[Problem] = []
    spec = tables.deployment.speculative
    if spec is not None and spec.acceptance_per_position:
        rates = len(spec.acceptance_per_position)
        if rates != spec.num_speculative_tokens:
            problems.append(
                (
                    "deployment.speculative.acceptance_per_position",
                    f"has {rates} rates but num_speculative_tokens is {spec.num_speculative_tokens}",
                )
            )
    return problems


# Keys renamed since a profile could have been written: old spelling -> new, in the same table.
_RENAMED = {("deployment", "vllm_version"): "server_version"}


def _renamed(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with the old spellings of renamed keys read as the new ones (a key given both ways
    keeps the new spelling's value)."""
    out = dict(data)
    for (table, old), new in _RENAMED.items():
        section = out.get(table)
        if isinstance(section, Mapping) and old in section:
            moved = {k: v for k, v in section.items() if k != old}
            moved.setdefault(new, section[old])
            out[table] = moved
    return out


def _with_effects(
    data: Mapping[str, Any], problems: list[Problem]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """``data`` without its ``[[twin.effects]]``, those whose conditions hold applied; what applied.

    The effects are read first and applied only when every one of them reads: a half-applied list
    would leave the tables' own problems to confuse with the effects'.
    """
    twin = data.get("twin")
    if not isinstance(twin, Mapping) or "effects" not in twin:
        return data, ()
    effects, found = read_effects(twin["effects"])
    problems += found
    plain = {**data, "twin": {k: v for k, v in twin.items() if k != "effects"}}
    if found:
        return plain, ()
    effective, applied, failed = apply_effects(plain, effects)
    problems += failed
    return effective, applied


def _build(path: Path, data: Mapping[str, Any]) -> Profile:
    problems: list[Problem] = []
    effective, applied = _with_effects(_renamed(data), problems)
    tables = build_table(_ProfileFile, effective, "", problems)
    if tables is not None:
        problems += _cross_checks(tables)
    if problems:
        raise ProfileError(path, problems=problems)
    assert isinstance(tables, _ProfileFile)
    return Profile(
        name=tables.profile.name or path.stem,
        path=path,
        description=tables.profile.description,
        deployment=tables.deployment,
        twin=tables.twin,
        perf=tables.perf,
        settings=dict(tables.settings),
        mtp=tables.mtp,
        needle=tables.needle,
        robustness=tables.robustness,
        crash=tables.crash,
        server=tables.server,
        raw=data,
        effects_applied=applied,
    )


def bundled_profiles() -> list[str]:
    """Names of the profiles that ship with pytest-gx10."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def profile_from_data(source: str, data: Mapping[str, Any]) -> Profile:
    """A profile from TOML-shaped data (a discovered deployment), checked like a file; ``source``
    names it in errors and in ``Profile.path``."""
    return _build(Path(source), data)


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name, or any profile by path; raise ProfileError if missing or malformed."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix == ".toml" or candidate.exists() or "/" in text:
        path = candidate
    else:
        path = BUNDLED_DIR / f"{text}.toml"
        if not path.exists():
            known = ", ".join(bundled_profiles())
            raise ProfileError(
                text,
                "",
                f"no such profile is bundled; bundled profiles: {known}; or give a .toml path",
                missing=True,
            )
    data = read_toml(path, ProfileError)
    return _build(path.resolve(), data)
