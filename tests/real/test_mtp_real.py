"""suites/mtp against real vLLM: speculating servers pass it, a plain one fails it by name.

SmolLM2-135M drafting for itself (``draft_model``, k=2) at temperature 0 proposes exactly what the
target pass will pick, as long as both compute the same numbers. In bfloat16 (vLLM's CPU build
downcasts this float32 model by default) they do not always: the draft runs one token per step and
the target verifies three, and a near-tie between two logits can fall the other way (one machine
class measured 2.95). So this server runs in float32, where the two passes agree: every draft token
is accepted and the mean acceptance length is exactly 3.00 on every machine. N-gram speculation (k=2) accepts
what the reply copies from earlier text: 4 of 20 draft tokens over the suite's window, every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.realserver import RealServer, real_paths

pytestmark = pytest.mark.real

SUITE = Path(__file__).resolve().parents[2] / "suites" / "mtp"


@pytest.fixture(scope="module")
def real_vllm_spec(start_real_vllm: Callable[..., RealServer]) -> RealServer:
    """A real vLLM server speculating with itself as the draft model (k=2), in float32."""
    spec = {"method": "draft_model", "model": str(real_paths()["model"]), "num_speculative_tokens": 2}
    return start_real_vllm("--dtype", "float32", "--speculative-config", json.dumps(spec))


def _run_suite_with_log(
    pytester: pytest.Pytester, server: RealServer, profile: str, out: Path
) -> dict[str, dict[str, Any]]:
    """Run suites/mtp against ``server`` with its log; assert the method-agnostic checks all pass."""
    result = pytester.runpytest_subprocess(
        str(SUITE),
        f"--gx10-endpoint={server.url}",
        f"--gx10-profile={profile}",
        f"--gx10-logs={server.log.as_uri()}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-rs",
    )
    # Only the MTP-detected line test skips: neither method is MTP.
    result.stdout.fnmatch_lines(
        ["*the profile's speculative method is '*'; the MTP line is printed only for MTP*"]
    )
    result.assert_outcomes(passed=7, skipped=1)
    return {entry["name"]: entry for entry in json.loads(out.read_text())["mtp"]}


def test_mtp_suite_passes_on_self_drafting_vllm(
    pytester: pytest.Pytester, real_vllm_spec: RealServer, tmp_path: Path
) -> None:
    """Wiring, counters, floors and the SpecDecoding log all check out; every draft is accepted."""
    figures = _run_suite_with_log(pytester, real_vllm_spec, "smollm2-cpu-spec", tmp_path / "mtp.json")
    window = figures["window"]
    assert window["completion_tokens"] == 64
    assert window["acceptance_length"] == pytest.approx(3.0)
    assert window["per_position"] == pytest.approx([1.0, 1.0])
    assert figures["log"]["log_acceptance_rate"] == pytest.approx(1.0)


def test_mtp_suite_passes_on_ngram_vllm(
    pytester: pytest.Pytester, start_real_vllm: Callable[..., RealServer], tmp_path: Path
) -> None:
    """N-gram speculation passes the method-agnostic checks; acceptance falls with position."""
    spec = {"method": "ngram", "num_speculative_tokens": 2, "prompt_lookup_max": 4, "prompt_lookup_min": 2}
    server = start_real_vllm("--speculative-config", json.dumps(spec))
    try:
        figures = _run_suite_with_log(pytester, server, "smollm2-cpu-ngram", tmp_path / "ngram.json")
    finally:
        server.stop()  # not kept to the session's end: three CPU servers at once crowd the machine
    window = figures["window"]
    assert window["method"] == "ngram k=2"
    assert 0 < window["accepted"] < window["draft_tokens"]  # drafts are made; n-gram guesses miss some
    first, second = window["per_position"]
    assert first >= second
    assert figures["log"]["log_acceptance_rate"] == pytest.approx(window["acceptance_rate"], abs=0.05)


def test_mtp_suite_fails_on_plain_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """A server without speculative decoding fails every counter test, naming the missing counters."""
    result = pytester.runpytest_subprocess(
        str(SUITE),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu-spec",
        "-p",
        "no:cacheprovider",
    )
    # The six window tests fail; the two boot-line tests skip (no --gx10-logs for an attached server).
    result.assert_outcomes(failed=6, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*no spec-decode counters on /metrics: the server runs without speculative decoding "
            "but the profile expects draft_model k=2*"
        ]
    )
