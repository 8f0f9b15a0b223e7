"""suites/crash against twins that misbehave: each kind of trouble fails its own test, by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CRASH = Path(__file__).resolve().parents[2] / "suites" / "crash"

PROFILE = """
[profile]
name = "faulty"

[deployment]
served_model_name = "faulty-model"
max_model_len = 4096

[twin]
prefill_tps = 20000.0
decode_tps = 400.0
time_scale = 1.0

[crash]
concurrency = 4
requests = 8
input_tokens = 64
max_tokens = 16
"""


def _run(pytester: pytest.Pytester, faults: str) -> tuple[pytest.RunResult, dict]:  # type: ignore[type-arg]
    profile = pytester.path / "faulty.toml"
    profile.write_text(PROFILE + faults)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(CRASH), f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider", "-rs"
    )
    return result, json.loads(out.read_text())


def test_a_healthy_twin_passes(pytester: pytest.Pytester) -> None:
    result, doc = _run(pytester, "")
    result.assert_outcomes(passed=7)
    (load,) = doc["crash"]
    assert load["requests"] == 8
    assert load["outcomes"] == {"ok": 8}
    assert load["canary_before"] == load["canary_after"]
    assert load["crash_lines"] == []


def test_500s_and_empty_replies_fail_their_own_tests(pytester: pytest.Pytester) -> None:
    """One 0-token reply and one HTTP 500 among the load: two tests fail, naming the requests."""
    faults = (
        '\n[[twin.faults]]\nkind = "zero_tokens"\nafter = 2\ncount = 1\n'
        '\n[[twin.faults]]\nkind = "http_500"\nafter = 5\ncount = 1\n'
    )
    result, doc = _run(pytester, faults)
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(["*1 of 8 requests failed:*", "*http_error: chat stream, HTTP 500*"])
    result.stdout.fnmatch_lines(
        ["*1 empty or aborted completion(s):*", "*zero_tokens: chat stream, HTTP 200*"]
    )
    (load,) = doc["crash"]
    assert load["outcomes"] == {"ok": 6, "zero_tokens": 1, "http_error": 1}


@pytest.mark.parametrize("workload", ["multi-turn", "dataset", "shared-prefix"])
def test_the_profile_says_what_the_load_sends(pytester: pytest.Pytester, workload: str) -> None:
    """crash.workload: conversations across the waves, the run's dataset file, or shared prefixes;
    the load passes on a healthy twin and its entry names what it sent."""
    from pytest_gx10.workload.dataset import write_sharegpt_sample

    data = write_sharegpt_sample(pytester.path / "chats.json", 50, seed=2)
    base = PROFILE.replace("input_tokens = 64", "input_tokens = 400")
    profile = pytester.path / "faulty.toml"
    profile.write_text(
        base.replace("[crash]\n", f'[crash]\nworkload = "{workload}"\n') + f'[perf]\ndataset = "{data}"\n'
        if workload == "dataset"
        else base.replace("[crash]\n", f'[crash]\nworkload = "{workload}"\n')
    )
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(CRASH),
        f"--gx10-profile={profile}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "--gx10-turns=2",
    )
    result.assert_outcomes(passed=7)
    (load,) = json.loads(out.read_text())["crash"]
    assert load["requests"] == 8
    assert load["outcomes"] == {"ok": 8}
    assert load["workload"]["kind"] == workload
    if workload == "dataset":
        assert load["workload"]["dataset"]["file"] == "chats.json"
    if workload == "multi-turn":
        assert load["workload"]["turns"] == 2


def test_a_dataset_load_without_a_file_is_refused(pytester: pytest.Pytester) -> None:
    profile = pytester.path / "faulty.toml"
    profile.write_text(PROFILE.replace("[crash]\n", '[crash]\nworkload = "dataset"\n'))
    result = pytester.runpytest_subprocess(str(CRASH), f"--gx10-profile={profile}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "crash.workload is dataset, and the run gives no file; give --gx10-dataset=PATH"
        in result.stderr.str()
    )
