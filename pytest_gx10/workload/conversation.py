"""Multi-turn conversations: each turn resends the whole history and one new user message.

A chat application does not send one prompt: it sends the conversation so far, every turn again,
with the assistant's own earlier answers in it. The prompt grows turn by turn, and all of it but the
newest message has been prefilled before, so a prefix cache can serve it. :class:`Conversation` is
one such conversation of a :class:`~pytest_gx10.workload.plan.Workload` of kind ``multi-turn``:

- turn t's new user message is filler of the drawn input length (``input_len``), counted as a chat of
  that one message (template included), with a header naming the conversation, the point and the
  run's edition, so no two conversations share a cache block beyond the template;
- the answer recorded for a turn is what the server sent (its ``content``: a reasoning model's
  thinking is not part of the history, as its chat template drops it too);
- on the completions endpoint the history is a transcript (``User: ...`` / ``Assistant: ...``).

What a prefix cache can serve of turn t is bounded: at least the previous turn's whole prompt (in
whole blocks), at most that prompt and its answer, if the answer re-tokenizes to the tokens the
server generated. :class:`~pytest_gx10.workload.plan.RequestFacts` records both bounds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pytest_gx10.workload.facts import RequestFacts
from pytest_gx10.workload.prompts import sized_prompt
from pytest_gx10.workload.shared import BLOCK_SIZE, cacheable_tokens

__all__ = ["USAGE_PER_CHUNK", "Conversation", "cacheable_bounds"]

# Asks a vLLM server for the usage in every streamed chunk (a speculative chunk's tokens counted).
USAGE_PER_CHUNK: dict[str, Any] = {"stream_options": {"continuous_usage_stats": True}}

Message = dict[str, str]
PromptCounter = Callable[[str | list[Message]], int]


class ConversationPlan(Protocol):
    """What a conversation needs of its workload (:class:`~pytest_gx10.workload.plan.Workload`)."""

    @property
    def kind(self) -> str: ...
    @property
    def turns(self) -> int: ...
    @property
    def block_size(self) -> int: ...
    def input_tokens(self, i: int) -> int: ...
    def output_tokens(self, i: int, max_tokens_default: int) -> int: ...
    def header(self, word: str, i: int, point: str) -> str: ...


def cacheable_bounds(
    prompt_tokens: int, previous_prompt: int | None, previous_answer: int | None, block_size: int = BLOCK_SIZE
) -> tuple[int, int]:
    """The fewest and the most of a turn's ``prompt_tokens`` a prefix cache can serve.

    The previous turn's prompt (``previous_prompt`` tokens) is a prefix of this one; with its answer
    (``previous_answer`` tokens) when the answer re-tokenizes as it was generated. Only whole blocks
    are cached, and vLLM computes at least a prompt's last token itself, so neither bound passes
    ``prompt_tokens - 1`` rounded down to a block.
    """
    if previous_prompt is None:
        return 0, 0
    ceiling = cacheable_tokens(max(prompt_tokens - 1, 0), block_size)
    low = min(cacheable_tokens(previous_prompt, block_size), ceiling)
    high = min(cacheable_tokens(previous_prompt + (previous_answer or 0), block_size), ceiling)
    return low, high


class Conversation:
    """Conversation ``index`` of a multi-turn workload: its history and its next turn.

    Call :meth:`next_body` for a turn's request, then :meth:`answer` with what the server sent
    before asking for the next; a turn that failed (no answer) ends the conversation.
    """

    def __init__(
        self,
        workload: ConversationPlan,
        index: int,
        *,
        count: PromptCounter,
        chat: bool,
        point: str = "",
        max_tokens_default: int,
        ignore_eos: bool = False,
        usage_per_chunk: bool = False,
    ) -> None:
        self.workload, self.index = workload, index
        self.count, self.chat, self.point = count, chat, point
        self.max_tokens_default, self.ignore_eos = max_tokens_default, ignore_eos
        self.usage_per_chunk = usage_per_chunk
        self.turn = 0
        self.ended = False
        self._messages: list[Message] = []
        self._transcript = ""
        self._previous: tuple[int, int | None] | None = (
            None  # the last turn's prompt tokens and answer tokens
        )
        self._waiting = False

    @property
    def turns(self) -> int:
        """How many turns the conversation has in all."""
        return self.workload.turns

    @property
    def done(self) -> bool:
        """True once every turn was answered, or a turn failed."""
        return self.ended or self.turn >= self.turns

    def _draw_index(self) -> int:
        return self.index * self.turns + self.turn

    def _header(self) -> str:
        return self.workload.header("Conversation", self.index, self.point) if self.turn == 0 else ""

    def next_body(self) -> tuple[dict[str, Any], RequestFacts]:
        """The next turn's request body and its facts (``turn`` counts from 0)."""
        if self.done:
            raise ValueError(f"conversation {self.index} has no turn left")
        if self._waiting:
            raise ValueError(f"conversation {self.index}: turn {self.turn} has not been answered yet")
        i = self._draw_index()
        new_tokens = self.workload.input_tokens(i)
        seed = f"{self.point} conversation {self.index} turn {self.turn}"
        if self.chat:

            def alone(text: str) -> int:
                return self.count([{"role": "user", "content": text}])

            message = sized_prompt(alone, new_tokens, seed=seed, chat=True, header=self._header())
            messages = [*self._messages, {"role": "user", "content": message.text}]
            prompt_tokens = self.count(messages) if self._messages else message.tokens
            fragment: dict[str, Any] = {"messages": messages}
            self._messages = messages
        else:

            def framed(text: str) -> int:
                return self.count(f"User: {text}\n\nAssistant:")

            message = sized_prompt(framed, new_tokens, seed=seed, chat=False, header=self._header())
            prompt = f"{self._transcript}User: {message.text}\n\nAssistant:"
            prompt_tokens = self.count(prompt) if self._transcript else message.tokens
            fragment = {"prompt": prompt}
            self._transcript = prompt
        output = self.workload.output_tokens(i, self.max_tokens_default)
        body = {
            **fragment,
            "max_tokens": output,
            "temperature": 0,
            **({"ignore_eos": True} if self.ignore_eos else {}),
            **(USAGE_PER_CHUNK if self.usage_per_chunk else {}),
        }
        low, high = cacheable_bounds(
            prompt_tokens,
            None if self._previous is None else self._previous[0],
            None if self._previous is None else self._previous[1],
            self.workload.block_size,
        )
        facts = RequestFacts(
            i,
            self.workload.kind,
            new_tokens,
            prompt_tokens,
            output,
            conversation=self.index,
            turn=self.turn,
            cacheable_min_tokens=low,
            cacheable_max_tokens=high,
        )
        self._previous = (prompt_tokens, None)
        self._waiting = True
        return body, facts

    def answer(self, content: str | None, completion_tokens: int | None = None) -> None:
        """Record the server's answer to the turn just sent (None: the turn failed, the conversation ends)."""
        if not self._waiting:
            raise ValueError(f"conversation {self.index}: no turn is waiting for an answer")
        self._waiting = False
        self.turn += 1
        if content is None:
            self.ended = True
            return
        assert self._previous is not None
        self._previous = (self._previous[0], completion_tokens)
        if self.chat:
            self._messages = [*self._messages, {"role": "assistant", "content": content}]
        else:
            self._transcript = f"{self._transcript}{content}\n\n"
