"""The qwen3 reasoning parser as vLLM applies it: thinking goes to ``reasoning``, the rest to ``content``.

Streaming: a delta that is only the ``<think>`` or ``</think>`` token yields nothing (no chunk is sent);
a delta that crosses ``</think>`` is split into both fields. Whole responses split the text at
``</think>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_gx10.fake.tokenizer import THINK_END, THINK_START

__all__ = ["ReasoningSplitter", "split_reasoning"]


class ReasoningSplitter:
    """Turns streamed (token ids, text) deltas into ``delta`` objects; one per request."""

    def __init__(self, think_start_id: int, think_end_id: int, *, thinking: bool = True) -> None:
        self._ids = (think_start_id, think_end_id)
        # Thinking turned off: the prompt already closed the think block, so every delta is content.
        self._ended = not thinking

    def delta(self, token_ids: Sequence[int], text: str) -> dict[str, Any] | None:
        """The chunk's ``delta``, or None when vLLM sends no chunk for these tokens."""
        if len(token_ids) == 1 and token_ids[0] in self._ids:
            if token_ids[0] == self._ids[1]:
                self._ended = True
            return None
        if self._ended:
            return {"content": text}
        text = text.replace(THINK_START, "")
        if THINK_END in text:
            self._ended = True
            reasoning, _, content = text.partition(THINK_END)
            return {"reasoning": reasoning, "content": content or None}
        return {"reasoning": text}


def split_reasoning(text: str, *, thinking: bool = True) -> tuple[str | None, str | None]:
    """(reasoning, content) of a whole answer; content is None when empty.

    Without ``</think>`` the text is reasoning cut short, unless thinking was turned off
    (``enable_thinking`` false): then it is all content, as vLLM's qwen3 parser has it.
    """
    if THINK_END not in text and not thinking:
        return None, text or None
    if THINK_END not in text:
        return (text.replace(THINK_START, "") or None), None
    reasoning, _, content = text.partition(THINK_END)
    return reasoning.replace(THINK_START, ""), content or None
