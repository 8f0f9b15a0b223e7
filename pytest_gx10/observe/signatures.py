"""The catalogue of log signatures: what a vLLM log says about wiring, speculative decoding and death.

Each signature is a named regular expression, written to tolerate the older and newer spellings seen
in the field (vLLM 0.6's "Speculative metrics", 0.2x's short "SpecDecoding metrics" line, 0.32's line
with throughput fields; "Detected MTP model" and the older EAGLE wording). The functions below take a
message (or a whole line: the prefix is ignored) and return parsed values, or None when the text is
not that signature.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pytest_gx10.observe.logs import LogLine

__all__ = [
    "CRASH_SIGNATURES",
    "FATAL_SIGNATURES",
    "SIGNATURES",
    "EngineConfig",
    "EngineThroughput",
    "Signature",
    "SignatureHit",
    "SpecDecodingLine",
    "crash_hits",
    "engine_config",
    "engine_throughput",
    "is_mtp_detected",
    "method_matches",
    "non_default_args",
    "spec_decoding",
]


@dataclass(frozen=True)
class Signature:
    """A named pattern found in a server log."""

    name: str
    pattern: re.Pattern[str]
    description: str

    def search(self, text: str) -> re.Match[str] | None:
        """The first match in ``text``, if any."""
        return self.pattern.search(text)


def _sig(name: str, pattern: str, description: str) -> Signature:
    return Signature(name, re.compile(pattern), description)


ENGINE_CONFIG = _sig(
    "engine_config",
    r"Initializing an? (?:V1 )?LLM engine(?: \(v(?P<version>[^)]+)\))? with config:",
    "the engine's resolved configuration, printed once at boot",
)
NON_DEFAULT_ARGS = _sig("non_default_args", r"non-default args: (?P<args>\{.*\})\s*$", "the command line")
MTP_DETECTED = _sig(
    "mtp_detected",
    r"Detected MTP model\. Sharing target model embedding weights with the draft model"
    r"|Assuming the EAGLE head shares the same vocab embedding with the target model",
    "MTP draft head wired (once per TP worker)",
)
SPEC_DECODING = _sig(
    "spec_decoding",
    r"SpecDecoding metrics:|Speculative metrics:",
    "periodic speculative-decoding summary (every log interval under load)",
)
ENGINE_THROUGHPUT = _sig(
    "engine_throughput",
    r"Avg prompt throughput: (?P<prompt>[\d.]+) tokens/s, Avg generation throughput: (?P<gen>[\d.]+) tokens/s",
    "periodic engine throughput (every log interval under load)",
)

CRASH_SIGNATURES: tuple[Signature, ...] = (
    _sig("illegal_memory_access", r"an illegal memory access was encountered", "CUDA illegal memory access"),
    _sig(
        "nccl_watchdog",
        r"(?:Process group|ProcessGroupNCCL's) watchdog (?:thread )?(?:terminated|got fatal error)",
        "NCCL watchdog killed the process group",
    ),
    _sig(
        "ray_worker_died",
        r"RayWorker(?:Proc|Wrapper)?(?: rank=\[?\d+\]?)? died(?: unexpectedly)?|Worker exit type: SYSTEM_ERROR",
        "a Ray worker process died",
    ),
    _sig(
        "engine_dead",
        r"EngineDeadError|EngineCore encountered (?:an issue|a fatal error)",
        "the engine core died",
    ),
    _sig(
        "engine_proc_died",
        r"Engine core proc \S+ died unexpectedly",
        "the engine core process died (the API server shuts down after it)",
    ),
    _sig("cuda_oom", r"CUDA out of memory|OutOfMemoryError", "GPU memory exhausted"),
    _sig("traceback", r"^Traceback \(most recent call last\):", "start of a Python traceback"),
)

# The crash signatures that mean the engine is gone. A traceback alone does not: vLLM logs one for
# some requests it refuses and carries on serving.
FATAL_SIGNATURES: tuple[Signature, ...] = tuple(s for s in CRASH_SIGNATURES if s.name != "traceback")

SIGNATURES: dict[str, Signature] = {
    s.name: s
    for s in (
        ENGINE_CONFIG,
        NON_DEFAULT_ARGS,
        MTP_DETECTED,
        SPEC_DECODING,
        ENGINE_THROUGHPUT,
        *CRASH_SIGNATURES,
    )
}


def _text(line: str | LogLine) -> str:
    return line.message if isinstance(line, LogLine) else line


# --- engine config ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineConfig:
    """What the engine config line says about the deployment."""

    version: str | None
    speculative_method: str | None  # None: speculative_config=None
    num_spec_tokens: int | None
    tensor_parallel_size: int | None
    speculative_config: str | None  # the raw text after ``speculative_config=``


_SPEC_CONFIG = re.compile(r"speculative_config=(?P<spec>None|\w*\((?:[^()]|\([^()]*\))*\)|\{[^}]*\})")
_METHOD = re.compile(r"""['"]?method['"]?\s*[=:]\s*['"](?P<method>[\w.\-]+)['"]""")
_K = re.compile(r"""['"]?num_spec(?:ulative)?_tokens['"]?\s*[=:]\s*(?P<k>\d+)""")
_TP = re.compile(r"tensor_parallel_size=(?P<tp>\d+)")


def engine_config(line: str | LogLine) -> EngineConfig | None:
    """Parse ``Initializing a V1 LLM engine (vX) with config: ...``; None for any other line."""
    text = _text(line)
    m = ENGINE_CONFIG.search(text)
    if m is None:
        return None
    rest = text[m.end() :]
    spec_m = _SPEC_CONFIG.search(rest)
    spec = spec_m.group("spec") if spec_m else None
    method = k = None
    if spec and spec != "None":
        mm, km = _METHOD.search(spec), _K.search(spec)
        method = mm.group("method") if mm else None
        k = int(km.group("k")) if km else None
    tp_m = _TP.search(rest)
    return EngineConfig(
        version=m.group("version"),
        speculative_method=method,
        num_spec_tokens=k,
        tensor_parallel_size=int(tp_m.group("tp")) if tp_m else None,
        speculative_config=spec,
    )


def method_matches(expected: str, found: str | None) -> bool:
    """Whether an engine's speculative method is the profile's.

    ``mtp`` matches every MTP spelling (``qwen3_next_mtp``, ``deepseek_mtp``, ...: newer wheels remap
    them to ``mtp``); ``eagle`` matches ``eagle3`` likewise; other methods must be equal.
    """
    if found is None:
        return False
    expected, found = expected.lower(), found.lower()
    if expected == found:
        return True
    for family in ("mtp", "eagle"):
        if expected.endswith(family) or expected.startswith(family):
            return family in found
    return False


def non_default_args(line: str | LogLine) -> dict[str, Any] | None:
    """The dict of a ``non-default args: {...}`` line; None for any other line or one not a literal."""
    m = NON_DEFAULT_ARGS.search(_text(line))
    if m is None:
        return None
    try:
        value = ast.literal_eval(m.group("args"))
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, dict) else None


def is_mtp_detected(line: str | LogLine) -> bool:
    """The line a TP worker prints when it wires an MTP draft head."""
    return MTP_DETECTED.search(_text(line)) is not None


# --- SpecDecoding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecDecodingLine:
    """One interval's speculative-decoding summary, as the log prints it."""

    mean_acceptance_length: float | None
    accepted: int | None
    drafted: int | None
    per_position: tuple[float, ...]
    avg_acceptance_rate: float | None  # a fraction (the line prints a percentage)
    accepted_tps: float | None = None
    drafted_tps: float | None = None


def _num(pattern: str, text: str) -> str | None:
    m = re.search(pattern, text)
    return m.group(1) if m else None


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def spec_decoding(line: str | LogLine) -> SpecDecodingLine | None:
    """Parse a ``SpecDecoding metrics: ...`` line (or vLLM 0.6's ``Speculative metrics: ...``)."""
    text = _text(line)
    m = SPEC_DECODING.search(text)
    if m is None:
        return None
    body = " ".join(text[m.end() :].split())  # tolerate lines re-wrapped by hand
    accepted = _num(r"Accepted: (\d+) tokens", body) or _num(r"Number of accepted tokens: (\d+)", body)
    drafted = _num(r"Drafted: (\d+) tokens", body) or _num(r"Number of draft tokens: (\d+)", body)
    rate: float | None
    pct = _num(r"Avg Draft acceptance rate: ([\d.]+|nan)%", body)
    if pct is not None:
        rate = _float(pct)
        rate = None if rate is None or math.isnan(rate) else rate / 100
    else:
        rate = _float(_num(r"Draft acceptance rate: ([\d.]+)", body))
    per_pos = _num(r"Per-position acceptance rate: ((?:[\d.]+(?:,\s*)?)+)", body)
    positions = tuple(float(x) for x in re.findall(r"[\d.]+", per_pos)) if per_pos else ()
    length = _float(_num(r"Mean acceptance length: ([\d.]+)", body))
    return SpecDecodingLine(
        mean_acceptance_length=length,
        accepted=int(accepted) if accepted is not None else None,
        drafted=int(drafted) if drafted is not None else None,
        per_position=positions,
        avg_acceptance_rate=rate,
        accepted_tps=_float(_num(r"Accepted throughput: ([\d.]+) tokens/s", body)),
        drafted_tps=_float(_num(r"Drafted throughput: ([\d.]+) tokens/s", body)),
    )


# --- periodic throughput -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineThroughput:
    """The periodic ``Avg prompt throughput ... Avg generation throughput ...`` line."""

    prompt_tps: float
    generation_tps: float
    running: int | None
    waiting: int | None
    kv_cache_usage: float | None  # a fraction
    prefix_cache_hit_rate: float | None  # a fraction
    engine: str | None = None


def engine_throughput(line: str | LogLine) -> EngineThroughput | None:
    """Parse the periodic engine throughput line; None for any other line."""
    text = _text(line)
    m = ENGINE_THROUGHPUT.search(text)
    if m is None:
        return None
    running = _num(r"Running: (\d+) reqs", text)
    waiting = _num(r"(?:Waiting|Pending): (\d+) reqs", text)
    kv = _float(_num(r"KV cache usage: ([\d.]+)%", text))
    hit = _float(_num(r"Prefix cache hit rate: ([\d.]+)%", text))
    return EngineThroughput(
        prompt_tps=float(m.group("prompt")),
        generation_tps=float(m.group("gen")),
        running=int(running) if running is not None else None,
        waiting=int(waiting) if waiting is not None else None,
        kv_cache_usage=kv / 100 if kv is not None else None,
        prefix_cache_hit_rate=hit / 100 if hit is not None else None,
        engine=_num(r"Engine (\d+):", text),
    )


# --- crashes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureHit:
    """A crash signature found on a line."""

    name: str
    line: str


def crash_hits(
    lines: Iterable[str | LogLine], signatures: Iterable[Signature] = CRASH_SIGNATURES
) -> list[SignatureHit]:
    """Every crash signature (vLLM's unless ``signatures`` says) on every line, in log order."""
    signatures = tuple(signatures)
    hits: list[SignatureHit] = []
    for line in lines:
        raw = line.raw if isinstance(line, LogLine) else line
        text = _text(line)
        for sig in signatures:
            if sig.search(text) or (text is not raw and sig.search(raw)):
                hits.append(SignatureHit(sig.name, raw))
    return hits
