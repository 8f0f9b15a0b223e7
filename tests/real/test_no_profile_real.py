"""The shipped suites against each real engine with no profile, as its user would first run them.

One run of health, perf, needle, crash and robustness per engine (``pytest suites/...
--gx10-endpoint=URL``, the server's log given): it passes, the adapter is detected and named in the
header, the JSON and the summary, prompts are sized exactly by the server's tokenizer, the JSON holds
the figures, and the robustness cases that fail are exactly that engine's documented findings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.findings import documented_findings, failing
from helpers.realserver import RealServer

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
SUITES = ("health", "perf", "needle", "crash", "robustness")


@dataclass(frozen=True)
class Engine:
    adapter: str  # the adapter's name the run must detect
    fixture: str  # the real tier's fixture that serves it
    summary: str  # how the terminal summary names it
    findings: str  # its section of docs/robustness-findings.md
    out: str  # where the results go (.ci/run prints the sweep)


ENGINES = {
    "vllm": Engine("vllm", "real_vllm_server", "vLLM", "vLLM", "real-vllm-discovered.json"),
    "llama.cpp": Engine(
        "llama.cpp", "real_llamacpp", "llama.cpp's server", "llama.cpp", "real-llamacpp.json"
    ),
}


@dataclass(frozen=True)
class Run:
    engine: Engine
    code: int
    output: str
    doc: dict[str, Any]


@pytest.fixture(scope="module", params=list(ENGINES))
def suites_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The five suites against one engine: no profile, its log given."""
    engine = ENGINES[request.param]
    server: RealServer = request.getfixturevalue(engine.fixture)
    out = ROOT / "out" / engine.out
    out.unlink(missing_ok=True)
    argv = [
        sys.executable, "-m", "pytest", *(str(ROOT / "suites" / s) for s in SUITES),
        f"--gx10-endpoint={server.url}", f"--gx10-logs={server.log.as_uri()}",
        f"--gx10-json={out}", "-p", "no:cacheprovider", "-rfEsx",
    ]  # fmt: skip
    cwd = tmp_path_factory.mktemp("no-profile")
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=1800)
    doc = json.loads(out.read_text()) if out.exists() else {}
    return Run(engine, done.returncode, done.stdout + done.stderr, doc)


def test_the_suites_pass_with_no_profile(suites_run: Run) -> None:
    """Exit 0; the adapter detected and named; prompts counted exactly; nothing of these suites skipped."""
    run, doc = suites_run, suites_run.doc
    assert run.code == 0, run.output[-6000:]
    assert doc["server"] == run.engine.adapter, doc.get("server")
    assert doc["token_counting"].startswith("exact"), doc["token_counting"]
    assert doc["server_version"], doc
    last = run.output.strip().splitlines()[-1]
    assert " skipped" not in last, run.output[-3000:]
    assert f"gx10 server: {run.engine.adapter} [profile discovered]" in run.output, run.output[:3000]
    assert f"on {doc['target']} (attach), {run.engine.summary} {doc['server_version']}" in run.output


def test_the_sweep_has_figures_for_every_point(suites_run: Run) -> None:
    """Every point measured, every request answered, rates above zero."""
    points = suites_run.doc.get("sweep", [])
    assert [p["concurrency"] for p in points] == [1, 2, 4], suites_run.output[-3000:]
    for p in points:
        assert p["ok_requests"] == p["concurrency"], p
        assert p["agg_decode_tps"] > 0, p
        assert p["agg_prefill_tps"] > 0, p
        assert p["median_ttft_s"] > 0, p


def test_needle_and_crash_recorded(suites_run: Run) -> None:
    """The needle grid (reported: no profile asserts retrieval) and the sustained load are in the JSON."""
    doc = suites_run.doc
    needle = doc.get("needle", [])
    assert needle, doc.keys()
    assert all(r["ok"] for r in needle), needle
    assert all(r["input_tokens"] == r["length"] for r in needle), needle
    crash = doc.get("crash", [])
    assert crash, doc.keys()
    assert crash[0]["requests"] >= 4, crash
    assert crash[0]["health_after"] == 200, crash


def test_robustness_fails_only_on_the_documented_findings(suites_run: Run) -> None:
    """The cases that failed are exactly the engine's entries in docs/robustness-findings.md."""
    rows = {row["case"]: row for row in suites_run.doc.get("robustness", [])}
    assert len(rows) == 51, sorted(rows)  # 50 cases and the fuzz
    found = failing(rows)
    documented = documented_findings(suites_run.engine.findings)
    assert found == documented, (
        f"new failures: {sorted(found - documented)}; fixed or gone: {sorted(documented - found)}"
    )
