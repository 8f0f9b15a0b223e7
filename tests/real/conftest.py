"""The real vLLM server (CPU build, SmolLM2-135M-Instruct), started on demand for the real tier.

``scripts/real-vllm setup`` prepares the virtual environment and the model (cached outside the
clone). Without it these tests skip, naming that command; with ``GX10_REQUIRE_REAL=1`` (as CI sets)
they fail instead, so the real tier can never turn green by skipping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import speed
from realserver import RealServer, free_port, not_ready, real_paths, run_script

MACHINE_JSON = Path(__file__).resolve().parents[2] / "out" / "real-machine.json"


@pytest.fixture(scope="session")
def start_real_vllm() -> Iterator[Callable[..., RealServer]]:
    """``start_real_vllm(*vllm_args)`` serves on a free loopback port; every server stops at session end."""
    paths = real_paths()
    ports: list[int] = []

    def start(*vllm_args: str) -> RealServer:
        if not (paths["venv"] / ".ready").exists() or not (paths["model"] / ".ready").exists():
            not_ready(f"the real vLLM server is not set up ({paths['venv']}, {paths['model']})")
        port = free_port()
        ports.append(port)
        argv = ["serve", "--port", str(port), *(["--", *vllm_args] if vllm_args else [])]
        started = run_script(*argv)
        if started.returncode != 0:
            pytest.fail(
                f"scripts/real-vllm {' '.join(argv)} failed:\n{started.stderr[-3000:]}", pytrace=False
            )
        return RealServer(started.stdout.strip().splitlines()[-1], paths["run"] / f"vllm-{port}.log", port)

    try:
        yield start
    finally:
        for port in ports:
            run_script("stop", "--port", str(port))


@pytest.fixture(scope="session")
def real_vllm_server(start_real_vllm: Callable[..., RealServer]) -> RealServer:
    """A real vLLM server (default flags) on a free loopback port, shared by the session."""
    return start_real_vllm()


@pytest.fixture(scope="session")
def real_vllm(real_vllm_server: RealServer) -> str:
    """URL of the shared real vLLM server."""
    return real_vllm_server.url


@pytest.fixture(scope="session", autouse=True)
def real_speed(real_vllm: str) -> speed.MachineSpeed:
    """This machine's class and the real server's speed, measured once before the first real test.

    Every real-tier figure that depends on the machine's speed is judged against this, never against
    a number measured on another machine. Saved to ``out/real-machine.json`` for ``.ci/run``.
    """
    measured = speed.measure(real_vllm)
    speed.write(measured, MACHINE_JSON)
    return measured
