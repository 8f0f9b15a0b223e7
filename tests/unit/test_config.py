"""Config files: keys declared once, every mistake of a file named at once, a missing file not found."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.config import ConfigError, Invalid, key, read_table
from pytest_gx10.launch import RecipeError, load_recipe
from pytest_gx10.profiles import CrashSpec, ProfileError, TwinSpec, load_profile
from pytest_gx10.settings import SETTINGS, Settings, SettingsError, resolve_settings

GOOD = '[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n'


def _write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_one_error_class_for_every_config_error() -> None:
    """Profiles, recipes and settings raise one kind of error (the plugin turns it into a usage error)."""
    assert issubclass(ProfileError, ConfigError)
    assert issubclass(RecipeError, ConfigError)
    assert issubclass(SettingsError, ConfigError)


def test_a_profile_with_several_mistakes_names_them_all(tmp_path: Path) -> None:
    """Unknown key (with did-you-mean), wrong type, out of range, missing required: one error, each named."""
    path = _write(
        tmp_path,
        '[deployment]\nserved_model_nam = "m"\nmax_num_seqs = "many"\n'
        "[twin]\ndecode_tps = -3\n[needle]\ndepths = [0.5, 1.5]\n[settings]\ntimeout = 0\n",
    )
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    problems = dict(info.value.problems)
    assert "did you mean 'deployment.served_model_name'?" in problems["deployment.served_model_nam"]
    assert problems["deployment.served_model_name"] == "required key is missing"
    assert problems["deployment.max_model_len"] == "required key is missing"
    assert problems["deployment.max_num_seqs"] == "expected integer, got str 'many'"
    assert problems["twin.decode_tps"] == "must be positive, got -3.0"
    assert problems["needle.depths[1]"] == "expected a number between 0 and 1, got 1.5"
    assert problems["settings.timeout"].startswith("must be a positive number of seconds")
    assert len(info.value.problems) == 7
    lines = str(info.value).splitlines()
    assert lines[0] == f"malformed profile {path}: 7 problems"
    assert all(line.startswith(f"  {path}: key '") for line in lines[1:])
    assert len(lines) == 8


def test_a_recipe_with_several_mistakes_names_them_all(tmp_path: Path) -> None:
    """The same for a recipe: every table is read, every problem kept."""
    path = _write(
        tmp_path,
        "[recipe]\nboot_budget_s = -1\n[serve]\nmax_model_length = 8\nport = 70000\nenforce_eager = 1\n"
        "[process]\ncwdir = '/x'\n",
    )
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    problems = dict(info.value.problems)
    assert problems["recipe.kind"] == 'required key is missing ("docker" or "process")'
    assert problems["recipe.boot_budget_s"] == "must be a positive number of seconds, got -1.0"
    assert "did you mean 'serve.max_model_len'?" in problems["serve.max_model_length"]
    assert "other vLLM flags go in [serve.args]" in problems["serve.max_model_length"]
    assert problems["serve.port"] == "expected a port 0-65535 (0 picks a free one), got 70000"
    assert problems["serve.enforce_eager"] == "expected boolean, got int 1"
    assert "did you mean 'process.cwd'?" in problems["process.cwdir"]
    assert str(info.value).startswith(f"malformed recipe {path.resolve()}: 6 problems\n")


def test_a_missing_file_is_not_found_not_malformed(tmp_path: Path) -> None:
    """A profile or recipe path that is not there says so."""
    with pytest.raises(ProfileError) as profile:
        load_profile(tmp_path / "gone.toml")
    assert str(profile.value) == f"profile not found: {tmp_path / 'gone.toml'}"
    assert profile.value.missing
    with pytest.raises(RecipeError) as recipe:
        load_recipe(tmp_path / "gone.toml")
    assert str(recipe.value) == f"recipe not found: {tmp_path / 'gone.toml'}"
    with pytest.raises(
        ProfileError,
        match=r"^profile not found: no-such-profile; no such profile is bundled; bundled profiles: ",
    ):
        load_profile("no-such-profile")


def test_broken_toml_is_still_malformed(tmp_path: Path) -> None:
    """Not found is kept for files that are not there."""
    with pytest.raises(ProfileError, match=r"^malformed profile .*: not valid TOML") as info:
        load_profile(_write(tmp_path, "[deployment\n"))
    assert not info.value.missing


def test_several_bad_settings_are_named_together() -> None:
    """Each bad value names its setting, source and flag; all of them in one error."""
    with pytest.raises(SettingsError) as info:
        resolve_settings({"timeout": "soon", "concurrency": "a"}, {"GX10_WRITE_MARGIN": "200%"}, {})
    lines = str(info.value).splitlines()
    assert lines[0] == "3 settings cannot be used:"
    assert any("timeout = 'soon' from --gx10-timeout" in line for line in lines)
    assert any("concurrency = 'a' from --gx10-concurrency" in line for line in lines)
    assert any("write_margin = '200%' from env GX10_WRITE_MARGIN" in line for line in lines)


def test_defaults_come_from_the_declarations(tmp_path: Path) -> None:
    """A profile that sets nothing else gets the dataclasses' defaults; Settings gets SETTINGS'."""
    profile = load_profile(_write(tmp_path, GOOD))
    assert profile.twin == TwinSpec()
    assert profile.crash == CrashSpec()
    assert profile.server.adapter is None
    declared = {spec.name: spec.default for spec in SETTINGS}
    with_defaults = [f for f in fields(Settings) if f.name in declared and f.default is not MISSING]
    assert len(with_defaults) > 10
    for f in with_defaults:
        assert f.default == declared[f.name], f.name


def test_values_are_converted_as_declared(tmp_path: Path) -> None:
    """Integers given for a float key become floats; arrays become tuples; [server] adapter is a string."""
    profile = load_profile(
        _write(
            tmp_path, GOOD + '[server]\nadapter = "vllm"\n[crash]\npoll_s = 2\n[perf]\nconcurrency = [1, 8]\n'
        )
    )
    assert profile.crash.poll_s == 2.0
    assert isinstance(profile.crash.poll_s, float)
    assert profile.perf.concurrency == (1, 8)
    assert profile.server.adapter == "vllm"
    with pytest.raises(ProfileError) as info:
        load_profile(_write(tmp_path, GOOD + "[server]\nadapter = 3\n"))
    assert (info.value.key, info.value.problem) == ("server.adapter", "expected string, got int 3")


def _only_ok(value: Any) -> str:
    if value != "ok":
        raise Invalid("not ok", ".sub")
    return str(value)


@dataclass(frozen=True)
class _Table:
    name: str = key(help="required")
    ratio: float = key(0.5, ge=0, le=1)
    mode: str = key("a", choices=("a", "b", "c"))
    sizes: tuple[int, ...] = key((1,), gt=0, nonempty=True)
    flag: bool = False
    extra: str = key("", parse=_only_ok)


def test_read_table_collects_every_problem() -> None:
    """The generic reader: bool is not an int, ranges per item, choices, a parse function's sub-keys."""
    problems: list[tuple[str, str]] = []
    data = {"ratio": 2, "mode": "d", "sizes": [], "flag": 1, "extra": "no", "nmae": "x"}
    assert read_table(_Table, data, "t.", problems) is None
    assert dict(problems) == {
        "t.nmae": "unknown key (known here: extra, flag, mode, name, ratio, sizes); did you mean 't.name'?",
        "t.name": "required key is missing",
        "t.ratio": "expected a number between 0 and 1, got 2.0",
        "t.mode": 'expected one of "a", "b", "c", got \'d\'',
        "t.sizes": "expected at least one item, got an empty array",
        "t.flag": "expected boolean, got int 1",
        "t.extra.sub": "not ok",
    }
    problems = []
    assert read_table(_Table, {"name": "n", "ratio": 1, "sizes": [2, 3]}, "t.", problems) == {
        "name": "n",
        "ratio": 1.0,
        "sizes": (2, 3),
    }
    assert problems == []


def test_plugin_names_every_mistake_as_one_usage_error(pytester: pytest.Pytester) -> None:
    """--gx10-profile with a file of several mistakes stops the run, listing them all."""
    bad = pytester.path / "bad.toml"
    bad.write_text('[deployment]\nserved_model_name = "m"\nmax_model_len = "big"\n[perf]\nendpoint = "x"\n')
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--gx10-profile={bad}")
    result.stderr.fnmatch_lines(
        [
            f"*malformed profile {bad}: 2 problems",
            f"*{bad}: key 'deployment.max_model_len': expected integer, got str 'big'",
            f"*{bad}: key 'perf.endpoint': expected \"chat\" or \"completions\", got 'x'",
        ]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_plugin_says_a_missing_profile_is_not_found(pytester: pytest.Pytester) -> None:
    """A --gx10-profile path that is not there is a usage error saying "not found"."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest(f"--gx10-profile={pytester.path / 'gone.toml'}")
    result.stderr.fnmatch_lines(["*profile not found: *gone.toml"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_renamed_key_is_read_in_its_old_spelling(tmp_path: Path) -> None:
    """deployment.vllm_version (profiles written before the server seam) is read as server_version."""
    path = tmp_path / "old.toml"
    path.write_text("[deployment]\nserved_model_name = 'm'\nmax_model_len = 8\nvllm_version = '0\\.32\\.'\n")
    deployment = load_profile(path).deployment
    assert deployment.server_version == r"0\.32\."
    assert deployment.version_matches("0.32.1")
    assert not deployment.version_matches("b7000-abcdef0")
