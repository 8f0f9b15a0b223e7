"""Multi-turn conversations: the history each turn resends, the facts, and the cacheable bounds."""

from __future__ import annotations

import pytest

from pytest_gx10.workload.conversation import cacheable_bounds
from pytest_gx10.workload.lengths import parse_length
from pytest_gx10.workload.plan import Workload

TEMPLATE_PER_MESSAGE = 3


def count(prompt: str | list[dict[str, str]]) -> int:
    """A stand-in server count: words for a completion prompt; words plus template tokens for a chat."""
    if isinstance(prompt, str):
        return len(prompt.split())
    return sum(len(m["content"].split()) + TEMPLATE_PER_MESSAGE for m in prompt) + 1


def _work(turns: int = 3) -> Workload:
    return Workload("multi-turn", parse_length("60"), parse_length("20"), seed=1, edition="e1", turns=turns)


def test_each_chat_turn_resends_the_history_and_a_new_message() -> None:
    chat = _work().conversation(2, count=count, chat=True, point="N=4", max_tokens_default=128)
    body, first = chat.next_body()
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert message["content"].startswith("Conversation 3, N=4, edition e1.")
    assert (first.turn, first.conversation, first.input_tokens, first.output_tokens) == (0, 2, 60, 20)
    assert (first.cacheable_min_tokens, first.cacheable_max_tokens) == (0, 0)
    chat.answer("Once upon a time " * 5, 20)
    body, second = chat.next_body()
    assert body["messages"][:2] == [message, {"role": "assistant", "content": "Once upon a time " * 5}]
    assert body["messages"][2]["role"] == "user"
    assert "Conversation" not in body["messages"][2]["content"]  # only the first turn names it
    assert second.input_tokens == count(body["messages"])  # the whole history, as the server counts it
    assert second.intended_input_tokens == 60
    # The first prompt (60 tokens) is cacheable in whole blocks; with its 20-token answer, 80.
    assert (second.cacheable_min_tokens, second.cacheable_max_tokens) == (48, 80)
    assert second.as_dict()["turn"] == 1


def test_a_completion_conversation_is_a_transcript() -> None:
    chat = _work().conversation(0, count=count, chat=False, max_tokens_default=16)
    body, _ = chat.next_body()
    assert body["prompt"].startswith("User: ")
    assert body["prompt"].endswith("\n\nAssistant:")
    chat.answer(" It was late.", 4)
    body2, facts = chat.next_body()
    assert body2["prompt"].startswith(body["prompt"] + " It was late.\n\nUser: ")
    assert facts.input_tokens == count(body2["prompt"])


def test_turns_go_in_order_and_a_failed_turn_ends_the_conversation() -> None:
    chat = _work(turns=3).conversation(0, count=count, chat=True, max_tokens_default=16)
    chat.next_body()
    with pytest.raises(ValueError, match="has not been answered"):
        chat.next_body()
    chat.answer(None)
    assert chat.done
    with pytest.raises(ValueError, match="no turn left"):
        chat.next_body()
    whole = _work(turns=2).conversation(1, count=count, chat=True, max_tokens_default=16)
    for _ in range(2):
        whole.next_body()
        whole.answer("fine", 1)
    assert whole.done
    assert whole.turn == 2


def test_a_multi_turn_workload_is_sent_by_conversations_only() -> None:
    with pytest.raises(ValueError, match="use conversation"):
        _work().body(0, count=count, chat=True, max_tokens_default=16)
    filler = Workload("filler", parse_length("60"))
    with pytest.raises(ValueError, match="no conversations"):
        filler.conversation(0, count=count, chat=True, max_tokens_default=16)
    with pytest.raises(ValueError, match="at least 1 turn"):
        Workload("multi-turn", parse_length("60"), turns=0)


@pytest.mark.parametrize(
    ("prompt", "previous", "answer", "bounds"),
    [
        (100, None, None, (0, 0)),  # a first turn: nothing before it
        (200, 100, 40, (96, 128)),  # whole blocks of the earlier prompt; and of prompt plus answer
        (200, 100, None, (96, 96)),  # the answer's length unknown: the earlier prompt only
        (130, 120, 30, (112, 128)),  # never past the prompt's last token, in whole blocks
        (17, 16, 0, (16, 16)),
        (16, 16, 0, (0, 0)),  # vLLM computes a prompt's last token itself: 15 tokens, no whole block
    ],
)
def test_cacheable_bounds(
    prompt: int, previous: int | None, answer: int | None, bounds: tuple[int, int]
) -> None:
    assert cacheable_bounds(prompt, previous, answer) == bounds
