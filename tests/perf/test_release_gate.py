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

import pytest

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
    again.stdout.fnmatch_lines(["passed: * figures within tolerance of *", "*5 passed*"])

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
