"""The TOML writer: whatever it writes, tomllib reads back as the same data."""

from __future__ import annotations

import math
import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gx10.tomlfile import dumps

keys = st.text(max_size=8)  # any string, dots, quotes and empty ones included
scalars = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_what_is_written_reads_back_the_same(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(data)) == data


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(keys, st.lists(st.dictionaries(keys, values, max_size=3), min_size=1, max_size=3)))
def test_lists_of_tables_read_back_the_same(data: dict[str, Any]) -> None:
    assert tomllib.loads(dumps({"twin": data})) == {"twin": data}


def test_a_profile_shape_is_written_as_sections() -> None:
    data = {
        "deployment": {"server_version": r"0\.22\.1", "speculative": {"num_speculative_tokens": 2}},
        "twin": {
            "warmup_s": 3.3,
            "prefill_context_s": 6e-9,
            "faults": [{"kind": "death", "running": 8}],
            "effects": [
                {
                    "when": {"deployment.speculative.num_speculative_tokens": 5},
                    "faults": [{"kind": "zero_tokens", "count": 1}],
                }
            ],
        },
    }
    text = dumps(data, header="written by a test\nsecond line")
    assert text.startswith("# written by a test\n# second line\n")
    assert "[deployment.speculative]\nnum_speculative_tokens = 2" in text
    assert "server_version = '0\\.22\\.1'" in text  # a literal string keeps a pattern readable
    assert "prefill_context_s = 6e-09" in text
    assert '[[twin.faults]]\nkind = "death"' in text
    assert "[[twin.effects]]" in text
    assert '"deployment.speculative.num_speculative_tokens" = 5' in text
    assert tomllib.loads(text) == data


def test_strings_are_escaped() -> None:
    text = "quote \" apostrophe ' back \\ tab \t newline \n bell \x07 del \x7f é ✓"
    written = dumps({"s": text, "k\ney": 1})
    assert "\\u0007" in written
    assert "\\u007F" in written
    assert "é ✓" in written
    assert tomllib.loads(written) == {"s": text, "k\ney": 1}


def test_an_empty_table_is_kept() -> None:
    assert tomllib.loads(dumps({"a": {}, "b": {"c": {}}})) == {"a": {}, "b": {"c": {}}}


def test_tuples_are_written_as_arrays() -> None:
    assert tomllib.loads(dumps({"a": (1, (2.5, "x"))})) == {"a": [1, [2.5, "x"]]}


@pytest.mark.parametrize(
    ("data", "error", "says"),
    [
        ({"t": {"x": math.inf}}, ValueError, "key t.x: inf is not a finite number"),
        ({"x": math.nan}, ValueError, "not a finite number"),
        ({"x": 2**63}, ValueError, "64-bit"),
        ({"x": None}, TypeError, "TOML has no NoneType"),
        ({"x": "\ud800"}, ValueError, "lone surrogate"),
        ({"t": {1: 2}}, TypeError, "a TOML key is a string"),
    ],
)
def test_what_toml_cannot_say_is_refused(data: dict[str, Any], error: type[Exception], says: str) -> None:
    with pytest.raises(error, match=says.replace(".", r"\.")):
        dumps(data)
