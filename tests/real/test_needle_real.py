"""suites/needle through the plugin against the real vLLM server (SmolLM2-135M on the CPU build).

The grid 1k/2k/4k tokens x depths 0.1/0.5 runs in report mode: SmolLM2-135M holds a needle up to
about 2k tokens at half depth and loses it near the start of the context, so some cells fail by the
model, not by the plugin. What this test asserts is that every cell ran on a prompt of exactly its
length, that the suite's verdict per cell is the recorded retrieval, that a cell past the served
max_model_len is reported as not applicable (skipped), and that the seeded code at 1 000 tokens and
half depth is found. The table of which cells were retrieved lands in out/real-needle.json and is
printed by .ci/run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]
LENGTHS = (1000, 2000, 4000)
DEPTHS = (0.1, 0.5)
TOO_LONG = 16000  # past the CPU server's max_model_len of 8 192


def test_needle_grid_on_real_vllm(pytester: pytest.Pytester, real_vllm: str) -> None:
    """Each cell passes exactly when the code is in the answer; the over-long cells are skipped."""
    out = ROOT / "out" / "real-needle.json"
    out.unlink(missing_ok=True)
    result = pytester.runpytest_subprocess(
        str(ROOT / "suites" / "needle"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "--gx10-needle-seed=2",  # the codes, and so the cells SmolLM2 finds, are the same every run
        f"--gx10-needle-lengths={','.join(map(str, (*LENGTHS, TOO_LONG)))}",
        f"--gx10-needle-depths={','.join(map(str, DEPTHS))}",
        f"--gx10-json={out}",
        "-p",
        "no:cacheprovider",
        "-rs",
    )
    rows = {row["case"]: row for row in json.loads(out.read_text())["needle"]}
    assert sorted(rows) == sorted(f"{n}@{d:.2f}" for n in LENGTHS for d in DEPTHS)
    for case, row in rows.items():
        assert row["input_tokens"] == row["length"], f"{case}: prompt not sized by the server's /tokenize"
        assert row["retrieved"] is (row["code"] in row["answer"]), case
    found = [case for case, row in rows.items() if row["retrieved"]]
    missed = [case for case, row in rows.items() if not row["retrieved"]]
    result.assert_outcomes(passed=len(found), failed=len(missed), skipped=len(DEPTHS))
    for case in missed:
        result.stdout.fnmatch_lines([f"*{case}: needle not retrieved: expected '{rows[case]['code']}'*"])
    result.stdout.fnmatch_lines(
        [f"*{TOO_LONG} prompt tokens + 64 max_tokens exceed the served max_model_len 8192*"]
    )
    assert "1000@0.50" in found, (
        f"the seeded code at 1 000 tokens, half depth, was missed: {rows['1000@0.50']}"
    )
