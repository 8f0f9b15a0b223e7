"""Greedy outputs: a fixed prompt set answered at temperature 0, kept in a baseline and compared.

A new wheel that changes kernels, the sampler or speculative decoding can change greedy text while
every throughput figure improves. vLLM's own CI accepts 80 % exact matches between MTP and
non-speculative greedy output, hence the default ``greedy_match_min`` of 0.8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GREEDY_MAX_TOKENS", "GREEDY_PROMPTS", "GreedyOutputs", "collect_greedy", "match_greedy"]

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


@dataclass(frozen=True)
class GreedyOutputs:
    """The prompt set's outputs (None where a request failed), or why none could be collected."""

    prompts: tuple[str, ...]
    max_tokens: int
    outputs: tuple[str | None, ...] = ()
    errors: tuple[str | None, ...] = ()
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "prompts": list(self.prompts),
            "max_tokens": self.max_tokens,
            "outputs": list(self.outputs),
            "errors": list(self.errors),
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GreedyOutputs:
        """Read back :meth:`as_dict` (raises ValueError, KeyError or TypeError when malformed)."""
        prompts = tuple(str(p) for p in data["prompts"])
        outputs = tuple(None if o is None else str(o) for o in data["outputs"])
        if len(outputs) != len(prompts):
            raise ValueError(f"{len(prompts)} greedy prompts but {len(outputs)} outputs")
        return cls(prompts=prompts, max_tokens=int(data["max_tokens"]), outputs=outputs)


def _text(response: Mapping[str, Any]) -> str:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    reasoning = message.get("reasoning_content") or message.get("reasoning") or ""
    return str(reasoning) + str(message.get("content") or "")


def collect_greedy(
    chat: Callable[[Mapping[str, Any]], Mapping[str, Any]],
    prompts: Sequence[str] = GREEDY_PROMPTS,
    max_tokens: int = GREEDY_MAX_TOKENS,
) -> GreedyOutputs:
    """Ask each prompt once (chat, temperature 0, fixed max_tokens); reasoning then content is the output.

    ``chat`` sends a non-streaming chat completion body and returns the response JSON, e.g.
    ``lambda body: client.complete(body, chat=True)`` with a :class:`~pytest_gx10.client.VllmClient`;
    whatever it raises is recorded as that prompt's error.
    """
    outputs: list[str | None] = []
    errors: list[str | None] = []
    for prompt in prompts:
        body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "temperature": 0}
        try:
            outputs.append(_text(chat(body)))
            errors.append(None)
        except Exception as exc:  # a failed request is a result to record, whatever failed
            outputs.append(None)
            errors.append(str(exc))
    return GreedyOutputs(tuple(prompts), max_tokens, tuple(outputs), tuple(errors))


@dataclass(frozen=True)
class GreedyMatch:
    """How many outputs match the baseline's exactly, and the first that differ."""

    matched: int
    compared: int
    differing: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Exact-match rate (1.0 when nothing was compared)."""
        return self.matched / self.compared if self.compared else 1.0


def match_greedy(baseline: GreedyOutputs, now: GreedyOutputs, show: int = 3) -> GreedyMatch:
    """Compare outputs prompt by prompt (by prompt text, so a reordered set still lines up)."""
    current = dict(zip(now.prompts, now.outputs, strict=False))
    matched = compared = 0
    differing: list[tuple[str, str | None, str | None]] = []
    for prompt, expected in zip(baseline.prompts, baseline.outputs, strict=True):
        if expected is None:
            continue  # the baseline's own request failed: nothing to hold the new run to
        compared += 1
        got = current.get(prompt)
        if got == expected:
            matched += 1
        elif len(differing) < show:
            differing.append((prompt, expected, got))
    return GreedyMatch(matched, compared, differing)
