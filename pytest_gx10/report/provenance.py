"""Provenance: what was running on each side of a run, the deployment and the client, kept apart.

The ``deployment`` block of the results holds one entry per fact, ``{"value": ..., "source": ...}``,
gathered from every source that knows it:

- ``server``: what the server says (``/version``, ``/v1/models``, the info gauges on ``/metrics``);
- ``log``: the server's boot log (the engine config line, the ``non-default args`` it parsed);
- ``image``: what the image suite found inside the recipe's image (torch and its CUDA, vLLM, ...);
- ``recipe``: the launch recipe, when this run launched the deployment (the image and its id and
  digests from the docker engine, the rendered serve command, nodes, tensor parallelism);
- ``profile``: the profile's ``[deployment]`` table, including what cannot be seen from outside
  (``gpu``, ``gpu_count``, ``driver``, ``cuda``, ...).

When several sources know a fact the most direct one wins, in that order. The embedded twin's own
answers carry the source ``twin`` (ranked as a server's), so a twin never passes for hardware: its
GPU facts come from the profile and say so. A fact nobody knows is simply absent.

The ``client`` block is the machine that ran the client (Python, platform, CPU model and cores,
pytest-gx10's version). Serve command lines pass through :func:`redact_argv`: the value of a flag
named like a secret (``--api-key``, ``--hf-token``) never reaches an output. This module imports
nothing from pytest.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gx10 import __version__
from pytest_gx10.observe.logs import parse_lines
from pytest_gx10.observe.prometheus import number_or_text
from pytest_gx10.observe.signatures import engine_config, non_default_args
from pytest_gx10.profiles import Profile
from pytest_gx10.report.redact import MASK

__all__ = [
    "BUILD_FACTS",
    "CLIENT_LABELS",
    "DEPLOYMENT_LABELS",
    "SETUP_FACTS",
    "SOURCES",
    "TWIN",
    "argv_facts",
    "client_differences",
    "client_facts",
    "deployment_differences",
    "deployment_line",
    "fact_text",
    "facts_of",
    "image_facts",
    "log_facts",
    "merge",
    "profile_facts",
    "recipe_facts",
    "redact_argv",
    "redact_mapping",
    "values",
]

TWIN = "twin"  # what the embedded twin answered: ranked as a server's, named for what it is
# Most direct first: a fact the server states beats what a recipe asked for, which beats the profile.
SOURCES = ("server", "log", "image", "recipe", "profile")

# (key, label) in the order the report shows them.
DEPLOYMENT_LABELS: tuple[tuple[str, str], ...] = (
    ("twin", "Twin"),
    ("gpu", "GPU"),
    ("gpu_count", "GPU count"),
    ("gpu_memory", "GPU memory"),
    ("nodes", "Nodes"),
    ("driver", "Driver"),
    ("cuda", "CUDA"),
    ("server", "Server"),
    ("server_version", "Server build"),
    ("torch", "torch"),
    ("torch_cuda", "torch's CUDA"),
    ("vllm", "vLLM in the image"),
    ("transformers", "transformers"),
    ("flashinfer", "flashinfer"),
    ("image", "Image"),
    ("image_id", "Image id"),
    ("image_digests", "Image digests"),
    ("image_ids", "Image id per node"),
    ("launch", "Launched by"),
    ("ray", "Ray"),
    ("tensor_parallel_size", "Tensor parallel"),
    ("model", "Model"),
    ("model_path", "Model path"),
    ("max_model_len", "max_model_len"),
    ("max_num_seqs", "max_num_seqs"),
    ("max_num_batched_tokens", "max_num_batched_tokens"),
    ("parallel_slots", "Parallel slots"),
    ("kv_cache_dtype", "KV cache dtype"),
    ("gpu_memory_utilization", "GPU memory utilization"),
    ("block_size", "KV block size"),
    ("num_gpu_blocks", "KV cache blocks"),
    ("enable_prefix_caching", "Prefix caching"),
    ("speculative", "Speculative decoding"),
    ("speculative_tokens", "Draft positions"),
    ("serve_command", "Serve command"),
    ("serve_args", "Serve args"),
)

# What a new build changes by design: a difference from the baseline is noted, never a regression.
BUILD_FACTS = (
    "image",
    "image_id",
    "image_digests",
    "torch",
    "torch_cuda",
    "vllm",
    "transformers",
    "flashinfer",
    "cuda",
)
# What should stay the same for two runs to compare: noted; --gx10-gate-facts fails the gate on it.
SETUP_FACTS = (
    "gpu",
    "gpu_count",
    "gpu_memory",
    "nodes",
    "driver",
    "tensor_parallel_size",
    "max_model_len",
    "max_num_seqs",
    "max_num_batched_tokens",
    "kv_cache_dtype",
    "gpu_memory_utilization",
    "block_size",
    "enable_prefix_caching",
    "speculative",
    "serve_command",
    "serve_args",
)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def facts_of(source: str, found: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``found`` as a deployment block whose every fact comes from ``source``; unknowns left out."""
    return {k: {"value": _plain(v), "source": source} for k, v in found.items() if not _empty(v)}


def _rank(source: Any) -> int:
    if source == TWIN:
        return 0
    return SOURCES.index(source) if source in SOURCES else len(SOURCES)


def merge(block: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """Two deployment blocks as one: per fact, the more direct source wins (a tie: the newer)."""
    out = {k: dict(v) for k, v in block.items() if isinstance(v, Mapping)}
    for key, fact in incoming.items():
        if not isinstance(fact, Mapping) or _empty(fact.get("value")):
            continue
        held = out.get(key)
        if held is None or _rank(fact.get("source")) <= _rank(held.get("source")):
            out[key] = dict(fact)
    order = {key: i for i, (key, _) in enumerate(DEPLOYMENT_LABELS)}
    return dict(sorted(out.items(), key=lambda item: order.get(item[0], len(order))))


def values(block: Mapping[str, Any]) -> dict[str, Any]:
    """Fact -> value of a deployment block (sources dropped)."""
    return {k: v.get("value") for k, v in block.items() if isinstance(v, Mapping)}


# --- what each source knows ------------------------------------------------------------------------


def profile_facts(profile: Profile) -> dict[str, Any]:
    """What the profile's ``[deployment]`` table says, hardware included (a claim, not a measurement)."""
    dep = profile.deployment
    given = profile.raw.get("deployment") or {}
    spec = dep.speculative
    facts: dict[str, Any] = {
        "gpu": dep.gpu,
        "gpu_count": dep.gpu_count,
        "gpu_memory": dep.gpu_memory,
        "nodes": dep.nodes,
        "driver": dep.driver,
        "cuda": dep.cuda,
        "torch": dep.torch,
        "image": dep.image,
        "model": dep.served_model_name,
        "model_path": dep.model_path or None,
        "max_model_len": dep.max_model_len,
        "speculative": f"{spec.method} k={spec.num_speculative_tokens}" if spec is not None else None,
        "serve_args": dict(dep.serve_args) or None,
    }
    # Keys with a default are the profile's word only when it wrote them.
    for key in ("tensor_parallel_size", "max_num_seqs", "max_num_batched_tokens", "kv_cache_dtype"):
        if key in given:
            facts[key] = getattr(dep, key)
    return facts


_SECRET_WORD = re.compile(
    r"(?:^|[-_])(?:api[-_]?key|key|token|secret|secrets|password|passwd|credentials?)(?:[-_]|$)",
    re.IGNORECASE,
)
_ENV_WORD = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=")


def _secret_flag(word: str) -> bool:
    return word.startswith("-") and _SECRET_WORD.search(word.lstrip("-").split("=", 1)[0]) is not None


def redact_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` with the value of every secret-named flag (``--api-key sk-...``, ``--hf-token=...``)
    and every secret-named ``NAME=value`` word masked."""
    out: list[str] = []
    mask_next = False
    for word in argv:
        if mask_next and not word.startswith("-"):
            out.append(MASK)
            mask_next = False
            continue
        mask_next = False
        env = _ENV_WORD.match(word)
        if _secret_flag(word):
            if "=" in word:
                out.append(word.split("=", 1)[0] + "=" + MASK)
            else:
                out.append(word)
                mask_next = True
        elif env is not None and _SECRET_WORD.search(env.group("name")):
            out.append(env.group("name") + "=" + MASK)
        else:
            out.append(word)
    return out


_ADDRESS_FLAGS = ("--host", "--port")  # where it listens, not what it is: the endpoint says that
# Flags of `vllm serve` whose values are deployment facts: option spellings -> fact.
_ARGV_FACTS = {
    "--tensor-parallel-size": "tensor_parallel_size",
    "-tp": "tensor_parallel_size",
    "--max-model-len": "max_model_len",
    "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens",
    "--kv-cache-dtype": "kv_cache_dtype",
    "--gpu-memory-utilization": "gpu_memory_utilization",
    "--speculative-config": "speculative",
}


def _speculative(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value or None
    if isinstance(value, Mapping) and value.get("method"):
        k = value.get("num_speculative_tokens")
        return f"{value['method']} k={k}" if k is not None else str(value["method"])
    return None


def _without_address(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        name = word.split("=", 1)[0]
        if name in _ADDRESS_FLAGS:
            skip = "=" not in word
            continue
        out.append(word)
    return out


def argv_facts(argv: Sequence[str]) -> dict[str, Any]:
    """What a serve command line says: the command itself (redacted, without host and port) and the
    values of the flags that are deployment facts (``-tp 4``, ``--max-model-len 262144``, ...)."""
    words = _without_address(redact_argv(argv))
    shown = (w if w == MASK or w.endswith("=" + MASK) else shlex.quote(w) for w in words)
    facts: dict[str, Any] = {"serve_command": " ".join(shown)}
    for i, word in enumerate(words):
        name, eq, inline = word.partition("=")
        fact = _ARGV_FACTS.get(name)
        if fact is None:
            continue
        raw = inline if eq else (words[i + 1] if i + 1 < len(words) else "")
        facts[fact] = _speculative(raw) if fact == "speculative" else number_or_text(raw)
    return facts


def recipe_facts(launched: Mapping[str, Any]) -> dict[str, Any]:
    """A launcher's facts (:meth:`pytest_gx10.launch.Launcher.facts`) as deployment facts: its
    ``serve_argv`` becomes the redacted serve command and the flags' facts (:func:`argv_facts`)."""
    facts = {k: v for k, v in launched.items() if k != "serve_argv"}
    argv = launched.get("serve_argv")
    if isinstance(argv, list | tuple):
        facts.update(argv_facts([str(word) for word in argv]))
    return facts


def image_facts(image: str, versions: Mapping[str, str | None]) -> dict[str, Any]:
    """What the image suite found in ``image``: torch and its CUDA, vLLM, transformers, flashinfer."""
    return {"image": image, **{k: v for k, v in versions.items() if v is not None}}


def log_facts(text: str) -> dict[str, Any]:
    """What a vLLM boot log says: the engine config line's version, TP and speculative config, and
    the ``non-default args`` the server parsed (without host and port). The last boot counts (a
    relaunch appends to the same log)."""
    config = None
    args: dict[str, Any] | None = None
    for line in parse_lines(text):
        config = engine_config(line) or config
        args = non_default_args(line) or args
    facts: dict[str, Any] = {}
    if config is not None:
        facts["server_version"] = config.version
        facts["tensor_parallel_size"] = config.tensor_parallel_size
        if config.speculative_method:
            k = config.num_spec_tokens
            facts["speculative"] = config.speculative_method + (f" k={k}" if k else "")
    if args:
        shown = {k: _plain(v) for k, v in args.items() if k not in ("host", "port")}
        facts["serve_args"] = redact_mapping(shown)
    return {k: v for k, v in facts.items() if v is not None}


def redact_mapping(args: Mapping[str, Any]) -> dict[str, Any]:
    """Flags as a mapping (``non-default args``), the value of each secret-named one masked."""
    return {k: MASK if _SECRET_WORD.search(str(k)) else v for k, v in args.items()}


# --- the client --------------------------------------------------------------------------------------


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                name, _, value = line.partition(":")
                if name.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def client_facts() -> dict[str, Any]:
    """The machine that ran the client: Python, platform, CPU model, cores, pytest-gx10's version."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    facts = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cores_usable": usable,
        "pytest_gx10": __version__,
    }
    return {k: v for k, v in facts.items() if v is not None}


CLIENT_LABELS: tuple[tuple[str, str], ...] = (
    ("cpu_model", "Client CPU"),
    ("cpu_count", "Client CPUs"),
    ("cores_usable", "Client cores usable"),
    ("machine", "Client machine"),
    ("platform", "Client platform"),
    ("python", "Client Python"),
    ("pytest_gx10", "pytest-gx10"),
)
CLIENT_COMPARED = ("machine", "cpu_model", "cpu_count", "platform", "python")


# --- comparing and showing ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def deployment_differences(
    before: Mapping[str, Any], after: Mapping[str, Any], keys: Sequence[str]
) -> list[str]:
    """One line per fact of ``keys`` both blocks know and that differs: ``deployment gpu differs: ...``."""
    was, now = values(before), values(after)
    label = dict(DEPLOYMENT_LABELS)
    lines = []
    for key in keys:
        a, b = was.get(key), now.get(key)
        if a is not None and b is not None and a != b:
            lines.append(
                f"deployment {label.get(key, key)} differs: baseline {_text(a)} "
                f"[{before[key].get('source')}], this run {_text(b)} [{after[key].get('source')}]"
            )
    return lines


def client_differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """One line per client fact that differs (the baseline's known, this run's possibly not)."""
    return [
        f"client {key} differs: baseline {before[key]}, this run {after.get(key)}"
        for key in CLIENT_COMPARED
        if before.get(key) is not None and before.get(key) != after.get(key)
    ]


def fact_text(fact: Mapping[str, Any]) -> str:
    """``NVIDIA GB10 [profile]``: a fact's value and where it came from."""
    return f"{_text(fact.get('value'))} [{fact.get('source')}]"


def deployment_line(block: Mapping[str, Any]) -> str | None:
    """One short line for the terminal header (GPUs, driver, CUDA, image, TP), or None when none of
    the GPU, driver, CUDA or image is known."""
    have = values(block)
    parts: list[str] = []
    used: list[str] = []
    if have.get("gpu"):
        count = have.get("gpu_count")
        parts.append(f"{count} x {have['gpu']}" if count else str(have["gpu"]))
        used += ["gpu", "gpu_count"] if count else ["gpu"]
    for key, label in (("driver", "driver "), ("cuda", "CUDA "), ("image", "image ")):
        if have.get(key):
            parts.append(f"{label}{have[key]}")
            used.append(key)
    if not parts:
        return None
    if have.get("tensor_parallel_size"):
        parts.append(f"TP={have['tensor_parallel_size']}")
        used.append("tensor_parallel_size")
    sources = sorted({str(block[k].get("source")) for k in used}, key=_rank)
    return ", ".join(parts) + f" [{', '.join(sources)}]"
