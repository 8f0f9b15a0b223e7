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


@dataclass(frozen=True)
class RealServer:
    """A running real vLLM server: its URL and the log file scripts/real-vllm writes."""

    url: str
    log: Path


def real_paths() -> dict[str, Path]:
    """Where scripts/real-vllm keeps its venv, model and run files."""
    out = subprocess.run([str(SCRIPT), "paths"], capture_output=True, text=True, check=True).stdout
    return {k: Path(v) for k, v in (line.split("=", 1) for line in out.splitlines() if "=" in line)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def not_ready(reason: str) -> None:
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{reason} (GX10_REQUIRE_REAL=1 forbids skipping the real tier)", pytrace=False)
    pytest.skip(f"{reason}; run scripts/real-vllm setup")
