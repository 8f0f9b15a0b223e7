"""The adapter in a run: named, detected, registered by another plugin, and what a run does without
an engine's own facts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.tinyprofile import tiny_profile

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "suites"

TOY_PLUGIN = '''
from pytest_gx10.servers import VllmServer


class ToyServer(VllmServer):
    """vLLM's wire, under another name: what a plugin for a fork would register."""

    name = "toy"
    label = "Toy engine"
    priority = 100

    @classmethod
    def detect(cls, client, models):
        return any(m.get("owned_by") == "vllm" for m in models)


def pytest_gx10_server_adapters():
    return [ToyServer]
'''


def test_a_plugin_registers_an_adapter_by_hook(pytester: pytest.Pytester) -> None:
    """A plugin's adapter is asked first (its priority) and named in the JSON and the summary."""
    pytester.makepyfile(gx10_toy=TOY_PLUGIN)
    profile = pytester.path / "tiny.toml"
    profile.write_text(tiny_profile((1,)))
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"), str(SUITES / "perf"), "-k", "version or tokenize or sweep",
        f"--gx10-profile={profile}", f"--gx10-json={out}", "-p", "no:cacheprovider", "-p", "gx10_toy",
    )  # fmt: skip
    result.assert_outcomes(passed=5)  # the version, the round trip, two prompt counts, N=1
    doc = json.loads(out.read_text())
    assert (doc["server"], doc["server_label"]) == ("toy", "Toy engine")
    result.stdout.fnmatch_lines(["*Toy engine 0.32.0*"])


def test_the_generic_adapter_sizes_prompts_by_usage(pytester: pytest.Pytester) -> None:
    """--gx10-server=openai on the twin: the sweep's prompts are exact by usage.prompt_tokens alone,
    and the checks that need a tokenizer endpoint or a version skip naming what is missing.
    """
    profile = pytester.path / "tiny.toml"
    profile.write_text(tiny_profile((1,)))
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(SUITES / "perf"), str(SUITES / "health"), f"--gx10-profile={profile}", "--gx10-server=openai",
        f"--gx10-json={out}", "-p", "no:cacheprovider", "-rs",
    )  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(
        [
            "SKIPPED * an OpenAI-compatible server gives no version (openai adapter)",
            "SKIPPED * an OpenAI-compatible server gives no tokenize (openai adapter)",
        ]
    )
    doc = json.loads(out.read_text())
    assert doc["server"] == "openai"
    assert "usage.prompt_tokens" in doc["token_counting"]
    point = doc["sweep"][0]
    assert point["ok_requests"] == 1
    assert [r["prompt_tokens"] for r in point["requests"]] == [300]  # the profile's size, met exactly


def test_an_unknown_adapter_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A misspelt --gx10-server stops the run before any test, listing the adapters there are."""
    result = pytester.runpytest_subprocess(
        str(SUITES / "health"), "--gx10-server=vlm", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no server adapter named 'vlm' (known: vllm, llama.cpp, openai)*"])
