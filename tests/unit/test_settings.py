"""Settings resolution: CLI > environment > ini > profile > default, each with its source."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_gx10.profiles import DEFAULT_PROFILE, ProfileError, bundled_profiles, load_profile
from pytest_gx10.settings import Settings, SettingsError, resolve_settings

NOTHING: dict[str, str] = {}


def _resolve(
    cli: dict[str, object] | None = None,
    env: dict[str, str] | None = None,
    ini: dict[str, object] | None = None,
) -> Settings:
    return resolve_settings(cli or {}, env or {}, ini or {})


def test_defaults() -> None:
    """With nothing given: the reference profile, the twin, a 10 s timeout."""
    s = _resolve()
    assert s.profile.name == DEFAULT_PROFILE
    assert s.use_twin
    assert s.timeout_s == 10.0
    assert s.sources == {
        "profile": "default",
        "endpoint": "default",
        "model": "default",
        "api_key": "default",
        "timeout": "default",
        "fake": "default",
        "concurrency": f"profile {DEFAULT_PROFILE}",
        "repeat": "default",
        "load_mode": "default",
        "rate": "default",
        "arrival": "default",
        "duration": "default",
        "requests": "default",
        "ramp_up": "default",
        "warmup": "default",
        "warmup_requests": "default",
        "slo": "default",
        "saturate": "default",
        "json": "default",
        "logs": "default",
        "needle_lengths": f"profile {DEFAULT_PROFILE}",
        "needle_depths": f"profile {DEFAULT_PROFILE}",
        "needle_seed": "default",
        "fuzz_examples": "default",
        "relaunch_on_crash": "default",
        "markdown": "default",
        "write_profile": "default",
        "write_margin": "default",
        "save_baseline": "default",
        "baseline": "default",
        "tolerance": "default",
        "history": "default",
        "fit_twin": "default",
        "launch": "default",
        "keep": "default",
        "no_summary": "default",
        "server": "default",
        "gate_facts": "default",
        "matrix": "default",
        "ceiling": "default",
        "reference_cell": "default",
        "ceiling_launches": "default",
        "ceiling_time": "default",
        "workload": "default",
        "dataset": "default",
        "input_len": "default",
        "output_len": "default",
        "turns": "default",
    }
    assert s.concurrency == (1, 2, 4, 8, 16)
    assert (s.needle_lengths, s.needle_depths) == ((200000,), (0.5,))


def test_concurrency_override_and_validation() -> None:
    """--gx10-concurrency=1,2,4 replaces the profile's points; junk is refused."""
    assert _resolve({"concurrency": "1, 2,4"}).concurrency == (1, 2, 4)
    with pytest.raises(SettingsError, match="comma-separated list of integers"):
        _resolve({"concurrency": "one"})
    with pytest.raises(SettingsError, match="at least one positive integer"):
        _resolve({"concurrency": "0"})


def test_turns_reach_the_multi_turn_workload() -> None:
    """--gx10-turns sets each conversation's turns; the workload built for a point has them."""
    settings = _resolve({"workload": "multi-turn", "turns": "3"})
    assert settings.turns == 3
    assert settings.workload_for("N=1", "e").turns == 3
    assert _resolve({"workload": "multi-turn"}).workload_for("N=1", "e").turns == 4
    with pytest.raises(SettingsError, match="turns = '0' from --gx10-turns: must be a positive"):
        _resolve({"turns": "0"})


@pytest.mark.parametrize(
    ("cli", "env", "ini", "value", "source"),
    [
        ({"timeout": "1"}, {"GX10_TIMEOUT": "2"}, {"timeout": "3"}, 1.0, "--gx10-timeout"),
        ({}, {"GX10_TIMEOUT": "2"}, {"timeout": "3"}, 2.0, "env GX10_TIMEOUT"),
        ({}, {}, {"timeout": "3"}, 3.0, "ini gx10_timeout"),
        ({"timeout": None}, {"GX10_TIMEOUT": ""}, {"timeout": ""}, 10.0, "default"),
    ],
)
def test_precedence(
    cli: dict[str, object], env: dict[str, str], ini: dict[str, object], value: float, source: str
) -> None:
    """The first source that gives a value wins; empty values count as unset."""
    s = _resolve(cli, env, ini)
    assert (s.timeout_s, s.sources["timeout"]) == (value, source)


def test_profile_sits_between_ini_and_default() -> None:
    """The smollm2-cpu profile sets timeout 30; ini still beats it."""
    assert _resolve({"profile": "smollm2-cpu"}).timeout_s == 30.0
    assert _resolve({"profile": "smollm2-cpu"}).sources["timeout"] == "profile smollm2-cpu"
    assert _resolve({"profile": "smollm2-cpu"}, ini={"timeout": "4"}).timeout_s == 4.0


def test_endpoint_selects_attach_and_fake_forces_twin() -> None:
    """An endpoint means attach; --gx10-fake overrides it."""
    s = _resolve(env={"GX10_ENDPOINT": "http://head:8000/"})
    assert (s.endpoint, s.use_twin) == ("http://head:8000", False)
    assert _resolve({"fake": True}, env={"GX10_ENDPOINT": "http://head:8000"}).use_twin
    assert _resolve(env={"GX10_ENDPOINT": "http://head:8000", "GX10_FAKE": "yes"}).use_twin


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GX10_ENDPOINT": "head:8000"}, "endpoint = 'head:8000' from env GX10_ENDPOINT: not an http(s) URL"),
        ({"GX10_TIMEOUT": "soon"}, "timeout = 'soon' from env GX10_TIMEOUT: not a number of seconds"),
        ({"GX10_TIMEOUT": "-1"}, "must be a positive number"),
        ({"GX10_FAKE": "maybe"}, "fake = 'maybe' from env GX10_FAKE: not a boolean"),
    ],
)
def test_bad_values_name_setting_source_and_switch(env: dict[str, str], message: str) -> None:
    """A bad value says which setting, where it came from, and the flag to set."""
    with pytest.raises(SettingsError, match="set it with --gx10-") as info:
        _resolve(env=env)
    assert message in str(info.value)


def test_api_key_never_shows() -> None:
    """The key is resolved but absent from repr, describe() and error messages."""
    s = _resolve(env={"GX10_API_KEY": "sk-very-secret"})
    assert s.api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(s)
    assert s.describe("api_key") == "set [env GX10_API_KEY]"


def test_bundled_profiles_load() -> None:
    """Every bundled profile loads; the reference one holds the post's facts."""
    assert {DEFAULT_PROFILE, "smollm2-cpu"} <= set(bundled_profiles())
    ref = load_profile(DEFAULT_PROFILE)
    dep = ref.deployment
    assert (dep.served_model_name, dep.max_model_len, dep.tensor_parallel_size) == (
        "Qwen3.5-397B-A17B-FP8",
        262144,
        4,
    )
    assert dep.speculative is not None
    assert (dep.speculative.method, dep.speculative.num_speculative_tokens) == ("mtp", 2)
    assert dep.speculative.acceptance_per_position == (0.889, 0.833)
    assert dep.reasoning_parser == "qwen3"
    assert dep.version_matches("0.22.1rc1.dev124+gace95c9cf.d20260603.cu132")
    assert not dep.version_matches("0.32.0")
    assert (ref.perf.concurrency, ref.perf.input_tokens, ref.perf.max_tokens) == (
        (1, 2, 4, 8, 16),
        9818,
        1024,
    )


GOOD = '[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n'


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            GOOD + "max_model_length = 3\n",
            "deployment.max_model_length",
            "did you mean 'deployment.max_model_len'",
        ),
        (
            '[deployment]\nserved_model_name = "m"\nmax_model_len = "big"\n',
            "deployment.max_model_len",
            "expected integer, got str 'big'",
        ),
        ('[deployment]\nserved_model_name = "m"\n', "deployment.max_model_len", "required key is missing"),
        (GOOD + "[twin]\ndecode_tps = -3\n", "twin.decode_tps", "must be positive"),
        (GOOD + "server_version = '0.3('\n", "deployment.server_version", "not a regular expression"),
        (
            GOOD + '[deployment.speculative]\nmethod = "mtp"\nnum_speculative_tokens = 2\n'
            "acceptance_per_position = [0.9]\n",
            "deployment.speculative.acceptance_per_position",
            "has 1 rates",
        ),
        (
            GOOD + '[deployment.speculative]\nmethod = "mtp"\nnum_speculative_tokens = 1\n'
            "acceptance_per_position = [1.5]\n",
            "deployment.speculative.acceptance_per_position[0]",
            "between 0 and 1",
        ),
        (GOOD + "[perf.floors.eight]\nagg_decode_tps = 1\n", "perf.floors.eight", "keyed by concurrency"),
        ("[deployment\n", "", "not valid TOML"),
    ],
)
def test_malformed_profile_names_file_key_and_problem(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    """Each malformation is a ProfileError naming the file, the key and what is wrong."""
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(path) in str(info.value)


def test_unknown_profile_name_lists_bundled() -> None:
    """An unknown name lists what is bundled."""
    with pytest.raises(ProfileError, match=r"bundled profiles: .*smollm2-cpu"):
        load_profile("no-such-profile")
