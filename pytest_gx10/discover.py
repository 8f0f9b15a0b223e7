"""Discovery: the profile of a deployment nobody wrote one for, built from what the server says.

Attached with no ``--gx10-profile``, the plugin asks the server, through its engine's adapter
(:mod:`pytest_gx10.servers`): the served model and its context window, its version, speculative
decoding (the spec-decode counters on ``/metrics``; method and k from the engine config line when a
log is given), a reasoning parser (a probe reply's reasoning field) and its speed (one short and one
long request). The workloads scale to
it; nothing is gated that the user did not assert: no floors, and the needle grid is reported, not
failed. :func:`profile_toml` writes the facts and a run's figures back as a profile that gates.

Core: nothing here imports pytest.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.figures import HIGHER, LOWER, declared
from pytest_gx10.observe.logs import LogSource, parse_lines
from pytest_gx10.observe.prometheus import MetricsError
from pytest_gx10.observe.signatures import engine_config
from pytest_gx10.servers import NotOffered, Server, choose
from pytest_gx10.tomlfile import dumps
from pytest_gx10.workload import sized_prompt

__all__ = ["Discovery", "discover", "profile_toml"]

PROBE_MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
PERF_INPUT_TOKENS = 1000  # the sweep's prompt where the context allows it
PERF_MAX_TOKENS = 64
NEEDLE_TIME_BUDGET_S = 120.0  # the longest haystack's prefill, at the measured rate
NEEDLE_SIZES = (1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000)


@dataclass
class Discovery:
    """What the server told us, what it could not, and the profile data built from it."""

    url: str
    data: dict[str, Any] = field(default_factory=dict)  # TOML-ready profile tables
    found: list[str] = field(default_factory=list)  # facts, for people ("max_model_len 8192")
    unknown: list[str] = field(default_factory=list)  # what the server could not tell, and the fix
    error: str | None = None  # the server could not be asked at all
    measured: dict[str, float] = field(default_factory=dict)  # one request alone: prefill, decode tok/s

    def line(self) -> str:
        """One line for the report header."""
        if self.error:
            return f"discovery from {self.url} failed: {self.error}"
        return f"discovered from {self.url}: " + ", ".join(self.found)


def discover(
    url: str,
    *,
    api_key: str | None = None,
    model: str | None = None,
    timeout_s: float = 10.0,
    logs: LogSource | None = None,
    server: str | None = None,
) -> Discovery:
    """Ask the server at ``url`` everything a profile says; never raises for an unreachable server.

    ``server`` names the engine's adapter; None detects it.
    """
    found = Discovery(url)
    client = VllmClient(url, api_key=api_key, timeout_s=timeout_s, stall_timeout_s=600.0, model=model)
    try:
        _discover(choose(client, server), found, logs)
    except EndpointError as exc:
        found.error = str(exc)
        found.data = _fallback(url)
    finally:
        client.close()
    return found


def _fallback(url: str) -> dict[str, Any]:
    return {
        "profile": {"name": "discovered", "description": f"could not be discovered from {url}"},
        "deployment": {"served_model_name": "unknown", "max_model_len": 1},
    }


def _discover(server: Server, found: Discovery, logs: LogSource | None) -> None:
    client = server.client
    model = client.served_model()
    max_len = server.max_model_len(model)
    deployment: dict[str, Any] = {"served_model_name": model}
    found.found.append(f"server {server.name}")
    found.found.append(f"model {model}")
    if max_len is not None:
        deployment["max_model_len"] = max_len
        found.found.append(f"max_model_len {max_len}")
    else:
        max_len = 4096
        deployment["max_model_len"] = 1  # asserts nothing: any served window is at least 1
        found.unknown.append(
            f"max_model_len ({server.label} does not say): set deployment.max_model_len in a profile"
        )
    try:
        version = server.version()
        deployment["server_version"] = re.escape(version) + "$"
        found.found.append(f"version {version}")
    except (EndpointError, NotOffered):
        found.unknown.append(
            f"version ({server.label} does not say): set deployment.server_version in a profile"
        )

    spec = _speculative(server, logs)
    if spec is not None:
        deployment["speculative"] = spec
        found.found.append(f"speculative {spec['method']} k={spec['num_speculative_tokens']}")

    reasoning = _reasoning(client, model)
    if reasoning:
        deployment["reasoning_parser"] = "discovered"
        found.found.append("a reasoning trace")

    prefill_tps, decode_tps = _speed(server, model, max_len)
    found.found.append(f"prefill {prefill_tps:.0f} tok/s, decode {decode_tps:.1f} tok/s alone")
    found.measured = {"prefill_tps": round(prefill_tps, 1), "decode_tps": round(decode_tps, 2)}
    found.data = _profile_data(found.url, deployment, max_len, prefill_tps, decode_tps, reasoning)
    found.data["server"] = {"adapter": server.name}


def _speculative(server: Server, logs: LogSource | None) -> dict[str, Any] | None:
    """Method and k from the engine config line, else k from the per-position counters."""
    if logs is not None and "engine_config_log" in server.offers:
        try:
            for line in parse_lines(logs.text()):
                config = engine_config(line)
                if config is not None and config.speculative_method and config.num_spec_tokens:
                    return {
                        "method": config.speculative_method,
                        "num_speculative_tokens": config.num_spec_tokens,
                    }
        except Exception:  # a log that cannot be read here is the gx10_logs fixture's to report
            pass
    if "spec_decode_metrics" not in server.offers:
        return None
    try:
        counters = server.spec_counters(server.client.metrics_text())
    except (EndpointError, MetricsError):
        return None
    if counters is None or not counters.accepted_per_pos:
        return None
    return {"method": "unknown", "num_speculative_tokens": len(counters.accepted_per_pos)}


def _reasoning(client: VllmClient, model: str) -> bool:
    reply = client.complete(
        {"model": model, "messages": PROBE_MESSAGES, "max_tokens": 32, "temperature": 0}, chat=True
    )
    message = (reply.get("choices") or [{}])[0].get("message") or {}
    return bool(message.get("reasoning_content") or message.get("reasoning"))


def _speed(server: Server, model: str, max_len: int) -> tuple[float, float]:
    """One request alone: prefill rate over a prompt of up to 1 000 tokens, then decode rate."""
    client = server.client

    def count(text: str) -> int:
        return server.count_tokens(messages=[{"role": "user", "content": text}])

    tokens = max(64, min(PERF_INPUT_TOKENS, max_len // 4))
    prompt = sized_prompt(count, tokens, seed="discovery", header=f"Discovery {time.time_ns()}.\n\n")
    body = {**prompt.body(), "model": model, "max_tokens": 16, "temperature": 0, "ignore_eos": True}
    result = client.chat_stream(body)
    if not result.ok or not result.ttft_s:
        raise EndpointError(client.base_url, f"the speed probe failed: {result.describe()}")
    prefill = prompt.tokens / result.ttft_s
    decode = result.decode_tps or 1.0
    return prefill, decode


def _profile_data(
    url: str, deployment: dict[str, Any], max_len: int, prefill_tps: float, decode_tps: float, reasoning: bool
) -> dict[str, Any]:
    input_tokens = max(64, min(PERF_INPUT_TOKENS, max_len // 4))
    needle_tokens = 1024 if reasoning else 64
    room = max_len - needle_tokens - 64  # the question, the chat template and the answer
    budget = int(prefill_tps * NEEDLE_TIME_BUDGET_S)
    lengths = [n for n in NEEDLE_SIZES if n <= room and n <= budget] or [min(NEEDLE_SIZES[0], max(room, 64))]
    lengths = lengths[-4:]  # the four longest that fit: the grid stays a few minutes
    longest_prefill_s = max(lengths) / prefill_tps
    # A request may wait behind the longest prefill this run makes, and then decode: deadlines follow.
    patience = math.ceil(max(30.0, 3 * longest_prefill_s + 4 * needle_tokens / decode_tps))
    return {
        "profile": {"name": "discovered", "description": f"discovered from {url}"},
        "deployment": deployment,
        # The deployment's speed, one request alone: a twin of it would run so, and deadlines follow it.
        "twin": {"prefill_tps": round(prefill_tps, 1), "decode_tps": round(decode_tps, 2)},
        "perf": {"concurrency": [1, 2, 4], "input_tokens": input_tokens, "max_tokens": PERF_MAX_TOKENS},
        "needle": {"lengths": lengths, "depths": [0.5], "max_tokens": needle_tokens, "required": False},
        "crash": {
            "concurrency": 4,
            "requests": 8,
            "input_tokens": min(256, max_len // 8),
            "max_tokens": 16,
            "stall_timeout_s": float(patience),
            "hung_after_s": float(patience),
            "canary_timeout_s": float(max(10, math.ceil(2 * longest_prefill_s + 64 / decode_tps))),
        },
    }


# --- writing a profile back ------------------------------------------------------------------------


def profile_toml(
    data: Mapping[str, Any],
    figures: Mapping[str, Any],
    *,
    margin: float = 0.10,
    source: str = "",
    needle_seed: int | None = None,
) -> str:
    """The discovered facts plus this run's figures as floors (rates x (1 - margin), times x (1 + margin)).

    The needle cells this run retrieved become required only when the run was seeded
    (``needle_seed``): the same codes then come back, and a greedy model answers them the same. An
    unseeded run's codes are gone; one lucky answer is no floor, so the grid stays reported.
    """
    # The twin's table says the deployment's speed (kept: deadlines follow it); its faults are a
    # stand-in's behaviour, not the deployment's.
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    if "twin" in out:
        out["twin"] = {k: v for k, v in out["twin"].items() if k != "faults"}
    out["profile"] = {
        "name": "written",
        "description": f"written by pytest-gx10 from a run against {source}".strip(),
    }
    needle = dict(out.get("needle", {}))
    retrieved = sorted({r["length"] for r in figures.get("needle", []) if r.get("retrieved")})
    if retrieved and needle_seed is not None:
        needle["lengths"] = retrieved
        needle["required"] = True
        out["settings"] = {**dict(out.get("settings", {})), "needle_seed": needle_seed}
    if needle:
        out["needle"] = needle
    perf = dict(out.get("perf", {}))
    floors: dict[str, dict[str, float]] = {}
    sweep = declared("sweep")  # the perf suite's section: its floors are the profile's perf.floors
    for point in figures.get("sweep", []):
        if sweep is None:
            break
        if point.get("ok_requests") != point.get("concurrency"):
            continue
        limits = {}
        for name in ("agg_decode_tps", "agg_prefill_tps", "median_ttft_s"):
            value, figure = point.get(name), sweep.figure(name)
            if (
                figure is not None
                and figure.better in (HIGHER, LOWER)
                and isinstance(value, int | float)
                and value > 0
            ):
                scaled = value * (1 - margin) if figure.better == HIGHER else value * (1 + margin)
                limits[name] = round(scaled, 3)
        if limits:
            floors[str(point["concurrency"])] = limits
    if floors:
        perf["floors"] = floors
        perf["concurrency"] = sorted(int(n) for n in floors)
    out["perf"] = perf
    return dumps(out, header=f"Written by pytest-gx10 (--gx10-write-profile), margin {margin:.0%}.")
