"""The report a post can carry: status rows, one unit style, no "None", readable colours, the twin's
banner, the run header, plots that mark failures and round as the tables do, Markdown with its plots."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.figures import declared
from pytest_gx10.profiles.reference_post import MTP5_AGGREGATE
from pytest_gx10.report.html import (
    COLOURS,
    STYLE,
    banner_html,
    entry_html,
    report_title,
    suite_verdict,
    summary_html,
)
from pytest_gx10.report.markdown import markdown_document, write_markdown
from pytest_gx10.report.redact import Redactor
from pytest_gx10.report.reference import MTP2_PROFILE, MTP5_PROFILE, overlays, post_mtp5
from pytest_gx10.report.svg import plots
from pytest_gx10.report.tables import results_tables, run_header

ENGINE_ERROR = "{'message': 'EngineCore encountered an issue.', 'type': 'InternalServerError', 'param': None, 'code': 500}"


def _request(ttft: float | None, outcome: str = "ok", **extra: Any) -> dict[str, Any]:
    return {
        "ttft_s": ttft,
        "duration_s": 30.0,
        "prefill_tps": None if ttft is None else 9818 / ttft,
        "decode_tps": None if outcome != "ok" else 40.0,
        "prompt_tokens": 9818,
        "completion_tokens": 0 if outcome == "zero_tokens" else 1024,
        "status": 200,
        "outcome": outcome,
        "ended": "error" if outcome == "inband_error" else "done",
        "error": ENGINE_ERROR if outcome == "inband_error" else None,
        **extra,
    }


def _bad_day() -> dict[str, Any]:
    """A run like the post's MTP-5 retest: ok, ok, a 0-token reply, engine dead, not attempted."""
    sweep: list[dict[str, Any]] = [
        {
            "concurrency": 1,
            "wall_s": 34.6,
            "agg_prefill_tps": 16191.6,
            "agg_decode_tps": 40.3,
            "median_ttft_s": 5.0,
            "median_decode_tps": 40.3,
            "ok_requests": 1,
            "failed_requests": 0,
            "status": "ok",
            "requests": [_request(5.0)],
        },
        {
            "concurrency": 4,
            "wall_s": 76.4,
            "agg_prefill_tps": 6172.0,
            "agg_decode_tps": 42.0,
            "median_ttft_s": 5.9,
            "median_decode_tps": 14.0,
            "ok_requests": 3,
            "failed_requests": 1,
            "status": "zero-token",
            "requests": [_request(5.9), _request(5.9), _request(5.9), _request(None, "zero_tokens")],
        },
        {
            "concurrency": 8,
            "wall_s": None,
            "agg_prefill_tps": None,
            "agg_decode_tps": None,
            "median_ttft_s": None,
            "median_decode_tps": None,
            "ok_requests": 0,
            "failed_requests": 2,
            "status": "engine dead",
            "requests": [_request(4.0, "inband_error"), _request(2.0, "inband_error")],
        },
        {"concurrency": 16, "status": "not attempted", "why": "engine dead since 16:13:25: CUDA error"},
    ]
    return {
        "started_at": "2026-06-13T15:02:11+00:00",
        "target_label": "twin, time scale 15",
        "target_kind": "twin",
        "time_scale": 15.0,
        "target": "http://127.0.0.1:8000",
        "model": "Qwen3.5-397B-A17B-FP8",
        "profile": MTP5_PROFILE,
        "server": "vllm",
        "server_label": "vLLM",
        "server_version": "0.22.1rc1.dev124+gace95c9cf",
        "image": "vllm-node-mimo:latest",
        "serve_flags": ["--gpu-memory-utilization", "0.90"],
        "engine": {"state": "dead", "since": "16:13:25", "cause": "CUDA error: an illegal memory access"},
        "sweep": sweep,
    }


def _cells(document: dict[str, Any]) -> list[str]:
    return [
        c for t in results_tables(document, overlays(document)) for row in t.rows for c in [*t.headers, *row]
    ]


def test_every_point_has_a_status_row_and_a_failed_point_shows_dashes() -> None:
    """ok, zero-token, engine dead and not attempted each say so; no figure of a dead point."""
    doc = _bad_day()
    aggregate = next(t for t in results_tables(doc) if t.anchor == "gx10-aggregate")
    assert aggregate.headers[-1] == "Status"
    assert [(r[0], r[-1]) for r in aggregate.rows] == [
        ("1", "ok"),
        ("4", "zero-token"),
        ("8", "engine dead"),
        ("16", "not attempted"),
    ]
    for row in aggregate.rows[2:]:
        assert set(row[1:-1]) == {"–"}, row
    assert "N=16: engine dead since 16:13:25" in aggregate.note
    requests = next(t for t in results_tables(doc) if t.anchor == "gx10-requests-8")
    assert requests.rows[0][-1] == "inband error: EngineCore encountered an issue. (code 500)"
    assert not any(t.anchor == "gx10-requests-16" for t in results_tables(doc)), "no empty table"


def test_no_none_anywhere_in_the_tables() -> None:
    """A missing value is "–"; a server's error object is its message, never a Python repr."""
    cells = _cells(_bad_day())
    assert not [c for c in cells if re.search(r"\bNone\b", c)]
    assert "–" in cells


def test_one_unit_style_everywhere() -> None:
    """Every unit in a header is tok/s, s, ms or tokens: never t/s or tokens/s."""
    doc = _bad_day()
    headers = [h for t in results_tables(doc, overlays(doc)) for h in t.headers]
    units = {u for h in headers for u in re.findall(r"\(([^()]*)\)\s*$", h)}
    assert units <= {"tok/s", "s", "ms", "tokens"}, units
    assert {"tok/s", "s", "ms"} <= units
    for section in ("sweep", "needle", "mtp"):
        found = declared(section)
        assert found is not None
        assert {f.unit for f in found.figures} <= {"", "tok/s", "s", "ms", "tokens"}


def test_the_post_mtp5_table_with_its_change_column() -> None:
    """The post's own MTP-5 figures against its MTP-2 give the post's "vs MTP-2" cells."""
    post = post_mtp5().document
    doc = {"profile": MTP5_PROFILE, "sweep": post["sweep"]}
    table = next(t for t in results_tables(doc, overlays(doc)) if t.anchor == "gx10-comparison")
    assert table.headers == (
        "N",
        "Wall (s)",
        "Agg prefill (tok/s)",
        "Agg decode (tok/s)",
        "vs post MTP-5",
        "vs post MTP-2",
        "Status",
    )
    rows = {r[0]: r for r in table.rows}
    assert rows["1"][3:6] == ["40.3", "tie (40.3)", "tie (40.3)"]
    assert rows["2"][5] == "−14% vs 63.6"  # the post: "−14% vs 63.6"
    assert rows["2"][2] == f"{MTP5_AGGREGATE[2][1]:,.0f}".replace(",", " ")
    assert rows["4"][-1] == "zero-token"
    assert rows["8"][-1] == "engine dead"
    assert rows["16"][1:4] == ["–", "–", "–"]
    assert rows["16"][-1] == "not attempted"


def test_a_baseline_comes_first_and_no_comparison_without_one() -> None:
    """A baseline's change column comes before the post's; another profile has no comparison."""
    doc = _bad_day()
    base = {"sweep": [{"concurrency": 1, "agg_decode_tps": 50.0}]}
    labels = [o.label for o in overlays(doc, base)]
    assert labels == ["baseline", "post MTP-5", "post MTP-2"]
    table = next(t for t in results_tables(doc, overlays(doc, base)) if t.anchor == "gx10-comparison")
    assert table.rows[0][4] == "−19% vs 50.0"
    assert [o.label for o in overlays({**doc, "profile": MTP2_PROFILE})] == ["post MTP-2"]
    other = {**doc, "profile": "smollm2-cpu"}
    assert not any(t.anchor == "gx10-comparison" for t in results_tables(other, overlays(other)))


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_helper_knows_the_greys() -> None:
    """The helper itself: black on white 21:1, the #999 pytest-html used 2.8:1."""
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#999999", "#ffffff") == pytest.approx(2.85, abs=0.01)


def test_every_text_colour_meets_wcag_aa() -> None:
    """Each foreground the CSS sets is at least 4.5:1 against every background it can sit on."""
    backgrounds = {COLOURS["background"], COLOURS["head"], COLOURS["banner_bg"], COLOURS["dead_bg"]}
    foregrounds = set(re.findall(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", STYLE))
    assert COLOURS["text"] in foregrounds
    assert "#999999" not in foregrounds
    assert "#999" not in STYLE
    for fg in foregrounds:
        for bg in backgrounds:
            assert contrast(fg, bg) >= 4.5, (fg, bg, round(contrast(fg, bg), 2))
    assert contrast(COLOURS["banner"], COLOURS["banner_bg"]) >= 7.0
    assert contrast(COLOURS["dead"], COLOURS["dead_bg"]) >= 7.0


def test_banner_for_the_twin_and_the_dead_engine() -> None:
    """The twin gets "Simulated (twin)"; a real target none; a dead engine an alert either way."""
    doc = _bad_day()
    banner = banner_html(doc)
    assert "Simulated (twin)" in banner
    assert "time scale 15," in banner
    assert "Engine dead since 16:13:25: CUDA error" in banner
    real = {**doc, "target_kind": "attach", "engine": {"state": "alive"}}
    assert banner_html(real) == ""


def test_run_header_as_the_post_writes_it() -> None:
    """Date, model, target, server and version, profile, image, flags, the engine; given facts first."""
    doc = _bad_day()
    rows = dict(run_header(doc).rows)
    assert rows["Date"] == "2026-06-13 15:02 UTC"
    assert rows["Image"] == "vllm-node-mimo:latest"
    assert rows["Serve flags"] == "--gpu-memory-utilization 0.90"
    assert rows["Engine"] == "dead since 16:13:25: CUDA error: an illegal memory access"
    given = run_header(doc, [("Server", "vLLM 0.22.1rc1"), ("Deployment (profile)", "TP=4")])
    labels = [r[0] for r in given.rows]
    assert labels[:3] == ["Date", "Server", "Deployment (profile)"]
    assert "Server version" not in labels  # the given Server row says it
    blocks = {
        **doc,
        "deployment": {
            "gpu": {"value": "NVIDIA GB10", "source": "profile"},
            "model": {"value": "Q", "source": "twin"},
        },
        "client": {"python": "3.11.7", "cpu_count": 2},
    }
    rows_in_order = run_header(blocks).rows
    assert rows_in_order[0] == ["GPU", "NVIDIA GB10 [profile]"]
    assert rows_in_order[1] == ["Model", "Q [twin]"]
    assert rows_in_order[-1] == ["Client Python", "3.11.7 [client]"]
    assert [r[0] for r in rows_in_order].count("Model") == 1  # the deployment's, with its source
    assert [r[0] for r in rows_in_order].index("Date") == 2


def test_summary_section_order_title_and_blocks() -> None:
    """Banner, the run's header (deployment, then the run's own, then the client with pytest's
    environment), suites, then the sweep."""
    doc = {
        **_bad_day(),
        "deployment": {
            "gpu": {"value": "NVIDIA GB10", "source": "profile"},
            "hardware": "4x ASUS Ascent GX10",
            "tensor_parallel_size": 4,
            "spare": None,
        },
        "client": {"python": "3.11.7"},
    }
    html = summary_html(
        doc,
        facts=[("Model", "Qwen3.5")],
        suites={"suites/image": {"skipped": 5}, "suites/perf": {"passed": 1, "failed": 1}},
        gate=None,
        redactor=Redactor(),
        overlays=overlays(doc),
        environment={"Platform": "Linux", "Packages": {"pytest": "9.0"}},
    )
    order = [
        'id="gx10-simulated"',
        'id="gx10-run"',
        "NVIDIA GB10 [profile]",
        "4x ASUS Ascent GX10",
        "<td>Date</td>",
        "<td>Image</td>",
        "3.11.7 [client]",
        "pytest=9.0",
        'id="gx10-suites"',
        'data-plot="agg-decode"',
        'id="gx10-aggregate"',
        'id="gx10-comparison"',
        'id="gx10-definitions"',
    ]
    at = [html.index(marker) for marker in order]
    assert at == sorted(at), [m for m, _ in sorted(zip(order, at, strict=True), key=lambda p: p[1])]
    assert "spare" not in html
    image = re.search(r"<td>suites/image</td><td>(.*?)</td>", html)
    assert image is not None
    assert "skipped" in image.group(1)
    assert "passed" not in image.group(1)
    assert 'class="gx10-st gx10-st-engine-dead">engine dead<' in html
    assert 'class="gx10-st gx10-st-not-attempted">not attempted<' in html
    assert suite_verdict({"passed": 2, "skipped": 3}) == "passed"
    assert suite_verdict({"skipped": 3, "error": 1}) == "failed"
    assert report_title(doc, "MTP k=5 on 4x GX10") == "MTP k=5 on 4x GX10 — gx10 report"
    assert report_title({"profile": "smollm2-cpu"}) == "smollm2-cpu — gx10 report"


def test_a_tests_row_carries_its_figures_not_the_runs_facts() -> None:
    """The run's facts are shown once, in the gx10 section, not in every test's extras."""
    point = _bad_day()["sweep"][0]
    html = entry_html("sweep", point, Redactor())
    assert 'data-table="gx10-requests-1"' in html
    assert "Endpoint" not in html
    assert "Server version" not in html
    assert 'data-table="gx10-facts"' not in html


def test_plots_mark_failures_and_round_as_the_tables_do() -> None:
    """Failed requests are red crosses, not dots; a dead point is labelled; labels are the table's cells."""
    doc = _bad_day()
    svgs = {re.search(r'data-plot="([^"]+)"', s).group(1): s for s in plots(doc, overlays(doc))}  # type: ignore[union-attr]
    ttft = svgs["ttft"]
    assert len(re.findall(r"<circle[^>]*><title>N=", ttft)) == 4  # 1 at N=1, 3 at N=4
    assert ttft.count('<g class="gx10-failed"') == 1 + 2 + 1  # 1 zero-token, 2 in-band errors, legend
    assert "failed request (3)" in ttft
    assert "not attempted" in ttft
    prefill = svgs["agg-prefill"]
    assert ">16 192</text>" in prefill  # the table's cell for 16191.6
    assert "16 191" not in prefill
    aggregate = next(t for t in results_tables(doc) if t.anchor == "gx10-aggregate")
    assert aggregate.rows[0][2] == "16 192"
    decode = svgs["agg-decode"]
    for label in ("median decode per request", "post MTP-5 agg decode", "post MTP-2 agg decode"):
        assert label in decode, label
    assert "stroke-dasharray" in decode
    assert ">engine dead</text>" in decode
    assert ">not attempted</text>" in decode
    assert ">zero-token</text>" in decode


def test_markdown_header_engine_links_and_not_attempted_rows(tmp_path: Path) -> None:
    """The Markdown says it is simulated, carries the run header and the engine's death, lists every
    point (not attempted too) and links its plots, written beside it as SVG files."""
    doc = _bad_day()
    path = tmp_path / "out" / "run.md"
    written = write_markdown(path, doc, Redactor(), overlays=overlays(doc), title="MTP-5 on 4x GX10")
    text = path.read_text()
    assert text.startswith("## MTP-5 on 4x GX10\n")
    assert "> **Simulated (twin):**" in text
    assert "> **Engine dead since 16:13:25: CUDA error: an illegal memory access**" in text
    assert "| Date | 2026-06-13 15:02 UTC |" in text
    assert "| Image | vllm-node-mimo:latest |" in text
    assert "| 16 | – | – | – | – | – | not attempted |" in text
    assert "| 8 | – | – | – | engine dead | – | engine dead |" in text
    links = re.findall(r"!\[[^\]]+\]\(([^)]+\.svg)\)", text)
    assert links == [
        "run-agg-decode.svg",
        "run-agg-prefill.svg",
        "run-ttft.svg",
        "run-latency-throughput.svg",
    ]
    for link in links:
        svg = (path.parent / link).read_text()
        assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg class="gx10-plot"')
        assert 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert sorted(p.name for p in written) == sorted(["run.md", *links])
    assert not re.search(r"\bNone\b", text)
    assert "| Agg decode (tok/s) | all completion tokens" in text
    # Without plots given, the document links none.
    assert ".svg" not in markdown_document(doc)
