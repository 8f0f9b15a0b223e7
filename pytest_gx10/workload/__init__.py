"""Workloads: exact-token prompts sized with the server's own /tokenize, needle haystacks."""

from __future__ import annotations

from pytest_gx10.workload.filler import CONTINUE_INSTRUCTION, filler_sentences
from pytest_gx10.workload.prompts import PromptSizeError, SizedPrompt, fit_tokens, sized_prompt

__all__ = [
    "CONTINUE_INSTRUCTION",
    "PromptSizeError",
    "SizedPrompt",
    "filler_sentences",
    "fit_tokens",
    "sized_prompt",
]
