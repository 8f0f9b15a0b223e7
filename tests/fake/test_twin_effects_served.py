"""The twin serves what a profile's effects say: its speed factor, and a matrix cell written to a file."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from pytest_gx10.fake.engine import Engine, SamplingParams, StepStats
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.matrix import apply_overrides, parse_path
from pytest_gx10.profiles import Profile, load_profile, profile_from_data
from pytest_gx10.tomlfile import dumps

ROOT = Path(__file__).resolve().parents[2]
MTP2 = load_profile("qwen3.5-397b-fp8-mtp2-gx10x4")
TOK = Tokenizer()


def simulated_steps(profile: Profile) -> list[float]:
    """Each step's simulated seconds for one 2 000-token prompt decoding 32 tokens on a fresh engine."""
    steps: list[float] = []

    class Recorder:
        def on_step(self, stats: StepStats) -> None:
            if stats.step_s:
                steps.append(stats.step_s)

    async def go() -> None:
        engine = Engine(profile, TOK, time_scale=1e6, seed=0)
        engine.observers.append(Recorder())
        engine.start()
        ids = [TOK.word_ids[(i * 7) % len(TOK.word_ids)] for i in range(2000)]
        script = write_script(TOK, ids, "", kind="completion", reasoning=False)
        params = SamplingParams(max_tokens=32, ignore_eos=True)
        try:
            async for _ in engine.add_request("r0", ids, script, params):
                pass
        finally:
            await engine.stop()

    asyncio.run(go())
    return steps


def test_every_step_takes_its_time_over_the_speed_factor() -> None:
    """Prefill, warm-up and decode steps alike: a twin at speed 0.5 takes twice as long for each."""
    slower = profile_from_data("slower", apply_overrides(MTP2.raw, {("twin", "speed_factor"): 0.5}))
    base, slow = simulated_steps(MTP2), simulated_steps(slower)
    assert len(base) == len(slow) > 5
    assert base[0] > MTP2.twin.warmup_s  # the first step carries the warm-up
    for one, other in zip(base, slow, strict=True):
        assert other == 2 * one


def test_a_cell_written_with_k5_starts_as_a_twin_and_logs_its_effect(tmp_path: Path) -> None:
    """``python -m pytest_gx10.fake --profile CELL.toml`` serves the cell, the effects applied once."""
    data = apply_overrides(MTP2.raw, {parse_path("deployment.speculative.num_speculative_tokens"): 5})
    cell, log = tmp_path / "k5.toml", tmp_path / "twin.log"
    cell.write_text(dumps(data, header="cell k=5 of the reference profile"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_gx10.fake",
            "--port",
            "0",
            "--profile",
            str(cell),
            "--log-file",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"\(profile qwen3.5-397b-fp8-mtp2-gx10x4, time scale 15\) at (http://\S+)", line)
        assert match, line
        assert requests.get(match.group(1) + "/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    effects = [row for row in log.read_text().splitlines() if "pytest-gx10 twin effect:" in row]
    assert len(effects) == 1, effects
    assert "k=5" in effects[0]
