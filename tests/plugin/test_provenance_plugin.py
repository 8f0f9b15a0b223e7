"""Provenance through the plugin: the results' deployment and client blocks against the twin, facts a
suite adds (as the image suite does), the baseline carrying both, and the report header's line."""

from __future__ import annotations

import json

import pytest

RECORDS = """
def test_point(gx10_record):
    gx10_record("sweep", {"concurrency": 1, "agg_decode_tps": 40.0, "median_ttft_s": 2.0})


def test_image(gx10_note_deployment):
    # What the image suite notes after probing an image (no target needed).
    gx10_note_deployment("image", {"image": "vllm-node-mimo:latest", "torch": "2.11.0+cpu", "vllm": None})
"""


def test_results_and_baseline_carry_deployment_and_client(pytester: pytest.Pytester) -> None:
    """Against the twin: every fact with its source, the twin named, GPU facts the profile's; the image
    suite's torch beats the profile's; the client apart; the baseline keeps both blocks."""
    pytester.makepyfile(test_records=RECORDS)
    out, base, md = pytester.path / "r.json", pytester.path / "b.json", pytester.path / "r.md"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--gx10-fake", f"--gx10-json={out}", f"--gx10-save-baseline={base}",
        f"--gx10-markdown={md}",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["gx10 deployment: the twin stands in for 4 x NVIDIA GB10, CUDA 13.2, image vllm-node-mimo:latest*"]
    )
    doc = json.loads(out.read_text())
    dep = doc["deployment"]
    assert dep["twin"]["source"] == "twin"
    assert dep["gpu"] == {"value": "NVIDIA GB10", "source": "profile"}
    assert dep["gpu_count"] == {"value": 4, "source": "profile"}
    assert dep["server_version"]["source"] == "twin"
    assert dep["server_version"]["value"].startswith("0.22.1rc1.dev124")
    assert dep["torch"] == {"value": "2.11.0+cpu", "source": "image"}  # the image's word, not the profile's
    assert dep["speculative"]["value"] == "mtp k=2"
    # The twin's vllm:cache_config_info: its 16-token blocks, its pool in them, the profile's cache dtype.
    assert dep["block_size"] == {"value": 16, "source": "twin"}
    assert dep["num_gpu_blocks"] == {"value": 551076 // 16, "source": "twin"}
    assert dep["kv_cache_dtype"] == {"value": "fp8", "source": "twin"}
    assert "vllm" not in dep
    assert "driver" not in dep
    assert all(set(fact) == {"value", "source"} for fact in dep.values())
    assert "None" not in json.dumps(dep)
    assert doc["client"]["cpu_count"] >= 1
    assert "gpu" not in doc["client"]
    saved = json.loads(base.read_text())
    assert saved["deployment"] == dep
    assert saved["client"] == doc["client"]
    markdown = md.read_text()
    run_table = markdown.split("### Run", 1)[1]
    first_row = run_table.split("|---|---|\n", 1)[1].splitlines()[0]
    assert first_row.startswith("| Twin | pytest-gx10's embedded vLLM twin")
    assert "| GPU | NVIDIA GB10 [profile] |" in run_table
    assert run_table.index("| GPU |") < run_table.index("| Target |") < run_table.index("| Client CPUs |")
