"""Fixtures for the twin's own tests: one running twin per profile, fast time scale."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_gx10.fake import FakeServer

REFERENCE = "qwen3.5-397b-fp8-mtp2-gx10x4"
CPU = "smollm2-cpu"
TIME_SCALE = 200.0


@pytest.fixture(scope="module")
def twin_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the reference twin writes its vLLM-style log."""
    return tmp_path_factory.mktemp("twin") / "vllm.log"


@pytest.fixture(scope="module")
def twin(twin_log: Path) -> Iterator[FakeServer]:
    """The reference deployment's twin (MTP-2, qwen3 reasoning parser, TP=4 over Ray)."""
    with FakeServer(REFERENCE, time_scale=TIME_SCALE, log_path=twin_log) as server:
        yield server


@pytest.fixture(scope="module")
def cpu_twin() -> Iterator[FakeServer]:
    """The CPU deployment's twin (no speculative decoding, no reasoning parser, 8k context)."""
    with FakeServer(CPU, time_scale=TIME_SCALE) as server:
        yield server
