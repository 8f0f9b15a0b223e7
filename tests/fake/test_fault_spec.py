"""The fault spec string (command line and header) and the profile's ``[[twin.faults]]`` tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_gx10.fake.__main__ import main
from pytest_gx10.profiles import ProfileError, load_profile
from pytest_gx10.profiles.faults import KINDS, Fault, FaultSpecError, fault_from_table, parse_fault


def test_a_bare_kind_takes_the_defaults() -> None:
    fault = parse_fault("death")
    assert fault == Fault("death")
    assert fault.engine_wide
    assert (fault.after, fault.running, fault.delay_s, fault.grace_s) == (0, None, 0.0, 5.0)


def test_keys_are_converted_and_read_back() -> None:
    fault = parse_fault(" stall : tokens=16, stall_s=60.5 ,then=cut,after=3,running=2,count=1 ")
    assert fault == Fault("stall", after=3, running=2, count=1, tokens=16, stall_s=60.5, then="cut")
    assert not fault.engine_wide
    assert parse_fault(fault.spec()) == fault
    assert Fault("zero_tokens").spec() == "zero_tokens"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_parses(kind: str) -> None:
    assert parse_fault(kind).kind == kind


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected KIND[:key=value,...]"),
        ("meltdown", "unknown kind 'meltdown'; kinds: death, zombie"),
        ("death:", "expected KIND[:key=value,...]"),
        ("death:delay", "expected key=value, got 'delay'"),
        ("death:delay_s=", "expected key=value"),
        ("death:count=2", "unknown key 'count' for death (its keys: after, delay_s, grace_s, running)"),
        ("cut:stall_s=3", "unknown key 'stall_s' for cut"),
        ("abort:tokens=many", "tokens: expected an integer, got 'many'"),
        ("abort:tokens=-1", "tokens: must be at least 0, got -1"),
        ("zero_tokens:running=0", "running: must be at least 1, got 0"),
        ("zero_tokens:count=0", "count: must be at least 1"),
        ("slow_ttft:extra_s=-2", "extra_s: expected a finite number >= 0"),
        ("slow_ttft:extra_s=nan", "extra_s: expected a finite number >= 0"),
        ("error_fraction:p=1.5", "p: a fraction between 0 and 1"),
        ("http_500:body=html", "body: expected one of json, text, empty, got 'html'"),
        ("stall:then=retry", "then: expected one of continue, abort, cut"),
        ("cut:tokens=1,tokens=2", "key 'tokens' given twice"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault(spec)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_table_takes_the_same_keys_with_toml_types() -> None:
    fault = fault_from_table({"kind": "error_fraction", "p": 0.25, "seed": 7, "body": "empty"})
    assert fault == Fault("error_fraction", p=0.25, seed=7, body="empty")
    with pytest.raises(FaultSpecError, match="needs kind"):
        fault_from_table({"p": 0.5})
    with pytest.raises(FaultSpecError, match="tokens: expected an integer, got True"):
        fault_from_table({"kind": "cut", "tokens": True})


def _profile(tmp_path: Path, faults: str) -> Path:
    path = tmp_path / "faulty.toml"
    path.write_text(
        '[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n\n[twin]\nversion = "0.32.0"\n\n'
        + faults
    )
    return path


def test_profile_faults_are_loaded(tmp_path: Path) -> None:
    path = _profile(
        tmp_path,
        '[[twin.faults]]\nkind = "zero_tokens"\nrunning = 4\ncount = 1\n\n'
        '[[twin.faults]]\nkind = "death"\nrunning = 8\ndelay_s = 20.0\n',
    )
    faults = load_profile(path).twin.faults
    assert faults == (
        Fault("zero_tokens", running=4, count=1),
        Fault("death", running=8, delay_s=20.0),
    )


@pytest.mark.parametrize(
    ("faults", "key", "problem"),
    [
        ('[[twin.faults]]\nkind = "meltdown"\n', "twin.faults[0]", "unknown kind 'meltdown'"),
        (
            '[[twin.faults]]\nkind = "cut"\n\n[[twin.faults]]\nkind = "death"\ntokens = 3\n',
            "twin.faults[1]",
            "unknown key 'tokens' for death",
        ),
        (
            '[[twin.faults]]\nkind = "stall"\nstall_s = "long"\n',
            "twin.faults[0]",
            "stall_s: expected a number",
        ),
        ("[twin]\nfaults = [1]\n", "twin.faults[0]", "expected a table ([[twin.faults]]), got int"),
        ('[twin]\nfaults = "death"\n', "twin.faults", "expected array"),
    ],
)
def test_profile_fault_errors_name_the_entry(tmp_path: Path, faults: str, key: str, problem: str) -> None:
    path = _profile(tmp_path, faults) if faults.startswith("[[") else tmp_path / "bad.toml"
    if not faults.startswith("[["):
        path.write_text('[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n\n' + faults)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.key == key
    assert problem in info.value.problem


def test_the_bundled_mtp5_profile_replays_the_post() -> None:
    profile = load_profile("qwen3.5-397b-fp8-mtp5-gx10x4")
    spec = profile.deployment.speculative
    assert spec is not None
    assert spec.num_speculative_tokens == 5
    rates = spec.acceptance_per_position
    assert list(rates) == sorted(rates, reverse=True)
    assert all(0.65 <= r <= 0.78 for r in rates[2:])
    assert [f.kind for f in profile.twin.faults] == ["zero_tokens", "death"]


def test_cli_rejects_a_bad_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--port", "0", "--fault", "death:count=2"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fault" in err
    assert "unknown key 'count' for death" in err


def test_cli_help_documents_the_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--fault KIND[:key=value,...]" in out
    for kind in KINDS:
        assert f"  {kind} " in out
    assert "x-gx10-fault" in out
