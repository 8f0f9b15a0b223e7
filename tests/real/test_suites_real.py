"""Every shipped suite, run through the plugin against the real vLLM server."""

from __future__ import annotations

from pathlib import Path

import pytest

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
