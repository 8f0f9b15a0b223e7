"""The HTML report in a real browser: a self-contained report of a twin run, rendered by headless
Chromium (Debian's ``chromium``), shows the figure tables and the SVG plots, and a model reply holding
``<script>`` shows as text and runs nothing; the report of ``pytest suites`` is legible (every table
cell at least 4.5:1 against its background), titled from the profile, the gx10 section first, and a
screenshot of it is saved as out/report-twin.png (or under $GX10_OUT_DIR)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import report_browser

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"

# A reply a model could write. Were it markup, the script would retitle the page and the image's
# handler would mark the body; the dumped DOM shows whether either ran.
HOSTILE = (
    "<script>document.title='gx10-xss'</script>"
    "<img src=x onerror=\"document.body.setAttribute('data-gx10-xss','ran')\">"
)

HOSTILE_TEST = f"""
HOSTILE = {HOSTILE!r}


def test_hostile_reply(gx10_client, gx10_record):
    reply = gx10_client.complete({{"messages": [{{"role": "user", "content": "Say hi."}}], "max_tokens": 8}}, chat=True)
    text = reply["choices"][0]["message"]["content"] or ""
    gx10_record("needle", {{"case": "hostile", "length": 100, "depth": 0.5, "retrieved": False,
                           "answer": HOSTILE + text, "reasoning_head": HOSTILE}})
"""


_chromium = report_browser.chromium


def _dump_dom(chromium: str, page: Path, profile_dir: Path) -> str:
    return report_browser.dump_dom(chromium, page, profile_dir)


def test_self_contained_report_renders_tables_and_plots_and_no_script(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Tables (aggregate, per request, needle), the four kinds of plot, the reply as inert text."""
    chromium = _chromium()
    pytester.makepyfile(test_hostile=HOSTILE_TEST)
    report = tmp_path / "report.html"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"),
        str(SUITES / "needle"),
        str(SUITES / "mtp"),
        "test_hostile.py",
        "-p",
        "no:cacheprovider",
        "--gx10-concurrency=1,2",
        "--gx10-needle-lengths=2000",
        "--gx10-needle-depths=0.25,0.75",
        f"--html={report}",
        "--self-contained-html",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= 2 + 2 + 1
    assert not list(report.parent.glob("assets")), "a self-contained report writes no asset folder"

    dom = _dump_dom(chromium, report, tmp_path / "chromium-profile")

    title = re.search(r"<title[^>]*>(.*?)</title>", dom, re.S)
    assert title is not None
    assert title.group(1) != "gx10-xss", "the reply's <script> ran"
    body = re.search(r"<body[^>]*>", dom)
    assert body is not None
    assert "data-gx10-xss" not in body.group(0), "the reply's onerror handler ran"
    assert "&lt;script&gt;document.title='gx10-xss'&lt;/script&gt;" in dom  # shown as text
    assert not re.search(r"<img[^>]*src=\"x\"", dom)

    summary, rows = dom.split('id="results-table"', 1)
    for table in (
        "gx10-run",
        "gx10-suites",
        "gx10-aggregate",
        "gx10-requests-1",
        "gx10-requests-2",
        "gx10-needle",
        "gx10-mtp",
    ):
        assert f'data-table="{table}"' in summary, table
    for plot in ("agg-decode", "agg-prefill", "ttft", "needle-grid", "acceptance"):
        assert re.search(rf'<svg[^>]*data-plot="{plot}"', summary), plot
    assert summary.count("✓") >= 2  # the two needle cells the twin retrieved
    # Each test's own row carries its figures, rendered by pytest-html's script from its data.
    assert rows.count('data-table="gx10-requests-2"') == 1
    assert rows.count('data-table="gx10-needle"') >= 2
    assert "suites/perf" in summary
    assert "twin, time scale 15" in summary
    assert 'id="gx10-simulated"' in summary


def test_report_of_the_suites_is_legible_and_saved_as_a_screenshot(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """`pytest suites` against the twin (the default MTP-2 profile): the key numbers of the results
    are in their tables, every cell reads at 4.5:1 or better, the page is titled from the profile,
    the twin's banner shows; the screenshot is out/report-twin.png."""
    chromium = _chromium()
    report, results = tmp_path / "report.html", tmp_path / "results.json"
    result = pytester.runpytest_subprocess(
        str(SUITES),
        "-p",
        "no:cacheprovider",
        f"--html={report}",
        "--self-contained-html",
        f"--gx10-json={results}",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    document = json.loads(results.read_text())
    assert [p["concurrency"] for p in document["sweep"]] == [1, 2, 4, 8, 16]
    shot = report_browser.out_dir() / "report-twin.png"
    measured = report_browser.check_legible_report(chromium, report, document, tmp_path, shot)
    assert measured["title"].startswith("Qwen3.5-397B-A17B-FP8, MTP k=2")
    cells = {(c["table"], c["text"]) for c in measured["cells"]}
    assert ("gx10-suites", "skipped") in cells  # the image suite: every test skipped
    assert any(t == "gx10-comparison" and x.startswith(("+", "\u2212", "tie")) for t, x in cells)
    assert shot.stat().st_size > 50_000  # a page of tables and plots, not a blank one


def test_missing_chromium_fails_when_real_parts_are_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without chromium the browser test skips naming the package, and fails under GX10_REQUIRE_REAL=1."""
    monkeypatch.delenv("GX10_REQUIRE_REAL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y chromium"):
        _chromium(lambda name: None, tmp_path / "no-chromium")
    monkeypatch.setenv("GX10_REQUIRE_REAL", "1")
    with pytest.raises(pytest.fail.Exception, match="GX10_REQUIRE_REAL=1 forbids skipping"):
        _chromium(lambda name: None, tmp_path / "no-chromium")
    assert _chromium(lambda name: None, Path(__file__)) == __file__
