"""Reports through the plugin: Markdown and JSON the same under xdist, the baseline gate's exit code,
the HTML report's tables and plots, and secrets kept out of every output."""

from __future__ import annotations

import json
import re

import pytest

RECORDS = """
import pytest

ANSWER = {answer!r}


def _request(n):
    return {{"ttft_s": 2.0, "duration_s": 30.0, "prefill_tps": 1000.0, "decode_tps": 40.0,
            "prompt_tokens": 2000, "completion_tokens": 1120, "ended": "done", "status": 200}}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_point(n, gx10_record):
    gx10_record("sweep", {{"concurrency": n, "wall_s": 30.0 + n, "agg_prefill_tps": 1000.0 * n,
                          "agg_decode_tps": 40.0 * n, "median_ttft_s": 2.0, "median_decode_tps": 40.0 / n,
                          "ok_requests": n, "failed_requests": 0, "requests": [_request(n)] * n}})


@pytest.mark.parametrize("depth", [0.25, 0.75])
def test_needle(depth, gx10_record):
    gx10_record("needle", {{"case": f"2000@{{depth:.2f}}", "length": 2000, "depth": depth,
                           "input_tokens": 2000, "ttft_s": 1.5, "prefill_tps": 1333.0, "output_tokens": 40,
                           "decode_tps": 39.5, "total_wall_s": 2.5, "retrieved": depth < 0.5,
                           "answer": ANSWER, "reasoning_head": "Thinking Process:"}})


def test_window(gx10_record):
    gx10_record("mtp", {{"name": "window", "method": "mtp k=2", "acceptance_rate": 0.861,
                        "acceptance_length": 2.72, "per_position": [0.889, 0.833]}})
"""


def _records(pytester: pytest.Pytester, answer: str = "BANANA-MOOSE-7421") -> None:
    pytester.makepyfile(test_records=RECORDS.format(answer=answer))


def _normalised(text: str) -> str:
    """A run's output with what differs between any two runs (the twin's port, the start time) masked.

    The start time is in the JSON (to the second) and in the Markdown's run header (to the minute):
    two runs a few seconds apart may straddle a minute.
    """
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"\| Date \| \d{4}-\d\d-\d\d \d\d:\d\d UTC \|", "| Date | T |", text)
    return re.sub(r'"started_at": "[^"]+"', '"started_at": "T"', text)


def test_json_and_markdown_the_same_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    """-n 0 and -n 2 write the same JSON and Markdown; only the controller writes them."""
    _records(pytester)
    outputs = {}
    for workers in ("0", "2"):
        out = pytester.path / f"n{workers}"
        result = pytester.runpytest_subprocess(
            "-n",
            workers,
            "-p",
            "no:cacheprovider",
            f"--gx10-json={out}/r.json",
            f"--gx10-markdown={out}/r.md",
        )
        result.assert_outcomes(passed=6)
        outputs[workers] = (
            _normalised((out / "r.json").read_text()),
            _normalised((out / "r.md").read_text()),
        )
        plots = [
            "r-acceptance.svg",
            "r-agg-decode.svg",
            "r-agg-prefill.svg",
            "r-latency-throughput.svg",  # beside the JSON and the Markdown: one stem, one file
            "r-needle-grid.svg",
            "r-ttft.svg",
        ]
        assert sorted(p.name for p in out.iterdir()) == sorted(["r.json", "r.md", *plots])
        assert sorted(re.findall(r"\]\((r-[a-z-]+\.svg)\)", outputs[workers][1])) == plots
    assert outputs["0"] == outputs["2"]
    markdown = outputs["2"][1]
    assert "| Date | T |" in markdown  # the header's date, masked above
    assert "| 4 | 34.0 | 4 000 | 160.0 | 2.00 | 10.0 | ok |" in markdown
    assert "| Needle retrieved | ✅ yes — exact match | ❌ no |" in markdown
    assert [p["concurrency"] for p in json.loads(outputs["2"][0])["sweep"]] == [1, 2, 4]


def test_baseline_gate_passes_then_fails_listing_every_regression(pytester: pytest.Pytester) -> None:
    """Save, compare the same run (exit 0), compare with a raised baseline and a lost point (exit 1)."""
    _records(pytester)
    base = pytester.path / "b.json"
    saved = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--gx10-save-baseline={base}")
    assert saved.ret == pytest.ExitCode.OK
    saved.stdout.fnmatch_lines([f"gx10: baseline saved to {base} with 8 greedy outputs"])
    doc = json.loads(base.read_text())
    assert doc["figures"]["sweep[N=2].agg_decode_tps"] == 80.0
    assert len(doc["greedy"]["outputs"]) == 8
    assert all(doc["greedy"]["outputs"])

    same = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--gx10-baseline={base}")
    assert same.ret == pytest.ExitCode.OK, same.stdout.str()[-2000:]
    same.stdout.fnmatch_lines(
        ["*gx10 release gate*", "greedy outputs: 8/8 exact matches (100%), minimum 80%", "passed: *"]
    )

    doc["figures"]["sweep[N=2].agg_decode_tps"] = 104.0  # the run must now beat 80 by 30 %
    doc["figures"]["sweep[N=8].agg_decode_tps"] = 300.0  # a point this run never measured
    doc["greedy"]["outputs"][:3] = ["other", "other", "other"]
    base.write_text(json.dumps(doc))
    worse = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", f"--gx10-baseline={base}")
    assert worse.ret == pytest.ExitCode.TESTS_FAILED  # the controller gates, with its own greedy outputs
    worse.assert_outcomes(passed=6, failed=1)  # the tests passed; the gate, a test of its own, failed
    worse.stdout.fnmatch_lines(
        [
            f"FAILED: 3 regressions against {base}",
            "  sweep[N=2].agg_decode_tps: 80.0 tok/s < baseline 104.0 tok/s - 10% (93.6 tok/s), -23.1%",
            "  sweep[[]N=8].agg_decode_tps: missing from this run (baseline 300.0 tok/s)*",
            "  greedy outputs: 5/8 exact matches (62%), minimum 80%",
            "    prompt 'Name the capital of France in one word.': baseline 'other' | this run *",
        ]
    )
    lenient = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--gx10-baseline={base}",
        "--gx10-tolerance=agg_decode_tps=30%",
        "--gx10-tolerance=sweep[N=8].agg_decode_tps=100%",
    )
    lenient.stdout.fnmatch_lines(["FAILED: 2 regressions*"])  # N=8 still missing; greedy still off


def test_malformed_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A broken baseline file stops the run before any test, naming the file."""
    bad = pytester.path / "broken.json"
    bad.write_text("{truncated")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--gx10-baseline={bad}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*malformed baseline {bad}: not JSON*"])


def test_bad_tolerance_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A tolerance that is not a percentage names the flag."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("--gx10-tolerance=agg_decode_tps=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*tolerance = 'agg_decode_tps=fast' from --gx10-tolerance: not a tolerance*"]
    )


def test_a_misspelt_tolerance_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A tolerance naming no figure of the baseline stops the run, with the closest name; a bare 5
    (which would read as 500 %) is refused, naming the percentage meant."""
    _records(pytester)
    base = pytester.path / "b.json"
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--gx10-save-baseline={base}").ret == 0
    misspelt = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--gx10-baseline={base}", "--gx10-tolerance=agg_decod_tps=5%"
    )
    assert misspelt.ret == pytest.ExitCode.USAGE_ERROR
    misspelt.stderr.fnmatch_lines(
        [
            "*a tolerance for 'agg_decod_tps', which names no figure of the baseline; did you mean 'agg_decode_tps'?*"
        ]
    )
    bare = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--gx10-baseline={base}", "--gx10-tolerance=agg_decode_tps=5"
    )
    assert bare.ret == pytest.ExitCode.USAGE_ERROR
    bare.stderr.fnmatch_lines(["*a tolerance of 5 reads as 500%: write a percentage (5%)*"])


HOSTILE = "<script>document.title='gx10-xss'</script>"


def test_html_report_tables_plots_and_no_secrets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-test tables and JSON extras, the summary with suites and plots; a planted key appears nowhere."""
    key, token = "sk-planted-gx10-0042", "hf_plantedtoken0042"
    monkeypatch.setenv("GX10_API_KEY", key)
    monkeypatch.setenv("MY_SERVICE_TOKEN", token)
    _records(pytester, answer=f"{HOSTILE} key {key} token {token}")
    pytester.makepyfile(
        test_leaks=f"""
def test_leaky(gx10_client):
    print("stdout has", {key!r}, {token!r})
    assert False, "message has {key} {token}"
"""
    )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        f"--html={out}/r.html",
        "--self-contained-html",
        f"--gx10-json={out}/r.json",
        f"--gx10-markdown={out}/r.md",
        f"--gx10-save-baseline={out}/b.json",
    )
    result.assert_outcomes(passed=6, failed=1)
    html = (out / "r.html").read_text()
    for path in sorted(out.iterdir()):
        text = path.read_text()
        assert key not in text, path.name
        assert token not in text, path.name
    assert "[REDACTED]" in (out / "r.md").read_text()
    assert HOSTILE not in html
    assert "&lt;script&gt;document.title=&#x27;gx10-xss&#x27;&lt;/script&gt;" in html
    summary = html.split('id="gx10-summary"', 1)[1].split('id="results-table"', 1)[0]
    for marker in (
        'id="gx10-aggregate"',
        'id="gx10-requests-4"',
        'id="gx10-needle"',
        'data-plot="agg-decode"',
        'data-plot="agg-prefill"',
        'data-plot="ttft"',
        'data-plot="needle-grid"',
        'data-plot="acceptance"',
        'data-table="gx10-suites"',
    ):
        assert marker in summary, marker
    assert "data-table=\\&#34;gx10-requests-2\\&#34;" in html  # a test's own tables, in pytest-html's data
    assert "gx10 sweep figures" in html  # and its JSON extra
    assert "twin, time scale 15" in html


def test_without_pytest_html(pytester: pytest.Pytester) -> None:
    """With pytest-html switched off the plugin still records and writes Markdown."""
    _records(pytester)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:html", f"--gx10-markdown={pytester.path}/r.md"
    )
    result.assert_outcomes(passed=6)
    assert "### Aggregate throughput" in (pytester.path / "r.md").read_text()


def test_different_deployment_is_noted_once(pytester: pytest.Pytester) -> None:
    """Another model and profile than the baseline's: noted once each, naming both sides, also under
    -W error (a note is no warning); --gx10-gate-facts makes them fail the gate."""
    _records(pytester)
    base = pytester.path / "b.json"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--gx10-save-baseline={base}")
    other = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-W", "error", f"--gx10-baseline={base}", "--gx10-profile=smollm2-cpu"
    )
    lines = other.stdout.lines
    model = "model differs: baseline Qwen3.5-397B-A17B-FP8, this run SmolLM2-135M-Instruct"
    assert sum(line.strip() == model for line in lines) == 1, other.stdout.str()[-3000:]
    assert sum("profile differs: baseline qwen3.5-397b-fp8-mtp2-gx10x4" in line for line in lines) == 1
    assert "Gx10Warning" not in other.stdout.str()
    strict = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--gx10-baseline={base}", "--gx10-profile=smollm2-cpu", "--gx10-gate-facts"
    )
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines([f"  {model}"])
    assert "INTERNALERROR" not in strict.stdout.str() + strict.stderr.str()
