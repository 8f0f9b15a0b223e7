"""The machine's own speed, measured on the real CPU server at the start of the real tier.

Machines of the same kind differ about tenfold in how fast vLLM's CPU build prefills (AVX-512 with
bf16 against plain AVX2), so no real-tier test holds the server to a fixed number. Floors come from
this measurement instead: one request's prefill and decode rates, measured in the same run, and a
model of how a sweep point's figures follow from them (:func:`sweep_floors`).

The measurement is written to ``out/real-machine.json``; ``.ci/run`` prints it beside its stage times.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_gx10.client import VllmClient
from pytest_gx10.servers import choose
from pytest_gx10.workload import sized_prompt

# CPU flags that change the CPU server's speed class (oneDNN picks its kernels by them).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
PROMPT_TOKENS = 1000
DECODE_TOKENS = 64


@dataclass(frozen=True)
class MachineSpeed:
    """What this machine is, and how fast the real server runs on it, one request alone."""

    cpu: str
    cores: int
    flags: tuple[str, ...]  # the SPEED_FLAGS this CPU has
    prefill_tps: float  # PROMPT_TOKENS / TTFT, best of two
    decode_tps: float  # tokens after the first / time after the first, DECODE_TOKENS generated

    def line(self) -> str:
        """``AMD EPYC, 2 cores, avx2 avx512f avx512_bf16; CPU vLLM: prefill 2301 tok/s, decode 61.2 tok/s``."""
        return (
            f"{self.cpu}, {self.cores} cores, {' '.join(self.flags) or 'no AVX2'}; "
            f"CPU vLLM: prefill {self.prefill_tps:.0f} tok/s, decode {self.decode_tps:.1f} tok/s"
        )


def cpu_facts() -> tuple[str, tuple[str, ...]]:
    """The CPU's model name and which of :data:`SPEED_FLAGS` it has (from /proc/cpuinfo)."""
    model, flags = "unknown CPU", set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return model, ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return model, tuple(f for f in SPEED_FLAGS if f in flags)


def measure(url: str) -> MachineSpeed:
    """One warm-up request, then the prefill rate (best of two) and the decode rate, one at a time."""
    with VllmClient(url, timeout_s=60, stall_timeout_s=600) as client:
        server = choose(client)

        def count(text: str) -> int:
            return server.count_tokens(messages=[{"role": "user", "content": text}])

        def stream(seed: str, prompt_tokens: int, max_tokens: int) -> tuple[float, float]:
            prompt = sized_prompt(count, prompt_tokens, seed=seed, header=f"Calibration {seed}.\n\n")
            body = {**prompt.body(), "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True}
            result = client.chat_stream(body)
            assert result.ok, f"calibration request {seed!r} failed: {result.describe()}"
            assert result.prompt_tokens == prompt_tokens, result.describe()
            assert result.completion_tokens == max_tokens, result.describe()
            ttft = result.ttft_s
            assert ttft is not None, result.describe()
            assert ttft > 0, result.describe()
            return prompt_tokens / ttft, (max_tokens - 1) / max(result.duration_s - ttft, 1e-9)

        stream("warm-up", PROMPT_TOKENS, 8)  # the first long prefill pays for kernel set-up
        prefill = max(stream(f"prefill {i}", PROMPT_TOKENS, 1)[0] for i in range(2))
        _, decode = stream("decode", 64, DECODE_TOKENS)
    cpu, flags = cpu_facts()
    return MachineSpeed(cpu, os.cpu_count() or 1, flags, prefill, decode)


def sweep_floors(
    speed: MachineSpeed, concurrency: list[int], input_tokens: int, max_tokens: int, margin: float = 0.5
) -> dict[int, dict[str, float]]:
    """Floors (rates) and ceilings (times) for each sweep point, from one request's speeds.

    The CPU is saturated by one request, so N prompts released together prefill about as fast as
    one (aggregate prefill near the single rate, the last first token after N prefills), and in the
    worst case decoding N sequences costs N times one: aggregate decode is at least
    ``N x max_tokens / ((N - 1) x prefill time + N x decode time)``. Rates get ``margin`` of the
    model, times ``1 / margin`` of it plus a second, for a shared and noisy machine.
    """
    prefill_s = input_tokens / speed.prefill_tps
    decode_s = max_tokens / speed.decode_tps
    floors = {}
    for n in concurrency:
        floors[n] = {
            "agg_prefill_tps": round(margin * speed.prefill_tps, 1),
            "median_ttft_s": round(n * prefill_s / margin + 1.0, 2),
            "agg_decode_tps": round(margin * n * max_tokens / ((n - 1) * prefill_s + n * decode_s), 2),
        }
    return floors


def floors_toml(floors: dict[int, dict[str, float]]) -> str:
    """``[perf.floors.N]`` tables to append to a profile that has none."""
    tables = []
    for n, limits in sorted(floors.items()):
        rows = "\n".join(f"{name} = {value!r}" for name, value in limits.items())
        tables.append(f"[perf.floors.{n}]\n{rows}\n")
    return "\n# Floors from this machine's own measurement (tests/helpers/speed.py)\n" + "\n".join(tables)


def write(speed: MachineSpeed, path: Path) -> None:
    """Save the measurement for ``.ci/run`` to print."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**asdict(speed), "line": speed.line()}, indent=2) + "\n")
