"""The needle workload: exact-size prompts, depth placement, seeded codes, retrieval; the twin's horizon."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.fake.model import wrong_code
from pytest_gx10.servers import VllmServer
from pytest_gx10.workload import NEEDLE_QUESTION, needle_line, needle_prompt, retrieved, secret_code

NEEDLE_SUITE = Path(__file__).resolve().parents[2] / "suites" / "needle"

TINY = """
[profile]
name = "tiny-needle"

[deployment]
served_model_name = "tiny-model"
max_model_len = 4096

[twin]
prefill_tps = 100000.0
decode_tps = 1000.0
time_scale = 20.0
needle_horizon_tokens = 600

[needle]
lengths = [400, 900]
depths = [0.5]
max_tokens = 32
"""


@pytest.fixture(scope="module")
def count() -> Iterator[Callable[[str], int]]:
    """Chat-form token counts from the twin of the smollm2-cpu profile (no reasoning block)."""
    with FakeServer("smollm2-cpu", time_scale=100) as server, VllmClient(server.url) as client:
        yield lambda text: VllmServer(client).count_tokens(messages=[{"role": "user", "content": text}])


@pytest.mark.parametrize("target", [120, 777, 3000])
def test_prompt_is_exactly_the_requested_tokens(count: Callable[[str], int], target: int) -> None:
    """The whole chat request, template included, is exactly the target; needle and question are in."""
    prompt = needle_prompt(count, target, depth=0.5, code="BANANA-MOOSE-7421")
    assert prompt.tokens == target
    assert count(prompt.text) == target
    assert prompt.text.count(needle_line("BANANA-MOOSE-7421")) == 1
    assert prompt.text.endswith("\n\n" + NEEDLE_QUESTION)


@pytest.mark.parametrize("depth", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_needle_sits_at_a_sentence_boundary_near_its_depth(count: Callable[[str], int], depth: float) -> None:
    """The needle follows a full stop (or opens the text), within a sentence of the requested depth."""
    prompt = needle_prompt(count, 2000, depth=depth, code="OTTER-TULIP-1234")
    assert abs(prompt.placed_depth - depth) < 0.03
    before = prompt.text.split(needle_line("OTTER-TULIP-1234"))[0]
    assert before == "" or before.endswith(". ")
    words_before = len(before.split())
    assert words_before == round(prompt.placed_depth * prompt.haystack_words)


def test_depth_outside_zero_to_one_is_refused(count: Callable[[str], int]) -> None:
    """A depth of 1.5 is a caller's mistake, said plainly."""
    with pytest.raises(ValueError, match="depth must be between 0 and 1"):
        needle_prompt(count, 500, depth=1.5, code="A-B-1")


def test_codes_are_seeded_and_shaped_like_the_posts() -> None:
    """Same seed, same code; WORD-WORD-dddd with two different words; no seed draws anew."""
    assert secret_code(7) == secret_code(7)
    assert len({secret_code(s) for s in range(20)}) > 15
    first, second, digits = secret_code("x").split("-")
    assert first.isupper()
    assert second.isupper()
    assert first != second
    assert len(digits) == 4
    assert digits.isdigit()
    assert len({secret_code() for _ in range(10)}) > 1


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("BANANA-MOOSE-7421", True),
        ("\n\nBANANA-MOOSE-7421\n", True),
        ("The code is BANANA-MOOSE-7421.", True),
        ("banana-moose-7421", False),
        ("BANANA-MOOSE-74210", False),
        ("BANANA-MOOSE-7421-X", False),
        ("XBANANA-MOOSE-7421", False),
        ("BANANA MOOSE 7421", False),
        ("", False),
    ],
)
def test_retrieved_is_an_exact_match_of_the_code(answer: str, expected: bool) -> None:
    """Only the exact code counts, text around it allowed."""
    assert retrieved(answer, "BANANA-MOOSE-7421") is expected


def test_twin_wrong_code_differs() -> None:
    """The twin's wrong answer beyond its horizon is never the code itself."""
    assert wrong_code("BANANA-MOOSE-7421") == "BANANA-MOOSE-2976"
    assert wrong_code("ALPHA-BETA") == "BETA-ALPHA"
    assert wrong_code("ABBA") != "ABBA"


def test_twin_loses_the_needle_beyond_its_horizon(pytester: pytest.Pytester) -> None:
    """Within the horizon the suite passes; beyond it, it fails naming the expected code and the answer."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(TINY)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(NEEDLE_SUITE),
        f"--gx10-profile={profile}",
        f"--gx10-json={out}",
        "--gx10-needle-seed=3",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    rows = {r["case"]: r for r in json.loads(out.read_text())["needle"]}
    assert set(rows) == {"400@0.50", "900@0.50"}
    assert rows["400@0.50"]["retrieved"] is True
    missed = rows["900@0.50"]
    assert missed["retrieved"] is False
    assert missed["input_tokens"] == 900
    code = missed["code"]
    assert code == secret_code("3:900@0.50")
    result.stdout.fnmatch_lines(
        [f"*900@0.50: needle not retrieved: expected '{code}' in the answer, got '{wrong_code(code)}'*"]
    )


THINKER = (
    TINY.replace("max_model_len = 4096\n", 'max_model_len = 4096\nreasoning_parser = "qwen3"\n')
    .replace("needle_horizon_tokens = 600\n", "needle_horizon_tokens = 600\nreasoning_tokens = [12, 16]\n")
    .replace("max_tokens = 32", "max_tokens = 64")  # the thinking, then the code
)

# Loaded into the suite's run: the model "sees" the code while thinking on every needle request,
# whatever it then answers (the twin's own reasoning is filler words, never the code).
CODE_IN_REASONING = """
import re

from pytest_gx10.client import VllmClient

NEEDLE = re.compile(r"secret access code for Project Aurora is ([A-Z]+-[A-Z]+-[0-9]{4})")
_chat_stream = VllmClient.chat_stream


def chat_stream(self, body, **kwargs):
    result = _chat_stream(self, body, **kwargs)
    found = NEEDLE.search(body["messages"][0]["content"])
    if found is not None:
        result.reasoning = f"The note says the code is {found.group(1)}. " + result.reasoning
    return result


VllmClient.chat_stream = chat_stream
"""


def test_a_code_only_in_the_reasoning_is_not_retrieved(pytester: pytest.Pytester) -> None:
    """With a reasoning profile the suite judges the answer: beyond the twin's horizon the reasoning
    holds the right code and the answer a wrong one, and the needle is not retrieved."""
    assert "reasoning_parser" in THINKER
    assert "reasoning_tokens = [12, 16]" in THINKER
    profile = pytester.path / "thinker.toml"
    profile.write_text(THINKER)
    pytester.makepyfile(code_in_reasoning=CODE_IN_REASONING)
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        str(NEEDLE_SUITE),
        f"--gx10-profile={profile}",
        f"--gx10-json={out}",
        "--gx10-needle-seed=3",
        "-p",
        "code_in_reasoning",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1, failed=1)
    rows = {r["case"]: r for r in json.loads(out.read_text())["needle"]}
    for row in rows.values():
        code = row["code"]
        assert row["reasoning_head"].startswith(f"The note says the code is {code}. ")
        assert "Thinking Process" in row["reasoning_head"]  # the twin's own thinking follows
        assert retrieved(row["reasoning_head"], code)
    assert rows["400@0.50"]["retrieved"] is True
    assert rows["400@0.50"]["answer"].strip() == rows["400@0.50"]["code"]
    missed = rows["900@0.50"]
    assert missed["retrieved"] is False
    assert missed["answer"].strip() == wrong_code(missed["code"])
    assert not retrieved(missed["answer"], missed["code"])
    result.stdout.fnmatch_lines(
        [f"*900@0.50: needle not retrieved: expected '{missed['code']}' in the answer*reasoning head: *"]
    )


def test_lengths_beyond_max_model_len_are_skipped(pytester: pytest.Pytester) -> None:
    """A haystack the served context cannot hold is not applicable: skipped, naming max_model_len."""
    profile = pytester.path / "tiny.toml"
    profile.write_text(TINY)
    result = pytester.runpytest_subprocess(
        str(NEEDLE_SUITE),
        f"--gx10-profile={profile}",
        "--gx10-needle-lengths=5000",
        "-p",
        "no:cacheprovider",
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*5000 prompt tokens + 32 max_tokens exceed the served max_model_len 4096*"])
