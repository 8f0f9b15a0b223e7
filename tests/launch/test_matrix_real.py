"""A matrix of real deployments: vLLM's CPU build with n-gram speculation at k = 2, 3 and 5, each cell
launched from the bundled smollm2-cpu recipe as a local process, tested and torn down in turn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.dockerkit import ROOT
from helpers.realserver import not_ready

from pytest_gx10.launch.process import processes_of
from pytest_gx10.profiles import BUNDLED_DIR

pytestmark = pytest.mark.real

OUT = ROOT / "out"
KS = (2, 3, 5)
MAX_NUM_SEQS = 4


def _require_real_vllm(cache: Path) -> None:
    venv, model = cache / "vllm-venv", cache / "models" / "SmolLM2-135M-Instruct"
    if not (venv / ".ready").exists() or not (model / ".ready").exists():
        not_ready(f"the real vLLM server is not set up ({venv}, {model})")


def _write_recipe_and_profile(where: Path) -> Path:
    """The bundled recipe with n-gram speculation and three named cells (k, and max_num_seqs), and
    the n-gram profile without the k=2 server's measured acceptance (each cell says its own k)."""
    profile = (BUNDLED_DIR / "smollm2-cpu-ngram.toml").read_text()
    for line in ("acceptance_per_position = [0.3, 0.1]\n", "per_position_min = [0.15, 0.05]\n"):
        assert line in profile
        profile = profile.replace(line, "")
    # Acceptance floors that prove the wiring at any k (drafts made, some accepted), not a speed-up.
    profile = profile.replace("acceptance_rate_min = 0.10", "acceptance_rate_min = 0.01")
    profile = profile.replace("acceptance_length_min = 1.2", "acceptance_length_min = 1.01")
    (where / "ngram.toml").write_text(profile)
    recipe = (ROOT / "recipes" / "smollm2-cpu.toml").read_text()
    recipe = recipe.replace('profile = "smollm2-cpu"', 'profile = "ngram.toml"', 1)
    recipe = recipe.replace('name = "smollm2-cpu"', 'name = "smollm2-cpu-ngram-matrix"', 1)
    cells = "".join(
        f"""
[[matrix]]
name = "k{k}"
serve.speculative_config = {{ method = "ngram", num_speculative_tokens = {k}, prompt_lookup_max = 4, prompt_lookup_min = 2 }}
serve.max_num_seqs = {MAX_NUM_SEQS}
deployment.speculative.num_speculative_tokens = {k}
deployment.max_num_seqs = {MAX_NUM_SEQS}
"""
        for k in KS
    )
    path = where / "ngram-matrix.toml"
    path.write_text(recipe + cells)
    return path


def test_ngram_k_matrix_on_the_cpu_server(
    real_cache: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three launches (k=2, 3, 5), each passing the speculative-decoding suite and a two-point sweep;
    each cell's engine says its own k; acceptance per cell in the comparison; nothing left running."""
    monkeypatch.setenv("GX10_CACHE", str(real_cache))
    _require_real_vllm(real_cache)
    recipe = _write_recipe_and_profile(pytester.path)
    out = OUT / "real-matrix.json"
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "mtp"),
        str(ROOT / "suites" / "perf" / "test_sweep.py"),
        f"--gx10-launch={recipe}",
        "--gx10-concurrency=1,2",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-v",
    )
    cells = {c["cell"]: c for c in json.loads(out.read_text())["cells"]}
    statuses = {
        name: (c.get("cell_status"), c.get("cell_tests"), c.get("boot_error")) for name, c in cells.items()
    }
    assert result.ret == 0, f"{statuses}\n{result.stdout.str()[-6000:]}"
    assert list(cells) == [f"k{k}" for k in KS]
    for k in KS:
        cell = cells[f"k{k}"]
        assert cell["cell_status"] == "ok"
        command = cell["deployment"]["serve_command"]["value"]
        assert f'"num_speculative_tokens": {k}' in command or f'"num_speculative_tokens":{k}' in command, (
            command
        )
        assert f"--max-num-seqs {MAX_NUM_SEQS}" in command
        (window,) = [e for e in cell["mtp"] if e.get("name") == "window"]
        assert window["drafts"] > 0
        assert len(window["per_position"]) == k  # the engine drafted k tokens a step
        assert [p["concurrency"] for p in cell["sweep"]] == [1, 2]
        assert all(p["ok_requests"] == p["concurrency"] for p in cell["sweep"])
    result.stdout.fnmatch_lines(
        [
            "*Matrix cells*",
            "*k2 (reference)*ok*",
            "*Speculative decoding: acceptance rate*",
            "*k2 (reference)*k3*k3 vs k2*k5*k5 vs k2*",
        ]
    )
    assert processes_of("smollm2-cpu-ngram-matrix") == []
