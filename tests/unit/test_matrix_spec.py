"""The matrix of deployments' spec layer: axes, cells and ids, overrides, the ceiling grid and its walk."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_gx10.matrix import (
    Ceiling,
    apply_overrides,
    format_path,
    format_value,
    matrix_cells,
    next_index,
    parse_axis,
    parse_ceiling,
    parse_path,
    search_ceiling,
    short_names,
)

K = ("serve", "speculative_config", "num_speculative_tokens")
GMU = ("serve", "gpu_memory_utilization")


# --- axes ---------------------------------------------------------------------------------------


def test_an_axis_reads_toml_literals_and_bare_words() -> None:
    axis = parse_axis('serve.x=2, 0.92, true, fp8, "a,b", \'lit\', "5", 1_000, -3')
    assert axis.path == ("serve", "x")
    assert axis.values == (2, 0.92, True, "fp8", "a,b", "lit", "5", 1000, -3)
    assert [type(v) for v in axis.values[:4]] == [int, float, bool, str]


def test_a_quoted_key_holds_a_dot() -> None:
    axis = parse_axis('serve.args."compilation_config.cudagraph_mode"=none,piecewise')
    assert axis.path == ("serve", "args", "compilation_config.cudagraph_mode")
    assert axis.dotted == 'serve.args."compilation_config.cudagraph_mode"'
    assert parse_path(axis.dotted) == axis.path


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("serve.gpu_memory_utilization", "no '=' between the key path and the values"),
        ("serve.gpu_memory_utilization=", "no values"),
        ("serve.gpu_memory_utilization= ", "no values"),
        ("serve.x=1,,2", "an empty value"),
        ("serve.x=1,", "an empty value"),
        ("=1,2", "not a dotted key path: ''"),
        (".x=1", "not a dotted key path: '.x'"),
        ("serve..x=1", "not a dotted key path: 'serve..x'"),
        ("serve.x.=1", "not a dotted key path: 'serve.x.'"),
        ("serve x=1", "not a dotted key path: 'serve x'"),
        ('serve."".x=1', "an empty key"),
        ("serve.x=0.90,0.9", "the value 0.9 twice (as 0.90 before)"),
        ("serve.x=2,5,2", "the value 2 twice;"),
        ("serve.x=[1,2]", "a list or table is not an axis value"),
        ("serve.x={a=1}", "a list or table is not an axis value"),
        ("serve.x=a b", "not a value: 'a b'"),
    ],
)
def test_a_malformed_axis_says_what_and_the_expected_form(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_axis(text)
    message = str(caught.value)
    assert message.startswith(f"--gx10-matrix {text!r}: ")
    assert message.endswith(
        "expected PATH=V1,V2,..., e.g. --gx10-matrix 'serve.gpu_memory_utilization=0.90,0.92'"
    )


def test_values_of_different_types_are_different_settings() -> None:
    assert parse_axis('serve.x=1,1.0,true,"1"').values == (1, 1.0, True, "1")


# --- short names and cells ----------------------------------------------------------------------


def test_the_product_varies_the_first_axis_slowest_with_short_ids() -> None:
    axes = [
        parse_axis("serve.speculative_config.num_speculative_tokens=2,5"),
        parse_axis("serve.gpu_memory_utilization=0.90,0.92"),
    ]
    cells = matrix_cells(axes)
    assert [c.id for c in cells] == ["k=2,gmu=0.9", "k=2,gmu=0.92", "k=5,gmu=0.9", "k=5,gmu=0.92"]
    assert cells[3].overrides == {K: 5, GMU: 0.92}
    assert all(c.name is None and c.settings == c.id for c in cells)


def test_aliases_and_the_last_key_name_an_axis() -> None:
    paths = [
        ("serve", "max_num_seqs"),
        ("serve", "tensor_parallel_size"),
        ("serve", "max_model_len"),
        ("serve", "kv_cache_dtype"),
        ("serve", "max_num_batched_tokens"),
        ("deployment", "speculative", "num_speculative_tokens"),
        ("serve", "load_format"),
    ]
    assert list(short_names(paths).values()) == ["seqs", "tp", "ctx", "kv", "mnbt", "k", "load_format"]


def test_clashing_short_names_take_more_keys() -> None:
    names = short_names([K, ("deployment", "speculative", "num_speculative_tokens"), ("serve", "k")])
    assert names == {
        K: "speculative_config.k",
        ("deployment", "speculative", "num_speculative_tokens"): "speculative.k",
        ("serve", "k"): "serve.k",
    }
    # A path that is the tail of another: the shorter one is named whole.
    assert short_names([("a", "b"), ("x", "a", "b")]) == {("a", "b"): "a.b", ("x", "a", "b"): "x.a.b"}
    with pytest.raises(ValueError, match=r"the same key path twice: serve\.x"):
        short_names([("serve", "x"), ("serve", "y"), ("serve", "x")])


def test_a_path_given_twice_as_axes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"the same key path twice: serve\.gpu_memory_utilization"):
        matrix_cells(
            [parse_axis("serve.gpu_memory_utilization=0.9"), parse_axis("serve.gpu_memory_utilization=0.8")]
        )


def test_ids_are_stable_and_read_back_as_the_values() -> None:
    axis = parse_axis('serve.x=0.1,1e-5,1.0,7,false,fp8,"5","a b","true"')
    ids = [c.id for c in matrix_cells([axis])]
    assert ids == [c.id for c in matrix_cells([parse_axis(axis.text)])]
    assert ids == [
        "x=0.1",
        "x=1e-05",
        "x=1.0",
        "x=7",
        "x=false",
        "x=fp8",
        'x="5"',
        'x="a b"',
        'x="true"',
    ]
    reread = parse_axis("serve.x=" + ",".join(i.removeprefix("x=") for i in ids))
    assert reread.values == axis.values


@given(
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1).filter(
            lambda s: '"' not in s and "\\" not in s
        ),
    )
)
def test_a_formatted_value_reads_back_as_itself(value: Any) -> None:
    [read] = parse_axis(f"serve.x={format_value(value)}").values
    assert (type(read), read) == (type(value), value)


def test_too_many_cells_is_refused_before_any_is_made() -> None:
    axes = [parse_axis("serve.a=1,2,3,4,5"), parse_axis("serve.b=1,2,3,4"), parse_axis("serve.c=1,2,3,4")]
    with pytest.raises(ValueError, match=r"3 axes make 80 cells \(5 x 4 x 4\), more than 64"):
        matrix_cells(axes)
    assert len(matrix_cells(axes, max_cells=80)) == 80
    assert matrix_cells([]) == []


MATRIX_TOML = """
[[matrix]]
name = "mtp2"
serve.speculative_config.num_speculative_tokens = 2

[[matrix]]
"serve.speculative_config.num_speculative_tokens" = 5
serve.gpu_memory_utilization = 0.90
"""


def test_named_cells_from_a_recipe_matrix() -> None:
    cells = matrix_cells([], tomllib.loads(MATRIX_TOML)["matrix"])
    assert [(c.id, c.name, c.settings) for c in cells] == [
        ("mtp2", "mtp2", "k=2"),
        ("k=5,gmu=0.9", None, "k=5,gmu=0.9"),
    ]
    assert cells[1].overrides == {K: 5, GMU: 0.9}


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ([{"serve.x": 1}, {"serve": {"x": 1}}], r"entries 1 and 2 are the same cell \(x=1\)"),
        (
            [{"name": "a", "serve.x": 1}, {"name": "a", "serve.x": 2}],
            "entries 1 and 2 have the same name 'a'",
        ),
        ([{"name": "a"}], "entry 1: sets no value"),
        ([{"serve.x": 1, "serve": {"x": 2}}], r"entry 1: sets serve\.x twice"),
        ([{"name": "a b", "serve.x": 1}], "entry 1: name 'a b' is not a word"),
        (
            [{"serve.extra_args": ["--a", {"b": 1}]}, {"serve.extra_args": ["--a", {"b": 1}]}],
            r"entries 1 and 2 are the same cell \(extra_args=\[--a,\{b=1\}\]\)",
        ),
        ([{"serve..x": 1}], "entry 1: not a dotted key path: 'serve..x'"),
    ],
)
def test_named_cells_that_cannot_be_used(named: list[dict[str, Any]], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        matrix_cells([], named)


def test_axes_and_named_cells_together_are_refused() -> None:
    with pytest.raises(
        ValueError, match=r"--gx10-matrix axes and the recipe's \[\[matrix\]\] cells together"
    ):
        matrix_cells([parse_axis("serve.x=1,2")], [{"serve.x": 3}])


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_set_nested_keys_in_a_deep_copy() -> None:
    recipe: dict[str, Any] = {
        "serve": {"gpu_memory_utilization": 0.9, "speculative_config": {"method": "mtp"}}
    }
    changed = apply_overrides(recipe, {GMU: 0.92, K: 5, ("serve", "args", "new", "deep"): "x"})
    assert changed == {
        "serve": {
            "gpu_memory_utilization": 0.92,
            "speculative_config": {"method": "mtp", "num_speculative_tokens": 5},
            "args": {"new": {"deep": "x"}},
        }
    }
    assert recipe == {"serve": {"gpu_memory_utilization": 0.9, "speculative_config": {"method": "mtp"}}}
    changed["serve"]["speculative_config"]["method"] = "other"
    assert recipe["serve"]["speculative_config"]["method"] == "mtp"


def test_overrides_of_a_profile_and_a_cell() -> None:
    [cell] = matrix_cells([parse_axis("deployment.speculative.num_speculative_tokens=5")])
    profile = {"deployment": {"speculative": {"method": "mtp", "num_speculative_tokens": 2}}}
    assert apply_overrides(profile, cell.overrides)["deployment"]["speculative"] == {
        "method": "mtp",
        "num_speculative_tokens": 5,
    }


def test_overrides_do_not_swap_a_table_and_a_value() -> None:
    recipe = {"serve": {"gpu_memory_utilization": 0.9, "speculative_config": {"method": "mtp"}}}
    with pytest.raises(
        ValueError,
        match=r"cannot set serve\.gpu_memory_utilization\.x: serve\.gpu_memory_utilization is 0\.9, not a table",
    ):
        apply_overrides(recipe, {(*GMU, "x"): 1})
    with pytest.raises(ValueError, match=r"cannot set serve\.speculative_config to 5: it is a table"):
        apply_overrides(recipe, {("serve", "speculative_config"): 5})
    with pytest.raises(ValueError, match=r"cannot set serve\.gpu_memory_utilization to a table: it is 0\.9"):
        apply_overrides(recipe, {GMU: {"a": 1}})


# --- the ceiling --------------------------------------------------------------------------------


def test_the_grid_is_exact_decimal_steps() -> None:
    ceiling = parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.01")
    assert (ceiling.path, ceiling.count) == (GMU, 11)
    grid = ceiling.grid()
    assert grid == [0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91, 0.92, 0.93, 0.94, 0.95]
    assert ceiling.value(5) == 0.9  # the middle, exact
    assert ceiling.value(6) == 0.91  # where floats drift: 0.85 + 6 * 0.01 is 0.9099999999999999
    assert 0.85 + 6 * 0.01 != 0.91
    assert all(isinstance(v, float) for v in grid)
    assert ceiling.cell(0.9).id == "gmu=0.9"
    assert ceiling.cell(0.9).overrides == {GMU: 0.9}


def test_a_whole_number_grid_is_ints() -> None:
    ceiling = parse_ceiling("serve.max_num_seqs=8..64:8")
    assert ceiling.grid() == [8, 16, 24, 32, 40, 48, 56, 64]
    assert all(type(v) is int for v in ceiling.grid())
    assert ceiling == Ceiling(
        ("serve", "max_num_seqs"), Decimal(8), Decimal(64), Decimal(8), text=ceiling.text
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("serve.gpu_memory_utilization", "no '=' between the key path and the range"),
        ("serve.x=0.85..0.95", "no LO..HI:STEP range"),
        ("serve.x=0.85:0.01", "no LO..HI:STEP range"),
        ("serve.x=0.95..0.85:0.01", "LO 0.95 is not below HI 0.85"),
        ("serve.x=0.9..0.9:0.01", "LO 0.9 is not below HI 0.9"),
        ("serve.x=0.85..0.95:0", "STEP 0 is not above 0"),
        ("serve.x=0.85..0.95:-0.01", "STEP -0.01 is not above 0"),
        ("serve.x=0.85..0.95:0.03", "HI - LO = 0.10 is not a whole number of steps of 0.03"),
        ("serve.x=low..0.95:0.01", "LO 'low' is not a number"),
        ("serve.x=0.85..nan:0.01", "HI 'nan' is not a number"),
        (".x=0.85..0.95:0.01", "not a dotted key path: '.x'"),
    ],
)
def test_a_malformed_ceiling_says_what_and_the_expected_form(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_ceiling(text)
    message = str(caught.value)
    assert message.startswith(f"--gx10-ceiling {text!r}: ")
    assert message.endswith(
        "expected PATH=LO..HI:STEP, e.g. --gx10-ceiling 'serve.gpu_memory_utilization=0.85..0.95:0.01'"
    )


def _oracle(limit: float, walked: list[float]) -> Any:
    def run(value: float) -> bool:
        walked.append(value)
        return value <= limit

    return run


def test_the_walk_finds_the_highest_passing_value() -> None:
    walked: list[float] = []
    ceiling = parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.01")
    result = search_ceiling(ceiling, _oracle(0.90, walked))
    assert walked == [0.85, 0.95, 0.90, 0.92, 0.91]  # bounds, then the middle grid point each time
    assert (result.answer, result.lowest_failing, result.stopped) == (0.90, 0.91, "converged")
    assert [p.step for p in result.probes] == [1, 2, 3, 4, 5]
    assert [p.passed for p in result.probes] == [True, False, True, False, False]
    assert result.summary() == "ceiling of serve.gpu_memory_utilization at 0.9, 0.91 fails"
    entry = result.as_entry()
    assert (entry["launches"], entry["grid_points"], entry["answer"], entry["step"]) == (5, 11, 0.9, 0.01)
    assert entry["max_launches"] == ceiling.launches_to_converge() == 6


@pytest.mark.parametrize("limit", [8, 9, 15, 16, 17, 40, 63])
def test_the_walk_converges_within_its_default_bound_anywhere(limit: int) -> None:
    ceiling = parse_ceiling("serve.max_num_seqs=8..64:1")
    result = search_ceiling(ceiling, _oracle(limit, []))
    assert (result.answer, result.lowest_failing, result.stopped) == (limit, limit + 1, "converged")
    assert len(result.probes) <= ceiling.launches_to_converge()


def test_the_bounds_can_decide_alone() -> None:
    ceiling = parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.01")
    low_fails = search_ceiling(ceiling, _oracle(0.80, []))
    assert (low_fails.stopped, low_fails.answer, len(low_fails.probes)) == ("low_fails", None, 1)
    assert low_fails.summary() == (
        "no ceiling: the low bound serve.gpu_memory_utilization=0.85 fails: no value on the grid passes"
    )
    high_passes = search_ceiling(ceiling, _oracle(0.99, []))
    assert (high_passes.stopped, high_passes.answer, len(high_passes.probes)) == ("high_passes", 0.95, 2)
    assert "at least 0.95" in high_passes.summary()


def test_the_launch_bound_stops_the_walk() -> None:
    walked: list[float] = []
    ceiling = parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.01")
    result = search_ceiling(ceiling, _oracle(0.90, walked), max_launches=3)
    assert walked == [0.85, 0.95, 0.90]
    assert (result.stopped, result.answer, result.lowest_failing) == ("launch_bound", 0.90, 0.95)
    assert result.why() == "launch bound: 3 launches made"
    assert len(search_ceiling(ceiling, _oracle(0.90, []), max_launches=1).probes) == 1
    with pytest.raises(ValueError, match="max_launches 0 is below 1"):
        search_ceiling(ceiling, _oracle(0.90, []), max_launches=0)


def test_a_probe_that_raises_ends_the_walk_keeping_the_probes() -> None:
    seen: list[float] = []

    def run(value: float) -> bool:
        if value == 0.95:
            raise RuntimeError("docker engine gone")
        return True

    ceiling = parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.01")
    result = search_ceiling(ceiling, run, on_probe=lambda p: seen.append(p.value))
    assert (result.stopped, result.answer, seen) == ("probe_error", 0.85, [0.85])
    assert result.error == "RuntimeError: docker engine gone"
    assert "docker engine gone" in result.why()


def test_probes_are_timed_by_the_clock() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def run(value: float) -> bool:
        now[0] += 600.0  # a launch of ten minutes
        return value <= 0.9

    result = search_ceiling(parse_ceiling("serve.gpu_memory_utilization=0.85..0.95:0.05"), run, clock=clock)
    assert [p.elapsed_s for p in result.probes] == [600.0, 600.0, 600.0]
    assert result.elapsed_s == 1800.0
    assert (result.answer, result.stopped) == (0.9, "converged")


def test_next_index_is_the_middle_until_adjacent() -> None:
    assert next_index(0, 10) == 5
    assert next_index(5, 7) == 6
    assert next_index(5, 6) is None


def test_format_path_quotes_only_keys_that_need_it() -> None:
    assert format_path(("serve", "max-num-seqs")) == "serve.max-num-seqs"
    assert format_path(("serve", "args", "a.b")) == 'serve.args."a.b"'
