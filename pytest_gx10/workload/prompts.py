"""Prompts of an exact token count, as the server under test counts them.

The server's own /tokenize is the ruler (chat form when the chat endpoint is used, so the chat
template's tokens count too): a prompt sized with any other tokenizer would be off by the template
and by the model's merges, and prefill rates would be computed over the wrong numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_gx10.workload.filler import CONTINUE_INSTRUCTION, filler_sentences

__all__ = ["PromptSizeError", "SizedPrompt", "fit_tokens", "sized_prompt"]

Counter = Callable[[str], int]

# A word most tokenizers spell as one token, used to close the last gap exactly.
_PAD = " so"


class PromptSizeError(ValueError):
    """No prompt of the requested size could be built (target below the fixed parts, or no fit)."""


@dataclass(frozen=True)
class SizedPrompt:
    """A prompt and the number of tokens the server counts for it."""

    text: str
    tokens: int
    chat: bool

    def body(self) -> dict[str, Any]:
        """The request-body fragment: ``messages`` for chat, ``prompt`` for completions."""
        if self.chat:
            return {"messages": [{"role": "user", "content": self.text}]}
        return {"prompt": self.text}


def fit_tokens(
    render: Callable[[int, int], str], count: Counter, target: int, *, max_units: int
) -> tuple[str, int]:
    """Find text of exactly ``target`` tokens.

    ``render(units, pads)`` builds a text from the first ``units`` filler words plus ``pads`` pad
    words; its token count must grow with ``units``. Returns the text and its count. A handful of
    counts are asked for: a secant estimate, a bracket, then pads to close the last few tokens.
    """
    base = count(render(0, 0))
    if base > target:
        raise PromptSizeError(f"the fixed parts alone are {base} tokens, more than the {target} asked for")
    if base == target:
        return render(0, 0), base
    # Secant estimate from a sample, then bisection on the largest unit count that does not overshoot.
    sample = min(max_units, 256)
    per_unit = max((count(render(sample, 0)) - base) / sample, 1e-3)
    lo, lo_count = 0, base
    hi = max_units + 1
    guess = min(max_units, max(1, int((target - base) / per_unit)))
    for _ in range(64):
        if hi - lo <= 1:
            break
        n = count(render(guess, 0))
        if n == target:
            return render(guess, 0), n
        if n < target:
            lo, lo_count = guess, n
        else:
            hi = guess
        step = int((target - n) / per_unit)
        guess = guess + step if lo < guess + step < hi else (lo + hi) // 2
    # Close the gap with pad words; a pad may merge with its neighbour, so check each try.
    pads = target - lo_count
    for _ in range(8):
        if pads < 0:
            break
        text = render(lo, pads)
        n = count(text)
        if n == target:
            return text, n
        pads += target - n
    raise PromptSizeError(f"no text of exactly {target} tokens found (closest below: {lo_count})")


def sized_prompt(
    count: Counter,
    target_tokens: int,
    *,
    seed: int | str = 0,
    chat: bool = True,
    instruction: str = CONTINUE_INSTRUCTION,
    header: str = "",
) -> SizedPrompt:
    """Varied English filler then ``instruction``, exactly ``target_tokens`` as ``count`` says.

    ``header`` goes first; give each concurrent request its own so that prefix caching cannot share
    their prompts beyond the chat template.
    """
    words: list[str] = []
    sentences = filler_sentences(seed)
    # Enough words for any target: English filler runs above one token per word on every tokenizer.
    for sentence in itertools.islice(sentences, max(16, target_tokens // 8)):
        words.extend(sentence.split(" "))

    def render(units: int, pads: int) -> str:
        body = " ".join(words[:units])
        return f"{header}{body}{_PAD * pads}\n\n{instruction}"

    text, tokens = fit_tokens(render, count, target_tokens, max_units=len(words))
    return SizedPrompt(text=text, tokens=tokens, chat=chat)
