"""suites/mtp through the plugin: a twin without speculative decoding fails an MTP profile loudly,
and an attached server without a log source skips the log checks naming --gx10-logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_gx10.fake import FakeServer

MTP = Path(__file__).resolve().parents[2] / "suites" / "mtp"


@pytest.fixture(scope="module")
def plain_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A twin serving the reference model's name but with no speculative decoding."""
    profile = tmp_path_factory.mktemp("profile") / "plain.toml"
    profile.write_text(
        '[deployment]\nserved_model_name = "Qwen3.5-397B-A17B-FP8"\nmax_model_len = 262144\n'
        "tensor_parallel_size = 4\n[twin]\ntime_scale = 20.0\n"
    )
    log = tmp_path_factory.mktemp("log") / "server.log"
    with FakeServer(str(profile), log_path=log) as server:
        yield server.url, log


def test_mtp_profile_against_a_server_without_speculative_decoding_fails(
    pytester: pytest.Pytester, plain_twin: tuple[str, Path]
) -> None:
    """Every check that needs spec-decode evidence fails and says which evidence is missing."""
    url, log = plain_twin
    result = pytester.runpytest_subprocess(
        str(MTP),
        f"--gx10-endpoint={url}",
        "--gx10-profile=qwen3.5-397b-fp8-mtp2-gx10x4",
        f"--gx10-logs=file://{log}",
        "-p",
        "no:cacheprovider",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("failed", 0) >= 6
    result.stdout.fnmatch_lines(
        [
            "*no spec-decode counters on /metrics: the server runs without speculative decoding*expects mtp k=2*",
        ]
    )


def test_log_checks_skip_without_a_log_source(
    pytester: pytest.Pytester, plain_twin: tuple[str, Path]
) -> None:
    """Attached with no --gx10-logs: the log-based checks skip with a reason naming the switch."""
    url, _ = plain_twin
    result = pytester.runpytest_subprocess(
        str(MTP), f"--gx10-endpoint={url}", "-rs", "-p", "no:cacheprovider"
    )
    assert result.parseoutcomes().get("skipped", 0) >= 2
    result.stdout.fnmatch_lines(["*no log source: pass --gx10-logs=docker://NAME or file:///path*"])
