"""A good pytest citizen: --help works, an unrelated run hears nothing from us, markers are listed,
suites run non-destructive first, load tests never overlap under xdist, the SDK's /v1 URL is accepted.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

from pytest_gx10.plugin import argument_paths
from pytest_gx10.xdist_scheduling import files_named

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"

# Slow enough that a few milliseconds of scheduling on a busy machine stay within a few per cent.
TINY = tiny_profile((1, 2, 4), prefill_tps=1000.0, decode_tps=25.0)


def _gx10_free_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GX10_"):
            monkeypatch.delenv(name)


def test_help_works_and_lists_every_option(pytester: pytest.Pytester) -> None:
    """``pytest --help`` in any project with the plugin installed (a % in a help text once broke it)."""
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()[-2000:]
    result.stdout.fnmatch_lines(["*--gx10-tolerance=NAME=PCT*", "*agg_decode_tps=5%,median_ttft_s=20%*"])


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    """``pytest --markers`` lists ours, so ``--strict-markers`` projects can use them."""
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.gx10_load: a load test*"])


@pytest.mark.parametrize("workers", ["0", "2"])
def test_unrelated_project_hears_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """No gx10 setting and no test using our fixtures: no header line, no twin started, no file."""
    _gx10_free_env(monkeypatch)
    pytester.makepyfile("def test_one():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-n", workers, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines + result.errlines if "gx10" in line.lower()]
    assert [line for line in lines if not line.startswith("plugins:")] == [], lines
    assert not list(pytester.path.glob("gx10-*"))


def test_a_test_using_our_fixtures_says_what_it_targets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No setting, but a test asks for the target: the target lines follow the collection."""
    _gx10_free_env(monkeypatch)
    pytester.makepyfile("def test_up(gx10_client):\n    assert gx10_client.health() == 200\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gx10-timeout=10")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["gx10 target: embedded twin of profile *"])
    quiet = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    quiet.assert_outcomes(passed=1)
    quiet.stdout.fnmatch_lines(["collected 1 item", "gx10 target: embedded twin of profile *"])


def test_suites_run_non_destructive_first(pytester: pytest.Pytester) -> None:
    """Given crash and robustness first, health, mtp, perf and needle still run before them."""
    result = pytester.runpytest_subprocess(
        *(str(SUITES / name) for name in ("robustness", "crash", "needle", "perf", "mtp", "health")),
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    suites = []
    for line in result.outlines:
        if "::" in line:
            suite = Path(line.split("::")[0]).parent.name
            if not suites or suites[-1] != suite:
                suites.append(suite)
    assert suites == ["health", "mtp", "perf", "needle", "crash", "robustness"]


def _spans(doc: dict) -> list[tuple[float, float, int]]:  # type: ignore[type-arg]
    return sorted(
        (
            min(r["sent_unix_s"] for r in p["requests"]),
            max(r["ended_unix_s"] for r in p["requests"]),
            p["concurrency"],
        )
        for p in doc["sweep"]
    )


@pytest.mark.parametrize(
    ("dist", "rootdir"), [("load", "clone"), ("load", "elsewhere"), ("worksteal", "clone")]
)
def test_load_tests_never_overlap_under_xdist(pytester: pytest.Pytester, dist: str, rootdir: str) -> None:
    """Under ``-n 2`` (any --dist) the sweep points run one at a time, and read as under ``-n 0``.

    ``elsewhere``: the suites lie outside the run's rootdir, as an installed wheel's do for a project of
    one's own (pytest then names them relative to the argument they were found under)."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(TINY)
    where = [f"--rootdir={pytester.path}"] if rootdir == "elsewhere" else []
    docs = {}
    for workers in ("0", "2"):
        out = pytester.path / f"out-{workers}.json"
        result = pytester.runpytest_subprocess(
            str(SUITES / "perf"),
            *where,
            f"--gx10-profile={profile}",
            f"--gx10-json={out}",
            "-n",
            workers,
            f"--dist={dist}",
            "-v",
            "-p",
            "no:cacheprovider",
        )
        result.assert_outcomes(passed=3)
        docs[workers] = json.loads(out.read_text())
    spans = _spans(docs["2"])
    if dist == "load":  # plain -n 2: the suites run on one worker, in order
        ran = re.findall(r"^\[(gw\d)\] .*PASSED .*test_sweep_point\[N=(\d+)\]", result.stdout.str(), re.M)
        assert len({worker for worker, _ in ran}) == 1, ran
        assert [int(n) for _, n in ran] == [1, 2, 4]
        assert [n for _, _, n in spans] == [1, 2, 4]
    for (_, end, n), (start, _, m) in itertools.pairwise(spans):
        assert end <= start, f"N={n} still ran ({end:.3f}) when N={m} started ({start:.3f})"
    # The twin's scheduler is discrete: two requests a millisecond apart may share a step or not,
    # which moves N>1 aggregate decode (it divides by wall - first TTFT) by up to a fifth either way.
    # Wall time and N=1 do not depend on it; a point run beside another would stretch both.
    serial = {p["concurrency"]: p for p in docs["0"]["sweep"]}
    parallel = {p["concurrency"]: p for p in docs["2"]["sweep"]}
    for n, point in serial.items():
        assert parallel[n]["wall_s"] == pytest.approx(point["wall_s"], rel=0.15), (
            f"N={n}: wall {parallel[n]['wall_s']:.2f} s under -n 2, {point['wall_s']:.2f} s under -n 0"
        )
    assert parallel[1]["agg_decode_tps"] == pytest.approx(serial[1]["agg_decode_tps"], rel=0.15)


def test_a_node_id_outside_the_rootdir_names_its_file_under_an_argument(tmp_path: Path) -> None:
    """pytest names a file outside the rootdir relative to the argument it was found under (an
    installed wheel's suites run from a project of one's own), or by nothing when it is the argument."""
    root, suites = tmp_path / "project", tmp_path / "site" / "suites"
    (root / "tests").mkdir(parents=True)
    (suites / "perf").mkdir(parents=True)
    mine, sweep = root / "tests" / "test_mine.py", suites / "perf" / "test_sweep.py"
    mine.write_text("")
    sweep.write_text("")
    assert files_named("test_sweep.py", root, [suites / "perf"]) == [root / "test_sweep.py", sweep]
    assert files_named("", root, [sweep]) == [sweep]
    assert files_named("tests/test_mine.py", root, [suites / "perf"]) == [mine]


def test_pyargs_of_the_suites_are_found_without_importing(pytester: pytest.Pytester) -> None:
    from pytest_gx10 import suites_dirs

    config = pytester.parseconfig("--pyargs", "pytest_gx10.suites.perf::test_sweep_point", "tests/x.py")
    paths = argument_paths(config)
    assert [d / "perf" for d in suites_dirs()] == paths[:-1]
    assert all((p / "test_sweep.py").is_file() for p in paths[:-1])
    assert paths[-1] == pytester.path / "tests" / "x.py"


def test_sdk_base_url_is_accepted(pytester: pytest.Pytester) -> None:
    """``--gx10-endpoint=http://host:port/v1`` (what the OpenAI SDK is given) reaches the server."""
    from pytest_gx10.fake import FakeServer

    pytester.makepyfile("def test_up(gx10_client):\n    assert gx10_client.models()\n")
    with FakeServer("smollm2-cpu", time_scale=100) as server:
        result = pytester.runpytest_subprocess(f"--gx10-endpoint={server.url}/v1/", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"gx10 target: {server.url} (given as {server.url}/v1; the /v1 is added per request) *"]
    )


def test_a_failed_fact_is_stated_without_a_repr(pytester: pytest.Pytester) -> None:
    """A version that does not match the profile says both, and no dataclass repr."""
    profile = pytester.path / "wrong-version.toml"
    profile.write_text(
        '[deployment]\nserved_model_name = "SmolLM2-135M-Instruct"\nmax_model_len = 8192\n'
        "vllm_version = '0\\.99\\.'\n[twin]\ntime_scale = 50.0\n"
    )
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"), f"--gx10-profile={profile}", "-k", "version", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the version is '0.32.0', which does not match the profile's pattern '0\\\\.99\\\\.'*"]
    )
    assert "Deployment(" not in result.stdout.str()
