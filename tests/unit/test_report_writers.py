"""Markdown and HTML writers: the post's layout, escaping of server text, redaction, plots."""

from __future__ import annotations

import re
from typing import Any

from pytest_gx10.figures import Section, declared, register
from pytest_gx10.profiles.reference_post import AGGREGATE, INPUT_TOKENS, OUTPUT_TOKENS, PER_REQUEST
from pytest_gx10.report.html import entry_html, summary_html
from pytest_gx10.report.markdown import markdown_document
from pytest_gx10.report.redact import MASK, Redactor, secret_env_values
from pytest_gx10.report.results import ResultsStore
from pytest_gx10.report.svg import plots

HOSTILE = "<script>document.title='owned'</script><img src=x onerror=alert(1)> | pipe"


def _post_document() -> dict[str, Any]:
    """The reference post's sweep as a results document."""
    sweep = []
    for n, (wall, prefill, decode, ttft, median_decode) in AGGREGATE.items():
        sweep.append(
            {
                "concurrency": n,
                "wall_s": wall,
                "agg_prefill_tps": prefill,
                "agg_decode_tps": decode,
                "median_ttft_s": ttft,
                "median_decode_tps": median_decode,
                "requests": [
                    {
                        "ttft_s": t,
                        "duration_s": d,
                        "prefill_tps": p,
                        "decode_tps": r,
                        "prompt_tokens": INPUT_TOKENS,
                        "completion_tokens": OUTPUT_TOKENS,
                        "ended": "done",
                    }
                    for t, d, p, r in PER_REQUEST[n]
                ],
            }
        )
    needle = {
        "case": "200000@0.50",
        "length": 200000,
        "depth": 0.5,
        "input_tokens": 199402,
        "ttft_s": 125.9,
        "prefill_tps": 1584,
        "output_tokens": 669,
        "decode_tps": 39.5,
        "total_wall_s": 142.8,
        "retrieved": True,
        "answer": "BANANA-MOOSE-7421",
        "reasoning_head": "Thinking Process:",
    }
    window = {
        "name": "window",
        "acceptance_length": 2.72,
        "per_position": [0.889, 0.833],
        "acceptance_rate": 0.861,
    }
    return {"model": "Qwen3.5-397B-A17B-FP8", "sweep": sweep, "needle": [needle], "mtp": [window]}


def test_markdown_reproduces_the_posts_tables() -> None:
    """The aggregate, per-request and needle tables read like the post's, cell for cell."""
    text = markdown_document(_post_document())
    assert (
        "| N | Wall (s) | Agg prefill (tok/s) | Agg decode (tok/s) | Median TTFT (s) | Median per‑req decode (tok/s) |"
        in text
    )
    for line in (
        "| 1 | 30.8 | 1 830 | 40.3 | 5.37 | 40.3 |",
        "| 8 | 61.9 | 13 761 | 134.5 | 4.35 | 18.0 |",
        "| 16 | 88.7 | 16 369 | 186.4 | 7.53 | 12.7 |",
        "#### N=16",
        "| 14 | 0.91 | 86.54 | 10 754 | 11.9 |",
        "| Input tokens | 199 402 |",
        "| Needle retrieved | ✅ yes — exact match |",
        "| Per-position acceptance rate | 0.889, 0.833 |",
    ):
        assert line in text, line
    assert text.index("### Aggregate throughput") < text.index("#### N=1") < text.index("### Needle")


def test_markdown_escapes_server_text() -> None:
    """A reply with HTML and pipes cannot break a table or become markup."""
    doc = _post_document()
    doc["model"] = HOSTILE
    doc["needle"][0]["answer"] = HOSTILE + "\n```\nfence"
    text = markdown_document(doc)
    model_row = next(line for line in text.splitlines() if line.startswith("| Model |"))
    assert "<script>" not in model_row
    assert "&lt;script&gt;" in model_row
    assert "\\| pipe" in model_row
    fence = re.search(r"Model's final answer:\n\n(`{3,})\n", text)
    assert fence is not None
    assert len(fence.group(1)) == 4


def test_html_escapes_every_server_string() -> None:
    """Entry tables and the summary show a hostile reply as text, never as a tag."""
    doc = _post_document()
    doc["needle"][0]["answer"] = HOSTILE
    entry = entry_html("needle", doc["needle"][0], Redactor())
    summary = summary_html(doc, facts=[("Model", HOSTILE)], suites={}, gate=None, redactor=Redactor())
    for html in (entry, summary):
        assert "<script>" not in html
        assert "<img" not in html
        assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in html


def test_summary_has_every_plot() -> None:
    """Aggregate decode and prefill against N, TTFT per request, the needle grid, acceptance per position."""
    svgs = plots(_post_document())
    names = [re.search(r'data-plot="([^"]+)"', s).group(1) for s in svgs]  # type: ignore[union-attr]
    assert names == ["agg-decode", "agg-prefill", "ttft", "latency-throughput", "needle-grid", "acceptance"]
    ttft = svgs[2]
    assert len(re.findall(r"<circle[^>]*><title>N=", ttft)) == sum(len(v) for v in PER_REQUEST.values())
    assert "0.889" in svgs[5]
    assert "✓" in svgs[4]
    points = len(_post_document()["sweep"])  # one marker per sweep point on each latency line
    assert svgs[3].count('class="gx10-point" data-series="TTFT p50"') == points


def test_redactor_masks_key_and_secret_environment() -> None:
    """The API key and *_TOKEN / *_KEY / *_SECRET / *_PASSWORD values go; ordinary values stay."""
    env = {
        "HF_TOKEN": "hf_abcdefghijkl",
        "DB_PASSWORD": "hunter2hunter2",
        "MY_SECRET_THING": "s3cr3t-value",
        "KEYBOARD": "us-international",
        "PWD": "/work/somewhere",
        "SHORT_TOKEN": "1",
    }
    assert sorted(secret_env_values(env)) == ["hf_abcdefghijkl", "hunter2hunter2", "s3cr3t-value"]
    redactor = Redactor.for_run("sk-planted-key-123", env)
    value = {"a": ["sk-planted-key-123 and hf_abcdefghijkl"], "b": "us-international /work/somewhere 1"}
    assert redactor.value(value) == {"a": [f"{MASK} and {MASK}"], "b": "us-international /work/somewhere 1"}
    assert not Redactor()
    assert Redactor().text("x") == "x"


def test_other_sections_get_a_table_of_their_own() -> None:
    """A suite recording into a section of its own shows up without a writer of its own."""
    doc = {"crash": [{"name": "engine death", "detected_s": 1.25, "recovered": True, "lines": ["x"]}]}
    text = markdown_document(doc)
    assert "### Crash" in text
    assert "| name | detected_s | recovered |" in text
    assert "| engine death | 1.250 | True |" in text


def test_entries_keep_the_order_their_section_declares() -> None:
    """Keyed by a label (``rate 10/s``), kept in order of the fields the section names: 8 before 10."""
    register(Section("ordered_points_of_a_test", key="point", sort_by=("mode", "level")))
    register(Section("labelled_points_of_a_test", key="point"))
    store = ResultsStore()
    for level in (10.0, 8.0, 0.5):
        for name in ("ordered_points_of_a_test", "labelled_points_of_a_test"):
            store.add(name, {"point": f"rate {level:g}/s", "mode": "rate", "level": level})
    store.add("ordered_points_of_a_test", {"point": "concurrency 4", "mode": "concurrency", "level": 4})
    ordered = [e["point"] for e in store.sections["ordered_points_of_a_test"]]
    assert ordered == ["concurrency 4", "rate 0.5/s", "rate 8/s", "rate 10/s"]
    labelled = [e["point"] for e in store.sections["labelled_points_of_a_test"]]
    assert labelled == ["rate 0.5/s", "rate 10/s", "rate 8/s"]  # by the key's text, without sort_by
    # The order travels with the declaration, as a controller adopting it from a worker reads it.
    adopted = Section.from_data(declared("ordered_points_of_a_test").data())  # type: ignore[union-attr]
    assert adopted.sort_by == ("mode", "level")
