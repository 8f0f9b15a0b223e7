"""Greedy outputs judge the answer: thinking turned off, content compared, reasoning kept beside it;
a baseline saved before that (reasoning+answer outputs, no ``judged`` key) is compared as before."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_gx10.report.baseline import (
    Baseline,
    BaselineError,
    Tolerances,
    compare,
    load_baseline,
    save_baseline,
)
from pytest_gx10.report.greedy import ANSWER, LEGACY, GreedyOutputs, collect_greedy, match_greedy

PROMPTS = ("p1", "p2", "p3")
DOC: dict[str, Any] = {"model": "m", "profile": "p", "server_version": "1.0"}


class Thinker:
    """A chat endpoint of a reasoning model: thinks unless the template is told not to."""

    def __init__(self, answers: Mapping[str, str], thinking: Mapping[str, str]) -> None:
        self.answers, self.thinking = answers, thinking
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, body: Mapping[str, Any]) -> dict[str, Any]:
        self.bodies.append(dict(body))
        prompt = body["messages"][0]["content"]
        if prompt == "p3":
            raise OSError("connection reset")
        thinks = (body.get("chat_template_kwargs") or {}).get("enable_thinking", True) is not False
        # Even with thinking off a server may send an (empty or short) reasoning field.
        message = {"content": self.answers[prompt], "reasoning": self.thinking[prompt] if thinks else "ok."}
        return {"choices": [{"message": message}]}


def _thinker() -> Thinker:
    return Thinker({"p1": "Paris", "p2": "391"}, {"p1": "The user asks", "p2": "17 x 23 is"})


def test_collect_greedy_asks_not_to_think_and_keeps_the_answer() -> None:
    """Each body carries enable_thinking false; the output is the content, the reasoning kept beside it."""
    chat = _thinker()
    out = collect_greedy(chat, prompts=PROMPTS, max_tokens=32)
    assert [b["chat_template_kwargs"] for b in chat.bodies] == [{"enable_thinking": False}] * 3
    assert all(b["temperature"] == 0 and b["max_tokens"] == 32 for b in chat.bodies)
    assert out.judged == ANSWER
    assert out.outputs == ("Paris", "391", None)
    assert out.reasoning == ("ok.", "ok.", None)
    assert out.errors == (None, None, "connection reset")
    assert out.whole() == ("ok.Paris", "ok.391", None)


def test_collect_greedy_reads_the_older_reasoning_content_key() -> None:
    """vLLM before 0.10 sent the reasoning as ``reasoning_content``: still kept, still not the output."""
    out = collect_greedy(
        lambda body: {"choices": [{"message": {"reasoning_content": "hmm", "content": "Paris"}}]},
        prompts=("p1",),
    )
    assert (out.outputs, out.reasoning) == (("Paris",), ("hmm",))


def test_collect_greedy_legacy_asks_as_before() -> None:
    """Held to an old baseline the run asks without the kwarg and keeps reasoning then content."""
    chat = _thinker()
    out = collect_greedy(chat, prompts=PROMPTS, judged=LEGACY)
    assert all("chat_template_kwargs" not in b for b in chat.bodies)
    assert out.outputs == ("The user asksParis", "17 x 23 is391", None)
    assert out.whole() == out.outputs
    with pytest.raises(ValueError, match="judged must be one of"):
        collect_greedy(chat, prompts=PROMPTS, judged="thinking")


def test_baseline_records_what_was_judged_and_the_reasoning(tmp_path: Path) -> None:
    """The saved JSON says ``judged: answer`` and holds the reasoning apart; it loads back the same."""
    path = tmp_path / "base.json"
    save_baseline(path, DOC, collect_greedy(_thinker(), prompts=PROMPTS))
    greedy = json.loads(path.read_text())["greedy"]
    assert greedy["judged"] == "answer"
    assert greedy["outputs"] == ["Paris", "391", None]
    assert greedy["reasoning"] == ["ok.", "ok.", None]
    loaded = load_baseline(path).greedy
    assert loaded is not None
    assert (loaded.judged, loaded.outputs, loaded.reasoning) == (
        ANSWER,
        ("Paris", "391", None),
        ("ok.", "ok.", None),
    )


def test_answers_are_compared_never_the_reasoning(tmp_path: Path) -> None:
    """Same answers with other reasoning match; another answer does not, its reasoning shown beside it."""
    base = GreedyOutputs(PROMPTS, 32, ("Paris", "391", "x"), reasoning=("a", "b", "c"))
    same_answers = GreedyOutputs(PROMPTS, 32, ("Paris", "391", "x"), reasoning=("z", "y", ""))
    match = match_greedy(base, same_answers)
    assert (match.matched, match.compared, match.judged) == (3, 3, ANSWER)
    other = GreedyOutputs(PROMPTS, 32, ("Paris", "392", "x"), reasoning=("a", "think twice", "c"))
    gate = compare(_baseline_of(tmp_path, base), DOC, tolerances=Tolerances(), greedy=other, greedy_min=0.8)
    assert gate.regressions == [
        "greedy outputs: 2/3 exact matches (67%), minimum 80%",
        "  prompt 'p2': baseline '391' | this run '392'",
        "    reasoning (not compared): baseline 'b' | this run 'think twice'",
    ]
    assert gate.as_dict()["greedy"]["judged"] == ANSWER


def _baseline_of(tmp_path: Path, greedy: GreedyOutputs) -> Baseline:
    """A baseline holding ``greedy``, through the file format (saved, loaded)."""
    path = tmp_path / "b.json"
    save_baseline(path, DOC, greedy)
    return load_baseline(path)


def _legacy_baseline(tmp_path: Path, outputs: list[str | None]) -> Path:
    """A baseline file as written before answers were judged: no ``judged``, no ``reasoning``."""
    path = tmp_path / "old.json"
    save_baseline(path, DOC, GreedyOutputs(PROMPTS, 32, tuple(outputs)))
    data = json.loads(path.read_text())
    del data["greedy"]["judged"], data["greedy"]["reasoning"]
    path.write_text(json.dumps(data))
    return path


def test_legacy_baseline_is_compared_as_reasoning_plus_answer(tmp_path: Path) -> None:
    """An old baseline (thinking text then answer) holds a run asked the old way: it passes, saying so."""
    base = load_baseline(_legacy_baseline(tmp_path, ["The user asksParis", "17 x 23 is391", None]))
    assert base.greedy is not None
    assert base.greedy.judged == LEGACY
    run = collect_greedy(_thinker(), prompts=PROMPTS, judged=base.greedy.judged)
    gate = compare(base, DOC, tolerances=Tolerances(), greedy=run)
    assert gate.passed
    (line,) = [n for n in gate.notes if n.startswith("greedy outputs")]
    assert line.startswith("greedy outputs: 2/2 exact matches (100%), minimum 80% (reasoning+answer compared")
    assert gate.as_dict()["greedy"]["judged"] == LEGACY
    # Answers alone would have matched nothing: what the gate judged is what the old run recorded.
    answers_only = collect_greedy(_thinker(), prompts=PROMPTS)
    assert match_greedy(base.greedy, answers_only).matched == 0


def test_legacy_baseline_against_a_new_run_compares_its_reasoning_plus_content(tmp_path: Path) -> None:
    """A new run's outputs (answers, reasoning apart) are joined back into reasoning+content for an old
    baseline; a difference is shown as whole texts, with the legacy wording on the line."""
    base = load_baseline(_legacy_baseline(tmp_path, ["ok.Paris", "ok.390", "x"]))
    assert base.greedy is not None
    run = collect_greedy(_thinker(), prompts=PROMPTS)
    gate = compare(base, DOC, tolerances=Tolerances(), greedy=run, greedy_min=0.8)
    assert gate.regressions[0].startswith(
        "greedy outputs: 1/3 exact matches (33%), minimum 80% (reasoning+answer compared, as the baseline"
    )
    assert gate.regressions[1] == "  prompt 'p2': baseline 'ok.390' | this run 'ok.391'"
    assert not any("reasoning (not compared)" in r for r in gate.regressions)


def test_unknown_judged_value_is_a_malformed_baseline(tmp_path: Path) -> None:
    """A ``judged`` this version does not know is refused, naming it."""
    path = tmp_path / "b.json"
    save_baseline(path, DOC, GreedyOutputs(PROMPTS, 32, ("a", "b", "c")))
    data = json.loads(path.read_text())
    data["greedy"]["judged"] = "thinking"
    path.write_text(json.dumps(data))
    with pytest.raises(BaselineError, match="'judged' is 'thinking'"):
        load_baseline(path)
