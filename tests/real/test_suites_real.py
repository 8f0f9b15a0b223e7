"""Every shipped suite, run through the plugin against the real vLLM server."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import speed
from helpers.realserver import RealServer

from pytest_gx10.profiles import BUNDLED_DIR as BUNDLED
from pytest_gx10.profiles import load_profile

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_health_suite_passes_on_real_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """suites/health passes against vLLM's CPU build with the smollm2-cpu profile."""
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "-p",
        "no:cacheprovider",
    )
    result.stdout.fnmatch_lines([f"gx10 target: {real_vllm} [[]--gx10-endpoint[]]"])
    result.assert_outcomes(passed=17)


def test_perf_sweep_on_real_vllm(
    pytester: pytest.Pytester, real_vllm: str, real_speed: speed.MachineSpeed
) -> None:
    """A small sweep (1 000-token prompts, 64 tokens out, N = 1, 2, 4) meets floors from this machine.

    The bundled smollm2-cpu profile has no floors (its server's speed is the machine's); the floors
    here come from the run's own measurement of one request (tests/helpers/speed.py). The server
    shares two cores with everything else the machine runs, so each point runs three times and the
    floors gate the median, as on any machine whose noise one run cannot rule out (--gx10-repeat).
    """
    floors = speed.sweep_floors(real_speed, [1, 2, 4], input_tokens=1000, max_tokens=64)
    profile = pytester.path / "smollm2-cpu-here.toml"
    bundled = (BUNDLED / "smollm2-cpu.toml").read_text()
    assert "[perf.floors" not in bundled
    profile.write_text(bundled + speed.floors_toml(floors))
    out = Path(__file__).resolve().parents[2] / "out" / "real-perf.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={profile}",
        "--gx10-repeat=3",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    sweep = json.loads(out.read_text())["sweep"]
    measured = {p["concurrency"]: {k: [r[k] for r in p["repeats"]] for k in floors[1]} for p in sweep}
    assert result.ret == 0, f"floors {floors} (from {real_speed.line()}); measured {measured}"
    result.assert_outcomes(passed=3)
    assert [p["concurrency"] for p in sweep] == [1, 2, 4]
    for point in sweep:
        assert point["ok_requests"] == point["concurrency"] * 3
        assert len(point["repeats"]) == 3
        assert all(r["prompt_tokens"] == 1000 and r["completion_tokens"] == 64 for r in point["requests"])


def test_a_twin_fitted_to_the_real_server_reads_its_speed(
    pytester: pytest.Pytester, real_vllm: str, real_speed: speed.MachineSpeed
) -> None:
    """A sweep at N = 1, 2, 4, 8, each point three times, with --gx10-fit-twin: the run ends with a
    profile of this server (its model, context length, KV pool, vLLM CPU's 2 048-token budget) whose
    warm prefill and lone decode step are this machine's measured speeds, within the noise of a shared
    two-core machine; it fits every burst it was fitted on, each repeat its own. (Held-out prediction:
    benchmarks/twin_fit.py, which .ci/run prints on this sweep: one noisy burst at N = 2 extrapolates
    to every larger batch, three of them much less.)"""
    out = Path(__file__).resolve().parents[2] / "out" / "real-sweep.json"
    fitted = Path(__file__).resolve().parents[2] / "out" / "real-fitted.toml"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf" / "test_sweep.py"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "--gx10-concurrency=1,2,4,8",
        "--gx10-repeat=3",
        f"--gx10-json={out}",
        f"--gx10-fit-twin={fitted}",
        "-p",
        "no:cacheprovider",
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"gx10: twin fitted to 12 point(s) of this run (rms residual *) written to {fitted}; *"]
    )
    profile = load_profile(fitted)
    assert profile.deployment.served_model_name == "SmolLM2-135M-Instruct"
    assert profile.deployment.max_model_len == 8192
    assert profile.deployment.max_num_batched_tokens == 2048
    assert profile.twin.block_size == 128
    assert profile.twin.kv_cache_tokens == 46592
    # One request alone measured its own prefill and decode rates (tests/helpers/speed.py).
    assert 1 / profile.twin.prefill_token_s == pytest.approx(real_speed.prefill_tps, rel=0.4)
    assert 1 / profile.twin.decode_step_s[0][1] == pytest.approx(real_speed.decode_tps, rel=0.4)
    found = re.search(r"rms residual ([\d.]+)%", result.stdout.str())
    assert found is not None
    assert float(found.group(1)) < 15, result.stdout.str()


def test_a_twin_fitted_to_a_shared_prefix_burst_replays_the_prefix_cache(
    pytester: pytest.Pytester, start_real_vllm: Callable[..., RealServer], real_speed: speed.MachineSpeed
) -> None:
    """Every prompt of a burst begins with the same 1 024 tokens, and vLLM says what its prefix cache
    served each request (--enable-prompt-tokens-details). The fit replays that, so the prefill it finds
    is still this machine's measured speed (taken as computed whole, the prompts made a token two to
    five times too cheap in our runs), and the fitted twin runs the same shared-prefix workload."""
    server = start_real_vllm("--enable-prompt-tokens-details")
    profile = pytester.path / "smollm2-cpu-shared.toml"
    bundled = (BUNDLED / "smollm2-cpu.toml").read_text()
    profile.write_text(
        bundled.replace("[perf]\n", "[perf]\nshared_groups = 1\nshared_prefix_tokens = 1024\n")
    )
    out = Path(__file__).resolve().parents[2] / "out" / "real-shared-sweep.json"
    fitted = pytester.path / "shared-fitted.toml"
    try:
        result = pytester.runpytest_subprocess(
            str(SUITES / "perf" / "test_sweep.py"),
            f"--gx10-endpoint={server.url}",
            f"--gx10-profile={profile}",
            "--gx10-workload=shared-prefix",
            "--gx10-input-len=1400",
            "--gx10-output-len=32",
            "--gx10-concurrency=1,2,4,8",
            f"--gx10-json={out}",
            f"--gx10-fit-twin={fitted}",
            "-p",
            "no:cacheprovider",
        )
    finally:
        server.stop()  # not kept to the session's end, beside the shared server
    assert result.ret == 0, result.stdout.str()
    cached = [r["cached_tokens"] for p in json.loads(out.read_text())["sweep"] for r in p["requests"]]
    assert set(cached) <= {0, 1024}, cached  # whole 128-token blocks of the shared prefix, or none
    assert cached.count(1024) >= len(cached) // 2, cached
    twin = load_profile(fitted)
    assert twin.perf.workload == "shared-prefix"
    assert twin.deployment.enable_prompt_tokens_details  # the twin's answers say it as the server's did
    assert (twin.perf.shared_groups, twin.perf.shared_prefix_tokens) == (1, 1024)
    # The fit may split a prompt's cost into a flat part and one per token-position (where the cached
    # prefix sets the computed tokens apart): what the machine measured is a whole prompt's.
    n = speed.PROMPT_TOKENS
    prompt_s = twin.twin.prefill_token_s * n + twin.twin.prefill_context_s * n * (n - 1) / 2
    assert n / prompt_s == pytest.approx(real_speed.prefill_tps, rel=0.4)
    found = re.search(r"rms residual ([\d.]+)%", result.stdout.str())
    assert found is not None
    assert float(found.group(1)) < 15, result.stdout.str()


def test_perf_floors_from_the_machine_fail_a_slower_server(
    pytester: pytest.Pytester, real_vllm: str, real_speed: speed.MachineSpeed
) -> None:
    """The same floors, from a machine measured twenty times faster, fail N=1 by name: they gate."""
    faster = dataclasses.replace(
        real_speed, prefill_tps=real_speed.prefill_tps * 20, decode_tps=real_speed.decode_tps * 20
    )
    floors = speed.sweep_floors(faster, [1], input_tokens=1000, max_tokens=64)
    profile = pytester.path / "smollm2-cpu-faster.toml"
    profile.write_text((BUNDLED / "smollm2-cpu.toml").read_text() + speed.floors_toml(floors))
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={profile}",
        "--gx10-concurrency=1",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*N=1 aggregate prefill * tok/s < floor *"])


def test_crash_suite_on_real_vllm(pytester: pytest.Pytester, real_vllm_server: RealServer) -> None:
    """Sustained load on the CPU server: no errors, health after, no crash line, the same canary."""
    out = Path(__file__).resolve().parents[2] / "out" / "real-crash.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "crash"),
        f"--gx10-endpoint={real_vllm_server.url}",
        "--gx10-profile=smollm2-cpu",
        f"--gx10-logs={real_vllm_server.log.as_uri()}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=7)
    (load,) = json.loads(out.read_text())["crash"]
    assert load["requests"] == 8
    assert load["outcomes"] == {"ok": 8}
    assert load["completion_tokens"] == 8 * 16
    assert load["crash_lines"] == []
    assert load["canary_before"]
    assert load["canary_before"] == load["canary_after"]


def test_discovered_profile_on_real_vllm(pytester: pytest.Pytester, real_vllm: str, tmp_path: Path) -> None:
    """No profile, the SDK's /v1 URL: discovered, the table on the terminal, a written profile gates.

    The written floors sit 90 % under the run (times 90 % over): on this shared two-core machine the
    CPU server's figures at N=4 move by half between two runs a minute apart (a floor 60 % under
    once failed here), far more than the default 10 % allows. The mechanism is what is proved: the
    profile is written, read back and gates, and a copy with one floor raised past any run fails
    naming that figure.
    """
    written = tmp_path / "mine.toml"
    first = pytester.runpytest_subprocess(
        "--pyargs",
        "pytest_gx10.suites.health",
        "pytest_gx10.suites.perf",
        f"--gx10-endpoint={real_vllm}/v1",
        f"--gx10-write-profile={written}",
        "--gx10-write-margin=90%",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    first.assert_outcomes(passed=20)
    first.stdout.fnmatch_lines(
        [
            "SmolLM2-135M-Instruct on * (attach), vLLM 0.32.0",
            "throughput sweep (N requests released together):",
            "each request: 1000 tokens in, 64 out",
            f"gx10: profile written to {written} (3 sweep points with floors 90% under this run)*",
        ]
    )
    text = written.read_text()
    assert "max_model_len = 8192" in text
    assert "[perf.floors.4]" in text
    second = pytester.runpytest_subprocess(
        "--pyargs",
        "pytest_gx10.suites.health",
        "pytest_gx10.suites.perf",
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={written}",
        "-p",
        "no:cacheprovider",
    )
    second.assert_outcomes(passed=20)
    second.stdout.fnmatch_lines([f"gx10 profile: written ({written}) [[]--gx10-profile[]]"])

    tight = tmp_path / "tight.toml"
    raised, count = re.subn(r"(\[perf\.floors\.1\]\nagg_decode_tps = )[0-9.]+", r"\g<1>100000.0", text)
    assert count == 1, text
    tight.write_text(raised)
    third = pytester.runpytest_subprocess(
        "--pyargs",
        "pytest_gx10.suites.perf",
        f"--gx10-endpoint={real_vllm}",
        f"--gx10-profile={tight}",
        "--gx10-concurrency=1",
        "-p",
        "no:cacheprovider",
    )
    third.assert_outcomes(failed=1)
    third.stdout.fnmatch_lines(["*N=1 aggregate decode * tok/s < floor 100000.0 tok/s*"])
