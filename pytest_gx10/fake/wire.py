"""JSON shapes of vLLM 0.32's OpenAI-compatible responses, key for key, and their SSE framing.

Checked against the real server's answers recorded in ``docs/real-vllm.md``. vLLM serializes streamed
chunks with pydantic's ``model_dump_json(exclude_unset=True)`` (a chunk has exactly the fields the
server set, ``null`` included), the trailing usage chunk with ``exclude_none=True``, and whole responses
with ``model_dump()`` through FastAPI's JSONResponse. ``system_fingerprint`` is on whole responses, on
the usage chunk, or (without ``include_usage``) on the finishing chunk.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

__all__ = [
    "chat_chunk",
    "chat_response",
    "completion_chunk",
    "completion_response",
    "dumps",
    "model_card_list",
    "new_request_id",
    "running_usage",
    "sse",
    "system_fingerprint",
    "usage",
    "usage_chunk",
]


def dumps(obj: Any) -> str:
    """Compact JSON with raw UTF-8, like pydantic's ``model_dump_json``."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(obj: Any) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line (LF only)."""
    payload = obj if isinstance(obj, str) else dumps(obj)
    return f"data: {payload}\n\n".encode()


def new_request_id(prefix: str) -> str:
    """``chatcmpl-<16 hex>`` / ``cmpl-<16 hex>``, as vLLM 0.32 makes them."""
    return f"{prefix}-{secrets.token_hex(8)}"


def system_fingerprint(version: str, served_model_name: str) -> str:
    """``vllm-<version>-<8 hex>``; the real suffix hashes the server config, here the model and version."""
    digest = hashlib.sha256(f"{served_model_name}|{version}".encode()).hexdigest()[:8]
    return f"vllm-{version}-{digest}"


def usage(
    prompt_tokens: int,
    completion_tokens: int,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
) -> dict[str, Any]:
    """A whole response's usage. The completion details are null unless a reasoning parser counts
    thinking tokens; the prompt details are null unless the server runs with
    ``--enable-prompt-tokens-details``, then they say the prompt tokens the prefix cache served."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None if cached_tokens is None else {"cached_tokens": cached_tokens},
        "completion_tokens_details": None
        if reasoning_tokens is None
        else {"reasoning_tokens": reasoning_tokens},
    }


def model_card_list(served_model_name: str, root: str, max_model_len: int, created: int) -> dict[str, Any]:
    """``GET /v1/models``."""
    permission = {
        "id": f"modelperm-{secrets.token_hex(8)}",
        "object": "model_permission",
        "created": created,
        "allow_create_engine": False,
        "allow_sampling": True,
        "allow_logprobs": True,
        "allow_search_indices": False,
        "allow_view": True,
        "allow_fine_tuning": False,
        "organization": "*",
        "group": None,
        "is_blocking": False,
    }
    card = {
        "id": served_model_name,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": None,
        "max_model_len": max_model_len,
        "permission": [permission],
    }
    return {"object": "list", "data": [card]}


def usage_chunk(
    request_id: str,
    created: int,
    model: str,
    obj: str,
    prompt_tokens: int,
    completion_tokens: int,
    fingerprint: str,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
) -> dict[str, Any]:
    """The trailing ``"choices": []`` chunk with usage (nulls dropped) and the fingerprint."""
    body = usage(prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens)
    return {
        "id": request_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [],
        "usage": {k: v for k, v in body.items() if v is not None},
        "system_fingerprint": fingerprint,
    }


# --- chat --------------------------------------------------------------------------------------------


def chat_chunk(
    request_id: str,
    created: int,
    model: str,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    stop_reason: int | str | None = None,
    first: bool = False,
    fingerprint: str | None = None,
    logprobs: dict[str, Any] | None = None,
    token_ids: list[int] | None = None,
    usage: dict[str, Any] | None = None,
    prompt_token_ids: list[int] | None = None,
    prompt_text: str | None = None,
    echo: bool = False,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; the role chunk (``first``) carries the prompt fields instead,
    and an ``echo`` chunk (the final message echoed) neither. ``usage`` is continuous_usage_stats'."""
    choice: dict[str, Any] = {
        "index": 0,
        "delta": delta,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
    }
    if finish_reason is not None:
        choice["stop_reason"] = stop_reason
    if not first and not echo:
        choice["token_ids"] = token_ids
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [choice],
    }
    if usage is not None:
        chunk["usage"] = usage
    if fingerprint is not None:
        chunk["system_fingerprint"] = fingerprint
    if first:
        chunk["prompt_token_ids"] = prompt_token_ids
        chunk["prompt_text"] = prompt_text
    return chunk


def running_usage(prompt_tokens: int, completion_tokens: int, chat: bool) -> dict[str, Any]:
    """A chunk's usage under ``continuous_usage_stats`` (chat sets the completion details, null)."""
    body: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }
    if chat:
        body["completion_tokens_details"] = None
    return body


def chat_response(
    request_id: str,
    created: int,
    model: str,
    *,
    content: str | None,
    reasoning: str | None,
    finish_reason: str,
    stop_reason: int | str | None,
    prompt_tokens: int,
    completion_tokens: int,
    fingerprint: str,
    reasoning_tokens: int | None = None,
    cached_tokens: int | None = None,
    logprobs: dict[str, Any] | None = None,
    token_ids: list[int] | None = None,
    prompt_logprobs: list[Any] | None = None,
    prompt_token_ids: list[int] | None = None,
    prompt_text: str | None = None,
    role: str = "assistant",
) -> dict[str, Any]:
    """A whole ``chat.completion`` (no ``tool_calls`` key when there are none, as vLLM 0.32 sends it)."""
    message = {
        "role": role,
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        "reasoning": reasoning,
    }
    choice = {
        "index": 0,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "token_ids": token_ids,
        "routed_experts": None,
    }
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": usage(prompt_tokens, completion_tokens, reasoning_tokens, cached_tokens),
        "prompt_logprobs": prompt_logprobs,
        "prompt_token_ids": prompt_token_ids,
        "prompt_text": prompt_text,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


# --- completions -------------------------------------------------------------------------------------


def completion_chunk(
    request_id: str,
    created: int,
    model: str,
    text: str,
    *,
    finish_reason: str | None = None,
    stop_reason: int | str | None = None,
    fingerprint: str | None = None,
    logprobs: dict[str, Any] | None = None,
    token_ids: list[int] | None = None,
    prompt_token_ids: list[int] | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One streamed ``text_completion`` chunk (``usage``: continuous_usage_stats')."""
    chunk: dict[str, Any] = {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
                "stop_reason": stop_reason,
                "prompt_token_ids": prompt_token_ids,
                "token_ids": token_ids,
            }
        ],
    }
    if usage is not None:
        chunk["usage"] = usage
    if fingerprint is not None:
        chunk["system_fingerprint"] = fingerprint
    return chunk


def completion_response(
    request_id: str,
    created: int,
    model: str,
    *,
    text: str,
    finish_reason: str,
    stop_reason: int | str | None,
    prompt_tokens: int,
    completion_tokens: int,
    fingerprint: str,
    cached_tokens: int | None = None,
    logprobs: dict[str, Any] | None = None,
    token_ids: list[int] | None = None,
    prompt_logprobs: list[Any] | None = None,
    prompt_token_ids: list[int] | None = None,
) -> dict[str, Any]:
    """A whole ``text_completion``."""
    choice = {
        "index": 0,
        "text": text,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "token_ids": token_ids,
        "prompt_logprobs": prompt_logprobs,
        "prompt_token_ids": prompt_token_ids,
        "routed_experts": None,
    }
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": usage(prompt_tokens, completion_tokens, cached_tokens=cached_tokens),
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def now_s() -> int:
    """``created``: whole seconds since the epoch."""
    return int(time.time())
