"""suites/needle through the plugin against the real vLLM server (SmolLM2-135M on the CPU build)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_needle_suite_passes_on_real_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """SmolLM2-135M finds the code at half depth of a 1 000-token prompt sized by vLLM's /tokenize.

    The seed pins a code it retrieves (see the smollm2-cpu profile: it misses some codes outright).
    """
    out = Path(__file__).resolve().parents[2] / "out" / "real-needle.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "needle"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "--gx10-needle-seed=2",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    (row,) = json.loads(out.read_text())["needle"]
    assert row["case"] == "1000@0.50"
    assert row["input_tokens"] == 1000
    assert row["retrieved"] is True
    assert row["code"] in row["answer"]
