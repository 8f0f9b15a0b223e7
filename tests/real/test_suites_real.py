"""Every shipped suite, run through the plugin against the real vLLM server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from realserver import RealServer

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_health_suite_passes_on_real_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """suites/health passes against vLLM's CPU build with the smollm2-cpu profile."""
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "-p",
        "no:cacheprovider",
    )
    result.stdout.fnmatch_lines([f"gx10 target: {real_vllm} [[]--gx10-endpoint[]]"])
    result.assert_outcomes(passed=17)


def test_perf_sweep_on_real_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """A small sweep (1 000-token prompts, 64 tokens out, N = 1, 2, 4) meets the smollm2-cpu floors."""
    out = Path(__file__).resolve().parents[2] / "out" / "real-perf.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=3)
    sweep = json.loads(out.read_text())["sweep"]
    assert [p["concurrency"] for p in sweep] == [1, 2, 4]
    for point in sweep:
        assert point["ok_requests"] == point["concurrency"]
        assert all(r["prompt_tokens"] == 1000 and r["completion_tokens"] == 64 for r in point["requests"])


def test_crash_suite_on_real_vllm(pytester: pytest.Pytester, real_vllm_server: RealServer) -> None:
    """Sustained load on the CPU server: no errors, health after, no crash line, the same canary."""
    out = Path(__file__).resolve().parents[2] / "out" / "real-crash.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "crash"),
        f"--gx10-endpoint={real_vllm_server.url}",
        "--gx10-profile=smollm2-cpu",
        f"--gx10-logs={real_vllm_server.log.as_uri()}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=7)
    (load,) = json.loads(out.read_text())["crash"]
    assert load["requests"] == 8
    assert load["outcomes"] == {"ok": 8}
    assert load["completion_tokens"] == 8 * 16
    assert load["crash_lines"] == []
    assert load["canary_before"]
    assert load["canary_before"] == load["canary_after"]
