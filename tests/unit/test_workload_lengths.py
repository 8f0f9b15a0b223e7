"""Length distributions: the syntax, its errors, bounds, determinism and the text that reads back."""

from __future__ import annotations

import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gx10.workload.lengths import LengthSpec, parse_length


@pytest.mark.parametrize(
    ("text", "kind", "a", "b", "low", "high"),
    [
        ("1000", "fixed", 1000, 0, None, None),
        ("uniform:500:1500", "uniform", 500, 1500, None, None),
        ("normal:800:200", "normal", 800, 200, None, None),
        ("lognormal:800:0.6", "lognormal", 800, 0.6, None, None),
        ("lognormal:800:0.6:min=100,max=4000", "lognormal", 800, 0.6, 100, 4000),
        ("normal:800:200:max=900", "normal", 800, 200, None, 900),
        (" Uniform:1:2:min=1 ", "uniform", 1, 2, 1, None),
    ],
)
def test_parse(text: str, kind: str, a: float, b: float, low: int | None, high: int | None) -> None:
    spec = parse_length(text)
    assert (spec.kind, spec.a, spec.b, spec.min, spec.max) == (kind, a, b, low, high)
    assert parse_length(spec.text) == spec


def test_text_reads_back_in_canonical_form() -> None:
    assert parse_length("lognormal:800.0:0.6:max=4000,min=100").text == "lognormal:800:0.6:min=100,max=4000"
    assert parse_length(1000).text == "1000"
    assert parse_length("1000:min=5").text == "1000:min=5"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty"),
        ("zero", "not a number"),
        ("0", "at least 1"),
        ("12.5", "whole number"),
        ("poisson:3:4", "unknown distribution 'poisson'"),
        ("normal:800", "two parameters, got 1"),
        ("uniform:1500:500", "low 1500 is above high 500"),
        ("uniform:5.5:10", "whole number"),
        ("normal:-3:2", "mean must be above 0"),
        ("lognormal:800:-1", "sigma at least 0"),
        ("normal:800:nan", "finite"),
        ("normal:800:10:min=50,max=10", "min=50 is above max=10"),
        ("normal:800:10:low=5", "not a bound"),
        ("normal:800:10:min=5,min=6", "min given twice"),
        ("lognormal", "needs its parameters"),
    ],
)
def test_errors_name_the_syntax(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="uniform:LOW:HIGH") as err:
        parse_length(text)
    assert why in str(err.value)
    assert repr(text.strip()) in str(err.value)


@pytest.mark.parametrize("text", ["uniform:1:10000", "normal:500:400", "lognormal:800:1.5"])
def test_draws_are_deterministic_and_sequential(text: str) -> None:
    spec = parse_length(text)
    first = spec.draw(200, seed=7)
    assert first == spec.draw(200, seed=7)
    assert first != spec.draw(200, seed=8)
    assert spec.draw(50, seed=7) == first[:50]
    assert spec.draw(0, seed=7) == []
    assert all(isinstance(n, int) and n >= 1 for n in first)


def test_bounds_clip_and_lengths_stay_positive() -> None:
    spec = parse_length("normal:100:300:min=20,max=150")
    drawn = spec.draw(2000, seed=1)
    assert min(drawn) == 20
    assert max(drawn) == 150
    # No bounds: a wide normal still never gives a length below 1.
    assert min(parse_length("normal:10:100").draw(2000, seed=1)) == 1


def test_uniform_covers_both_ends() -> None:
    drawn = parse_length("uniform:3:6").draw(500, seed=3)
    assert set(drawn) == {3, 4, 5, 6}


def test_distributions_have_their_centre() -> None:
    normal = parse_length("normal:1000:100").draw(4000, seed=2)
    assert 980 < statistics.mean(normal) < 1020
    assert 90 < statistics.stdev(normal) < 110
    lognormal = parse_length("lognormal:800:0.6").draw(4000, seed=2)
    assert 760 < statistics.median(lognormal) < 840
    assert statistics.mean(lognormal) > statistics.median(lognormal)  # the right tail


def test_fixed_draws_and_as_dict() -> None:
    spec = parse_length("1000:max=900")
    assert spec.fixed
    assert spec.draw(3, seed=0) == [900, 900, 900]
    assert spec.as_dict() == {
        "text": "1000:max=900",
        "kind": "fixed",
        "a": 1000,
        "b": 0.0,
        "min": None,
        "max": 900,
    }
    assert LengthSpec("fixed", 5).draw(2) == [5, 5]
    with pytest.raises(ValueError, match="cannot draw"):
        spec.draw(-1)


_bound = st.one_of(st.none(), st.integers(1, 5000))
_spec = st.one_of(
    st.builds(lambda a, lo, hi: LengthSpec("fixed", a, 0.0, lo, hi), st.integers(1, 10**6), _bound, _bound),
    st.builds(
        lambda a, w, lo, hi: LengthSpec("uniform", a, a + w, lo, hi),
        st.integers(1, 10**5),
        st.integers(0, 10**5),
        _bound,
        _bound,
    ),
    st.builds(
        lambda k, a, b, lo, hi: LengthSpec(k, a, b, lo, hi),
        st.sampled_from(["normal", "lognormal"]),
        st.floats(0.5, 1e5, allow_nan=False),
        st.floats(0, 3, allow_nan=False),
        _bound,
        _bound,
    ),
).filter(lambda s: s.min is None or s.max is None or s.min <= s.max)


@settings(max_examples=200, deadline=None)
@given(_spec, st.integers(0, 2**32))
def test_any_spec_reads_back_and_draws_within_bounds(spec: LengthSpec, seed: int) -> None:
    again = parse_length(spec.text)
    assert again == spec
    assert again.text == spec.text
    drawn = spec.draw(20, seed)
    assert drawn == again.draw(20, seed)
    low, high = max(spec.min or 1, 1), spec.max
    assert all(n >= low and (high is None or n <= high) for n in drawn)
