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

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import requests
from helpers.realserver import RealServer

from pytest_gx10.observe.prometheus import counter
from pytest_gx10.profiles import BUNDLED_DIR

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
WAIT_FOR_REQUEST_S = 300.0  # pytest's start-up and the prompts sized by /tokenize, on a slow machine
POLL_S = 0.02


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


def _kill_when_running(url: str, pid: int, stop: threading.Event, killed_at: list[datetime]) -> None:
    """SIGKILL ``pid`` as soon as /metrics shows a request running, or give up when ``stop`` is set."""
    deadline = time.monotonic() + WAIT_FOR_REQUEST_S
    with requests.Session() as session:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                text = session.get(url + "/metrics", timeout=5).text
            except requests.RequestException:
                text = ""
            if (counter(text, "vllm:num_requests_running") or 0) >= 1:
                killed_at.append(datetime.now())
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(POLL_S)


@pytest.mark.parametrize("workload", ["default", "short"])
def test_engine_core_killed_mid_sweep_is_death(
    pytester: pytest.Pytester, start_real_vllm: Callable[..., RealServer], workload: str
) -> None:
    """Killed while N=1 runs: N=1 fails with the verdict, N=2 and N=4 error at once with it."""
    profile = _profile(pytester.path / "smollm2-cpu-short.toml", workload)
    server = start_real_vllm()
    try:
        pid = _engine_core_pid(server.log)
        killed_at: list[datetime] = []
        stop = threading.Event()
        out = pytester.path / "out.json"
        killer = threading.Thread(
            target=_kill_when_running, args=(server.url, pid, stop, killed_at), daemon=True
        )
        killer.start()
        try:
            result = pytester.runpytest_subprocess(
                str(ROOT / "suites" / "perf"),
                f"--gx10-endpoint={server.url}",
                f"--gx10-profile={profile}",
                f"--gx10-logs={server.log.as_uri()}",
                f"--gx10-json={out}",
                "-p",
                "no:cacheprovider",
                "-vv",
            )
        finally:
            stop.set()
            killer.join()
    finally:
        server.stop()
    assert killed_at, f"no request was ever seen running on {server.url}: " + result.stdout.str()[-3000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()[-3000:]
    assert outcomes.get("errors", 0) + outcomes.get("error", 0) == 2, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["FAILED *test_sweep_point?N=1? - engine dead since ??:??:??: *"])
    result.stdout.fnmatch_lines(["ERROR *test_sweep_point?N=2? - Failed: engine dead since ??:??:??: *"])
    engine = json.loads(out.read_text())["engine"]
    assert engine["state"] == "dead"
    seen = datetime.combine(killed_at[0].date(), datetime.strptime(engine["since"], "%H:%M:%S").time())
    delay_s = (seen - killed_at[0].replace(microsecond=0)).total_seconds()
    assert -1 <= delay_s <= 15, f"death seen {delay_s:.0f} s after the kill ({engine})"
