"""The HTML report of a run against the real CPU vLLM server, in headless Chromium: the same checks as
tests/browser's twin report (legible cells, title from the profile, gx10 section first, the key
numbers in their tables), and a screenshot saved as out/report-cpu-vllm.png (or under $GX10_OUT_DIR).

It needs both the real server and chromium. A test has one tier (tests/test_tiers.py), and this one
is in the ``real`` tier: the real tier's session starts the server, and with ``GX10_REQUIRE_REAL=1`` a
missing chromium fails it instead of skipping.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import report_browser

pytestmark = pytest.mark.real

SUITES = Path(__file__).resolve().parents[2] / "suites"


def test_report_of_the_real_server_is_legible(
    pytester: pytest.Pytester, real_vllm: str, tmp_path: Path
) -> None:
    """Health, the sweep (N = 1, 2, 4) and the speculative-decoding suite against vLLM's CPU build."""
    chromium = report_browser.chromium()
    report, results = tmp_path / "report.html", tmp_path / "results.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        str(SUITES / "perf"),
        str(SUITES / "mtp"),
        f"--gx10-endpoint={real_vllm}",
        "--gx10-profile=smollm2-cpu",
        "-p",
        "no:cacheprovider",
        f"--html={report}",
        "--self-contained-html",
        f"--gx10-json={results}",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    document = json.loads(results.read_text())
    assert document.get("target_kind") != "twin"
    assert [p["concurrency"] for p in document["sweep"]] == [1, 2, 4]
    shot = report_browser.out_dir() / "report-cpu-vllm.png"
    measured = report_browser.check_legible_report(chromium, report, document, tmp_path, shot)
    assert measured["title"].startswith("SmolLM2-135M-Instruct on vLLM's CPU build")
    assert not any(
        c["table"] == "gx10-comparison" for c in measured["cells"]
    )  # no reference for this profile
    html = report.read_text()
    assert 'id="gx10-simulated"' not in html  # a real server: no twin banner
    assert shot.stat().st_size > 50_000
