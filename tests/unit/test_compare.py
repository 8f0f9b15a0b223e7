"""Offline comparison (``python -m pytest_gx10 compare``) and the run history, on synthetic documents.

The verdict must be the live gate's: the same :func:`~pytest_gx10.report.baseline.compare` on the
same figures, so it is checked against a baseline saved and loaded the way a live run does it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.__main__ import main
from pytest_gx10.report.baseline import Tolerances, compare, load_baseline, save_baseline
from pytest_gx10.report.compare import (
    NOT_RUN,
    compare_files,
    load_history,
    load_run,
)
from pytest_gx10.report.greedy import GreedyOutputs
from pytest_gx10.report.history import HISTORY_FORMAT, append_run, history_files
from pytest_gx10.report.svg import LegendItem, Series, frame, series_plot

DECODE = {1: 40.0, 2: 64.0, 4: 80.0, 8: 135.0, 16: 184.0}
TTFT = {1: 5.0, 2: 3.5, 4: 5.3, 8: 5.0, 16: 7.3}


def point(n: int, decode: float | None, ttft: float | None, status: str = "ok") -> dict[str, Any]:
    """One sweep point as the perf suite records it (the figures the gate reads, and its status)."""
    return {
        "concurrency": n,
        "wall_s": 30.0 + n,
        "agg_prefill_tps": None if decode is None else decode * 100,
        "agg_decode_tps": decode,
        "median_ttft_s": ttft,
        "median_decode_tps": None if decode is None else decode / n,
        "p90_ttft_s": None if ttft is None else ttft * 1.2,
        "ok_requests": n if status == "ok" else 0,
        "failed_requests": 0 if status == "ok" else n,
        "status": status,
    }


def document(points: list[dict[str, Any]], *, profile: str = "mtp2", dead: bool = False) -> dict[str, Any]:
    """A results document as --gx10-json writes it."""
    doc: dict[str, Any] = {
        "schema_version": 1,
        "started_at": "2026-12-04T10:00:00+00:00",
        "model": "Qwen3.5-397B-A17B-FP8",
        "profile": profile,
        "target_kind": "twin",
        "time_scale": 15.0,
        "server": "vllm",
        "server_label": "vLLM",
        "server_version": "0.22.1",
    }
    if dead:
        doc["engine"] = {"state": "dead", "since": "10:05:00", "cause": "CUDA error"}
    doc["sweep"] = points
    return doc


def reference_doc() -> dict[str, Any]:
    return document([point(n, DECODE[n], TTFT[n]) for n in DECODE])


def bad_day_doc() -> dict[str, Any]:
    """The MTP-5 story: N=1 a tie, N=2 decode down 17 %, N=4 zero-token, N=8 dead, N=16 not attempted."""
    return document(
        [
            point(1, DECODE[1] * 1.02, TTFT[1]),
            point(2, DECODE[2] * 0.83, TTFT[2] * 0.8),
            point(4, DECODE[4] * 0.55, TTFT[4], status="zero-token"),
            point(8, None, None, status="engine dead"),
            {"concurrency": 16, "status": "not attempted", "why": "engine dead since 10:05:00"},
        ],
        profile="mtp5",
        dead=True,
    )


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def row_of(text: str, title: str, label: str) -> str:
    """The line of ``label`` in the table titled ``title`` of the terminal output."""
    block = text.split(title + "\n", 1)[1].split("\n\n", 1)[0]
    (line,) = [ln for ln in block.splitlines() if ln.split("  ")[0].strip() == label]
    return " ".join(line.split())  # one space between cells: the widths depend on the other rows


DECODE_TITLE = "Throughput sweep: aggregate decode (tok/s), higher is better, tolerance 10 %"
TTFT_TITLE = "Throughput sweep: median TTFT (s), lower is better, tolerance 10 %"
STATUS_TITLE = "Throughput sweep: status per point"


# --- the verdict is the live gate's ---------------------------------------------------------------


def test_verdict_equals_the_gate_on_a_baseline_saved_from_the_reference(tmp_path: Path) -> None:
    """Results file against results file: the same regressions, rows and headline count as the live
    gate holding the second run to a baseline saved from the first."""
    ref, other = write(tmp_path / "m2.json", reference_doc()), write(tmp_path / "m5.json", bad_day_doc())
    saved = tmp_path / "m2.base.json"
    save_baseline(saved, reference_doc(), None)
    tolerances = Tolerances().with_overrides([("median_ttft_s", 0.3)])

    live = compare(load_baseline(saved), bad_day_doc(), tolerances=tolerances)
    offline = compare_files([load_run(ref), load_run(other)], tolerances).gates[0]

    assert not live.passed
    assert offline.regressions == [r.replace(str(saved), str(ref)) for r in live.regressions]
    assert offline.figures == live.figures
    assert offline.checked == live.checked
    assert offline.passed is live.passed


def test_a_baseline_file_as_reference_is_held_to_with_its_own_figures(tmp_path: Path) -> None:
    """A baseline file is loaded as the gate loads it; its greedy outputs are compared with another
    baseline's and noted as not compared against a results file."""
    greedy = GreedyOutputs(("p1", "p2"), 32, outputs=("a", "b"))
    base, other = tmp_path / "base.json", tmp_path / "other.json"
    save_baseline(base, reference_doc(), greedy)
    save_baseline(other, bad_day_doc(), GreedyOutputs(("p1", "p2"), 32, outputs=("a", "x")))
    results = write(tmp_path / "m5.json", bad_day_doc())

    both = compare_files([load_run(base), load_run(other)], Tolerances()).gates[0]
    live = compare(load_baseline(base), bad_day_doc(), tolerances=Tolerances(), greedy=load_run(other).greedy)
    assert both.regressions == live.regressions
    assert any(r.startswith("greedy outputs: 1/2 exact matches") for r in both.regressions)

    against_results = compare_files([load_run(base), load_run(results)], Tolerances()).gates[0]
    assert not any(r.startswith("greedy outputs") for r in against_results.regressions)
    assert against_results.notes[0].startswith(f"greedy outputs not compared: {results} holds none")


def test_the_same_file_twice_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    assert main(["compare", str(ref), str(ref)]) == 0
    out = capsys.readouterr().out
    assert "m2.json (2): passed: 25 figures within tolerance of m2.json" in out
    assert row_of(out, DECODE_TITLE, "N=8").endswith("±0.0 %")


# --- the tables -----------------------------------------------------------------------------------


def test_changes_say_which_way_is_better(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Decode falling is worse, TTFT falling is better; beyond tolerance it says REGRESSED."""
    ref = write(tmp_path / "m2.json", reference_doc())
    new = reference_doc()
    new["sweep"][0]["agg_decode_tps"] = DECODE[1] * 0.8  # -20 %: worse, regressed
    new["sweep"][1]["agg_decode_tps"] = DECODE[2] * 0.95  # -5 %: worse, within tolerance
    new["sweep"][2]["agg_decode_tps"] = DECODE[4] * 1.1  # +10 %: better
    new["sweep"][0]["median_ttft_s"] = TTFT[1] * 0.8  # -20 % of a time: better
    new["sweep"][1]["median_ttft_s"] = TTFT[2] * 1.25  # +25 % of a time: worse, regressed
    other = write(tmp_path / "new.json", new)

    assert main(["compare", str(ref), str(other)]) == 1
    out = capsys.readouterr().out
    assert row_of(out, DECODE_TITLE, "N=1").endswith("32.0 −20.0 % worse: REGRESSED")
    assert row_of(out, DECODE_TITLE, "N=2").endswith("60.8 −5.0 % worse, within 10 %")
    assert row_of(out, DECODE_TITLE, "N=4").endswith("88.0 +10.0 % better")
    assert row_of(out, TTFT_TITLE, "N=1").endswith("4.00 −20.0 % better")
    assert row_of(out, TTFT_TITLE, "N=2").endswith("4.38 +25.0 % worse: REGRESSED")
    assert "new.json: failed: 2 regressions against m2.json" in out


def test_point_statuses_and_points_a_run_lacks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each point's own status; a point absent from a run whose engine died is "not attempted", from
    a run whose engine lived "not run"; either way its figures are missing and regress."""
    ref = write(tmp_path / "m2.json", reference_doc())
    bad = write(tmp_path / "m5.json", bad_day_doc())
    short = document([point(n, DECODE[n], TTFT[n]) for n in (1, 2, 4)])  # asked only N=1,2,4
    lacking = write(tmp_path / "short.json", short)
    died = bad_day_doc()
    died["sweep"] = died["sweep"][:3]  # no rows at all for N=8 and N=16, but the engine died
    dead = write(tmp_path / "dead.json", died)

    assert main(["compare", str(ref), str(bad), str(lacking), str(dead)]) == 1
    out = capsys.readouterr().out
    statuses = {n: row_of(out, STATUS_TITLE, f"N={n}").split()[1:] for n in DECODE}
    assert statuses[1] == ["ok", "ok", "ok", "ok"]
    assert " ".join(statuses[4]) == "ok zero-token ok zero-token"
    assert " ".join(statuses[8]) == f"ok engine dead {NOT_RUN} not attempted"
    assert " ".join(statuses[16]) == f"ok not attempted {NOT_RUN} not attempted"
    # reference, then each file and its change: m5, short, dead
    assert row_of(out, DECODE_TITLE, "N=1") == "N=1 40.0 40.8 +2.0 % better 40.0 ±0.0 % 40.8 +2.0 % better"
    assert "44.0 (zero-token) −45.0 % worse: REGRESSED 80.0" in row_of(out, DECODE_TITLE, "N=4")
    assert row_of(out, DECODE_TITLE, "N=8") == (
        f"N=8 135.0 – (engine dead) missing: REGRESSED – ({NOT_RUN}) missing: REGRESSED "
        "– (not attempted) missing: REGRESSED"
    )


def test_tail_figures_show_only_with_a_tolerance_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    other = write(tmp_path / "m5.json", bad_day_doc())
    main(["compare", str(ref), str(other)])
    assert "p90 TTFT" not in capsys.readouterr().out
    main(["compare", str(ref), str(other), "--tolerance", "p90_ttft_s=50%"])
    out = capsys.readouterr().out
    assert "Throughput sweep: p90 TTFT (s), lower is better, tolerance 50 %" in out
    assert "sweep[N=8].p90_ttft_s: missing from this run" in out


def test_markdown_and_html_hold_the_tables_and_overlaid_plots(tmp_path: Path) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    bad = bad_day_doc()
    bad["profile"] = "<b>mtp5</b>"
    other = write(tmp_path / "m5.json", bad)
    md, html = tmp_path / "out" / "x.md", tmp_path / "out" / "x.html"
    assert main(["compare", str(ref), str(other), "--markdown", str(md), "--html", str(html)]) == 1

    text = md.read_text()
    assert f"### {DECODE_TITLE}" in text
    assert "| N=2 | 64.0 | 53.1 | −17.0 % worse: REGRESSED |" in text
    assert "| N=8 | ok | engine dead |" in text

    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<b>mtp5</b>" not in page
    assert "&lt;b&gt;mtp5&lt;/b&gt;" in page
    plot = re.search(r'<svg class="gx10-plot" data-plot="sweep-agg_decode_tps".*?</svg>', page, re.S)
    assert plot is not None
    svg = plot.group(0)
    assert svg.count("<polyline") == 2  # one line per file
    assert "m2.json (mtp2)" in svg
    assert "m5.json (&lt;b&gt;mtp5&lt;/b&gt;)" in svg
    assert "m5.json (&lt;b&gt;mtp5&lt;/b&gt;): N=8: engine dead" in svg  # the dead point is marked
    assert 'data-plot="sweep-median_ttft_s"' in page
    assert "failed: 15 regressions against m2.json" in page
    assert "sweep[N=8].agg_decode_tps: missing from this run" in page


# --- bad input: exit 2, one line naming the file --------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ("[1, 2]", "a JSON list, not a results document"),
        ('{"hello": 1}', 'not a pytest-gx10 results or baseline file (no "schema_version"'),
        ('{"schema_version": 99}', "results schema version 99"),
        ('{"format": "something-else"}', "format 'something-else' is not one this command reads"),
        ('{"format": "pytest-gx10-baseline", "version": 1}', "malformed baseline"),
    ],
)
def test_unusable_files_exit_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, problem: str
) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    assert main(["compare", str(ref), str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith("python -m pytest_gx10 compare: error: ")
    assert str(bad) in line
    assert problem in line


def test_a_reference_without_figures_is_unusable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = write(tmp_path / "empty.json", document([]))
    other = write(tmp_path / "m5.json", bad_day_doc())
    assert main(["compare", str(empty), str(other)]) == 2
    assert "empty.json: holds no gated figure" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tolerance", "agg_decod_tps=5%"], "did you mean 'agg_decode_tps'?"),
        (["--tolerance", "agg_decode_tps=5"], "reads as 500%: write a percentage (5%)"),
        (["--tolerance", "agg_decode_tps=five"], "not a tolerance"),
    ],
)
def test_tolerances_are_checked_as_the_live_gate_checks_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    other = write(tmp_path / "m5.json", bad_day_doc())
    code: object
    try:
        code = main(["compare", str(ref), str(other), *args])
    except SystemExit as exc:  # argparse refuses a value its type= parser rejects
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = write(tmp_path / "m2.json", reference_doc())
    for argv in (["compare", str(ref)], ["compare", str(ref), str(ref), "--history", str(tmp_path)]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert "at least two files" in capsys.readouterr().err


def test_a_tolerance_makes_a_regression_pass(tmp_path: Path) -> None:
    """--tolerance feeds the same Tolerances the gate uses: 25 % lets the -17 % decode through."""
    ref = reference_doc()
    new = reference_doc()
    new["sweep"][1]["agg_decode_tps"] = DECODE[2] * 0.83
    a, b = write(tmp_path / "a.json", ref), write(tmp_path / "b.json", new)
    assert main(["compare", str(a), str(b)]) == 1
    assert main(["compare", str(a), str(b), "--tolerance", "agg_decode_tps=25%"]) == 0
    assert main(["compare", str(a), str(b), "--tolerance", "sweep[N=2].agg_decode_tps=25%"]) == 0


# --- history --------------------------------------------------------------------------------------


def test_history_entries_are_whole_unique_and_sort_by_time(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    gate = {"passed": False, "headline": "failed: 1 regression", "regressions": ["x"]}
    paths = [append_run(folder, reference_doc(), gate if i == 1 else None) for i in range(5)]
    assert len(set(paths)) == 5
    assert history_files(folder) == paths  # written order is name order
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in paths]  # no temporary files left
    entry = json.loads(paths[1].read_text())
    assert entry["format"] == HISTORY_FORMAT
    assert entry["gate"] == gate
    assert entry["results"]["sweep"] == reference_doc()["sweep"]
    assert entry["software"]["profile"] == "mtp2"
    assert entry["client"]["cpu_count"] is not None
    assert json.loads(paths[0].read_text())["gate"] is None


def test_history_shows_runs_oldest_first_with_their_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Entries are read in name order (the time they were written), whatever order they were made in."""
    folder = tmp_path / "history"
    folder.mkdir()
    later = append_run(folder, bad_day_doc(), {"passed": False, "headline": "failed"})
    earlier = folder / ("20000101T000000000000Z-000000.json")  # an older entry, made after
    earlier.write_text(later.read_text().replace('"mtp5"', '"mtp2"'))
    write(folder / "20000101T000000000001Z-000001.json", {**json.loads(earlier.read_text()), "gate": None})
    (folder / ".gx10-partial.tmp").write_text("{")  # an entry being written: not read

    history = load_history(folder, Tolerances())
    assert [r.path.name for r in history.runs] == [
        earlier.name,
        "20000101T000000000001Z-000001.json",
        later.name,
    ]
    html = tmp_path / "h.html"
    assert main(["compare", "--history", str(folder), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    runs = out.split("Runs, oldest first\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert [line.split()[0] for line in runs] == ["#1", "#2", "#3"]
    assert [line.split()[3] for line in runs] == ["mtp2", "mtp2", "mtp5"]
    assert [line.split()[5] for line in runs] == ["failed", "–", "failed"]
    assert "N=4 zero-token, N=8 engine dead, N=16 not attempted" in runs[2]
    trend = out.split("Throughput sweep: aggregate decode (tok/s), higher is better: trend\n", 1)[1]
    assert trend.splitlines()[3].split()[:4] == ["#3", "failed", "40.8", "53.1"]
    page = html.read_text()
    assert page.count('class="gx10-band"') >= 3  # every run's gate failed, or its points did
    assert 'data-plot="trend-sweep-agg_decode_tps"' in page
    assert "run whose gate failed" in page


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "no such folder"),
        (lambda p: p.mkdir(), "holds no runs"),
        (lambda p: p.write_text("x"), "not a folder"),
    ],
)
def test_an_unusable_history_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, problem: str
) -> None:
    folder = tmp_path / "history"
    make(folder)
    assert main(["compare", "--history", str(folder)]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err
    assert problem in err


# --- plots ----------------------------------------------------------------------------------------


def test_series_plot_draws_a_line_and_a_legend_row_per_series() -> None:
    svg = series_plot(
        "p",
        "decode vs N",
        "tok/s",
        ["N=1", "N=2", "N=4"],
        [
            Series("a.json", {"N=1": 1.0, "N=2": 2.0, "N=4": 3.0}),
            Series("b.json", {"N=1": 1.0, "N=2": 1.5, "N=4": None}, {"N=4": "engine dead"}),
        ],
        bands={"N=4": ("#d62728", "gate failed")},
        band_legend=[LegendItem("#d62728", "run whose gate failed", band=True)],
    )
    assert svg.count("<polyline") == 2
    assert svg.count('class="gx10-legend"') == 3
    assert "b.json: N=4: engine dead" in svg
    assert 'class="gx10-band"' in svg
    assert 'height="304"' in svg  # 250, a row of 16 per legend item, and a margin of 6


def test_a_frame_without_legend_keeps_its_size() -> None:
    """The existing plots (the live report's) are drawn as before."""
    assert 'width="460" height="250"' in frame("x", "t", "x", "y", 1.0, [])


def test_a_reader_that_stops_early_loses_no_file_and_no_verdict(tmp_path: Path) -> None:
    """``compare ... | head``: the Markdown and HTML are written, the exit code is still the verdict."""
    ref, other = write(tmp_path / "m2.json", reference_doc()), write(tmp_path / "m5.json", bad_day_doc())
    md, html = tmp_path / "x.md", tmp_path / "x.html"
    argv = [sys.executable, "-m", "pytest_gx10", "compare", str(ref), str(other), "--markdown", str(md)]
    argv += ["--html", str(html)]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # gone before the command (still importing) writes a byte: its write breaks
        errors = proc.stderr.read()
        code = proc.wait(timeout=60)
    assert code == 1
    assert "BrokenPipeError" not in errors, errors
    assert md.read_text().startswith("#")
    assert "<svg" in html.read_text()
