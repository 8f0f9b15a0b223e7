"""Baselines: directions, tolerances, every regression listed, missing figures, greedy outputs, bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.profiles import ProfileError, load_profile
from pytest_gx10.report.baseline import (
    BaselineError,
    Tolerances,
    compare,
    figure_of,
    figures,
    load_baseline,
    parse_tolerances,
    profile_gate,
    save_baseline,
)
from pytest_gx10.report.greedy import GreedyOutputs, collect_greedy, match_greedy
from pytest_gx10.report.redact import Redactor
from pytest_gx10.settings import SettingsError, resolve_settings


def _doc(
    decode: float = 100.0, ttft: float = 2.0, retrieved: bool = True, points: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    return {
        "model": "m",
        "profile": "p",
        "server_version": "1.0",
        "sweep": [
            {
                "concurrency": n,
                "agg_decode_tps": decode * n,
                "median_ttft_s": ttft,
                "itl_p99_ms": 50.0,
                "dispatch_skew_ms": 1.0,
                "ok_requests": n,
                "requests": [{"ttft_s": ttft}],
            }
            for n in points
        ],
        "needle": [{"case": "1000@0.50", "ttft_s": ttft, "retrieved": retrieved, "input_tokens": 1000}],
        "mtp": [{"name": "window", "acceptance_rate": 0.86, "per_position": [0.889, 0.833], "drafts": 190}],
    }


GREEDY = GreedyOutputs(("a", "b", "c", "d", "e"), 8, ("A", "B", "C", "D", "E"))


def _saved(tmp_path: Path, doc: dict[str, Any] | None = None, greedy: GreedyOutputs | None = GREEDY) -> Path:
    path = tmp_path / "base.json"
    save_baseline(path, doc or _doc(), greedy)
    return path


def test_directions_come_from_the_declarations() -> None:
    """Rates higher, times lower, retrieval must stay true; counts and the client's own skew are not gated."""
    better = {
        metric_id: (figure.better if figure is not None else "undeclared")
        for metric_id in (
            "sweep[N=1].agg_decode_tps",
            "mtp[window].acceptance_rate",
            "mtp[window].per_position[0]",
            "sweep[N=1].median_ttft_s",
            "sweep[N=1].itl_p99_ms",
            "needle[1000@0.50].total_wall_s",
            "needle[1000@0.50].retrieved",
            "needle[1000@0.50].input_tokens",
            "sweep[N=1].dispatch_skew_ms",
            "sweep[N=1].no_such_figure",
        )
        for figure in [figure_of(metric_id)]
    }
    assert list(better.values()) == [
        *("higher",) * 3,
        *("lower",) * 3,
        "true",
        None,
        None,
        "undeclared",
    ]


def test_figures_are_flattened_by_entry() -> None:
    """Ids name the section and entry; per-request rows stay out; per-position rates are one each."""
    ids = figures(_doc())
    assert ids["sweep[N=2].agg_decode_tps"] == 200.0
    assert ids["mtp[window].per_position[1]"] == 0.833
    assert ids["needle[1000@0.50].retrieved"] is True
    assert not any("requests" in k or "input_tokens" in k or "drafts" in k or "skew" in k for k in ids)


def test_tolerances_parse_and_override() -> None:
    """Percent or fraction, repeatable pairs, a bare value sets the default; ids beat names."""
    assert parse_tolerances("agg_decode_tps=5%, median_ttft_s=0.2,15%,sweep[N=8].wall_s=100%") == (
        ("agg_decode_tps", 0.05),
        ("median_ttft_s", 0.2),
        ("default", 0.15),
        ("sweep[N=8].wall_s", 1.0),
    )
    tol = Tolerances().with_overrides([("agg_decode_tps", 0.05), ("sweep[N=8].agg_decode_tps", 0.3)])
    assert tol.of("sweep[N=1].agg_decode_tps") == 0.05
    assert tol.of("sweep[N=8].agg_decode_tps") == 0.3
    assert tol.of("sweep[N=1].wall_s") == 0.10
    for bad, why in (
        ("agg_decode_tps=fast", "not a tolerance"),
        ("=5%", "no figure name"),
        ("x=-5%", "must not be negative"),
        ("agg_decode_tps=5", r"a tolerance of 5 reads as 500%: write a percentage \(5%\)"),
        ("", "no tolerance given"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_tolerances(bad)


def test_same_run_passes(tmp_path: Path) -> None:
    """A run equal to its baseline passes; tail percentiles count only with a tolerance of their own."""
    base = load_baseline(_saved(tmp_path))
    gate = compare(base, _doc(), tolerances=Tolerances(), greedy=GREEDY)
    assert gate.passed, gate.regressions
    assert (
        gate.checked == 2 * 2 + 2 + 3 + 1
    )  # 2 points x 2, needle ttft + retrieved, mtp rate + 2 positions, greedy
    worse_tail = _doc()
    worse_tail["sweep"][0]["itl_p99_ms"] = 500.0
    assert compare(base, worse_tail, tolerances=Tolerances(), greedy=GREEDY).passed
    strict = Tolerances().with_overrides([("itl_p99_ms", 0.5)])
    assert not compare(base, worse_tail, tolerances=strict, greedy=GREEDY).passed


def test_every_regression_is_listed(tmp_path: Path) -> None:
    """Slower decode, slower TTFT, a lost needle and a crashed point are all named at once."""
    base = load_baseline(_saved(tmp_path))
    gate = compare(
        base,
        _doc(decode=80.0, ttft=2.5, retrieved=False, points=(1,)),
        tolerances=Tolerances(),
        greedy=GREEDY,
    )
    text = "\n".join(gate.regressions)
    assert not gate.passed
    assert "sweep[N=1].agg_decode_tps: 80.0 tok/s < baseline 100.0 tok/s - 10% (90.0 tok/s), -20.0%" in text
    assert "sweep[N=1].median_ttft_s: 2.5 s > baseline 2 s + 10% (2.2 s), +25.0%" in text
    assert "needle[1000@0.50].retrieved: was true in the baseline, now False" in text
    assert "sweep[N=2].agg_decode_tps: missing from this run" in text
    assert (
        len(gate.regressions) == 6
    )  # N=1 decode and TTFT, N=2 decode and TTFT missing, needle TTFT and retrieval


def test_tolerance_absorbs_a_small_change(tmp_path: Path) -> None:
    """Decode 8 % lower passes at the default 10 % and fails at 5 %."""
    base = load_baseline(_saved(tmp_path))
    doc = _doc(decode=92.0)
    assert compare(base, doc, tolerances=Tolerances(), greedy=GREEDY).passed
    tight = Tolerances().with_overrides(parse_tolerances("agg_decode_tps=5%"))
    assert len(compare(base, doc, tolerances=tight, greedy=GREEDY).regressions) == 2


def test_greedy_outputs_gate(tmp_path: Path) -> None:
    """Four of five exact matches pass at 0.8; three fail, showing the differing outputs side by side."""
    base = load_baseline(_saved(tmp_path))
    four = GreedyOutputs(GREEDY.prompts, 8, ("A", "B", "C", "D", "x"))
    three = GreedyOutputs(GREEDY.prompts, 8, ("A", "B", "C", "y", "x"))
    assert compare(base, _doc(), tolerances=Tolerances(), greedy=four, greedy_min=0.8).passed
    gate = compare(base, _doc(), tolerances=Tolerances(), greedy=three, greedy_min=0.8)
    assert gate.regressions[0] == "greedy outputs: 3/5 exact matches (60%), minimum 80%"
    assert gate.regressions[1] == "  prompt 'd': baseline 'D' | this run 'y'"
    lost = GreedyOutputs(GREEDY.prompts, 8, error="connection refused")
    assert (
        "could not be collected in this run: connection refused"
        in compare(base, _doc(), tolerances=Tolerances(), greedy=lost).regressions[0]
    )
    assert match_greedy(GREEDY, GREEDY).rate == 1.0


def test_collect_greedy_records_failures() -> None:
    """Each prompt is asked at temperature 0 with fixed max_tokens; a failure is that prompt's error."""
    seen: list[dict[str, Any]] = []

    def chat(body: Any) -> dict[str, Any]:
        seen.append(dict(body))
        if "2" in body["messages"][0]["content"]:
            raise OSError("reset")
        return {"choices": [{"message": {"reasoning_content": "think ", "content": "answer"}}]}

    out = collect_greedy(chat, prompts=("p1", "p2"), max_tokens=4)
    assert out.outputs == ("answer", None)
    assert out.reasoning == ("think ", None)
    assert out.errors == (None, "reset")
    assert all(b["temperature"] == 0 and b["max_tokens"] == 4 for b in seen)


def test_facts_that_differ_are_noted_or_fail_when_asked(tmp_path: Path) -> None:
    """A different model is noted once; it fails the gate only when asked (strict_facts); a different
    server version is what gating is for, and is only noted."""
    base = load_baseline(_saved(tmp_path))
    doc = {**_doc(), "model": "other", "server_version": "2.0"}
    gate = compare(base, doc, tolerances=Tolerances(), greedy=GREEDY)
    assert gate.passed
    assert gate.notes.count("model differs: baseline m, this run other") == 1
    assert "server version: baseline 1.0, this run 2.0" in gate.notes
    strict = compare(base, doc, tolerances=Tolerances(), greedy=GREEDY, strict_facts=True)
    assert strict.regressions == ["model differs: baseline m, this run other"]


def test_saved_baseline_is_versioned_and_redacted(tmp_path: Path) -> None:
    """Format, version, software, deployment and client facts; secrets masked."""
    doc = _doc()
    doc["needle"][0]["answer"] = "the key is sk-planted-0001"
    doc["deployment"] = {"serve_command": {"value": "vllm serve m --x sk-planted-0001", "source": "recipe"}}
    path = tmp_path / "b.json"
    save_baseline(path, doc, GREEDY, Redactor(["sk-planted-0001"]))
    data = json.loads(path.read_text())
    assert data["format"] == "pytest-gx10-baseline"
    assert data["version"] == 1
    assert data["software"]["server_version"] == "1.0"
    assert data["client"]["cpu_count"] >= 1
    assert "hardware" not in data
    assert data["deployment"]["serve_command"] == {"value": "vllm serve m --x [REDACTED]", "source": "recipe"}
    assert "sk-planted-0001" not in path.read_text()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not JSON"),
        ('{"format": "something-else"}', "not a pytest-gx10 baseline"),
        ('{"format": "pytest-gx10-baseline", "version": 99}', "version 99"),
        (
            '{"format": "pytest-gx10-baseline", "version": 1, "software": {}, "hardware": {}, "figures": {"x": "fast"}}',
            "figure 'x' is 'fast'",
        ),
    ],
)
def test_malformed_baseline_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    """One line naming the file, the problem and how to write a good one."""
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        load_baseline(path)
    assert str(info.value).startswith(f"malformed baseline {path}: ")
    assert problem in str(info.value)
    assert f"--gx10-save-baseline={path}" in str(info.value)


def test_profile_baseline_table(tmp_path: Path) -> None:
    """[baseline] gives tolerances and greedy_match_min; a bad value names the key."""
    good = tmp_path / "good.toml"
    good.write_text(
        '[deployment]\nserved_model_name = "m"\nmax_model_len = 100\n'
        '[baseline]\ngreedy_match_min = 0.9\n[baseline.tolerances]\nagg_decode_tps = "5%"\ndefault = 0.2\n'
    )
    tol, minimum = profile_gate(load_profile(good))
    assert minimum == 0.9
    assert tol.of("sweep[N=1].agg_decode_tps") == 0.05
    assert tol.of("x.wall_s") == 0.2
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[deployment]\nserved_model_name = "m"\nmax_model_len = 100\n[baseline.tolerances]\nwall_s = "slow"\n'
    )
    with pytest.raises(ProfileError, match=r"key 'baseline.tolerances.wall_s': not a tolerance"):
        profile_gate(load_profile(bad))


def test_tolerance_setting_repeats_and_comes_from_the_environment() -> None:
    """Repeated flags join; the environment gives a comma-separated list; a bad one names its source."""
    cli = resolve_settings({"tolerance": ["agg_decode_tps=5%", "wall_s=20%"]}, {}, {})
    assert cli.tolerance == (("agg_decode_tps", 0.05), ("wall_s", 0.2))
    assert cli.sources["tolerance"] == "--gx10-tolerance"
    env = resolve_settings({}, {"GX10_TOLERANCE": "15%", "GX10_BASELINE": "old.json"}, {})
    assert env.tolerance == (("default", 0.15),)
    assert env.baseline == Path("old.json")
    with pytest.raises(SettingsError, match="from env GX10_TOLERANCE: not a tolerance"):
        resolve_settings({}, {"GX10_TOLERANCE": "wall_s=slow"}, {})
