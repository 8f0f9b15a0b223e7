"""Workloads: exact-token prompts, needle haystacks, the canary, and the request plans of load runs.

Prompts are sized with the server's own /tokenize; a load run's plan (:class:`Workload`) draws its
lengths from distributions, reads requests from a dataset file, or shares prefixes in groups.
"""

from __future__ import annotations

from pytest_gx10.workload.canary import CanaryResult, canary
from pytest_gx10.workload.dataset import (
    Dataset,
    DatasetEntry,
    DatasetError,
    load_dataset,
    write_sharegpt_sample,
)
from pytest_gx10.workload.filler import CONTINUE_INSTRUCTION, filler_sentences
from pytest_gx10.workload.lengths import LengthSpec, parse_length
from pytest_gx10.workload.needle import (
    NEEDLE_QUESTION,
    NeedlePrompt,
    needle_line,
    needle_prompt,
    retrieved,
    secret_code,
)
from pytest_gx10.workload.plan import RequestFacts, Workload
from pytest_gx10.workload.prompts import PromptSizeError, SizedPrompt, fit_tokens, sized_prompt
from pytest_gx10.workload.shared import SharedPrefixPlan

__all__ = [
    "CONTINUE_INSTRUCTION",
    "NEEDLE_QUESTION",
    "CanaryResult",
    "Dataset",
    "DatasetEntry",
    "DatasetError",
    "LengthSpec",
    "NeedlePrompt",
    "PromptSizeError",
    "RequestFacts",
    "SharedPrefixPlan",
    "SizedPrompt",
    "Workload",
    "canary",
    "filler_sentences",
    "fit_tokens",
    "load_dataset",
    "needle_line",
    "needle_prompt",
    "parse_length",
    "retrieved",
    "secret_code",
    "sized_prompt",
    "write_sharegpt_sample",
]
