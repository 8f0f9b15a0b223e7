"""The twin's log probabilities, in vLLM 0.32's chat, completions and prompt-logprobs shapes.

The twin samples nothing, so it makes its distributions up, deterministically (the same request, the
same numbers) and consistently: at each step the top tokens' probabilities fall off from a first one
between 0.4 and 0.95, so they sum to less than 1, every logprob is at most 0 and the lists are sorted
highest first. A generated token is always its step's top token, as greedy sampling (temperature 0)
picks it; a prompt token ranks anywhere from 1 to 4 among its step's candidates.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.fake.tokenizer import Tokenizer

__all__ = ["LogprobWriter", "Step"]

_MIN_LOGPROB = -9999.0  # vLLM's floor for -inf


@dataclass(frozen=True)
class Step:
    """One position: its token's id, logprob and rank, and the top candidates highest first."""

    token_id: int
    logprob: float
    rank: int
    top: tuple[tuple[int, float], ...]


@dataclass(frozen=True)
class LogprobWriter:
    """Writes the logprobs of one request's tokens; ``key`` tells requests apart (its prompt)."""

    tokenizer: Tokenizer
    key: bytes
    as_token_ids: bool = False  # return_tokens_as_token_ids: "token_id:N" instead of the text

    def step(self, position: int, token_id: int, n_top: int, rank: int = 1) -> Step:
        """The distribution at ``position`` (generated tokens from 0, prompt tokens negative)."""
        digest = hashlib.blake2b(self.key + position.to_bytes(8, "big", signed=True), digest_size=8)
        rng = random.Random(int.from_bytes(digest.digest(), "big"))
        size = max(n_top, rank)
        first = rng.uniform(0.4, 0.95)
        probs = [first] + [(1.0 - first) * 0.5**j for j in range(1, size)]
        logprobs = [max(math.log(p), _MIN_LOGPROB) for p in probs]
        words = self.tokenizer.word_ids
        ids: list[int] = []
        for r in range(1, size + 1):
            if r == rank:
                ids.append(token_id)
                continue
            candidate = rng.choice(words)
            while candidate == token_id or candidate in ids:
                candidate = rng.choice(words)
            ids.append(candidate)
        return Step(token_id, logprobs[rank - 1], rank, tuple(zip(ids, logprobs, strict=True))[:n_top])

    def token(self, token_id: int) -> str:
        """A token as the logprobs name it."""
        if self.as_token_ids:
            return f"token_id:{token_id}"
        return self.tokenizer.decode([token_id])

    # --- chat -------------------------------------------------------------------------------------

    def chat(self, token_ids: Sequence[int], start: int, n_top: int) -> dict[str, Any]:
        """``choices[].logprobs`` of a chat answer: ``content[]`` of token, logprob, bytes, top_logprobs."""
        content = []
        for i, token_id in enumerate(token_ids):
            step = self.step(start + i, token_id, n_top)
            entry = self._chat_entry(token_id, step.logprob)
            entry["top_logprobs"] = [self._chat_entry(t, lp) for t, lp in step.top]
            content.append(entry)
        return {"content": content}

    def _chat_entry(self, token_id: int, logprob: float) -> dict[str, Any]:
        text = self.token(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8", errors="replace"))}

    # --- completions ------------------------------------------------------------------------------

    def completion(
        self,
        token_ids: Sequence[int],
        start: int,
        n_top: int,
        text_offset: int = 0,
        prompt: Sequence[int] = (),
    ) -> dict[str, Any]:
        """``choices[].logprobs`` of a completion: text_offset, token_logprobs, tokens, top_logprobs.

        ``prompt`` (echo) comes first: its first token has no logprob, the others theirs as prompt
        tokens. A generated step lists its top ``max(n_top, 1)`` tokens (the chosen one among them);
        a prompt step its token and the top ``n_top``, as vLLM's ``n_top >= i`` filter keeps them.
        """
        offsets: list[int] = []
        token_logprobs: list[float | None] = []
        tokens: list[str] = []
        tops: list[dict[str, float] | None] = []
        offset = text_offset
        for i, token_id in enumerate(prompt):
            text = self.token(token_id)
            tokens.append(text)
            offsets.append(offset)
            offset += len(text)
            if i == 0:
                token_logprobs.append(None)
                tops.append(None)
                continue
            step = self.prompt_step(i, token_id, n_top)
            token_logprobs.append(step.logprob)
            entries = [(step.token_id, step.logprob), *step.top]
            tops.append({self.token(t): lp for j, (t, lp) in enumerate(entries) if j <= n_top})
        for i, token_id in enumerate(token_ids):
            step = self.step(start + i, token_id, max(n_top, 1))
            text = self.token(token_id)
            tokens.append(text)
            offsets.append(offset)
            offset += len(text)
            token_logprobs.append(step.logprob)
            tops.append({self.token(t): lp for t, lp in step.top})
        return {
            "text_offset": offsets,
            "token_logprobs": token_logprobs,
            "tokens": tokens,
            "top_logprobs": tops,
        }

    # --- prompt logprobs --------------------------------------------------------------------------

    def prompt_step(self, index: int, token_id: int, n_top: int) -> Step:
        """The distribution the prompt's ``index``-th token was drawn from (``index`` >= 1)."""
        digest = hashlib.blake2b(self.key + b"rank" + index.to_bytes(8, "big"), digest_size=1)
        rank = 1 + digest.digest()[0] % 4
        return self.step(-index, token_id, n_top, rank)

    def prompt(self, prompt_ids: Sequence[int], n_top: int) -> list[dict[str, dict[str, Any]] | None]:
        """``prompt_logprobs``: None for the first token, then each token's and the top ``n_top``
        (keyed by token id, the prompt's token first), with their ranks and decoded text."""
        out: list[dict[str, dict[str, Any]] | None] = [None]
        for index in range(1, len(prompt_ids)):
            step = self.prompt_step(index, prompt_ids[index], n_top)
            ranked = [(step.token_id, step.logprob, step.rank)]
            ranked += [(t, lp, r) for r, (t, lp) in enumerate(step.top, start=1)]
            entry: dict[str, dict[str, Any]] = {}
            for token_id, logprob, rank in ranked:
                entry.setdefault(
                    str(token_id),
                    {"logprob": logprob, "rank": rank, "decoded_token": self.tokenizer.decode([token_id])},
                )
            out.append(entry)
        return out
