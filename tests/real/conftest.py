"""The real servers, started on demand for the real tier: vLLM's CPU build and llama.cpp's server,
both serving SmolLM2-135M-Instruct.

``scripts/real-vllm setup`` and ``scripts/real-llamacpp setup`` prepare them (cached outside the
clone). Without them these tests skip, naming the command; with ``GX10_REQUIRE_REAL=1`` (as CI sets)
they fail instead, so the real tier can never turn green by skipping.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import speed
from helpers.realserver import LLAMACPP, RealServer, free_port, not_ready, real_paths, run_script

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
def start_real_llamacpp() -> Iterator[Callable[..., RealServer]]:
    """``start_real_llamacpp(*args)`` serves llama-server on a free loopback port; all stop at session end."""
    paths = real_paths(LLAMACPP)
    ports: list[int] = []

    def start(*args: str) -> RealServer:
        if paths.get("ready") != Path("1"):
            not_ready(f"llama.cpp's server is not set up ({paths['binary']}, {paths['model']})", LLAMACPP)
        port = free_port()
        ports.append(port)
        argv = ["serve", "--port", str(port), *(["--", *args] if args else [])]
        started = run_script(*argv, script=LLAMACPP)
        if started.returncode != 0:
            pytest.fail(
                f"scripts/real-llamacpp {' '.join(argv)} failed:\n{started.stderr[-3000:]}", pytrace=False
            )
        url = started.stdout.strip().splitlines()[-1]
        return RealServer(url, paths["run"] / f"llamacpp-{port}.log", port, LLAMACPP)

    try:
        yield start
    finally:
        for port in ports:
            run_script("stop", "--port", str(port), script=LLAMACPP)


@pytest.fixture(scope="session")
def real_llamacpp(start_real_llamacpp: Callable[..., RealServer]) -> RealServer:
    """A llama.cpp server shared by the session (4 slots, 4 096 tokens each)."""
    return start_real_llamacpp()


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
