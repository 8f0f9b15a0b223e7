"""The canary: one fixed greedy completion whose answer must not change while the engine is healthy.

Taken once before a run of bad inputs (or before load) and again after each, it shows an engine that
still answers /health but has been corrupted: a sampler left in a bad state, a KV cache block handed
out twice, a worker that no longer makes progress. The request is small on purpose: a prompt shorter
than one KV cache block (16 tokens) is never served from the prefix cache, so every canary runs the
same prefill and the same decode steps, alone, and greedy decoding gives the same tokens each time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_gx10.client import EndpointError, VllmClient

__all__ = ["CANARY_MAX_TOKENS", "CANARY_PROMPT", "CANARY_SEED", "CanaryResult", "canary"]

CANARY_PROMPT = "The capital of France is"
CANARY_MAX_TOKENS = 8
CANARY_SEED = 1234


@dataclass(frozen=True)
class CanaryResult:
    """What the canary answered: the text, why it stopped, and how many tokens it took."""

    text: str
    finish_reason: str | None
    completion_tokens: int | None

    def differs_from(self, before: CanaryResult) -> str | None:
        """None when this answer is the same as ``before``; otherwise one line saying how it differs."""
        if self == before:
            return None
        return (
            f"canary answered {self.text!r} ({self.completion_tokens} tokens, {self.finish_reason}), "
            f"before it answered {before.text!r} ({before.completion_tokens} tokens, {before.finish_reason})"
        )


def canary(client: VllmClient, *, max_tokens: int = CANARY_MAX_TOKENS) -> CanaryResult:
    """Send the fixed greedy completion; raise :class:`EndpointError` when the server cannot answer it."""
    body: dict[str, Any] = {
        "prompt": CANARY_PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "seed": CANARY_SEED,
    }
    data = client.complete(body)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise EndpointError(client.base_url + "/v1/completions", f"canary got no choice: {str(data)[:200]}")
    choice = choices[0]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens") if usage else None
    return CanaryResult(
        text=str(choice.get("text") or ""),
        finish_reason=choice.get("finish_reason"),
        completion_tokens=int(tokens) if isinstance(tokens, int) else None,
    )
