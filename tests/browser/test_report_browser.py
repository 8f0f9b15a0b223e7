"""The HTML report in a real browser: a self-contained report of a twin run, rendered by headless
Chromium (Debian's ``chromium``), shows the figure tables and the SVG plots, and a model reply holding
``<script>`` shows as text and runs nothing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"
CHROMIUM_TIMEOUT_S = 120

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


def _chromium(
    which: Callable[[str], str | None] = shutil.which, fallback: Path = Path("/usr/bin/chromium")
) -> str:
    """Debian's chromium; skips without it, or fails when GX10_REQUIRE_REAL=1 (CI installs it)."""
    found = which("chromium") or (str(fallback) if fallback.exists() else None)
    if found:
        return found
    why = "chromium not found: install Debian's browser with apt-get install -y chromium"
    if os.environ.get("GX10_REQUIRE_REAL") == "1":
        pytest.fail(f"{why} (GX10_REQUIRE_REAL=1 forbids skipping the browser test)", pytrace=False)
    pytest.skip(why)


def _dump_dom(chromium: str, page: Path, profile_dir: Path) -> str:
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile_dir}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


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
