"""Which request fields of vLLM 0.32's chat and completions models the real conformance table sends.

``tests/real/test_conformance.py`` sends every field of ``COVERED`` with a valid value to the real
server and to the twin; ``NOT_COVERED`` names each field it does not send and why.
``tests/unit/test_conformance_fields.py`` reads the request models from the installed vLLM's source
and requires that the two lists together name every field, so a field a later vLLM adds fails there,
by name, until it is covered or its omission explained.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["COVERED", "NOT_COVERED", "PROTOCOLS"]

# endpoint -> (protocol module below site-packages/vllm, request model class)
PROTOCOLS = {
    "chat": ("entrypoints/openai/chat_completion/protocol.py", "ChatCompletionRequest"),
    "completion": ("entrypoints/openai/completion/protocol.py", "CompletionRequest"),
}

_SHARED_COVERED = frozenset(
    {
        "model",
        "frequency_penalty",
        "logit_bias",
        "max_tokens",
        "n",
        "presence_penalty",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "user",
        "top_k",
        "min_p",
        "repetition_penalty",
        "length_penalty",
        "stop_token_ids",
        "include_stop_str_in_output",
        "ignore_eos",
        "min_tokens",
        "skip_special_tokens",
        "spaces_between_special_tokens",
        "truncate_prompt_tokens",
        "truncation_side",
        "prompt_logprobs",
        "allowed_token_ids",
        "bad_words",
        "add_special_tokens",
        "structured_outputs",
        "priority",
        "request_id",
        "session_id",
        "return_token_ids",
        "return_tokens_as_token_ids",
        "cache_salt",
        "stream_interval",
        "logprobs",
        "echo",
    }
)

COVERED: dict[str, frozenset[str]] = {
    "chat": _SHARED_COVERED
    | {
        "messages",
        "top_logprobs",
        "max_completion_tokens",
        "add_generation_prompt",
        "continue_final_message",
        "chat_template_kwargs",
        "include_reasoning",
        "return_prompt_text",
        "documents",
    },
    "completion": _SHARED_COVERED | {"prompt", "suffix"},
}

_MULTIMODAL = "multimodal input: SmolLM2-135M-Instruct is a text model, and the twin reads text only"
_SHARED_NOT_COVERED = {
    "use_beam_search": "beam search runs n beams through a separate path; the twin writes one answer "
    "per request (it refuses n>1 too, see the n-2-sampled case)",
    "watermarking": "needs a server started with a watermark config; the CPU server and the twin run "
    "without one",
    "logprob_token_ids": "asks for the logprobs of chosen token ids of the real vocabulary; the twin's "
    "vocabulary is its own, so the ids name other tokens there",
    "kv_transfer_params": "disaggregated prefill: needs a KV connector, which neither server runs",
    "ec_transfer_params": "encoder-cache transfer: needs an EC connector, which neither server runs",
    "mm_payload": _MULTIMODAL,
    "return_mm_kwargs": _MULTIMODAL,
    "routed_experts_prompt_start": "records the experts a MoE model routed to; SmolLM2 is dense and "
    "the twin has no experts",
    "return_token_offsets": "reports per-token character offsets the twin's tokenizer would give for "
    "its own words, not the model's; left out until a suite reads them",
    "repetition_detection": "stops a looping generation with finish_reason 'repetition'; the twin "
    "writes no loops, so there is nothing to detect",
    "thinking_token_budget": "caps a reasoning parser's thinking; the CPU server runs SmolLM2 without "
    "a reasoning parser (the twin's reasoning profiles are covered in tests/fake)",
    "vllm_xargs": "extra arguments for custom logits processors, of which neither server has any",
}

NOT_COVERED: dict[str, dict[str, str]] = {
    "chat": _SHARED_NOT_COVERED
    | {
        "tools": "tool calling needs a tool parser (--enable-auto-tool-choice) the CPU server runs "
        "without; the twin's checks on tools are covered in tests/fake",
        "tool_choice": "goes with tools (see tools)",
        "parallel_tool_calls": "goes with tools (see tools)",
        "reasoning_effort": "a chat template variable for reasoning models; SmolLM2's template has none",
        "chat_template": "a Jinja template in the request: the twin renders its own fixed templates",
        "media_io_kwargs": _MULTIMODAL,
        "mm_processor_kwargs": _MULTIMODAL,
    },
    "completion": _SHARED_NOT_COVERED
    | {"prompt_embeds": "needs a server started with --enable-prompt-embeds and a tensor payload"},
}


def vllm_site_packages(venv: Path) -> Path | None:
    """``.../site-packages/vllm`` of the real server's virtualenv, or None when it is not there."""
    found = sorted(venv.glob("lib/python3*/site-packages/vllm"))
    return found[-1] if found else None
