"""Needle in a haystack: one secret line hidden in varied filler, then a question about it.

The reference post hid ``IMPORTANT: The secret access code for Project Aurora is BANANA-MOOSE-7421.
Remember this exactly.`` at about half depth of a 200 000-token haystack and asked for the code at the
end. Here the code is drawn from a seed (a fixed code could be learned, or cached by a proxy), the
needle sits at a sentence boundary at the requested depth, and the whole prompt, chat template
included, is exactly the requested number of tokens as the server's own /tokenize counts them.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_gx10.workload.filler import filler_sentences
from pytest_gx10.workload.prompts import fit_tokens

__all__ = [
    "NEEDLE_QUESTION",
    "NeedlePrompt",
    "needle_line",
    "needle_prompt",
    "retrieved",
    "secret_code",
]

NEEDLE_QUESTION = (
    "Based on the text above, what is the secret access code for Project Aurora? "
    "Reply with just the code itself, nothing else."
)

# Upper-case words of one or two syllables, as in the post's BANANA-MOOSE; none of them occurs in the
# filler, so the code cannot be guessed from the haystack.
_CODE_WORDS = (
    "APPLE", "BANANA", "CACTUS", "DOLPHIN", "EMBER", "FALCON", "GINGER", "HARBOR", "IGLOO", "JASMINE",
    "KETTLE", "LEMON", "MOOSE", "NUTMEG", "OTTER", "PEPPER", "QUARTZ", "RAVEN", "SALMON", "TULIP",
    "UMBER", "VELVET", "WALRUS", "YONDER", "ZEBRA", "COBALT", "MAPLE", "PEBBLE", "TIGER", "WILLOW",
)  # fmt: skip

# A word most tokenizers spell as one token, used to close the last gap exactly (as in prompts.py).
_PAD = " so"

Counter = Callable[[str], int]


def secret_code(seed: int | str | None = None) -> str:
    """A code like ``BANANA-MOOSE-7421``: two different words and four digits, drawn from ``seed``.

    ``None`` draws a new code from the system's randomness.
    """
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    first, second = rng.sample(_CODE_WORDS, 2)
    return f"{first}-{second}-{rng.randint(1000, 9999)}"


def needle_line(code: str) -> str:
    """The post's needle sentence carrying ``code``."""
    return f"IMPORTANT: The secret access code for Project Aurora is {code}. Remember this exactly."


def retrieved(answer_content: str, code: str) -> bool:
    """True when ``code`` appears, exactly and as a whole, in the final answer.

    Give the answer's content, not its reasoning trace: a model that finds the code while thinking
    and then answers something else has not retrieved it. Case and every character count; text
    around the code ("The code is BANANA-MOOSE-7421.") is allowed, a longer code is not.
    """
    pattern = rf"(?<![A-Za-z0-9-]){re.escape(code)}(?![A-Za-z0-9]|-[A-Za-z0-9])"
    return re.search(pattern, answer_content) is not None


@dataclass(frozen=True)
class NeedlePrompt:
    """A haystack with the needle in it and the question, and where the needle ended up."""

    text: str
    tokens: int  # as the server counts the whole request (chat template included)
    code: str
    depth: float  # requested: fraction of the haystack before the needle
    placed_depth: float  # actual: haystack words before the needle / haystack words
    haystack_words: int

    def body(self) -> dict[str, Any]:
        """The request-body fragment (``messages``)."""
        return {"messages": [{"role": "user", "content": self.text}]}


def _sentence_words(seed: int | str, target_tokens: int) -> tuple[list[str], list[int]]:
    """Filler words and the word indices where sentences start (plus the end)."""
    words: list[str] = []
    starts: list[int] = []
    # Enough words for any target: English filler runs above one token per word on every tokenizer.
    for sentence in itertools.islice(filler_sentences(seed), max(16, target_tokens // 8)):
        starts.append(len(words))
        words.extend(sentence.split(" "))
    starts.append(len(words))
    return words, starts


def _boundary(starts: list[int], units: int, depth: float) -> int:
    """The sentence start within the first ``units`` words nearest ``depth`` of them."""
    want = depth * units
    i = bisect.bisect_right(starts, want)
    below = starts[i - 1] if i > 0 else 0
    above = starts[i] if i < len(starts) and starts[i] <= units else below
    return above if above - want < want - below else below


def needle_prompt(
    count: Counter,
    target_tokens: int,
    *,
    depth: float,
    code: str,
    seed: int | str = 0,
) -> NeedlePrompt:
    """Filler with :func:`needle_line` at ``depth`` and :data:`NEEDLE_QUESTION`, exactly ``target_tokens``.

    ``count`` counts a user message's tokens as the server does (chat form: /tokenize with
    ``messages``). Raises :class:`~pytest_gx10.workload.PromptSizeError` when no fit is possible.
    """
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must be between 0 and 1, got {depth!r}")
    words, starts = _sentence_words(seed, target_tokens)
    needle = needle_line(code)

    def split(units: int) -> int:
        return _boundary(starts, units, depth)

    units_of: dict[int, int] = {}  # hash of a rendered text -> its filler words

    def render(units: int, pads: int) -> str:
        at = split(units)
        parts = [" ".join(words[:at]), needle, " ".join(words[at:units])]
        haystack = " ".join(p for p in parts if p)
        text = f"{haystack}{_PAD * pads}\n\n{NEEDLE_QUESTION}"
        units_of[hash(text)] = units
        return text

    text, tokens = fit_tokens(render, count, target_tokens, max_units=len(words))
    units = units_of[hash(text)]
    at = split(units)
    return NeedlePrompt(
        text=text,
        tokens=tokens,
        code=code,
        depth=depth,
        placed_depth=at / units if units else 0.0,
        haystack_words=units,
    )
