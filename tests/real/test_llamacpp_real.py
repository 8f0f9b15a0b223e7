"""The shipped suites against llama.cpp's own server, with no profile: a second real engine.

One run of health, perf, needle, crash and robustness, as a llama.cpp user would start it
(``pytest suites/... --gx10-endpoint=URL``): it passes, the adapter is detected and named, prompts are
sized exactly by the server's tokenizer, the JSON holds the sweep's figures, and the robustness cases
that fail are exactly llama.cpp's documented findings. Then the server is killed mid-sweep and the
sentinel calls it death from llama.cpp's own signals within 15 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers.findings import documented_findings, failing
from helpers.realserver import RealServer

from pytest_gx10.observe.prometheus import counter

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
SUITES = ("health", "perf", "needle", "crash", "robustness")
WAIT_FOR_REQUEST_S = 300.0
PROFILE = """\
[profile]
name = "llamacpp-smollm2"
description = "llama.cpp's server, SmolLM2-135M-Instruct, as scripts/real-llamacpp serves it"

[server]
adapter = "llama.cpp"

[deployment]
served_model_name = "SmolLM2-135M-Instruct"
max_model_len = 4096

[perf]
concurrency = [1, 2, 4]
input_tokens = 160
max_tokens = 32
"""


@pytest.fixture(scope="module")
def suites_run(
    real_llamacpp: RealServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[int, str, dict[str, Any]]:
    """(exit code, output, results JSON) of the five suites against llama.cpp, no profile, its log given."""
    out = ROOT / "out" / "real-llamacpp.json"  # .ci/run prints its sweep
    out.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "pytest", *(str(ROOT / "suites" / s) for s in SUITES),
        f"--gx10-endpoint={real_llamacpp.url}", f"--gx10-logs={real_llamacpp.log.as_uri()}",
        f"--gx10-json={out}", "-p", "no:cacheprovider", "-rfEsx",
    ]  # fmt: skip
    done = subprocess.run(
        argv, cwd=tmp_path_factory.mktemp("llamacpp"), capture_output=True, text=True, timeout=1800
    )
    doc = json.loads(out.read_text()) if out.exists() else {}
    return done.returncode, done.stdout + done.stderr, doc


def test_the_suites_pass_with_no_profile(suites_run: tuple[int, str, dict[str, Any]]) -> None:
    """Exit 0; the adapter is llama.cpp's, counting tokens exactly; nothing of these suites skipped."""
    code, output, doc = suites_run
    assert code == 0, output[-6000:]
    assert doc["server"] == "llama.cpp", doc.get("server")
    assert doc["token_counting"].startswith("exact"), doc["token_counting"]
    assert doc["server_version"], doc
    assert " skipped" not in output.strip().splitlines()[-1], output[-3000:]
    assert "gx10 server: llama.cpp [profile discovered]" in output, output[:3000]  # the header
    assert f"on {doc['target']} (attach), llama.cpp's server {doc['server_version']}" in output  # the summary


def test_the_sweep_has_figures_for_every_point(suites_run: tuple[int, str, dict[str, Any]]) -> None:
    """Every point measured, every request answered, rates above zero, prompts the size asked for."""
    _, output, doc = suites_run
    points = doc.get("sweep", [])
    assert [p["concurrency"] for p in points] == [1, 2, 4], output[-3000:]
    for p in points:
        assert p["ok_requests"] == p["concurrency"], p
        assert p["agg_decode_tps"] > 0, p
        assert p["agg_prefill_tps"] > 0, p
        assert p["median_ttft_s"] > 0, p


def test_needle_and_crash_recorded(suites_run: tuple[int, str, dict[str, Any]]) -> None:
    """The needle grid (reported: no profile asserts retrieval) and the sustained load are in the JSON."""
    _, _, doc = suites_run
    needle = doc.get("needle", [])
    assert needle, doc.keys()
    assert all(r["ok"] for r in needle), needle
    assert all(r["input_tokens"] == r["length"] for r in needle), needle
    crash = doc.get("crash", [])
    assert crash, doc.keys()
    assert crash[0]["requests"] >= 4, crash
    assert crash[0]["health_after"] == 200, crash


def test_robustness_fails_only_on_the_documented_findings(
    suites_run: tuple[int, str, dict[str, Any]],
) -> None:
    """The cases that failed on llama.cpp are exactly the llama.cpp entries of docs/robustness-findings.md."""
    _, _, doc = suites_run
    rows = {row["case"]: row for row in doc.get("robustness", [])}
    assert len(rows) == 51, sorted(rows)  # 50 cases and the fuzz
    found = failing(rows)
    documented = documented_findings("llama.cpp")
    assert found == documented, (
        f"new failures: {sorted(found - documented)}; fixed or gone: {sorted(documented - found)}"
    )


def _kill_when_running(url: str, pid: int, stop: threading.Event, killed_at: list[datetime]) -> None:
    """SIGKILL the server's process group once /metrics shows a request processing."""
    deadline = time.monotonic() + WAIT_FOR_REQUEST_S
    with requests.Session() as session:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                text = session.get(url + "/metrics", timeout=5).text
            except requests.RequestException:
                text = ""
            if (counter(text, "llamacpp:requests_processing") or 0) >= 1:
                killed_at.append(datetime.now())
                os.killpg(pid, signal.SIGKILL)
                return
            time.sleep(0.02)


def test_server_killed_mid_sweep_is_death(
    pytester: pytest.Pytester, start_real_llamacpp: Callable[..., RealServer]
) -> None:
    """Killed while N=1 runs: N=1 fails with the verdict, N=2 and N=4 error at once, within 15 s.

    A profile of the deployment, so that nothing but the sweep sends a request (discovery would
    probe the server's speed first, and the kill waits for the first request processing).
    """
    profile = pytester.path / "llamacpp.toml"
    profile.write_text(PROFILE)
    server = start_real_llamacpp()
    pid = int(server.log.with_suffix(".pid").read_text())
    killed_at: list[datetime] = []
    stop = threading.Event()
    out = pytester.path / "out.json"
    killer = threading.Thread(target=_kill_when_running, args=(server.url, pid, stop, killed_at), daemon=True)
    killer.start()
    try:
        result = pytester.runpytest_subprocess(
            str(ROOT / "suites" / "perf"),
            f"--gx10-endpoint={server.url}",
            f"--gx10-profile={profile}",
            f"--gx10-json={out}",
            "-p",
            "no:cacheprovider",
            "-vv",
        )
    finally:
        stop.set()
        killer.join()
        server.stop()
    assert killed_at, f"no request was ever seen processing on {server.url}: " + result.stdout.str()[-3000:]
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, result.stdout.str()[-3000:]
    assert outcomes.get("errors", 0) + outcomes.get("error", 0) == 2, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["FAILED *test_sweep_point?N=1? - engine dead since ??:??:??: *"])
    engine = json.loads(out.read_text())["engine"]
    assert engine["state"] == "dead"
    seen = datetime.combine(killed_at[0].date(), datetime.strptime(engine["since"], "%H:%M:%S").time())
    delay_s = (seen - killed_at[0].replace(microsecond=0)).total_seconds()
    assert -1 <= delay_s <= 15, f"death seen {delay_s:.0f} s after the kill ({engine})"
