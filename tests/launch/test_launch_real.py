"""The CPU vLLM server launched from the bundled smollm2-cpu recipe (a local process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.dockerkit import ROOT
from helpers.realserver import LLAMACPP, not_ready

from pytest_gx10.launch.process import processes_of

pytestmark = pytest.mark.real


def test_health_suite_against_the_launched_cpu_server(
    real_cache: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pytest suites/health --gx10-launch=recipes/smollm2-cpu.toml` starts vLLM, passes, and stops it."""
    monkeypatch.setenv("GX10_CACHE", str(real_cache))
    venv, model = real_cache / "vllm-venv", real_cache / "models" / "SmolLM2-135M-Instruct"
    if not (venv / ".ready").exists() or not (model / ".ready").exists():
        not_ready(f"the real vLLM server is not set up ({venv}, {model})")
    recipe = ROOT / "recipes" / "smollm2-cpu.toml"
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "health"), f"--gx10-launch={recipe}", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            f"gx10 target: launched from recipe smollm2-cpu ({recipe}) [[]--gx10-launch[]]",
            "gx10 profile: smollm2-cpu [[]recipe smollm2-cpu[]]",
        ]
    )
    result.assert_outcomes(passed=17)
    assert processes_of("smollm2-cpu") == []
    log = (real_cache / "run" / "launch-smollm2-cpu.log").read_text()
    assert "Starting vLLM API server" in log or "Uvicorn running" in log or "Application startup" in log


def test_health_suite_against_the_launched_llamacpp_server(
    real_cache: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--gx10-launch=smollm2-llamacpp` starts llama-server with its engine's command line, passes the
    health suite through llama.cpp's adapter (named by the recipe), and stops it."""
    monkeypatch.setenv("GX10_CACHE", str(real_cache))
    binary, model = real_cache / "llama.cpp" / "bin" / "llama-server", real_cache / "models"
    if (
        not (real_cache / "llama.cpp" / ".ready").exists()
        or not (model / "SmolLM2-135M-Instruct.gguf.ready").exists()
    ):
        not_ready(f"llama.cpp's server is not set up ({binary})", LLAMACPP)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "health"), "--gx10-launch=smollm2-llamacpp", f"--gx10-json={out}",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.stdout.fnmatch_lines(
        [
            "gx10 target: launched from recipe smollm2-llamacpp (*) [[]--gx10-launch[]]",
            "gx10 server: llama.cpp [[]profile smollm2-llamacpp[]]",
            "gx10 profile: smollm2-llamacpp [[]recipe smollm2-llamacpp[]]",
        ]
    )
    result.assert_outcomes(passed=17)
    assert processes_of("smollm2-llamacpp") == []
    log = (real_cache / "run" / "launch-smollm2-llamacpp.log").read_text()
    assert "llama_server: listening on http://127.0.0.1:" in log, log[-2000:]  # llama-server's own log
