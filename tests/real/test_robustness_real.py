"""suites/robustness against vLLM's CPU build: the failing cases are exactly the documented findings.

A 5xx or a dropped connection on the real server is a finding: the suite's case stays red, and
docs/robustness-findings.md lists it. This test requires the set of failing case ids to equal that
list, so a new failure and a fix both show. The twin, given the same profile, must answer every case
with the status vLLM answered.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.findings import FINDINGS, documented_findings, failing

from pytest_gx10.fake import FakeServer

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "suites" / "robustness"


def run_suite(endpoint: str, out: Path, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """Run suites/robustness against ``endpoint``; (exit code, results rows keyed by case)."""
    argv = [
        sys.executable, "-m", "pytest", str(SUITE), f"--gx10-endpoint={endpoint}",
        "--gx10-profile=smollm2-cpu", f"--gx10-json={out}", "-p", "no:cacheprovider", "-q", *extra,
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=out.parent, capture_output=True, text=True, timeout=900)
    rows = json.loads(out.read_text())["robustness"] if out.exists() else []
    return done.returncode, {row["case"]: row for row in rows}


@pytest.fixture(scope="module")
def real_rows(real_vllm: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The suite's results on the real server (about two and a half minutes)."""
    code, rows = run_suite(real_vllm, tmp_path_factory.mktemp("real") / "robustness.json")
    assert rows, f"the suite recorded nothing against {real_vllm} (exit code {code})"
    return rows


@pytest.fixture(scope="module")
def smollm2_twin() -> Iterator[str]:
    """The twin standing in for the real server (same profile: model, max_model_len)."""
    with FakeServer("smollm2-cpu") as server:
        yield server.url


def test_failing_cases_are_the_documented_findings(real_rows: dict[str, dict[str, Any]]) -> None:
    """Every case ran, and the ones that failed are exactly docs/robustness-findings.md's rows."""
    assert len(real_rows) == 51, sorted(real_rows)  # 50 cases and the fuzz
    found = failing(real_rows)
    documented = documented_findings()
    details = {case: (real_rows[case].get("status"), real_rows[case].get("message")) for case in found}
    assert found == documented, (
        f"new findings: {sorted(found - documented)} {details}; "
        f"fixed (remove from {FINDINGS.name}): {sorted(documented - found)}"
    )


def test_twin_answers_each_case_with_vllms_status(
    real_rows: dict[str, dict[str, Any]], smollm2_twin: str, tmp_path: Path
) -> None:
    """The twin gives the status vLLM 0.32 gave, case by case (error bodies are checked by hand)."""
    code, twin_rows = run_suite(
        smollm2_twin, tmp_path / "twin.json", "-k", "not fuzz", "--gx10-fuzz-examples=1"
    )
    assert code == 0, f"the suite failed against the twin: {failing(twin_rows)}"
    differ = {
        case: (row["status"], twin_rows.get(case, {}).get("status"))
        for case, row in real_rows.items()
        if case != "fuzz" and row["status"] != twin_rows.get(case, {}).get("status")
    }
    assert not differ, f"(vLLM, twin) status per case that differs: {differ}"
