"""Headless Chromium on an HTML report: the dumped DOM, a screenshot, and the report's legibility.

The legibility probe is a copy of the report with a small script at its end: after pytest-html's own
script has drawn the test table, it measures every table cell (the text colour against the first
opaque background behind it, WCAG 2's contrast ratio, the font size) and writes the measurements
into the page as JSON, which ``--dump-dom`` hands back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_TIMEOUT_S = 120

PROBE = r"""
<script>
window.addEventListener('load', function () {
  function parse(text) {
    var m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) { return null; }
    var p = m[1].split(',').map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  }
  function lum(c) {
    var w = [0.2126, 0.7152, 0.0722];
    return [c.r, c.g, c.b].reduce(function (sum, v, i) {
      v = v / 255;
      return sum + w[i] * (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4));
    }, 0);
  }
  function behind(el) {
    for (; el; el = el.parentElement) {
      var c = parse(getComputedStyle(el).backgroundColor);
      if (c && c.a > 0) { return c; }
    }
    return {r: 255, g: 255, b: 255, a: 1};
  }
  function ratio(a, b) {
    var x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  }
  var cells = [];
  document.querySelectorAll('.gx10 td, .gx10 th, .gx10 caption, #results-table td').forEach(function (el) {
    var text = el.textContent.trim();
    if (!text || el.querySelector('table')) { return; }
    var style = getComputedStyle(el);
    var table = el.closest('table');
    cells.push({
      table: table ? (table.getAttribute('data-table') || table.id || '') : '',
      text: text.slice(0, 120),
      color: style.color,
      ratio: Math.round(ratio(parse(style.color), behind(el)) * 100) / 100,
      size: parseFloat(style.fontSize),
      shown: el.getClientRects().length > 0,
    });
  });
  var order = Array.prototype.map.call(
    document.querySelectorAll('h1, #gx10-summary, #environment, #results-table, .summary__data > h2'),
    function (el) {
      return {id: el.id || el.tagName, top: Math.round(el.getBoundingClientRect().top), shown: el.getClientRects().length > 0};
    });
  var out = document.createElement('pre');
  out.id = 'gx10-probe';
  out.textContent = JSON.stringify({title: document.title, h1: document.querySelector('h1').textContent,
                                    cells: cells, order: order});
  document.body.appendChild(out);
});
</script>
"""


def chromium(
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


def _run(browser: str, profile_dir: Path, *args: str) -> str:
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile_dir}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def dump_dom(browser: str, page: Path, profile_dir: Path) -> str:
    """The page's DOM after its scripts ran."""
    return _run(browser, profile_dir, "--dump-dom", page.as_uri())


def screenshot(browser: str, page: Path, to: Path, profile_dir: Path, size: str = "1280,4000") -> Path:
    """A PNG of the page's top ``size`` pixels."""
    to.parent.mkdir(parents=True, exist_ok=True)
    to.unlink(missing_ok=True)
    _run(browser, profile_dir, f"--screenshot={to}", f"--window-size={size}", page.as_uri())
    assert to.is_file(), f"chromium wrote no screenshot at {to}"
    assert to.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", to
    return to


def out_dir() -> Path:
    """Where screenshots go: $GX10_OUT_DIR, else the repository's out/."""
    return Path(os.environ.get("GX10_OUT_DIR") or ROOT / "out")


def probe(browser: str, report: Path, work: Path) -> dict[str, Any]:
    """The legibility measurements of ``report`` (see the module's docstring)."""
    page = work / "probe.html"
    page.write_text(
        report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    dom = dump_dom(browser, page, work / "chromium-probe")
    found = re.search(r'<pre id="gx10-probe">(.*?)</pre>', dom, re.S)
    assert found is not None, "the probe script did not run: " + dom[-2000:]
    text = (
        found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    )
    result: dict[str, Any] = json.loads(text)
    return result


def check_legible_report(
    browser: str, report: Path, results: Mapping[str, Any], work: Path, shot: Path
) -> dict[str, Any]:
    """The report's title comes from the run, the gx10 section comes first, every table cell is
    legible (contrast at least 4.5:1, 11 px or larger), the key numbers of the results are in their
    tables, no cell says None; a screenshot is saved at ``shot``. Returns the probe's measurements."""
    __tracebackhide__ = True
    measured = probe(browser, report, work)
    assert measured["title"] != report.name, "the page is titled with the file's name"
    assert measured["title"] == measured["h1"]
    assert (
        str(results.get("model") or results.get("profile")) in measured["title"]
        or "gx10 report" in measured["title"]
    )
    top = {o["id"]: o["top"] for o in measured["order"] if o["shown"]}
    assert "environment" not in top, "pytest-html's environment table is shown above the gx10 section"
    assert top["gx10-summary"] < top["results-table"]
    assert top["gx10-summary"] < top.get("H2", 10**9), "the gx10 section comes before pytest-html's summary"
    cells = [c for c in measured["cells"] if c["shown"]]
    assert len(cells) > 50, len(cells)
    faint = [c for c in cells if c["ratio"] < 4.5]
    assert not faint, f"{len(faint)} cells under 4.5:1, e.g. {faint[:5]}"
    small = [c for c in cells if c["size"] < 11]
    assert not small, small[:5]
    nones = [c for c in cells if c["text"] == "None" or c["text"].startswith("None ")]
    assert not nones, nones[:5]
    gx10_cells = {(c["table"], c["text"]) for c in cells}
    from pytest_gx10.figures import declared

    sweep = declared("sweep")
    assert sweep is not None
    for point in results.get("sweep") or []:
        n = str(point["concurrency"])
        assert ("gx10-aggregate", n) in gx10_cells, n
        for name in ("agg_decode_tps", "agg_prefill_tps", "wall_s"):
            figure = sweep.figure(name)
            assert figure is not None
            if point.get(name) is not None:
                assert ("gx10-aggregate", figure.text(point[name])) in gx10_cells, (
                    n,
                    name,
                    figure.text(point[name]),
                )
        status = point.get("status") or "ok"
        assert ("gx10-aggregate", status) in gx10_cells, (n, status)
    screenshot(browser, report, shot, work / "chromium-shot")
    return measured
