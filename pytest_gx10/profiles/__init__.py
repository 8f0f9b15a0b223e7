"""Deployment profiles: what a deployment should be, and the floors the suites hold it to.

A profile is a TOML file. The bundled ones live next to this module and are found by name
(``qwen3.5-397b-fp8-mtp2-gx10x4``); any other is given by path. Every key is checked against
the schema below, so a typo is an error that names the file and the key, not a silently ignored
setting. This module is core: it imports nothing from pytest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_gx10.profiles.faults import Fault, FaultSpecError, fault_from_table
from pytest_gx10.tomlfile import NUMBER, check_schema, read_toml

__all__ = [
    "BUNDLED_DIR",
    "DEFAULT_PROFILE",
    "CrashSpec",
    "Deployment",
    "MtpSpec",
    "NeedleSpec",
    "PerfSpec",
    "Profile",
    "ProfileError",
    "RobustnessSpec",
    "SpeculativeSpec",
    "TwinSpec",
    "bundled_profiles",
    "load_profile",
    "lookup",
    "profile_from_data",
]

BUNDLED_DIR = Path(__file__).parent
DEFAULT_PROFILE = "qwen3.5-397b-fp8-mtp2-gx10x4"


class ProfileError(ValueError):
    """A profile that cannot be used: names the file, the key and the problem."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        where = f"{self.path}: key '{key}'" if key else str(self.path)
        super().__init__(f"malformed profile {where}: {problem}")


@dataclass(frozen=True)
class SpeculativeSpec:
    """The speculative-decoding config the deployment should run with."""

    method: str
    num_speculative_tokens: int
    # Per-position draft acceptance the twin reproduces (reference: 0.889, 0.833).
    acceptance_per_position: tuple[float, ...] = ()


@dataclass(frozen=True)
class Deployment:
    """Facts a healthy deployment of this profile shows on the wire and in its log."""

    served_model_name: str
    max_model_len: int
    model_path: str = ""
    vllm_version: str | None = None  # a regular expression matched at the start of /version
    tensor_parallel_size: int = 1
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    kv_cache_dtype: str = "auto"
    reasoning_parser: str | None = None
    speculative: SpeculativeSpec | None = None
    serve_args: Mapping[str, Any] = field(default_factory=dict)

    def version_matches(self, version: str) -> bool:
        """True when ``version`` matches the profile's pattern (or there is none)."""
        return self.vllm_version is None or re.match(self.vllm_version, version) is not None


@dataclass(frozen=True)
class TwinSpec:
    """How the embedded twin behaves when it stands in for this deployment."""

    version: str = "0.32.0"
    prefill_tps: float = 2000.0  # one sequence alone
    decode_tps: float = 40.0  # one sequence alone, tokens per second including accepted drafts
    time_scale: float = 1.0  # >1 runs faster than real time
    log_interval_s: float = 10.0  # the periodic "Engine 000: Avg prompt throughput" line
    default_output_tokens: int = 64  # when the request does not say max_tokens
    # Scheduler: at most this many prompts in chunked prefill at once, sharing the step's token budget
    # equally (a lone prompt takes it all); 0 keeps vLLM V1's plain first-come chunking.
    max_num_partial_prefills: int = 0
    # Calibrated step-time model (pytest_gx10.fake.steptime.CalibratedStepTime); without a
    # decode_step_s table the twin uses the linear model built from prefill_tps and decode_tps.
    decode_step_s: tuple[tuple[int, float], ...] = ()  # (decode batch size, seconds per step)
    prefill_token_s: float = 0.0  # warm seconds per prefill token; 0 means 1 / prefill_tps
    prefill_context_s: float = 0.0  # warm seconds per token-position of context (attention)
    warmup_s: float = 0.0  # once, on the first long prefill step
    warmup_min_prefill_tokens: int = 1  # prefill tokens that make a step a long prefill step
    cold_prefill_factor: float = 0.0  # extra prefill cost at start, fading to 0 ...
    cold_prefill_tokens: int = 0  # ... over this many long-prefill tokens
    # The twin finds a needle only in prompts up to this many tokens, and answers a wrong code beyond
    # (as a small model loses track in a long context); None finds it at any length.
    needle_horizon_tokens: int | None = None
    # Faults the twin injects (``[[twin.faults]]``; see pytest_gx10.fake.faults for the kinds and keys).
    faults: tuple[Fault, ...] = ()


@dataclass(frozen=True)
class MtpSpec:
    """The speculative-decoding suite: the generation window and the floors on acceptance."""

    window_tokens: int = 512  # tokens generated between the two /metrics scrapes
    acceptance_rate_min: float | None = None  # accepted / drafted
    acceptance_length_min: float | None = None  # 1 + accepted / drafts
    per_position_min: tuple[float, ...] = ()
    log_tolerance: float = 0.10  # SpecDecoding log lines against /metrics, relative


@dataclass(frozen=True)
class NeedleSpec:
    """The needle-in-a-haystack grid: haystack lengths (tokens) by needle depths (0..1)."""

    lengths: tuple[int, ...] = (2000,)
    depths: tuple[float, ...] = (0.5,)
    max_tokens: int = 1024  # room for a reasoning trace before the answer
    # A miss fails the cell; false reports it (xfail) instead, as a discovered profile does: the
    # user asserted nothing about what their model retrieves.
    required: bool = True


@dataclass(frozen=True)
class RobustnessSpec:
    """The robustness suite: how much fuzzing, and how big the very large body and header are."""

    fuzz_examples: int = 50  # request bodies the hypothesis fuzz sends (bounded, derandomized)
    large_body_mb: int = 8  # the very large body: a prompt of this many MiB of text
    huge_header_kb: int = 64  # the huge header: one header of this many KiB


@dataclass(frozen=True)
class CrashSpec:
    """The crash suite's sustained load, and the engine sentinel's patience."""

    concurrency: int = 4  # requests in flight at once
    requests: int = 16  # requests in all (waves of ``concurrency``) ...
    duration_s: float = 0.0  # ... or, when positive, waves until this many seconds have passed
    input_tokens: int = 256
    max_tokens: int = 64
    # The sentinel: /health and the log every poll_s; a request stream silent for stall_timeout_s
    # ends as a stall; generation tokens frozen for hung_after_s with requests running, and then a
    # canary unfinished after canary_timeout_s, make the engine hung. A long prefill generates no
    # token either (the reference cluster takes about two minutes over a 200k-token prompt, and a
    # canary queued behind it waits), so hung_after_s must outlast the longest prefill.
    poll_s: float = 1.0
    stall_timeout_s: float = 600.0
    hung_after_s: float = 300.0
    canary_timeout_s: float = 60.0


@dataclass(frozen=True)
class PerfSpec:
    """The throughput sweep: workload and floors per concurrency point."""

    concurrency: tuple[int, ...] = (1, 2, 4)
    endpoint: str = "chat"  # "chat" or "completions"
    ignore_eos: bool = True  # every request decodes exactly max_tokens
    input_tokens: int = 1000
    max_tokens: int = 128
    floors: Mapping[int, Mapping[str, float]] = field(default_factory=dict)


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

    @property
    def bundled(self) -> bool:
        """True when the profile ships with pytest-gx10."""
        return self.path.parent == BUNDLED_DIR


# --- schema -------------------------------------------------------------------------------------

_NUMBER = NUMBER

# table -> key -> type; a dict value is a nested table. "*" stands for any key.
_SCHEMA: dict[str, Any] = {
    "profile": {"name": str, "description": str},
    "settings": {"endpoint": str, "model": str, "timeout": _NUMBER, "needle_seed": int},
    "server": {"adapter": str},
    "deployment": {
        "served_model_name": str,
        "model_path": str,
        "max_model_len": int,
        "vllm_version": str,
        "tensor_parallel_size": int,
        "max_num_seqs": int,
        "max_num_batched_tokens": int,
        "kv_cache_dtype": str,
        "reasoning_parser": str,
        "serve_args": {"*": object},
        "speculative": {
            "method": str,
            "num_speculative_tokens": int,
            "acceptance_per_position": list,
        },
    },
    "twin": {
        "version": str,
        "prefill_tps": _NUMBER,
        "decode_tps": _NUMBER,
        "time_scale": _NUMBER,
        "log_interval_s": _NUMBER,
        "default_output_tokens": int,
        "max_num_partial_prefills": int,
        "decode_step_s": list,
        "prefill_token_s": _NUMBER,
        "prefill_context_s": _NUMBER,
        "warmup_s": _NUMBER,
        "warmup_min_prefill_tokens": int,
        "cold_prefill_factor": _NUMBER,
        "cold_prefill_tokens": int,
        "needle_horizon_tokens": int,
        "faults": list,
    },
    "perf": {
        "endpoint": str,
        "ignore_eos": bool,
        "concurrency": list,
        "input_tokens": int,
        "max_tokens": int,
        "floors": {"*": {"*": _NUMBER}},
    },
    "mtp": {
        "window_tokens": int,
        "acceptance_rate_min": _NUMBER,
        "acceptance_length_min": _NUMBER,
        "per_position_min": list,
        "log_tolerance": _NUMBER,
    },
    "needle": {
        "lengths": list,
        "depths": list,
        "max_tokens": int,
        "required": bool,
    },
    "robustness": {"fuzz_examples": int, "large_body_mb": int, "huge_header_kb": int},
    "crash": {
        "concurrency": int,
        "requests": int,
        "duration_s": _NUMBER,
        "input_tokens": int,
        "max_tokens": int,
        "poll_s": _NUMBER,
        "stall_timeout_s": _NUMBER,
        "hung_after_s": _NUMBER,
        "canary_timeout_s": _NUMBER,
    },
    # Release gating (pytest_gx10.report.baseline checks the values): tolerances per figure, "5%" or 0.05.
    "baseline": {"greedy_match_min": _NUMBER, "tolerances": {"*": object}},
}

_REQUIRED = ("deployment.served_model_name", "deployment.max_model_len")


def lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key (``perf.concurrency``) of a nested mapping, or None."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _positive(path: Path, data: Mapping[str, Any], dotted: str) -> None:
    value = lookup(data, dotted)
    if value is not None and value <= 0:
        raise ProfileError(path, dotted, f"must be positive, got {value!r}")


def _build(path: Path, data: Mapping[str, Any]) -> Profile:
    check_schema(path, data, _SCHEMA, ProfileError)
    for dotted in _REQUIRED:
        if lookup(data, dotted) is None:
            raise ProfileError(path, dotted, "required key is missing")
    for dotted in (
        "deployment.max_model_len",
        "deployment.tensor_parallel_size",
        "deployment.max_num_seqs",
        "deployment.max_num_batched_tokens",
        "deployment.speculative.num_speculative_tokens",
        "twin.prefill_tps",
        "twin.decode_tps",
        "twin.time_scale",
        "twin.log_interval_s",
        "twin.warmup_min_prefill_tokens",
        "settings.timeout",
        "perf.input_tokens",
        "perf.max_tokens",
        "robustness.fuzz_examples",
        "robustness.large_body_mb",
        "robustness.huge_header_kb",
        "crash.concurrency",
        "crash.requests",
        "crash.input_tokens",
        "crash.max_tokens",
        "crash.poll_s",
        "crash.stall_timeout_s",
        "crash.hung_after_s",
        "crash.canary_timeout_s",
    ):
        _positive(path, data, dotted)

    version = lookup(data, "deployment.vllm_version")
    if version is not None:
        try:
            re.compile(version)
        except re.error as exc:
            raise ProfileError(path, "deployment.vllm_version", f"not a regular expression: {exc}") from None

    dep = dict(data["deployment"])
    spec_raw = dep.pop("speculative", None)
    speculative = None
    if spec_raw is not None:
        for key in ("method", "num_speculative_tokens"):
            if key not in spec_raw:
                raise ProfileError(path, f"deployment.speculative.{key}", "required key is missing")
        rates = spec_raw.get("acceptance_per_position", [])
        for i, rate in enumerate(rates):
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
                raise ProfileError(
                    path,
                    f"deployment.speculative.acceptance_per_position[{i}]",
                    f"expected a rate between 0 and 1, got {rate!r}",
                )
        if rates and len(rates) != spec_raw["num_speculative_tokens"]:
            raise ProfileError(
                path,
                "deployment.speculative.acceptance_per_position",
                f"has {len(rates)} rates but num_speculative_tokens is {spec_raw['num_speculative_tokens']}",
            )
        speculative = SpeculativeSpec(
            method=spec_raw["method"],
            num_speculative_tokens=spec_raw["num_speculative_tokens"],
            acceptance_per_position=tuple(float(r) for r in rates),
        )
    deployment = Deployment(**dep, speculative=speculative)

    perf_raw = dict(data.get("perf", {}))
    concurrency = perf_raw.pop("concurrency", None)
    if concurrency is not None:
        if not concurrency or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in concurrency
        ):
            raise ProfileError(path, "perf.concurrency", f"expected positive integers, got {concurrency!r}")
        perf_raw["concurrency"] = tuple(concurrency)
    if perf_raw.get("endpoint", "chat") not in ("chat", "completions"):
        raise ProfileError(
            path, "perf.endpoint", f"expected 'chat' or 'completions', got {perf_raw['endpoint']!r}"
        )
    floors_raw = perf_raw.pop("floors", {})
    floors: dict[int, dict[str, float]] = {}
    for point, metrics in floors_raw.items():
        if not point.isdigit() or int(point) <= 0:
            raise ProfileError(
                path, f"perf.floors.{point}", "floor tables are keyed by concurrency, e.g. [perf.floors.8]"
            )
        floors[int(point)] = {k: float(v) for k, v in metrics.items()}
    perf = PerfSpec(**perf_raw, floors=floors)

    twin = _twin(path, dict(data.get("twin", {})))
    meta = data.get("profile", {})
    return Profile(
        name=meta.get("name", path.stem),
        path=path,
        description=meta.get("description", ""),
        deployment=deployment,
        twin=twin,
        perf=perf,
        settings=dict(data.get("settings", {})),
        mtp=_mtp(path, data.get("mtp", {})),
        needle=_needle(path, data.get("needle", {})),
        robustness=RobustnessSpec(**data.get("robustness", {})),
        crash=_crash(data.get("crash", {})),
        raw=data,
    )


def _crash(raw: Mapping[str, Any]) -> CrashSpec:
    seconds: dict[str, Any] = {k: float(v) if k.endswith("_s") else v for k, v in raw.items()}
    return CrashSpec(**seconds)


def _rates(path: Path, key: str, values: list[Any]) -> tuple[float, ...]:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise ProfileError(path, f"{key}[{i}]", f"expected a number between 0 and 1, got {v!r}")
    return tuple(float(v) for v in values)


def _mtp(path: Path, raw: dict[str, Any]) -> MtpSpec:
    raw = dict(raw)
    if "per_position_min" in raw:
        raw["per_position_min"] = _rates(path, "mtp.per_position_min", raw["per_position_min"])
    for key in ("acceptance_rate_min", "log_tolerance"):
        if key in raw:
            _rates(path, f"mtp.{key}", [raw[key]])
    return MtpSpec(**raw)


def _needle(path: Path, raw: dict[str, Any]) -> NeedleSpec:
    raw = dict(raw)
    if "lengths" in raw:
        if not raw["lengths"] or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in raw["lengths"]
        ):
            raise ProfileError(
                path, "needle.lengths", f"expected positive token counts, got {raw['lengths']!r}"
            )
        raw["lengths"] = tuple(raw["lengths"])
    if "depths" in raw:
        if not raw["depths"]:
            raise ProfileError(path, "needle.depths", "expected at least one depth between 0 and 1")
        raw["depths"] = _rates(path, "needle.depths", raw["depths"])
    return NeedleSpec(**raw)


def _twin(path: Path, raw: dict[str, Any]) -> TwinSpec:
    for key in (
        "max_num_partial_prefills",
        "prefill_token_s",
        "prefill_context_s",
        "warmup_s",
        "cold_prefill_factor",
        "cold_prefill_tokens",
    ):
        if raw.get(key, 0) < 0:
            raise ProfileError(path, f"twin.{key}", f"must not be negative, got {raw[key]!r}")
    faults: list[Fault] = []
    for i, entry in enumerate(raw.pop("faults", [])):
        if not isinstance(entry, dict):
            raise ProfileError(
                path, f"twin.faults[{i}]", f"expected a table ([[twin.faults]]), got {type(entry).__name__}"
            )
        try:
            faults.append(fault_from_table(entry))
        except FaultSpecError as exc:
            raise ProfileError(path, f"twin.faults[{i}]", str(exc)) from None
    table = raw.pop("decode_step_s", [])
    pairs: list[tuple[int, float]] = []
    for i, entry in enumerate(table):
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
            raise ProfileError(
                path, f"twin.decode_step_s[{i}]", f"expected [batch size >= 1, seconds > 0], got {entry!r}"
            )
        pairs.append((entry[0], float(entry[1])))
    sizes = [n for n, _ in pairs]
    if sizes != sorted(set(sizes)):
        raise ProfileError(path, "twin.decode_step_s", f"batch sizes must increase, got {sizes!r}")
    return TwinSpec(**raw, decode_step_s=tuple(pairs), faults=tuple(faults))


def bundled_profiles() -> list[str]:
    """Names of the profiles that ship with pytest-gx10."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.toml"))


def profile_from_data(source: str, data: Mapping[str, Any]) -> Profile:
    """A profile from TOML-shaped data (a discovered deployment), checked like a file; ``source``
    names it in errors and in ``Profile.path``."""
    return _build(Path(source), data)


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a bundled profile by name, or any profile by path; raise ProfileError if malformed."""
    text = str(name_or_path)
    candidate = Path(text).expanduser()
    if candidate.suffix == ".toml" or candidate.exists() or "/" in text:
        path = candidate
    else:
        path = BUNDLED_DIR / f"{text}.toml"
        if not path.exists():
            known = ", ".join(bundled_profiles())
            raise ProfileError(
                text, "", f"no such profile; bundled profiles: {known}; or give a path to a .toml file"
            )
    data = read_toml(path, ProfileError)
    return _build(path.resolve(), data)
