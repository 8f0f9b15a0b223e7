"""What one planned request was meant to be and what it is (kept beside its result)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RequestFacts"]


@dataclass(frozen=True)
class RequestFacts:
    """What one request was meant to be and what it is.

    ``intended_input_tokens`` is the drawn length (None for a dataset entry, which is sent as it is);
    ``input_tokens`` the server's count of the prompt sent; ``output_tokens`` the ``max_tokens`` asked;
    ``group`` the shared-prefix group and ``entry`` the dataset entry's index, when they apply; for a
    conversation's turn, ``conversation`` and ``turn`` (from 0) and the fewest and most prompt tokens a
    prefix cache can serve (``cacheable_min_tokens``, ``cacheable_max_tokens``).
    """

    index: int
    kind: str
    intended_input_tokens: int | None
    input_tokens: int
    output_tokens: int
    group: int | None = None
    entry: int | None = None
    conversation: int | None = None
    turn: int | None = None
    cacheable_min_tokens: int | None = None
    cacheable_max_tokens: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The facts as a result records them."""
        facts: dict[str, Any] = {
            "index": self.index,
            "kind": self.kind,
            "intended_input_tokens": self.intended_input_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "group": self.group,
            "entry": self.entry,
        }
        if self.conversation is not None:
            facts.update(
                conversation=self.conversation,
                turn=self.turn,
                cacheable_min_tokens=self.cacheable_min_tokens,
                cacheable_max_tokens=self.cacheable_max_tokens,
            )
        return facts
