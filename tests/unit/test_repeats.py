"""Repeated load points: medians, spreads, the 95 % interval, the noise the gate weighs changes against."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.load.repeats import (
    Spread,
    beyond_noise,
    combine_repeats,
    noise_words,
    spread_of,
    t_975,
    worst_status,
)
from pytest_gx10.profiles import load_profile
from pytest_gx10.report.baseline import Tolerances, compare, load_baseline, save_baseline, spreads
from pytest_gx10.settings import SettingsError, resolve_settings


def test_t_quantiles_match_the_tables() -> None:
    """Student's t at 0.975: the printed table's values, and the approximation past 30 joins it."""
    assert t_975(2) == 4.303
    assert t_975(9) == 2.262
    assert t_975(40) == pytest.approx(2.021, abs=0.001)
    assert t_975(120) == pytest.approx(1.980, abs=0.001)
    assert t_975(31) < t_975(30)
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_975(0)


def test_spread_of_three_values_has_the_t_interval_of_the_mean() -> None:
    values = [100.0, 104.0, 98.0]
    s = spread_of(values)
    assert s is not None
    assert (s.n, s.median, s.low, s.high) == (3, 100.0, 98.0, 104.0)
    assert s.mean == pytest.approx(302 / 3)
    half = 4.303 * statistics.stdev(values) / math.sqrt(3)
    assert s.half_width == pytest.approx(half)
    assert s.ci_low == pytest.approx(302 / 3 - half)
    assert s.shown_half == pytest.approx(half)
    assert Spread.from_dict(s.as_dict()) == s


def test_two_values_give_no_interval_and_the_table_shows_half_the_range() -> None:
    s = spread_of([10.0, 14.0])
    assert s is not None
    assert s.half_width is None
    assert s.as_dict()["ci95"] is None
    assert s.shown_half == 2.0
    assert s.median == 12.0
    assert spread_of([None, True]) is None  # type: ignore[list-item]  # nothing measured: no spread


def test_identical_repeats_have_an_interval_of_zero_width() -> None:
    s = spread_of([5.0, 5.0, 5.0])
    assert s is not None
    assert s.half_width == 0.0


def test_worst_repeat_status_wins() -> None:
    assert worst_status(["ok", "ok"]) == "ok"
    assert worst_status(["ok", "zero-token", "ok"]) == "zero-token"
    assert worst_status(["zero-token", "failed"]) == "failed"
    assert worst_status(["ok", "engine dead"]) == "engine dead"
    assert worst_status(["zero-token", "something new"]) == "something new"  # ranks as failed
    assert worst_status(["something new", "engine dead"]) == "engine dead"


def _repeat(decode: float, ttft: float | None, status: str = "ok", ok: int = 2) -> dict[str, Any]:
    return {
        "concurrency": 2,
        "agg_decode_tps": decode,
        "median_ttft_s": ttft,
        "dispatch_skew_ms": 1.0,
        "ok_requests": ok,
        "failed_requests": 2 - ok,
        "outcomes": {"ok": ok, **({"zero_tokens": 2 - ok} if ok < 2 else {})},
        "requests": [{"ttft_s": ttft, "decode": decode}],
        "status": status,
    }


def test_combined_point_holds_medians_repeats_and_spreads() -> None:
    repeats = [_repeat(60.0, 2.0), _repeat(66.0, 2.4), _repeat(63.0, None, "zero-token", ok=1)]
    point = combine_repeats(repeats, gated=["agg_decode_tps", "median_ttft_s"])
    assert point["concurrency"] == 2
    assert isinstance(point["concurrency"], int)
    assert point["agg_decode_tps"] == 63.0
    assert point["median_ttft_s"] == pytest.approx(2.2)  # the median of the two repeats that measured it
    assert point["dispatch_skew_ms"] == 1.0
    assert (point["ok_requests"], point["failed_requests"]) == (5, 1)
    assert point["outcomes"] == {"ok": 5, "zero_tokens": 1}
    assert point["status"] == "zero-token"
    assert point["requests"] == repeats[-1]["requests"]
    assert [r["agg_decode_tps"] for r in point["repeats"]] == [60.0, 66.0, 63.0]
    assert point["repeats"][0]["requests"] == repeats[0]["requests"]  # every repeat's requests kept
    decode = point["spread"]["agg_decode_tps"]
    assert (decode["n"], decode["min"], decode["max"], decode["median"]) == (3, 60.0, 66.0, 63.0)
    assert decode["half_width"] == pytest.approx(4.303 * 3.0 / math.sqrt(3))
    assert point["spread"]["median_ttft_s"]["ci95"] is None  # two values: no interval
    assert "dispatch_skew_ms" not in point["spread"]  # not gated


def test_one_repeat_is_the_point_unchanged() -> None:
    one = _repeat(60.0, 2.0)
    assert combine_repeats([one], gated=["agg_decode_tps"]) == one
    with pytest.raises(ValueError, match="at least one repeat"):
        combine_repeats([], gated=[])


def test_beyond_noise_uses_the_run_interval_and_the_baselines_when_there() -> None:
    run = Spread(n=3, median=88.0, low=87.0, high=89.0, mean=88.0, ci_low=86.0, ci_high=90.0)  # ±2
    base = Spread(n=3, median=100.0, low=99.0, high=101.0, mean=100.0, ci_low=98.5, ci_high=101.5)  # ±1.5
    assert beyond_noise(100.0, 88.0, run) == (True, pytest.approx(0.02))
    beyond, noise = beyond_noise(100.0, 88.0, run, base) or (None, None)
    assert beyond is True
    assert noise == pytest.approx(0.025)
    assert beyond_noise(100.0, 98.0, run, base) == (False, pytest.approx(0.025))
    two = Spread(n=2, median=88.0, low=87.0, high=89.0, mean=88.0)
    assert beyond_noise(100.0, 88.0, two, base) is None  # the run needs 3 repeats
    assert beyond_noise(0.0, 88.0, run) is None


def test_noise_words() -> None:
    assert noise_words(-0.121, 0.03, True) == "-12.1 %, beyond the measured noise ±3.0 %"
    assert noise_words(0.012, 0.03, False) == "+1.2 %, within the measured noise ±3.0 %"


def _doc(decodes: dict[int, list[float]]) -> dict[str, Any]:
    points = []
    for n, values in decodes.items():
        repeats = [
            {"concurrency": n, "agg_decode_tps": v, "median_ttft_s": 2.0, "ok_requests": n, "status": "ok"}
            for v in values
        ]
        points.append(combine_repeats(repeats, gated=["agg_decode_tps", "median_ttft_s"]))
    return {"model": "m", "profile": "p", "sweep": points}


def test_gate_rows_and_lines_say_whether_a_change_is_beyond_the_noise(tmp_path: Path) -> None:
    """N=1 falls 12 % with ±1 % noise: a regression beyond it. N=2 falls 5 % with ±1 %: passes, noted
    as beyond the noise. N=4 falls 12 % with ±19 % noise: past the tolerance, but the repeats cannot
    tell it from noise, so it is a warning that says so and the headline counts it, not a regression."""
    path = tmp_path / "base.json"
    save_baseline(path, _doc({1: [99.0, 100.0, 101.0], 2: [99.0, 100.0, 101.0], 4: [90, 100, 110]}), None)
    base = load_baseline(path)
    assert spreads(base.results)["sweep[N=1].agg_decode_tps"].n == 3
    gate = compare(
        base,
        _doc({1: [87.0, 88.0, 89.0], 2: [94.0, 95.0, 96.0], 4: [80.0, 88.0, 96.0]}),
        tolerances=Tolerances(),
    )
    rows = {r["figure"]: r for r in gate.figures}
    n1, n2, n4 = (rows[f"sweep[N={n}].agg_decode_tps"] for n in (1, 2, 4))
    half = 4.303 * 1.0 / math.sqrt(3)  # the t half-width of (99, 100, 101) and of (87, 88, 89)
    assert n1["noise"] == pytest.approx(math.hypot(half, half) / 100)
    assert (n1["verdict"], n1["beyond_noise"]) == ("regressed", True)
    assert (n2["verdict"], n2["beyond_noise"]) == ("ok", True)
    assert (n4["verdict"], n4["beyond_noise"]) == ("within noise", False)
    assert rows["sweep[N=1].median_ttft_s"]["beyond_noise"] is False  # no change at all
    text = "\n".join(gate.regressions)
    assert f"sweep[N=1].agg_decode_tps: 88.0 tok/s < baseline 100.0 tok/s - 10% (90.0 tok/s), -12.0%, " \
        f"beyond the measured noise ±{100 * n1['noise']:.1f} %" in text  # fmt: skip
    assert "sweep[N=4]" not in text
    (warning,) = gate.warnings
    assert warning.startswith(
        "sweep[N=4].agg_decode_tps: 88.0 tok/s < baseline 100.0 tok/s - 10% (90.0 tok/s)"
    )
    assert "within the measured noise" in warning
    assert warning.endswith("not counted as a regression; more repeats (--gx10-repeat) would decide it")
    notes = "\n".join(gate.notes)
    assert "sweep[N=2].agg_decode_tps: -5.0 %, beyond the measured noise" in notes
    assert "inside the 10% tolerance" in notes
    assert "measured noise (95 % interval over 3 repeats, combined with the baseline's): 4 of 6" in notes
    assert len(gate.regressions) == 1
    assert not gate.passed


def test_a_gate_whose_only_miss_is_within_the_noise_passes_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    save_baseline(path, _doc({1: [90.0, 100.0, 110.0]}), None)
    gate = compare(load_baseline(path), _doc({1: [80.0, 88.0, 96.0]}), tolerances=Tolerances())
    assert gate.passed
    assert gate.headline.endswith("(1 past it but within the measured noise)")
    assert len(gate.warnings) == 1


def test_gate_without_repeats_says_nothing_of_noise(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    save_baseline(path, _doc({1: [100.0]}), None)
    gate = compare(load_baseline(path), _doc({1: [88.0]}), tolerances=Tolerances())
    assert gate.figures[0]["noise"] is None
    assert gate.figures[0]["beyond_noise"] is None
    assert not any("noise" in line for line in gate.regressions + gate.notes)


def test_a_baseline_of_one_run_is_held_by_the_runs_noise_alone(tmp_path: Path) -> None:
    path = tmp_path / "base.json"
    save_baseline(path, _doc({1: [100.0]}), None)
    gate = compare(load_baseline(path), _doc({1: [97.0, 98.0, 99.0]}), tolerances=Tolerances())
    row = next(r for r in gate.figures if r["figure"] == "sweep[N=1].agg_decode_tps")
    assert row["noise"] == pytest.approx(4.303 / math.sqrt(3) / 100)
    assert row["beyond_noise"] is False
    assert "(95 % interval over 3 repeats):" in gate.notes[0]


def test_repeat_setting_sources_and_errors(tmp_path: Path) -> None:
    assert resolve_settings({}, {}, {}).repeat == 1
    cli = resolve_settings({"repeat": "3"}, {}, {})
    assert (cli.repeat, cli.sources["repeat"]) == (3, "--gx10-repeat")
    assert resolve_settings({}, {"GX10_REPEAT": "5"}, {}).repeat == 5
    assert resolve_settings({}, {}, {"repeat": "2"}).sources["repeat"] == "ini gx10_repeat"
    profile = tmp_path / "p.toml"
    profile.write_text('[deployment]\nserved_model_name = "m"\nmax_model_len = 100\n[perf]\nrepeat = 4\n')
    assert load_profile(profile).perf.repeat == 4
    from_profile = resolve_settings({"profile": str(profile)}, {}, {})
    assert (from_profile.repeat, from_profile.sources["repeat"]) == (4, "profile p")
    with pytest.raises(SettingsError, match=r"repeat = '0' from --gx10-repeat: .*K must be 1 or more, got 0"):
        resolve_settings({"repeat": "0"}, {}, {})
    with pytest.raises(SettingsError, match=r"from env GX10_REPEAT: not a whole number of repeats"):
        resolve_settings({}, {"GX10_REPEAT": "three"}, {})
