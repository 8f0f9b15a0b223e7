"""Helpers of the real tier: where scripts/real-vllm and scripts/real-llamacpp keep things, and a
running server's value."""

from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VLLM = "real-vllm"
LLAMACPP = "real-llamacpp"
# Read once at import: pytester points HOME at its own directory while a test runs, which would send
# scripts/real-vllm looking for its cache (the venv, the model) under the test's tmp directory.
CACHE = os.environ.get("GX10_CACHE") or str(Path.home() / ".cache" / "pytest-gx10")


def run_script(*args: str, script: str = VLLM) -> subprocess.CompletedProcess[str]:
    """``scripts/SCRIPT ARGS`` with its cache pinned, whatever HOME is at the time."""
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GX10_CACHE": CACHE},
    )


@dataclass(frozen=True)
class RealServer:
    """A running real server: its URL, the log file its script writes, its port and script."""

    url: str
    log: Path
    port: int
    script: str = VLLM

    def stop(self) -> None:
        """Stop it now (its process group); the session's teardown then finds nothing to stop."""
        run_script("stop", "--port", str(self.port), script=self.script)


def real_paths(script: str = VLLM) -> dict[str, Path]:
    """Where ``scripts/SCRIPT`` keeps its environment, model and run files."""
    done = run_script("paths", script=script)
    done.check_returncode()
    out = done.stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def not_ready(reason: str, script: str = VLLM) -> None:
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason} (GX10_REQUIRE_REAL=1 forbids skipping the real tier)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/{script} setup")
