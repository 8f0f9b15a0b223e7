"""The real vLLM server (CPU build, SmolLM2-135M-Instruct), started once for the real tier.

``scripts/real-vllm setup`` prepares the virtual environment and the model (cached outside the
clone). Without it these tests skip, naming that command; with ``GX10_REQUIRE_REAL=1`` (as CI sets)
they fail instead, so the real tier can never turn green by skipping.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-vllm"


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


@pytest.fixture(scope="session")
def real_vllm() -> Iterator[str]:
    """URL of a real vLLM server on a free loopback port; stopped after the session."""
    paths = _paths()
    if not (paths["venv"] / ".ready").exists() or not (paths["model"] / ".ready").exists():
        _not_ready(f"the real vLLM server is not set up ({paths['venv']}, {paths['model']})")
    port = _free_port()
    started = subprocess.run([str(SCRIPT), "serve", "--port", str(port)], capture_output=True, text=True)
    try:
        if started.returncode != 0:
            pytest.fail(
                f"scripts/real-vllm serve --port {port} failed:\n{started.stderr[-3000:]}", pytrace=False
            )
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop", "--port", str(port)], capture_output=True, text=True)
