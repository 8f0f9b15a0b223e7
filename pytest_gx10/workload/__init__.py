"""Workloads: exact-token prompts sized with the server's own /tokenize, needle haystacks, the canary."""

from __future__ import annotations

from pytest_gx10.workload.canary import CanaryResult, canary
from pytest_gx10.workload.filler import CONTINUE_INSTRUCTION, filler_sentences
from pytest_gx10.workload.needle import (
    NEEDLE_QUESTION,
    NeedlePrompt,
    needle_line,
    needle_prompt,
    retrieved,
    secret_code,
)
from pytest_gx10.workload.prompts import PromptSizeError, SizedPrompt, fit_tokens, sized_prompt

__all__ = [
    "CONTINUE_INSTRUCTION",
    "NEEDLE_QUESTION",
    "CanaryResult",
    "NeedlePrompt",
    "PromptSizeError",
    "SizedPrompt",
    "canary",
    "filler_sentences",
    "fit_tokens",
    "needle_line",
    "needle_prompt",
    "retrieved",
    "secret_code",
    "sized_prompt",
]
