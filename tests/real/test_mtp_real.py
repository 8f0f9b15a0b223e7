"""suites/mtp against real vLLM: a self-drafting server passes it, a plain one fails it by name.

SmolLM2-135M drafting for itself (``draft_model``, k=2) is always right at temperature 0: every draft
token is accepted and the mean acceptance length is exactly 3.00, so the floors of the
``smollm2-cpu-spec`` profile are deterministic on the real server.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-vllm"
SUITE = ROOT / "suites" / "mtp"


# The same steps as conftest.py's real_vllm (conftest modules are not importable by name).
def _paths() -> dict[str, Path]:
    out = subprocess.run([str(SCRIPT), "paths"], capture_output=True, text=True, check=True).stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _not_ready(reason: str) -> None:
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason} (GX10_REQUIRE_REAL=1 forbids skipping the real tier)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/real-vllm setup")


@pytest.fixture(scope="module")
def real_vllm_spec() -> Iterator[tuple[str, Path]]:
    """(URL, log path) of a real vLLM server speculating with itself as the draft model."""
    paths = _paths()
    if not (paths["venv"] / ".ready").exists() or not (paths["model"] / ".ready").exists():
        _not_ready(f"the real vLLM server is not set up ({paths['venv']}, {paths['model']})")
    port = _free_port()
    spec = json.dumps({"method": "draft_model", "model": str(paths["model"]), "num_speculative_tokens": 2})
    started = subprocess.run(
        [str(SCRIPT), "serve", "--port", str(port), "--", "--speculative-config", spec],
        capture_output=True,
        text=True,
    )
    try:
        if started.returncode != 0:
            pytest.fail(
                f"scripts/real-vllm serve --port {port} -- --speculative-config {spec} failed:\n"
                f"{started.stderr[-3000:]}",
                pytrace=False,
            )
        yield started.stdout.strip().splitlines()[-1], paths["run"] / f"vllm-{port}.log"
    finally:
        subprocess.run([str(SCRIPT), "stop", "--port", str(port)], capture_output=True, text=True)


def test_mtp_suite_passes_on_self_drafting_vllm(
    pytester: pytest.Pytester, real_vllm_spec: tuple[str, Path], tmp_path: Path
) -> None:
    """Wiring, counters, floors and the SpecDecoding log all check out (the MTP-line test skips)."""
    url, log = real_vllm_spec
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
