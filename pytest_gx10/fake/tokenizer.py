"""A deterministic, lossless tokenizer for the twin, with Qwen's special tokens and ChatML template.

Ordinary English costs about one token per word (a built-in vocabulary of common words, with and
without a leading space, lower-case and capitalised); anything else falls back to one token per UTF-8
byte, so every string round-trips exactly. Token strings are shown the way Hugging Face byte-level BPE
tokenizers show them (``Ġ`` for a leading space), since that is what vLLM's ``/tokenize`` returns.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pytest_gx10.fake._words import WORDS

__all__ = [
    "ENDOFTEXT",
    "IM_END",
    "IM_START",
    "THINK_END",
    "THINK_START",
    "ChatTemplateError",
    "Tokenizer",
]

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
THINK_START = "<think>"
THINK_END = "</think>"

# Qwen's ids for its added tokens, so token ids look like the real model's in logs and dumps.
_ADDED_TOKENS: dict[str, tuple[int, bool]] = {  # text -> (id, special)
    ENDOFTEXT: (151643, True),
    IM_START: (151644, True),
    IM_END: (151645, True),
    THINK_START: (151667, False),  # Qwen keeps these in decoded text; the reasoning parser strips them
    THINK_END: (151668, False),
}
_VOCAB_SIZE = 151936

# Pieces that always exist besides the words: punctuation, digits and whitespace runs.
_EXTRA_PIECES: tuple[str, ...] = (
    *".,!?:;'\"()[]{}-_/*&%$#@+=<>|~`^\\",
    *(" " + c for c in ".,!?:;'\"()[]{}-_/*&%$#@+=<>|~`^\\"),
    *"0123456789",
    *(" " + c for c in "0123456789"),
    "'s",
    "'t",
    "'re",
    "'ve",
    "'m",
    "'ll",
    "'d",
    "...",
    "--",
    '."',
    "),",
    ").",
    "\n",
    "\n\n",
    "\n\n\n",
    "  ",
    "   ",
    "    ",
    "\t",
    " \n",
    "\r\n",
)

# Split like GPT-2's pre-tokenizer: contractions, optionally space-prefixed letter runs, single digits,
# punctuation runs, whitespace. Every character falls into some alternative, so the pieces always
# concatenate back to the input.
_PIECE_RE = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)(?![A-Za-z])| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\n+|\s+(?!\S)|\s+"
)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for bytes, used only to display token strings."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    mapping = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + n)
            n += 1
    return mapping


_BYTE_SHOW = _bytes_to_unicode()


class ChatTemplateError(ValueError):
    """A chat message the template cannot render (bad role, bad content part)."""


class Tokenizer:
    """Deterministic tokenizer: ``decode(encode(s)) == s`` for every string ``s``."""

    def __init__(self) -> None:
        # ids 0..255 are the byte fallback; words and pieces follow; added tokens sit at Qwen's ids.
        self._piece_bytes: list[bytes] = [bytes([b]) for b in range(256)]
        self._piece_id: dict[str, int] = {}
        for word in WORDS:
            for variant in (word, " " + word, word.capitalize(), " " + word.capitalize()):
                self._add_piece(variant)
        for piece in _EXTRA_PIECES:
            self._add_piece(piece)
        self._added_id = {text: tid for text, (tid, _) in _ADDED_TOKENS.items()}
        self._added_text = {tid: text for text, (tid, _) in _ADDED_TOKENS.items()}
        self._special_ids = frozenset(tid for tid, special in _ADDED_TOKENS.values() if special)
        self._added_re = re.compile(
            "|".join(re.escape(t) for t in sorted(_ADDED_TOKENS, key=len, reverse=True))
        )
        self._word_ids = tuple(self._piece_id[" " + w] for w in dict.fromkeys(WORDS))
        self._capitalized = {self._piece_id[" " + w]: self._piece_id[" " + w.capitalize()] for w in WORDS}
        self._bare_capitalized = {self._piece_id[" " + w]: self._piece_id[w.capitalize()] for w in WORDS}

    def _add_piece(self, piece: str) -> None:
        if piece not in self._piece_id:
            self._piece_id[piece] = len(self._piece_bytes)
            self._piece_bytes.append(piece.encode("utf-8"))

    # --- facts -------------------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Size of the id space (Qwen's), including the added tokens."""
        return _VOCAB_SIZE

    @property
    def eos_token_id(self) -> int:
        """``<|endoftext|>``: where a plain completion stops."""
        return self._added_id[ENDOFTEXT]

    @property
    def im_end_id(self) -> int:
        """``<|im_end|>``: where an assistant turn stops."""
        return self._added_id[IM_END]

    @property
    def think_start_id(self) -> int:
        """``<think>``."""
        return self._added_id[THINK_START]

    @property
    def think_end_id(self) -> int:
        """``</think>``."""
        return self._added_id[THINK_END]

    @property
    def word_ids(self) -> tuple[int, ...]:
        """Ids of the space-prefixed vocabulary words (what the twin's model writes with)."""
        return self._word_ids

    @property
    def capitalized(self) -> dict[int, int]:
        """Space-prefixed word id -> id of the same word capitalised (a sentence's first word)."""
        return self._capitalized

    @property
    def bare_capitalized(self) -> dict[int, int]:
        """Space-prefixed word id -> id of the word capitalised without the space (a text's first word)."""
        return self._bare_capitalized

    def token_id(self, piece: str) -> int | None:
        """The id of one exact piece (word, punctuation or added token), or None."""
        return self._added_id.get(piece, self._piece_id.get(piece))

    def is_special(self, token_id: int) -> bool:
        """True for special tokens that ``skip_special_tokens`` drops from text."""
        return token_id in self._special_ids

    def is_valid(self, token_id: int) -> bool:
        """True when the id decodes to something (vLLM rejects ids outside the vocabulary)."""
        return 0 <= token_id < len(self._piece_bytes) or token_id in self._added_text

    def first_invalid(self, ids: Sequence[int]) -> int | None:
        """The first id that decodes to nothing, or None (fast when all ids are ordinary)."""
        if ids and min(ids) >= 0 and max(ids) < len(self._piece_bytes):
            return None
        return next((t for t in ids if not self.is_valid(t)), None)

    # --- encode / decode ---------------------------------------------------------------------------

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Token ids of ``text``; special-token strings in the text become their tokens.

        ``add_special_tokens`` adds nothing: Qwen's tokenizer has no BOS token.
        """
        del add_special_tokens
        return list(self._encode_cached(text))

    @functools.lru_cache(maxsize=256)  # noqa: B019 - one tokenizer per twin, kept for its lifetime
    def _encode_cached(self, text: str) -> tuple[int, ...]:
        # A client sizes a prompt with /tokenize and then sends that very text: the second
        # tokenization is free, so the twin's own CPU time stays out of what the client measures
        # (at a time scale of 15, 10 ms of tokenizing would read as 150 ms of TTFT).
        ids: list[int] = []
        pos = 0
        for match in self._added_re.finditer(text):
            if match.start() > pos:
                self._encode_plain(text[pos : match.start()], ids)
            ids.append(self._added_id[match.group()])
            pos = match.end()
        if pos < len(text):
            self._encode_plain(text[pos:] if pos else text, ids)
        return tuple(ids)

    def _encode_plain(self, text: str, out: list[int]) -> None:
        get = self._piece_id.get
        append = out.append
        for piece in _PIECE_RE.findall(text):
            tid = get(piece)
            if tid is not None:
                append(tid)
            elif piece[0] == " " and (rest := get(piece[1:])) is not None:
                append(32)  # the byte token for a space
                append(rest)
            else:
                out.extend(piece.encode("utf-8", "surrogatepass"))

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``; invalid UTF-8 sequences (a cut byte run) decode to U+FFFD."""
        data = self.decode_bytes(ids, skip_special_tokens)
        try:
            # surrogatepass: lone surrogates survive the round trip like every other code point
            return data.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return data.decode("utf-8", "replace")

    def decode_bytes(self, ids: Iterable[int], skip_special_tokens: bool = False) -> bytes:
        """Raw bytes of ``ids`` (the incremental detokenizer works on these)."""
        parts: list[bytes] = []
        pieces = self._piece_bytes
        n = len(pieces)
        for tid in ids:
            if 0 <= tid < n:
                parts.append(pieces[tid])
            elif tid in self._added_text:
                if not (skip_special_tokens and tid in self._special_ids):
                    parts.append(self._added_text[tid].encode())
            else:
                raise ValueError(f"token id {tid} is out of vocabulary")
        return b"".join(parts)

    def token_str(self, token_id: int) -> str:
        """How Hugging Face shows a token (``Ġthe``, ``Ċ`` for a newline, ``<|im_end|>``)."""
        if token_id in self._added_text:
            return self._added_text[token_id]
        if not 0 <= token_id < len(self._piece_bytes):
            raise ValueError(f"token id {token_id} is out of vocabulary")
        return "".join(_BYTE_SHOW[b] for b in self._piece_bytes[token_id])

    # --- chat --------------------------------------------------------------------------------------

    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        enable_thinking: bool = True,
        continue_final_message: bool = False,
    ) -> str:
        """Render ``messages`` in Qwen's ChatML form.

        Content may be a string, None, or a list of ``{"type": "text", "text": ...}`` parts (joined with
        newlines, as vLLM's "string" content format does). With thinking disabled the generation prompt
        carries an empty ``<think></think>`` block, as Qwen's template does.
        """
        out: list[str] = []
        for i, message in enumerate(messages):
            role = message.get("role")
            if not isinstance(role, str):
                raise ChatTemplateError(f"messages[{i}]: 'role' must be a string")
            content = _content_text(message.get("content"), i)
            last = i == len(messages) - 1
            if continue_final_message and last:
                out.append(f"{IM_START}{role}\n{content}")
            else:
                out.append(f"{IM_START}{role}\n{content}{IM_END}\n")
        if add_generation_prompt and not continue_final_message:
            out.append(f"{IM_START}assistant\n")
            if not enable_thinking:
                out.append(f"{THINK_START}\n\n{THINK_END}\n\n")
        return "".join(out)


def _content_text(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif (
                isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str)
            ):
                texts.append(part["text"])
            elif isinstance(part, Mapping) and isinstance(part.get("type"), str):
                raise ChatTemplateError(
                    f"messages[{index}]: content part type '{part['type']}' is not supported"
                )
            else:
                raise ChatTemplateError(f"messages[{index}]: content parts must be objects with a 'type'")
        return "\n".join(texts)
    raise ChatTemplateError(f"messages[{index}]: 'content' must be a string or a list of parts")
