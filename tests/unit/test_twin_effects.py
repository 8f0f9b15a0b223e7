"""``[[twin.effects]]``: what a key's value changes in the deployment the twin serves."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.matrix import apply_overrides, parse_path
from pytest_gx10.profiles import Profile, ProfileError, load_profile, profile_from_data
from pytest_gx10.tomlfile import dumps

MTP2 = "qwen3.5-397b-fp8-mtp2-gx10x4"
MTP5 = "qwen3.5-397b-fp8-mtp5-gx10x4"
K = "deployment.speculative.num_speculative_tokens"
GMU = "deployment.serve_args.gpu_memory_utilization"


def cell(base: Profile, **overrides: Any) -> Profile:
    """The profile a matrix cell serves: the base's data with dotted paths set (``k``/``gmu`` short)."""
    paths = {parse_path({"k": K, "gmu": GMU}.get(name, name)): value for name, value in overrides.items()}
    return profile_from_data(f"cell of {base.name}", apply_overrides(base.raw, paths))


def minimal(**twin: Any) -> dict[str, Any]:
    return {
        "deployment": {
            "served_model_name": "m",
            "max_model_len": 4096,
            "max_num_seqs": 8,
            "speculative": {"method": "mtp", "num_speculative_tokens": 2},
        },
        "twin": twin,
    }


def test_a_plain_load_of_the_mtp2_profile_is_unchanged() -> None:
    profile = load_profile(MTP2)
    assert profile.effects_applied == ()
    assert profile.twin.faults == ()
    assert profile.twin.warmup_s == profile.raw["twin"]["warmup_s"] != 7.0  # not the k=5 effect's
    assert profile.twin.speed_factor == 1.0
    assert len(profile.raw["twin"]["effects"]) == 2  # raw keeps them, to be applied again in a cell


def test_mtp2_with_k5_is_the_bundled_mtp5_profile() -> None:
    """The k=5 effect and the MTP-5 profile say the same [twin] and [deployment.speculative]."""
    mtp5 = load_profile(MTP5)
    k5 = cell(load_profile(MTP2), k=5)
    assert k5.twin == mtp5.twin
    assert k5.deployment.speculative == mtp5.deployment.speculative
    assert len(k5.effects_applied) == 1
    assert k5.effects_applied[0].startswith("k=5")
    # The effect did change what matters: the MTP-2 profile's own values differ.
    assert load_profile(MTP2).twin != mtp5.twin


@pytest.mark.parametrize(("gmu", "dies"), [(0.90, False), (0.85, False), (0.92, True), (0.91, True)])
def test_a_memory_budget_above_090_dies_at_eight_running(gmu: float, dies: bool) -> None:
    profile = cell(load_profile(MTP2), gmu=gmu)
    deaths = [f for f in profile.twin.faults if f.kind == "death"]
    assert len(deaths) == (1 if dies else 0)
    assert len(profile.effects_applied) == (1 if dies else 0)
    if dies:
        assert deaths[0].running == 8
        assert "0.90" in profile.effects_applied[0]


def test_both_effects_apply_together_in_file_order() -> None:
    profile = cell(load_profile(MTP2), k=5, gmu=0.92)
    assert [f.kind for f in profile.twin.faults] == ["zero_tokens", "death", "death"]
    assert len(profile.effects_applied) == 2
    assert profile.effects_applied[0].startswith("k=5")


def test_a_cell_written_to_a_file_reads_back_as_the_same_deployment(tmp_path: Path) -> None:
    """raw keeps the effects unapplied: writing a cell and loading it applies them once."""
    base = load_profile(MTP2)
    data = apply_overrides(base.raw, {parse_path(K): 5, parse_path(GMU): 0.92})
    path = tmp_path / "cell.toml"
    path.write_text(dumps(data, header="a matrix cell"))
    assert tomllib.loads(path.read_text()) == data
    loaded = load_profile(path)
    in_memory = profile_from_data("cell", data)
    assert loaded.twin == in_memory.twin
    assert loaded.deployment == in_memory.deployment
    assert loaded.effects_applied == in_memory.effects_applied
    assert len(loaded.twin.faults) == 3  # not 5: the effects applied once


def test_a_condition_on_a_path_the_data_does_not_hold_is_false() -> None:
    data = minimal(effects=[{"when": {"deployment.not_there": 1}, "set": {"twin.warmup_s": 9.0}}])
    profile = profile_from_data("p", data)
    assert profile.effects_applied == ()
    assert profile.twin.warmup_s == 0.0


@pytest.mark.parametrize(
    ("condition", "applies"),
    [
        ({"when": {K: 2}}, True),
        ({"when": {K: 2.0}}, True),  # numbers compare as numbers
        ({"when": {K: 3}}, False),
        ({"when": {K: "2"}}, False),
        ({"when": {"deployment.speculative.method": "mtp"}}, True),
        ({"when": {"deployment.max_num_seqs": True}}, False),  # a boolean is not 1
        ({"above": {"deployment.max_num_seqs": 7}}, True),
        ({"above": {"deployment.max_num_seqs": 8}}, False),
        ({"below": {"deployment.max_num_seqs": 9}}, True),
        ({"below": {"deployment.max_num_seqs": 8}}, False),
        ({"above": {"deployment.served_model_name": 1}}, False),  # not a number: no match
        ({"when": {K: 2}, "above": {"deployment.max_num_seqs": 8}}, False),  # all must hold
        (
            {
                "when": {K: 2, "deployment.speculative.method": "mtp"},
                "below": {"deployment.max_model_len": 5000},
            },
            True,
        ),
    ],
)
def test_conditions(condition: dict[str, Any], applies: bool) -> None:
    data = minimal(effects=[{**condition, "set": {"twin.warmup_s": 9.0}}])
    profile = profile_from_data("p", data)
    assert profile.twin.warmup_s == (9.0 if applies else 0.0)
    assert len(profile.effects_applied) == int(applies)


def test_each_effect_sees_what_the_ones_before_it_set() -> None:
    data = minimal(
        effects=[
            {
                "when": {K: 2},
                "set": {K: 3, "deployment.speculative.acceptance_per_position": [0.9, 0.8, 0.7]},
            },
            {"when": {K: 3}, "speed": 0.5},
            {"when": {K: 2}, "set": {"twin.warmup_s": 1.0}},  # no longer true
        ]
    )
    profile = profile_from_data("p", data)
    assert profile.deployment.speculative is not None
    assert profile.deployment.speculative.num_speculative_tokens == 3
    assert profile.twin.speed_factor == 0.5
    assert profile.twin.warmup_s == 0.0
    assert profile.effects_applied == ("when k=2: set 2 keys", "when k=3: speed x0.5")


def test_speed_multiplies_the_speed_factor() -> None:
    data = minimal(
        speed_factor=2.0,
        effects=[
            {"when": {K: 2}, "speed": 0.5, "faults": [{"kind": "zero_tokens", "running": 2}]},
            {"above": {"deployment.max_num_seqs": 4}, "speed": 0.25, "note": "slower with more sequences"},
        ],
    )
    profile = profile_from_data("p", data)
    assert profile.twin.speed_factor == 0.25
    assert profile.twin.faults[0].kind == "zero_tokens"
    assert profile.effects_applied == ("when k=2: 1 fault, speed x0.5", "slower with more sequences")


def test_set_keys_are_checked_as_the_tables_are() -> None:
    data = minimal(effects=[{"when": {K: 2}, "set": {"twin.warmup_s": -1.0}}])
    with pytest.raises(ProfileError) as info:
        profile_from_data("p", data)
    assert info.value.key == "twin.warmup_s"


def test_set_on_a_table_names_the_effect() -> None:
    data = minimal(effects=[{"when": {K: 2}, "set": {"deployment.speculative": 5}}])
    with pytest.raises(ProfileError) as info:
        profile_from_data("p", data)
    assert info.value.key == "twin.effects[0].set"
    assert "it is a table" in info.value.problem


def test_mistakes_are_named_together() -> None:
    data = minimal(
        effects=[
            {"when": {K: {"a": 1}}, "set": {"twin.warmup_s": 1.0}},
            {"when": {K: 5}, "sett": {"twin.warmup_s": 1.0}, "speed": 1.0},
            {"when": {K: 5}, "faults": [{"kind": "explode"}, {"kind": "death", "running": 0}]},
            {"when": {K: 5}, "speed": 0},
            {"set": {"twin.warmup_s": 1.0}},
            {"above": {GMU: 0.9}},
            {"below": {GMU: "high"}, "speed": 2.0},
            {"when": {"a..b": 1}, "speed": 2.0, "note": 3},
            "not a table",
        ]
    )
    with pytest.raises(ProfileError) as info:
        profile_from_data("p", data)
    keys = [k for k, _ in info.value.problems]
    assert keys == [
        f'twin.effects[0].when."{K}"',
        "twin.effects[1].sett",
        "twin.effects[2].faults[0]",
        "twin.effects[2].faults[1]",
        "twin.effects[3].speed",
        "twin.effects[4]",
        "twin.effects[5]",
        'twin.effects[6].below."deployment.serve_args.gpu_memory_utilization"',
        'twin.effects[7].when."a..b"',
        "twin.effects[7].note",
        "twin.effects[8]",
    ]
    problems = dict(info.value.problems)
    assert "did you mean 'twin.effects[1].set'" in problems["twin.effects[1].sett"]
    assert "unknown kind 'explode'" in problems["twin.effects[2].faults[0]"]
    assert "running: must be at least 1" in problems["twin.effects[2].faults[1]"]
    assert "no condition" in problems["twin.effects[4]"]
    assert "no change" in problems["twin.effects[5]"]
    assert "expected a number > 0" in problems["twin.effects[3].speed"]


def test_effects_must_be_an_array_of_tables() -> None:
    with pytest.raises(ProfileError) as info:
        profile_from_data("p", minimal(effects={"when": {K: 2}}))
    assert info.value.key == "twin.effects"


def test_speed_factor_is_a_declared_key() -> None:
    with pytest.raises(ProfileError) as info:
        profile_from_data("p", minimal(speed_factor=0))
    assert info.value.key == "twin.speed_factor"
    assert profile_from_data("p", minimal(speed_factor=0.5)).twin.speed_factor == 0.5
