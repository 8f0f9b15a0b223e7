"""A multi-turn point's turns: a table per point in the Markdown, the HTML and the terminal, with its
cells' values; nothing without turns; the baseline gate and the offline comparison leave them out."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path
from typing import Any

from pytest_gx10.load.repeats import combine_repeats
from pytest_gx10.report.baseline import Tolerances, compare, figures, load_baseline, save_baseline
from pytest_gx10.report.compare import compare_files, load_run
from pytest_gx10.report.html import entry_html, summary_html
from pytest_gx10.report.markdown import markdown_document
from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.terminal import WIDTH, summary_lines

HEADERS = [
    "Turn",
    "Requests (ok/total)",
    "Input tokens",
    "New tokens",
    "Median TTFT (s)",
    "p90 TTFT (s)",
    "Median prefill (tok/s)",
    "Possible hit",
    "Server hit",
    "Cached tokens",
]
# The cells of TURNS below, as the tables must show them.
CELLS = [
    ["1", "8/8", "412.5", "200.0", "0.41", "0.55", "1 010", "0 %", "1 %", "0.0"],
    ["2", "7/8", "830.0", "200.0", "0.62", "0.90", "1 339", "40–52 %", "–", "–"],
    ["3", "–/8", "–", "–", "–", "–", "–", "63 %", "61 %", "512.0"],
]


def _turns() -> list[dict[str, Any]]:
    return [
        {
            "turn": 1,
            "requests": 8,
            "ok": 8,
            "mean_input_tokens": 412.5,
            "mean_new_tokens": 200.0,
            "median_ttft_s": 0.41,
            "p90_ttft_s": 0.55,
            "median_prefill_tps": 1010.0,
            "expected_hit_rate_min": 0.0,
            "expected_hit_rate_max": 0.0,
            "prefix_cache_hit_rate": 0.01,
            "mean_cached_tokens": 0.0,
        },
        {
            "turn": 2,
            "requests": 8,
            "ok": 7,
            "mean_input_tokens": 830.0,
            "mean_new_tokens": 200.0,
            "median_ttft_s": 0.62,
            "p90_ttft_s": 0.9,
            "median_prefill_tps": 1338.7,
            "expected_hit_rate_min": 0.4,
            "expected_hit_rate_max": 0.52,
            "prefix_cache_hit_rate": None,
            "mean_cached_tokens": None,
        },
        {  # a turn whose every figure is missing but its size and the hit rates
            "turn": 3,
            "requests": 8,
            "ok": None,
            "mean_input_tokens": None,
            "mean_new_tokens": None,
            "median_ttft_s": None,
            "p90_ttft_s": None,
            "median_prefill_tps": None,
            "expected_hit_rate_min": None,
            "expected_hit_rate_max": 0.63,
            "prefix_cache_hit_rate": 0.61,
            "mean_cached_tokens": 512.0,
        },
    ]


def _sweep_point(n: int, *, turns: bool) -> dict[str, Any]:
    point: dict[str, Any] = {
        "concurrency": n,
        "wall_s": 10.0 + n,
        "agg_prefill_tps": 5000.0,
        "agg_decode_tps": 40.0 * n,
        "median_ttft_s": 0.5,
        "median_decode_tps": 40.0,
        "ok_requests": n,
        "failed_requests": 0,
        "status": "ok",
    }
    if turns:
        point["turns"] = _turns()
    return point


def _load_point(*, turns: bool) -> dict[str, Any]:
    point: dict[str, Any] = {
        "point": "concurrency 4",
        "mode": "concurrency",
        "level": 4,
        "sent": 24,
        "warmup_requests": 0,
        "measured": 24,
        "ok_requests": 23,
        "failed_requests": 1,
        "status": "ok",
        "output_tps": 120.0,
        "ttft_p50_s": 0.5,
    }
    if turns:
        point["turns"] = _turns()
    return point


def _document(*, turns: bool) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "model": "m",
        "profile": "p",
        "target": "http://127.0.0.1:8000",
        "server_version": "1.0",
        "sweep": [_sweep_point(1, turns=False), _sweep_point(4, turns=turns)],
        "load": [_load_point(turns=turns)],
    }


def _markdown_table(text: str, heading: str) -> list[list[str]]:
    """The header and rows of the Markdown table under ``heading``."""
    block = text.split(f"{heading}\n", 1)[1]
    lines = [ln for ln in block.split("\n\n", 2)[1].splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines if not ln.startswith("|---")]


def _html_table(html: str, anchor: str) -> tuple[str, list[list[str]]]:
    """The caption and the rows (header first) of the HTML table ``data-table=anchor``."""
    found = re.search(rf'<table [^>]*data-table="{re.escape(anchor)}"[^>]*>(.*?)</table>', html, re.S)
    assert found is not None, anchor
    caption = re.search(r"<caption>(.*?)</caption>", found.group(1))
    assert caption is not None
    rows = [
        [unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", found.group(1))
    ]
    return unescape(caption.group(1)), rows


def test_markdown_shows_each_turn_of_a_multi_turn_point() -> None:
    """A table per point with turns, headed by the point; every cell as the turn's figure says."""
    text = markdown_document(_document(turns=True))
    assert _markdown_table(text, "### Turns, N=4") == [HEADERS, *CELLS]
    assert _markdown_table(text, "### Turns, concurrency 4") == [HEADERS, *CELLS]
    assert "Turns, N=1" not in text, "a point without turns has no turns table"
    assert "previous turn's prompt in whole 16-token blocks" in text
    assert not re.search(r"\bNone\b", text)


def test_html_shows_each_turn_of_a_multi_turn_point() -> None:
    """The summary and the point's own row carry the same table, cell for cell."""
    doc = _document(turns=True)
    html = summary_html(doc, facts=[], suites={}, gate=None, redactor=Redactor())
    assert _html_table(html, "gx10-turns-4") == ("Turns, N=4", [HEADERS, *CELLS])
    assert _html_table(html, "gx10-load-turns-concurrency-4") == ("Turns, concurrency 4", [HEADERS, *CELLS])
    assert 'data-table="gx10-turns-1"' not in html
    own = entry_html("sweep", doc["sweep"][1], Redactor())
    assert _html_table(own, "gx10-turns-4") == ("Turns, N=4", [HEADERS, *CELLS])
    assert "Turns" not in entry_html("sweep", doc["sweep"][0], Redactor())


def test_no_turns_no_table() -> None:
    """Without the key (a single-turn workload) nothing about turns is shown anywhere."""
    doc = _document(turns=False)
    assert "Turns" not in markdown_document(doc)
    html = summary_html(doc, facts=[], suites={}, gate=None, redactor=Redactor())
    assert "Turns" not in html
    assert not [line for line in summary_lines(doc) if "turn" in line]
    empty = _document(turns=False)
    empty["sweep"][1]["turns"] = []
    assert "Turns" not in markdown_document(empty)


def test_terminal_shows_the_turns_within_its_width() -> None:
    """Under the sweep and the load points: a line per turn, the same cells, none past the width."""
    lines = summary_lines(_document(turns=True))
    assert all(len(line) <= WIDTH for line in lines)
    for label in ("N=4", "concurrency 4"):
        at = lines.index(f"{label} turns:")
        header, *rows = lines[at + 1 : at + 2 + len(CELLS)]
        assert header.split()[:2] == ["turn", "ok/req"]
        # Cells are right-aligned two spaces apart; "1 010" and "40–52 %" hold single spaces.
        assert [re.split(r"\s{2,}", row.strip()) for row in rows] == CELLS


def test_turns_are_never_gated_nor_break_the_comparison(tmp_path: Path) -> None:
    """The list under ``turns`` is no figure of the baseline; the gate and the offline comparison of
    two runs with turns pass and name no turn; repeats with different turns keep the last one's."""
    doc = _document(turns=True)
    ids = figures(doc)
    assert "sweep[N=4].agg_decode_tps" in ids
    assert not [k for k in ids if "turn" in k]
    saved = tmp_path / "base.json"
    save_baseline(saved, doc, None)
    assert not [k for k in json.loads(saved.read_text())["figures"] if "turn" in k]
    gate = compare(load_baseline(saved), _document(turns=True), tolerances=Tolerances())
    assert gate.passed, gate.regressions
    assert gate.checked == len(ids)
    ref, other = tmp_path / "a.json", tmp_path / "b.json"
    ref.write_text(json.dumps(doc), encoding="utf-8")
    changed = _document(turns=True)
    changed["sweep"][1]["turns"][0]["median_ttft_s"] = 9.0  # a turn's figure is not held to anything
    other.write_text(json.dumps(changed), encoding="utf-8")
    comparison = compare_files([load_run(ref), load_run(other)], Tolerances())
    assert comparison.passed
    assert "turn" not in comparison.text().lower()
    first, second = _sweep_point(4, turns=True), _sweep_point(4, turns=True)
    second["turns"] = second["turns"][:1]
    assert combine_repeats([first, second], ["agg_decode_tps"])["turns"] == second["turns"]
