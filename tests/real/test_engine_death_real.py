"""A real engine dying mid-sweep: vLLM's EngineCore process killed while suites/perf runs.

The sentinel must call it death within 15 s of the kill, the point that meets it must fail with the
verdict, the points after it must error at once with the same line, and the JSON must keep the
verdict. The server gets its own process (not the shared one): it does not come back.

The kill waits for an event, not a clock: the first sweep point's request running on the server
(``vllm:num_requests_running`` on /metrics). A fast machine runs the whole sweep in a few seconds,
so any fixed delay would kill nothing; the ``short`` case makes the sweep short on every machine
(160 tokens in, 32 out) to show the kill still lands in the first point.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.killer import sweep_until_killed
from helpers.realserver import RealServer

from pytest_gx10.profiles import BUNDLED_DIR

pytestmark = pytest.mark.real


def _engine_core_pid(log: Path) -> int:
    pids = re.findall(r"\(EngineCore(?:_DP\d+)? pid=(\d+)\)", log.read_text(errors="replace"))
    assert pids, f"no EngineCore pid in {log}"
    return int(pids[-1])


def _profile(path: Path, workload: str) -> str:
    """The smollm2-cpu profile, or a copy of it whose sweep is a few seconds on any machine."""
    if workload == "default":
        return "smollm2-cpu"
    text = (BUNDLED_DIR / "smollm2-cpu.toml").read_text()
    short, n = re.subn(
        r"input_tokens = 1000\nmax_tokens = 64\n", "input_tokens = 160\nmax_tokens = 32\n", text
    )
    assert n == 1, "the smollm2-cpu profile's [perf] workload moved; update this test"
    path.write_text(short)
    return str(path)


@pytest.mark.parametrize("workload", ["default", "short"])
def test_engine_core_killed_mid_sweep_is_death(
    pytester: pytest.Pytester, start_real_vllm: Callable[..., RealServer], workload: str
) -> None:
    """Killed while N=1 runs: N=1 fails with the verdict, N=2 and N=4 error at once with it."""
    profile = _profile(pytester.path / "smollm2-cpu-short.toml", workload)
    server = start_real_vllm()
    pid = _engine_core_pid(server.log)
    kill = lambda: os.kill(pid, signal.SIGKILL)  # noqa: E731
    logs = f"--gx10-logs={server.log.as_uri()}"
    sweep_until_killed(pytester, server, profile, "vllm:num_requests_running", kill, logs)
