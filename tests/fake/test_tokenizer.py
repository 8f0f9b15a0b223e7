"""The twin's tokenizer: lossless, fast, Qwen-shaped."""

from __future__ import annotations

import random
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gx10.fake._words import WORDS
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.tokenizer import IM_END, IM_START, Tokenizer

TOK = Tokenizer()


@given(st.text())
@settings(max_examples=300)
def test_any_text_round_trips(text: str) -> None:
    assert TOK.decode(TOK.encode(text)) == text


@given(
    st.lists(
        st.sampled_from(
            ["<think>", "</think>", IM_START, IM_END, "<|endoftext|>", " the", "é", "\x00", "😀", "\n\n"]
        )
    )
)
def test_special_tokens_round_trip(parts: list[str]) -> None:
    text = "".join(parts)
    assert TOK.decode(TOK.encode(text)) == text


def test_english_is_about_one_token_per_word() -> None:
    rng = random.Random(0)
    words = [rng.choice(WORDS) for _ in range(1000)]
    text = " ".join(words) + "."
    ids = TOK.encode(text)
    assert len(ids) == len(words) + 1


def test_special_tokens_are_single_tokens_at_qwen_ids() -> None:
    assert TOK.encode("<|im_start|>user\nhi<|im_end|>")[0] == 151644
    assert TOK.encode("<|im_end|>") == [151645]
    assert TOK.encode("<think></think>") == [151667, 151668]
    assert TOK.decode([151645], skip_special_tokens=True) == ""
    assert TOK.decode([151667], skip_special_tokens=True) == "<think>"  # not special for Qwen


def test_token_strs_look_like_byte_level_bpe() -> None:
    ids = TOK.encode("Hello world\n")
    assert [TOK.token_str(i) for i in ids] == ["Hello", "Ġworld", "Ċ"]


def test_a_megabyte_tokenizes_well_under_a_second() -> None:
    rng = random.Random(1)
    text = " ".join(rng.choice(WORDS) for _ in range(200_000))
    assert len(text) > 1_000_000
    started = time.perf_counter()
    ids = TOK.encode(text)
    assert time.perf_counter() - started < 1.0
    assert len(ids) == 200_000


def test_chat_template_is_chatml() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}]},
    ]
    text = TOK.apply_chat_template(messages)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nhello\nthere<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    # <|im_start|> role \n ... <|im_end|> \n per message, plus <|im_start|> assistant \n.
    assert len(TOK.encode(text)) == len(TOK.encode("Be brief.")) + len(TOK.encode("hello\nthere")) + 2 * 5 + 3
    assert TOK.apply_chat_template(messages, add_generation_prompt=False).endswith("<|im_end|>\n")


@given(st.binary(min_size=1, max_size=64), st.booleans())
@settings(max_examples=50)
def test_generated_text_reencodes_to_the_same_ids(seed_bytes: bytes, reasoning: bool) -> None:
    prompt = list(seed_bytes)
    script = write_script(TOK, prompt, "", kind="chat", reasoning=reasoning)
    ids = [script.token(i) for i in range(300)]
    assert TOK.encode(TOK.decode(ids)) == ids
