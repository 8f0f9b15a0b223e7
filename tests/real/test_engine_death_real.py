"""A real engine dying mid-sweep: vLLM's EngineCore process killed while suites/perf runs.

The sentinel must call it death within 15 s of the kill, the point that meets it must fail with the
verdict, the points after it must error at once with the same line, and the JSON must keep the
verdict. The server gets its own process (not the shared one): it does not come back.
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
from realserver import RealServer

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_S = 20.0  # pytest's start-up and the first prompts built: the N=1 request is in flight


def _engine_core_pid(log: Path) -> int:
    pids = re.findall(r"\(EngineCore(?:_DP\d+)? pid=(\d+)\)", log.read_text(errors="replace"))
    assert pids, f"no EngineCore pid in {log}"
    return int(pids[-1])


def test_engine_core_killed_mid_sweep_is_death(
    pytester: pytest.Pytester, start_real_vllm: Callable[..., RealServer]
) -> None:
    server = start_real_vllm()
    try:
        pid = _engine_core_pid(server.log)
        killed_at: list[datetime] = []

        def kill() -> None:
            time.sleep(KILL_AFTER_S)
            killed_at.append(datetime.now())
            os.kill(pid, signal.SIGKILL)

        out = pytester.path / "out.json"
        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
        result = pytester.runpytest_subprocess(
            str(ROOT / "suites" / "perf"),
            f"--gx10-endpoint={server.url}",
            "--gx10-profile=smollm2-cpu",
            f"--gx10-logs={server.log.as_uri()}",
            f"--gx10-json={out}",
            "-p",
            "no:cacheprovider",
            "-vv",
        )
        killer.join()
    finally:
        server.stop()
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()[-3000:]
    assert outcomes.get("errors", 0) + outcomes.get("error", 0) >= 1
    result.stdout.fnmatch_lines(["FAILED *test_sweep_point* - engine dead since ??:??:??: *"])
    result.stdout.fnmatch_lines(["ERROR *test_sweep_point* - Failed: engine dead since ??:??:??: *"])
    engine = json.loads(out.read_text())["engine"]
    assert engine["state"] == "dead"
    seen = datetime.combine(killed_at[0].date(), datetime.strptime(engine["since"], "%H:%M:%S").time())
    delay_s = (seen - killed_at[0].replace(microsecond=0)).total_seconds()
    assert -1 <= delay_s <= 15, f"death seen {delay_s:.0f} s after the kill ({engine})"
