"""Helpers of the real tier: where scripts/real-vllm keeps things, and a running server's value."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "real-vllm"
# Read once at import: pytester points HOME at its own directory while a test runs, which would send
# scripts/real-vllm looking for its cache (the venv, the model) under the test's tmp directory.
CACHE = os.environ.get("GX10_CACHE") or str(Path.home() / ".cache" / "pytest-gx10")


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    """``scripts/real-vllm ARGS`` with its cache pinned, whatever HOME is at the time."""
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env={**os.environ, "GX10_CACHE": CACHE}
    )


@dataclass(frozen=True)
class RealServer:
    """A running real vLLM server: its URL and the log file scripts/real-vllm writes."""

    url: str
    log: Path
    port: int

    def stop(self) -> None:
        """Stop it now (its process group); the session's teardown then finds nothing to stop."""
        run_script("stop", "--port", str(self.port))


def real_paths() -> dict[str, Path]:
    """Where scripts/real-vllm keeps its venv, model and run files."""
    done = run_script("paths")
    done.check_returncode()
    out = done.stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def not_ready(reason: str) -> None:
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason} (GX10_REQUIRE_REAL=1 forbids skipping the real tier)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/real-vllm setup")
