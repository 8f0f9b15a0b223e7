"""suites/mtp against real vLLM: a self-drafting server passes it, a plain one fails it by name.

SmolLM2-135M drafting for itself (``draft_model``, k=2) is always right at temperature 0: every draft
token is accepted and the mean acceptance length is exactly 3.00, so the floors of the
``smollm2-cpu-spec`` profile are deterministic on the real server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from realserver import RealServer, real_paths

pytestmark = pytest.mark.real

SUITE = Path(__file__).resolve().parents[2] / "suites" / "mtp"


@pytest.fixture(scope="module")
def real_vllm_spec(start_real_vllm: Callable[..., RealServer]) -> RealServer:
    """A real vLLM server speculating with itself as the draft model (k=2)."""
    spec = {"method": "draft_model", "model": str(real_paths()["model"]), "num_speculative_tokens": 2}
    return start_real_vllm("--speculative-config", json.dumps(spec))


def test_mtp_suite_passes_on_self_drafting_vllm(
    pytester: pytest.Pytester, real_vllm_spec: RealServer, tmp_path: Path
) -> None:
    """Wiring, counters, floors and the SpecDecoding log all check out (the MTP-line test skips)."""
    url, log = real_vllm_spec.url, real_vllm_spec.log
    out = tmp_path / "mtp.json"
    result = pytester.runpytest_subprocess(
        str(SUITE),
        f"--gx10-endpoint={url}",
        "--gx10-profile=smollm2-cpu-spec",
        f"--gx10-logs={log.as_uri()}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-rs",
    )
    result.stdout.fnmatch_lines(["*the profile's speculative method is 'draft_model'*"])
    result.assert_outcomes(passed=7, skipped=1)
    figures = {entry["name"]: entry for entry in json.loads(out.read_text())["mtp"]}
    window = figures["window"]
    assert window["completion_tokens"] == 64
    assert window["acceptance_length"] == pytest.approx(3.0)
    assert window["per_position"] == pytest.approx([1.0, 1.0])
    assert figures["log"]["log_acceptance_rate"] == pytest.approx(1.0)


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
