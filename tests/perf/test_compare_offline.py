"""``python -m pytest_gx10 compare`` on the post's own story, and ``--gx10-history`` from real runs.

The twins of the MTP-2 and MTP-5 deployments each run suites/perf once; compared offline, the MTP-5
file tells the post's bad day: N=1 about a tie, N=2 aggregate decode down (the post: 54.4 against
63.6 tok/s, -14 %) and regressed, N=4 one zero-token reply, N=8 engine dead, N=16 not attempted,
exit code 1. The MTP-2 file compared with itself passes. The command runs as a subprocess from the
repository (``python -m`` puts it first on the path), as a user runs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

ROOT = Path(__file__).resolve().parents[2]
PERF = ROOT / "suites" / "perf"


def gx10(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_gx10 ARGS`` from the repository."""
    argv = [sys.executable, "-m", "pytest_gx10", *map(str, args)]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)


def markdown_rows(text: str, title_start: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose heading starts with ``title_start``, by first cell."""
    block = text.split(f"### {title_start}", 1)[1].split("\n### ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in block.splitlines() if line.startswith("| N=")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_compare_tells_the_mtp5_story(pytester: pytest.Pytester) -> None:
    m2, m5 = pytester.path / "m2.json", pytester.path / "m5.json"
    for profile, out in (("mtp2", m2), ("mtp5", m5)):
        pytester.runpytest_subprocess(
            str(PERF),
            f"--gx10-profile=qwen3.5-397b-fp8-{profile}-gx10x4",
            f"--gx10-json={out}",
            "-p",
            "no:cacheprovider",
        )
        assert json.loads(out.read_text())["sweep"], f"the {profile} run recorded no sweep"

    md, html = pytester.path / "x.md", pytester.path / "x.html"
    done = gx10("compare", m2, m5, "--markdown", md, "--html", html)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr
    assert done.stderr == ""
    assert "m5.json: failed: " in done.stdout

    text = md.read_text()
    status = markdown_rows(text, "Throughput sweep: status per point")
    assert {n: cells[1] for n, cells in status.items()} == {
        "N=1": "ok",
        "N=2": "ok",
        "N=4": "zero-token",
        "N=8": "engine dead",
        "N=16": "not attempted",
    }
    assert {cells[0] for cells in status.values()} == {"ok"}  # MTP-2: every point ok
    decode = markdown_rows(text, "Throughput sweep: aggregate decode (tok/s), higher is better")
    assert "REGRESSED" not in decode["N=1"][2], decode["N=1"]  # about a tie
    change = re.fullmatch(r"−(\d+\.\d) % worse: REGRESSED", decode["N=2"][2])
    assert change is not None, decode["N=2"]
    assert 10.0 <= float(change.group(1)) <= 25.0, decode["N=2"]
    assert decode["N=4"][1].endswith("(zero-token)")
    assert decode["N=8"][1:] == ["– (engine dead)", "missing: REGRESSED"]
    assert decode["N=16"][1:] == ["– (not attempted)", "missing: REGRESSED"]

    page = html.read_text()
    assert 'data-plot="sweep-agg_decode_tps"' in page
    assert "m2.json (qwen3.5-397b-fp8-mtp2-gx10x4)" in page  # the legend names each file's profile
    assert "m5.json (qwen3.5-397b-fp8-mtp5-gx10x4)" in page

    same = gx10("compare", m2, m2)
    assert same.returncode == 0, same.stdout[-3000:] + same.stderr
    assert "m2.json (2): passed: " in same.stdout


def test_history_holds_one_entry_per_run_under_xdist(pytester: pytest.Pytester) -> None:
    """The controller alone appends a run (a -n 2 run adds one entry, not three), with the gate's
    verdict; compare --history shows the runs oldest first and shades the one whose gate failed."""
    fast, slow = pytester.path / "fast.toml", pytester.path / "slow.toml"
    fast.write_text(tiny_profile((1, 2)))
    slow.write_text(tiny_profile((1, 2), decode_tps=40.0))  # the same deployment, decoding at 40 %
    history, baseline = pytester.path / "history", pytester.path / "baseline.json"
    first = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={fast}", f"--gx10-save-baseline={baseline}",
        f"--gx10-history={history}", "-p", "no:cacheprovider",
    )  # fmt: skip
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["gx10: run appended to the history: *history/*Z-*.json"])
    second = pytester.runpytest_subprocess(
        str(PERF), f"--gx10-profile={slow}", f"--gx10-baseline={baseline}",
        f"--gx10-history={history}", "-n", "2", "-p", "no:cacheprovider",
    )  # fmt: skip
    assert second.ret == 1  # the gate failed

    entries = sorted(history.iterdir())
    assert len(entries) == 2, [p.name for p in entries]
    older, newer = (json.loads(p.read_text()) for p in entries)
    assert older["gate"] is None
    assert newer["gate"]["passed"] is False
    assert newer["software"]["profile"] == "tiny"
    assert [p["concurrency"] for p in newer["results"]["sweep"]] == [1, 2]

    html = pytester.path / "trend.html"
    done = gx10("compare", "--history", history, "--html", html)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    runs = done.stdout.split("Runs, oldest first\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [(line.split()[0], line.split()[5]) for line in runs] == [("#1", "–"), ("#2", "failed")]
    page = html.read_text()
    assert 'data-plot="trend-sweep-agg_decode_tps"' in page
    assert "#2: gate failed" in page
