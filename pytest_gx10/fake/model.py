"""What the twin's "model" writes: a deterministic continuation of a prompt, in vocabulary words.

The text is seeded from the prompt (and the request's seed), so the same request always gets the same
answer, and every token is a whole vocabulary word or punctuation mark, so the streamed text, the
detokenized ids and the usage counts agree exactly. A prompt that hides a "secret ... is CODE" needle
gets CODE as its answer, which lets the needle suite pass against the twin; beyond the profile's
retrieval horizon (``twin.needle_horizon_tokens``) it answers a wrong code instead, as a small model
loses a needle in a long context, so that the suite's failure is exercised too.
"""

from __future__ import annotations

import hashlib
import random
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_gx10.fake.tokenizer import Tokenizer

__all__ = ["REASONING_TOKENS", "Script", "write_script", "wrong_code"]

_NEEDLE_RE = re.compile(r"secret [\w ]{0,60}? is ([A-Za-z0-9][A-Za-z0-9-]{2,}[A-Za-z0-9])")

# Natural lengths, in tokens: moderate, so a default request finishes with "stop" in a few dozen steps.
# The <think> block's is the profile's twin.reasoning_tokens (this default when none is given).
REASONING_TOKENS = (24, 120)
_ANSWER_TOKENS = (16, 80)
_COMPLETION_TOKENS = (20, 160)


@dataclass
class Script:
    """An endless, lazily written continuation plus where the model would naturally stop.

    ``token(i)`` is the i-th generated token when no stop token intervenes; at ``natural_len`` the
    model emits ``eos_id`` unless the request ignores EOS or still owes ``min_tokens``.
    """

    head: list[int]  # fixed opening tokens (reasoning block, needle answer)
    natural_len: int
    eos_id: int
    rng: random.Random
    words: tuple[int, ...]
    period_id: int
    capital_ids: dict[int, int]
    first_ids: dict[int, int] | None  # set when the body opens a text (no leading space)
    _body: list[int]

    def token(self, i: int) -> int:
        """The i-th token of the continuation (never EOS)."""
        if i < len(self.head):
            return self.head[i]
        j = i - len(self.head)
        while len(self._body) <= j:
            self._write_sentence()
        return self._body[j]

    def _write_sentence(self) -> None:
        n = self.rng.randint(6, 16)
        first = self.rng.choice(self.words)
        capitals = self.first_ids if self.first_ids is not None and not self._body else self.capital_ids
        self._body.append(capitals.get(first, first))
        self._body.extend(self.rng.choice(self.words) for _ in range(n - 2))
        self._body.append(self.period_id)


def _seed(prompt_ids: Sequence[int], seed: int | None, kind: str) -> int:
    digest = hashlib.blake2b(array("q", prompt_ids).tobytes(), digest_size=8)
    digest.update(f"{kind}:{seed}".encode())
    return int.from_bytes(digest.digest(), "big")


def wrong_code(code: str) -> str:
    """The code a confused model gives instead of ``code``: each digit moved by 5, or the parts reversed.

    Deterministic and never equal to ``code``.
    """
    if any(c.isdigit() for c in code):
        return "".join(str((int(c) + 5) % 10) if c.isdigit() else c for c in code)
    parts = code.split("-")
    wrong = "-".join(reversed(parts))
    return wrong if wrong != code else f"{code}-0"


def _words_of(tokenizer: Tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def write_script(
    tokenizer: Tokenizer,
    prompt_ids: Sequence[int],
    prompt_text: str,
    *,
    kind: str,
    reasoning: bool,
    seed: int | None = None,
    needle_horizon_tokens: int | None = None,
    reasoning_tokens: tuple[int, int] = REASONING_TOKENS,
) -> Script:
    """The continuation for one request.

    ``kind`` is "chat" (stops at ``<|im_end|>``) or "completion" (stops at ``<|endoftext|>``);
    ``reasoning`` opens the answer with a ``<think>`` block, as Qwen3 models do, its length drawn
    from ``reasoning_tokens`` (``[min, max]``, ``<think>`` and its fixed opening words counted; the
    block holds one token more: the closing "." and newline, not ``<think>``). A chat prompt longer
    than ``needle_horizon_tokens`` gets a wrong code for its needle.
    """
    rng = random.Random(_seed(prompt_ids, seed, kind))
    words = tokenizer.word_ids
    period = tokenizer.token_id(".")
    assert period is not None
    head: list[int] = []
    if reasoning:
        n_think = rng.randint(*reasoning_tokens)
        nl = tokenizer.token_id("\n")
        nl2 = tokenizer.token_id("\n\n")
        assert nl is not None
        assert nl2 is not None
        head.append(tokenizer.think_start_id)
        head.append(nl)
        head.extend(_words_of(tokenizer, "Thinking Process:\n\n1. Analyze the Request:"))
        while len(head) < n_think:
            head.append(rng.choice(words))
        head.extend((period, nl, tokenizer.think_end_id, nl2))
    needle = _NEEDLE_RE.search(prompt_text) if kind == "chat" else None
    if needle is not None:
        code = needle.group(1)
        if needle_horizon_tokens is not None and len(prompt_ids) > needle_horizon_tokens:
            code = wrong_code(code)
        head.extend(_words_of(tokenizer, code))
        natural_len = len(head)
    else:
        lo, hi = _ANSWER_TOKENS if kind == "chat" else _COMPLETION_TOKENS
        natural_len = len(head) + rng.randint(lo, hi)
    eos = tokenizer.im_end_id if kind == "chat" else tokenizer.eos_token_id
    # A chat answer starts a fresh text ("Sound ..."); a completion continues the prompt (" Sound ...").
    first_ids = tokenizer.bare_capitalized if kind == "chat" else None
    return Script(head, natural_len, eos, rng, words, period, tokenizer.capitalized, first_ids, [])
