"""Release gating on the post's own story: a baseline from the MTP-2 twin holds the MTP-5 run back.

The baseline is saved from suites/perf against the twin of the MTP-2 deployment. A second MTP-2 run
passes it (on a quiet machine its 26 gated figures repeat within 2 %, against the 10 % default
tolerance). The MTP-5 twin then runs the same sweep against it: the gate fails the run (exit code 1)
and lists every regression together: N=2 aggregate decode about 14 % down (the post: 54.4 against
63.6 tok/s), and the N=8 and N=16 points missing because the engine died.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest
from helpers.tinyprofile import tiny_profile

PERF = Path(__file__).resolve().parents[2] / "suites" / "perf"


def test_mtp2_rerun_passes_and_mtp5_run_fails_the_mtp2_baseline(pytester: pytest.Pytester) -> None:
    baseline = pytester.path / "mtp2-baseline.json"
    saved = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-save-baseline={baseline}", "-p", "no:cacheprovider"
    )
    saved.assert_outcomes(passed=5)
    assert saved.ret == 0
    assert json.loads(baseline.read_text())  # a real document, not an empty file

    again = pytester.runpytest_subprocess(str(PERF), f"--gx10-baseline={baseline}", "-p", "no:cacheprovider")
    assert again.ret == 0, again.stdout.str()[-3000:]
    again.stdout.fnmatch_lines(["passed: * figures within tolerance of *", "*6 passed*"])  # the gate too

    gated = pytester.runpytest_subprocess(
        str(PERF),
        f"--gx10-baseline={baseline}",
        "--gx10-profile=qwen3.5-397b-fp8-mtp5-gx10x4",
        "-p",
        "no:cacheprovider",
    )
    assert gated.ret == 1
    text = gated.stdout.str()
    assert "gx10 release gate" in text
    decode = re.search(r"sweep\[N=2\]\.agg_decode_tps: [\d.]+ tok/s < baseline .*, (-\d+\.\d)%", text)
    assert decode is not None, "N=2 aggregate decode not listed as a regression"
    assert -30.0 < float(decode.group(1)) < -5.0
    for n in (8, 16):
        gated.stdout.fnmatch_lines([f"*sweep[[]N={n}[]].agg_decode_tps: missing from this run*"])


def test_the_gate_is_a_test_of_its_own(pytester: pytest.Pytester) -> None:
    """Every test passes and the gate fails: JUnit XML shows one failure, gx10::release_gate, listing
    the regressions; the JSON's gate says so figure by figure; the records are JSON properties."""
    fast, slow = pytester.path / "fast.toml", pytester.path / "slow.toml"
    fast.write_text(tiny_profile((1,)))
    slow.write_text(tiny_profile((1,), decode_tps=40.0))  # the same deployment, decoding at 40 %
    baseline = pytester.path / "baseline.json"
    saved = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={fast}", f"--gx10-save-baseline={baseline}", "-p", "no:cacheprovider"
    )
    saved.assert_outcomes(passed=1)
    junit, out = pytester.path / "junit.xml", pytester.path / "out.json"
    gated = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={slow}", f"--gx10-baseline={baseline}", f"--junitxml={junit}",
        f"--gx10-json={out}", "-p", "no:cacheprovider", "-rA",
    )  # fmt: skip
    assert gated.ret == 1
    gated.assert_outcomes(passed=1, failed=1)
    gated.stdout.fnmatch_lines(
        ["*test_sweep.py .F * [[]100%[]]", "FAILED *gx10::release_gate - failed: 5 regressions*"]
    )
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    (gate,) = [case for case in suite.iter("testcase") if case.get("name") == "release_gate"]
    failure = gate.find("failure")
    assert failure is not None
    assert "sweep[N=1].agg_decode_tps" in (failure.text or "") + (failure.get("message") or "")
    properties = [p.get("value") or "" for p in suite.iter("property")]
    assert properties
    assert all(isinstance(json.loads(value), dict) for value in properties), properties[:2]
    doc = json.loads(out.read_text())
    assert doc["gate"]["passed"] is False
    (decode,) = [f for f in doc["gate"]["figures"] if f["figure"] == "sweep[N=1].agg_decode_tps"]
    assert decode["verdict"] == "regressed"
    assert decode["better"] == "higher"
    assert -0.8 < decode["change"] < -0.3  # about -60 %: the twin decodes at 40 % of the baseline's rate
