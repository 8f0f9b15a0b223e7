"""Greedy outputs: a fixed prompt set answered at temperature 0, kept in a baseline and compared.

A new wheel that changes kernels, the sampler or speculative decoding can change greedy text while
every throughput figure improves. vLLM's own CI accepts 80 % exact matches between MTP and
non-speculative greedy output, hence the default ``greedy_match_min`` of 0.8.

What is compared is the answer: each request asks the chat template not to think
(``chat_template_kwargs: {"enable_thinking": false}``; vLLM and llama.cpp's server pass it to the
template, a template that knows no such variable ignores it) and the output is the message's
``content``. Within 32 tokens a reasoning model would otherwise still be thinking, and the gate
would judge its thinking. Any reasoning the server returns anyway is kept beside the answer,
shown, never compared. A baseline saved before answers were judged (no ``judged`` key) holds
reasoning followed by content: such a baseline is compared the old way (see :data:`LEGACY`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANSWER",
    "GREEDY_MAX_TOKENS",
    "GREEDY_PROMPTS",
    "LEGACY",
    "GreedyDiff",
    "GreedyMatch",
    "GreedyOutputs",
    "collect_greedy",
    "match_greedy",
]

GREEDY_MAX_TOKENS = 32
GREEDY_PROMPTS: tuple[str, ...] = (
    "Name the capital of France in one word.",
    "Count from one to ten in words, separated by commas.",
    "Write one sentence about a lighthouse keeper.",
    "What is 17 multiplied by 23? Answer with the number only.",
    "List three primary colours.",
    "Translate 'good morning' into Spanish.",
    "Give a one-line definition of speculative decoding.",
    "Complete the proverb: a stitch in time ...",
)

ANSWER = "answer"
"""Outputs are the answers (``content``), asked for with thinking turned off."""
LEGACY = "reasoning+answer"
"""Outputs are reasoning followed by content, asked for with the template's own thinking default:
what a baseline saved before answers were judged holds (it has no ``judged`` key)."""
JUDGED = (ANSWER, LEGACY)
NO_THINKING = {"enable_thinking": False}


@dataclass(frozen=True)
class GreedyOutputs:
    """The prompt set's outputs (None where a request failed), or why none could be collected.

    ``outputs`` are what is compared; ``reasoning`` is whatever reasoning came with each (empty
    when none), recorded and shown, never compared. ``judged`` says what ``outputs`` hold.
    """

    prompts: tuple[str, ...]
    max_tokens: int
    outputs: tuple[str | None, ...] = ()
    errors: tuple[str | None, ...] = ()
    error: str | None = None
    reasoning: tuple[str | None, ...] = ()
    judged: str = ANSWER

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "prompts": list(self.prompts),
            "max_tokens": self.max_tokens,
            "judged": self.judged,
            "outputs": list(self.outputs),
            "reasoning": list(self.reasoning),
            "errors": list(self.errors),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GreedyOutputs:
        """Read back :meth:`as_dict` (raises ValueError, KeyError or TypeError when malformed).

        Without a ``judged`` key the outputs are a baseline's from before answers were judged:
        :data:`LEGACY`.
        """
        prompts = tuple(str(p) for p in data["prompts"])
        outputs = tuple(None if o is None else str(o) for o in data["outputs"])
        if len(outputs) != len(prompts):
            raise ValueError(f"{len(prompts)} greedy prompts but {len(outputs)} outputs")
        judged = data.get("judged", LEGACY)
        if judged not in JUDGED:
            raise ValueError(f"'judged' is {judged!r}, expected one of {', '.join(map(repr, JUDGED))}")
        reasoning = tuple(None if r is None else str(r) for r in data.get("reasoning") or ())
        if reasoning and len(reasoning) != len(prompts):
            raise ValueError(f"{len(prompts)} greedy prompts but {len(reasoning)} reasoning texts")
        return cls(
            prompts=prompts,
            max_tokens=int(data["max_tokens"]),
            outputs=outputs,
            reasoning=reasoning,
            judged=str(judged),
        )

    def reasoning_of(self, index: int) -> str | None:
        """The reasoning that came with output ``index`` (None when not recorded)."""
        return self.reasoning[index] if index < len(self.reasoning) else None

    def whole(self) -> tuple[str | None, ...]:
        """Reasoning followed by content, per prompt: what a :data:`LEGACY` baseline compares."""
        if self.judged == LEGACY:
            return self.outputs
        return tuple(
            None if out is None else (self.reasoning_of(i) or "") + out for i, out in enumerate(self.outputs)
        )


def _message(response: Mapping[str, Any]) -> tuple[str, str]:
    """The first choice's (reasoning, content); vLLM before 0.10 named the reasoning ``reasoning_content``."""
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return str(reasoning), str(message.get("content") or "")


def collect_greedy(
    chat: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    prompts: Sequence[str] = GREEDY_PROMPTS,
    max_tokens: int = GREEDY_MAX_TOKENS,
    *,
    judged: str = ANSWER,
) -> GreedyOutputs:
    """Ask each prompt once (chat, temperature 0, fixed max_tokens) and keep the answers.

    With ``judged`` :data:`ANSWER` (the default) each request turns thinking off and the output
    is the content, its reasoning (if any) kept beside it; with :data:`LEGACY` the request is
    sent as before answers were judged and the output is reasoning then content, to hold a run
    to a baseline of that kind. ``chat`` sends a non-streaming chat completion body and returns
    the response JSON, e.g. ``lambda body: client.complete(body, chat=True)`` with a
    :class:`~pytest_gx10.client.VllmClient`; whatever it raises is recorded as that prompt's error.
    """
    if judged not in JUDGED:
        raise ValueError(f"judged must be one of {', '.join(map(repr, JUDGED))}, got {judged!r}")
    outputs: list[str | None] = []
    reasoning: list[str | None] = []
    errors: list[str | None] = []
    for prompt in prompts:
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        if judged == ANSWER:
            body["chat_template_kwargs"] = dict(NO_THINKING)
        try:
            thought, content = _message(chat(body))
        except Exception as exc:  # a failed request is a result to record, whatever failed
            outputs.append(None)
            reasoning.append(None)
            errors.append(str(exc))
            continue
        outputs.append(content if judged == ANSWER else thought + content)
        reasoning.append(thought)
        errors.append(None)
    return GreedyOutputs(
        tuple(prompts), max_tokens, tuple(outputs), tuple(errors), reasoning=tuple(reasoning), judged=judged
    )


@dataclass(frozen=True)
class GreedyDiff:
    """One prompt whose outputs differ, with the reasoning that came with each side (never compared)."""

    prompt: str
    expected: str | None
    got: str | None
    expected_reasoning: str | None = None
    got_reasoning: str | None = None


@dataclass(frozen=True)
class GreedyMatch:
    """How many outputs match the baseline's exactly, and the first that differ.

    ``judged`` is what was compared: :data:`ANSWER`, or :data:`LEGACY` when either side holds
    reasoning+answer outputs (then both sides' reasoning+answer texts are compared).
    """

    matched: int
    compared: int
    differing: list[GreedyDiff] = field(default_factory=list)
    judged: str = ANSWER

    @property
    def rate(self) -> float:
        """Exact-match rate (1.0 when nothing was compared)."""
        return self.matched / self.compared if self.compared else 1.0


def match_greedy(baseline: GreedyOutputs, now: GreedyOutputs, show: int = 3) -> GreedyMatch:
    """Compare outputs prompt by prompt (by prompt text, so a reordered set still lines up).

    Answers are compared with answers; when either side is :data:`LEGACY`, reasoning+answer with
    reasoning+answer, as before answers were judged.
    """
    judged = ANSWER if baseline.judged == now.judged == ANSWER else LEGACY
    base_out = baseline.outputs if judged == ANSWER else baseline.whole()
    now_out = now.outputs if judged == ANSWER else now.whole()
    current = {
        p: (out, now.reasoning_of(i)) for i, (p, out) in enumerate(zip(now.prompts, now_out, strict=False))
    }
    matched = compared = 0
    differing: list[GreedyDiff] = []
    for i, (prompt, expected) in enumerate(zip(baseline.prompts, base_out, strict=True)):
        if expected is None:
            continue  # the baseline's own request failed: nothing to hold the new run to
        compared += 1
        got, got_reasoning = current.get(prompt, (None, None))
        if got == expected:
            matched += 1
        elif len(differing) < show:
            differing.append(GreedyDiff(prompt, expected, got, baseline.reasoning_of(i), got_reasoning))
    return GreedyMatch(matched, compared, differing, judged)
