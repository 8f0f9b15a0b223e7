"""Attached with no profile: the profile is discovered from the server, and can be written back.

The twin stands in for a user's server here (the real tier runs the same against vLLM's CPU build).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_gx10.discover import discover, profile_toml
from pytest_gx10.fake import FakeServer
from pytest_gx10.profiles import load_profile, profile_from_data

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    """A twin of a small CPU deployment (8 192-token window, no speculative decoding)."""
    with FakeServer("smollm2-cpu", time_scale=50) as twin:
        yield twin


def test_discover_reads_the_servers_facts(server: FakeServer) -> None:
    """Model, window and version from the server; workloads sized to the window; nothing gated."""
    found = discover(server.url)
    assert found.error is None
    deployment = found.data["deployment"]
    assert deployment["served_model_name"] == "SmolLM2-135M-Instruct"
    assert deployment["max_model_len"] == 8192
    assert deployment["server_version"] == r"0\.32\.0$"
    assert "speculative" not in deployment
    assert found.data["needle"]["required"] is False
    assert max(found.data["needle"]["lengths"]) + found.data["needle"]["max_tokens"] <= 8192
    assert found.data["perf"]["input_tokens"] == 1000
    assert "floors" not in found.data["perf"]
    assert found.measured["prefill_tps"] > 0
    profile = profile_from_data("discovered", found.data)  # schema-valid
    assert profile.deployment.max_model_len == 8192


def test_discover_an_unreachable_server_says_why() -> None:
    """A refused connection is reported, not raised: the target fixture then fails every test."""
    found = discover("http://127.0.0.1:9", timeout_s=2)
    assert found.error is not None
    assert "refused" in found.error
    assert found.line().startswith("discovery from http://127.0.0.1:9 failed: ")


def test_discovered_profile_runs_the_health_suite(pytester: pytest.Pytester, server: FakeServer) -> None:
    """No --gx10-profile: the header says discovered, and the suite passes against its own server."""
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"), f"--gx10-endpoint={server.url}/v1", "-p", "no:cacheprovider"
    )
    result.stdout.fnmatch_lines(
        [
            f"gx10 profile: discovered from {server.url}: server vllm, model SmolLM2-135M-Instruct, max_model_len 8192, "
            "version 0.32.0, prefill * tok/s, decode * tok/s alone [[]no --gx10-profile[]]"
        ]
    )
    result.assert_outcomes(passed=17)


def test_written_profile_gates_a_later_run(
    pytester: pytest.Pytester, server: FakeServer, tmp_path: Path
) -> None:
    """--gx10-write-profile writes facts and floors; a second run passes with it; a wrong window fails."""
    written = tmp_path / "mine.toml"
    first = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        str(SUITES / "perf"),
        f"--gx10-endpoint={server.url}",
        f"--gx10-write-profile={written}",
        "--gx10-concurrency=1,2",
        "-p",
        "no:cacheprovider",
    )
    first.assert_outcomes(passed=19)
    first.stdout.fnmatch_lines([f"gx10: profile written to {written} (2 sweep points with floors *"])
    profile = load_profile(written)
    assert profile.deployment.max_model_len == 8192
    assert set(profile.perf.floors) == {1, 2}
    assert all(limits["agg_decode_tps"] > 0 for limits in profile.perf.floors.values())

    second = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        f"--gx10-endpoint={server.url}",
        f"--gx10-profile={written}",
        "-p",
        "no:cacheprovider",
    )
    second.assert_outcomes(passed=17)

    doubled = tmp_path / "doubled.toml"
    doubled.write_text(written.read_text().replace("max_model_len = 8192", "max_model_len = 16384"))
    third = pytester.runpytest_subprocess(
        str(SUITES / "health"),
        f"--gx10-endpoint={server.url}",
        f"--gx10-profile={doubled}",
        "-p",
        "no:cacheprovider",
    )
    third.assert_outcomes(failed=1, passed=16)
    third.stdout.fnmatch_lines(["*max_model_len*8192*16384*"])


def test_profile_toml_turns_figures_into_floors_and_ceilings() -> None:
    """Rates 10 % under, times 10 % over; a failed point and the twin's faults are left out."""
    data = {
        "deployment": {"served_model_name": "m", "max_model_len": 4096},
        "twin": {"faults": [{"kind": "death"}]},
        "perf": {"concurrency": [1, 2], "input_tokens": 100, "max_tokens": 8},
    }
    figures = {
        "sweep": [
            {
                "concurrency": 1,
                "ok_requests": 1,
                "agg_decode_tps": 100.0,
                "agg_prefill_tps": 1000.0,
                "median_ttft_s": 2.0,
            },
            {
                "concurrency": 2,
                "ok_requests": 1,
                "agg_decode_tps": 150.0,
                "agg_prefill_tps": 900.0,
                "median_ttft_s": 3.0,
            },
        ],
        "needle": [{"length": 1000, "retrieved": True}],
    }
    unseeded = tomllib.loads(profile_toml(data, figures))
    assert "faults" not in unseeded.get("twin", {})  # a stand-in's faults are no fact of the deployment
    assert unseeded["perf"]["floors"] == {
        "1": {"agg_decode_tps": 90.0, "agg_prefill_tps": 900.0, "median_ttft_s": 2.2}
    }
    assert "needle" not in unseeded  # one lucky answer to an unseeded code is no floor
    seeded = tomllib.loads(profile_toml(data, figures, needle_seed=7))
    assert seeded["needle"] == {"lengths": [1000], "required": True}
    assert seeded["settings"] == {"needle_seed": 7}
    profile_from_data("seeded", seeded)
