"""The twin's endpoints over real HTTP: status codes, JSON keys, SSE framing, vLLM's errors."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import requests

from pytest_gx10.fake import TIME_SCALE_HEADER, FakeServer


def post(server: FakeServer, path: str, body: Any) -> requests.Response:
    return requests.post(server.url + path, json=body, timeout=30)


def chat(server: FakeServer, content: str = "Say hello.", **extra: Any) -> requests.Response:
    body = {"model": server.served_model_name, "messages": [{"role": "user", "content": content}], **extra}
    return post(server, "/v1/chat/completions", body)


def count_tokens(server: FakeServer, text: str) -> int:
    body = post(server, "/tokenize", {"prompt": text, "add_special_tokens": False}).json()
    count: int = body["count"]
    return count


def read_events(response: requests.Response) -> list[Any]:
    """Every ``data:`` payload of a stream, JSON-decoded except the final ``[DONE]``."""
    raw = response.content.decode("utf-8")
    assert raw.endswith("\n\n"), raw[-200:]
    events: list[Any] = []
    for block in raw.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


# --- simple endpoints -------------------------------------------------------------------------------


def test_health_ping_version_load(twin: FakeServer) -> None:
    health = requests.get(twin.url + "/health", timeout=5)
    assert (health.status_code, health.content) == (200, b"")
    assert health.headers[TIME_SCALE_HEADER] == "200"
    assert health.headers["vary"] == "Origin"
    assert requests.get(twin.url + "/ping", timeout=5).status_code == 200
    assert requests.get(twin.url + "/version", timeout=5).json() == {"version": twin.profile.twin.version}
    assert requests.get(twin.url + "/load", timeout=5).json() == {"server_load": 0}


def test_models_lists_the_served_model(twin: FakeServer) -> None:
    body = requests.get(twin.url + "/v1/models", timeout=5).json()
    assert body["object"] == "list"
    (card,) = body["data"]
    assert card["id"] == "Qwen3.5-397B-A17B-FP8"
    assert card["root"] == "/root/.cache/huggingface/Qwen/Qwen3.5-397B-A17B-FP8"
    assert card["owned_by"] == "vllm"
    assert card["max_model_len"] == 262144
    assert card["parent"] is None
    assert card["permission"][0]["object"] == "model_permission"


def test_unknown_path_and_wrong_method_are_fastapi_errors(twin: FakeServer) -> None:
    response = requests.get(twin.url + "/v1/nope", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    wrong = requests.get(twin.url + "/v1/completions", timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    assert wrong.json() == {"detail": "Method Not Allowed"}
    assert requests.head(twin.url + "/health", timeout=5).status_code == 405


def test_tokenize_completion_and_chat_forms(twin: FakeServer) -> None:
    body = post(twin, "/tokenize", {"prompt": "Hello world", "return_token_strs": True}).json()
    assert set(body) == {"count", "max_model_len", "tokens", "token_strs"}
    assert body["count"] == len(body["tokens"]) == 2
    assert body["token_strs"] == ["Hello", "Ġworld"]
    assert body["max_model_len"] == 262144
    assert post(twin, "/tokenize", {"prompt": "Hello"}).json()["token_strs"] is None
    messages = [{"role": "user", "content": "Hello"}]
    with_prompt = post(twin, "/tokenize", {"messages": messages}).json()["count"]
    without = post(twin, "/tokenize", {"messages": messages, "add_generation_prompt": False}).json()["count"]
    assert with_prompt == without + 3  # <|im_start|> assistant \n


def test_detokenize_drops_unknown_ids(twin: FakeServer) -> None:
    assert post(twin, "/detokenize", {"tokens": [999999]}).json() == {"prompt": ""}


def test_detokenize_inverts_tokenize(twin: FakeServer) -> None:
    text = "Plain words, odd bytes: \u00e9\u4e2d\U0001f600 and <think>tags</think>."
    tokens = post(twin, "/tokenize", {"prompt": text})
    ids = tokens.json()["tokens"]
    assert post(twin, "/detokenize", {"model": twin.served_model_name, "tokens": ids}).json() == {
        "prompt": text
    }


# --- completions ------------------------------------------------------------------------------------


def test_completion_non_streaming_shape(twin: FakeServer) -> None:
    response = post(twin, "/v1/completions", {"prompt": "The river", "max_tokens": 12, "ignore_eos": True})
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    assert body["model"] == twin.served_model_name
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    assert {"index", "text", "logprobs", "finish_reason", "stop_reason"} <= set(choice)
    usage = body["usage"]
    assert usage["completion_tokens"] == 12 == count_tokens(twin, choice["text"])
    assert usage["prompt_tokens"] == 2
    assert usage["total_tokens"] == 14


def test_completion_streaming_framing(twin: FakeServer) -> None:
    body = {
        "prompt": "The river",
        "max_tokens": 40,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = requests.post(twin.url + "/v1/completions", json=body, stream=True, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = read_events(response)
    assert events[-1] == "[DONE]"
    usage_chunks = [e for e in events[:-1] if e["choices"] == []]
    assert len(usage_chunks) == 1
    assert usage_chunks[0] is events[-2]
    text_chunks = events[:-2]
    assert all(c["object"] == "text_completion" for c in text_chunks)
    assert [c["choices"][0]["finish_reason"] for c in text_chunks][-1] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in text_chunks[:-1])
    text = "".join(c["choices"][0]["text"] for c in text_chunks)
    assert usage_chunks[0]["usage"]["completion_tokens"] == 40 == count_tokens(twin, text)
    # MTP: some steps carry more than one token.
    assert len(text_chunks) < 40


def test_token_id_prompt_and_determinism(twin: FakeServer) -> None:
    ids = post(twin, "/tokenize", {"prompt": "The river runs"}).json()["tokens"]
    by_ids = post(twin, "/v1/completions", {"prompt": ids, "max_tokens": 20}).json()
    by_text = post(twin, "/v1/completions", {"prompt": "The river runs", "max_tokens": 20}).json()
    assert by_ids["usage"]["prompt_tokens"] == len(ids)
    assert by_ids["choices"][0]["text"] == by_text["choices"][0]["text"]


def test_stop_string_cuts_text(twin: FakeServer) -> None:
    full = post(twin, "/v1/completions", {"prompt": "Once", "max_tokens": 30, "ignore_eos": True}).json()
    text = full["choices"][0]["text"]
    stop = text.split()[5]
    cut = post(
        twin, "/v1/completions", {"prompt": "Once", "max_tokens": 30, "ignore_eos": True, "stop": [stop]}
    ).json()
    choice = cut["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["stop_reason"] == stop
    assert choice["text"] == text[: text.index(stop)]


def test_natural_stop_counts_the_eos_token(cpu_twin: FakeServer) -> None:
    body = post(cpu_twin, "/v1/completions", {"prompt": "Once upon a time", "max_tokens": 1000}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == count_tokens(cpu_twin, choice["text"]) + 1


def test_min_tokens_and_ignore_eos(cpu_twin: FakeServer) -> None:
    natural = post(cpu_twin, "/v1/completions", {"prompt": "Hi", "max_tokens": 1000}).json()["usage"][
        "completion_tokens"
    ]
    longer = post(
        cpu_twin, "/v1/completions", {"prompt": "Hi", "max_tokens": 1000, "min_tokens": natural + 5}
    ).json()
    assert longer["usage"]["completion_tokens"] == natural + 6
    assert longer["choices"][0]["finish_reason"] == "stop"
    forced = post(
        cpu_twin, "/v1/completions", {"prompt": "Hi", "max_tokens": natural + 50, "ignore_eos": True}
    ).json()
    assert forced["usage"]["completion_tokens"] == natural + 50


# --- chat -------------------------------------------------------------------------------------------


def test_chat_non_streaming_splits_reasoning(twin: FakeServer) -> None:
    response = chat(twin, max_tokens=2000)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    (choice,) = body["choices"]
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["reasoning"]
    assert message["content"]
    assert "<think>" not in message["reasoning"]
    assert "</think>" not in message["content"]
    assert choice["finish_reason"] == "stop"
    full = "<think>" + message["reasoning"] + "</think>" + message["content"]
    assert body["usage"]["completion_tokens"] == count_tokens(twin, full) + 1  # + <|im_end|>


def test_chat_streaming_framing_with_mtp_and_reasoning(twin: FakeServer) -> None:
    response = chat(twin, max_tokens=2000, stream=True, stream_options={"include_usage": True})
    events = read_events(response)
    assert events[-1] == "[DONE]"
    first = events[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    chunks = events[1:-2]
    usage = events[-2]
    assert usage["choices"] == []
    assert set(usage["usage"]) == {
        "prompt_tokens",
        "total_tokens",
        "completion_tokens",
        "completion_tokens_details",
    }
    assert usage["system_fingerprint"].startswith("vllm-0.22.1rc1")
    assert sum(1 for e in events[:-1] if e["choices"] == []) == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    deltas = [c["choices"][0]["delta"] for c in chunks]
    reasoning = "".join(d.get("reasoning") or "" for d in deltas)
    content = "".join(d.get("content") or "" for d in deltas)
    assert reasoning
    assert content
    assert {e["id"] for e in events[:-1]} == {first["id"]}
    completion_tokens = usage["usage"]["completion_tokens"]
    assert completion_tokens == count_tokens(twin, "<think>" + reasoning + "</think>" + content) + 1
    assert len(chunks) < completion_tokens * 0.7  # MTP-2 at ~86 % acceptance: ~2.6 tokens per chunk


def test_chat_without_usage_option_has_no_usage_chunk(twin: FakeServer) -> None:
    events = read_events(chat(twin, max_tokens=5, stream=True))
    assert events[-1] == "[DONE]"
    assert all(e["choices"] for e in events[:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_chat_finds_the_needle(twin: FakeServer) -> None:
    haystack = "The cat walked to the door. " * 200
    needle = (
        "IMPORTANT: The secret access code for Project Aurora is BANANA-MOOSE-7421. Remember this exactly."
    )
    question = "Based on the text above, what is the secret access code for Project Aurora? Reply with just the code."
    body = chat(twin, haystack + needle + " " + haystack + question, max_tokens=2000).json()
    assert body["choices"][0]["message"]["content"].strip() == "BANANA-MOOSE-7421"


def test_chat_on_cpu_profile_has_plain_content(cpu_twin: FakeServer) -> None:
    events = read_events(chat(cpu_twin, max_tokens=30, stream=True, stream_options={"include_usage": True}))
    deltas = [e["choices"][0]["delta"] for e in events[1:-2]]
    assert all("reasoning" not in d for d in deltas)
    # Without speculative decoding every chunk carries exactly one token.
    assert len(deltas) == events[-2]["usage"]["completion_tokens"] == 30


def test_content_parts_are_accepted(cpu_twin: FakeServer) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    response = post(cpu_twin, "/v1/chat/completions", {"messages": messages, "max_tokens": 3})
    assert response.status_code == 200


# --- errors -----------------------------------------------------------------------------------------


def assert_error(response: requests.Response, status: int, err_type: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == err_type
    assert error["code"] == status
    if message is not None:
        assert error["message"] == message


def test_invalid_json_is_400(twin: FakeServer) -> None:
    response = requests.post(
        twin.url + "/v1/completions",
        data=b'{"model":',
        timeout=5,
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "Bad Request")
    assert response.json()["error"] == {
        "message": "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.9', 'msg': 'JSON decode error', "
        "'input': '<dict of 0 items>', 'ctx': {'error': 'Expecting value'}}",
        "type": "Bad Request",
        "param": "body.9",
        "code": 400,
    }


def test_body_must_be_a_json_object_sent_as_json(twin: FakeServer) -> None:
    listed = post(twin, "/v1/completions", [{"prompt": "Hi"}])
    assert_error(listed, 400, "Bad Request")
    assert listed.json()["error"]["param"] == "body"
    assert "'input': '<list of 1 items>'" in listed.json()["error"]["message"]
    form = requests.post(
        twin.url + "/v1/completions",
        data='{"prompt":"Hi"}',
        timeout=5,
        headers={"content-type": "text/plain"},
    )
    message = "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed"
    assert_error(form, 400, "Bad Request", message)


def test_unknown_model_is_404(twin: FakeServer) -> None:
    response = post(twin, "/v1/completions", {"model": "gpt-4", "prompt": "hi"})
    message = "The model `gpt-4` does not exist. Valid aliases: Qwen3.5-397B-A17B-FP8."
    assert_error(response, 404, "NotFoundError", message)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"max_tokens": 0}, "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"),
        ({"max_tokens": -1}, "max_tokens must be at least 1, got -1. (parameter=max_tokens, value=-1)"),
        (
            {"temperature": -1},
            "temperature must be non-negative, got -1.0. (parameter=temperature, value=-1.0)",
        ),
    ],
)
def test_bad_sampling_params_are_400(twin: FakeServer, extra: dict[str, Any], message: str) -> None:
    assert_error(post(twin, "/v1/completions", {"prompt": "hi", **extra}), 400, "BadRequestError", message)
    assert_error(chat(twin, **extra), 400, "BadRequestError", message)


def test_streaming_request_rejected_up_front_gets_plain_json(twin: FakeServer) -> None:
    response = chat(twin, max_tokens=0, stream=True)
    assert_error(response, 400, "BadRequestError")


def test_empty_prompt_and_messages_and_missing_fields(twin: FakeServer) -> None:
    no_prompt = "Either prompt or prompt_embeds must be provided and non-empty. (parameter=prompt)"
    assert_error(post(twin, "/v1/completions", {"prompt": ""}), 400, "BadRequestError", no_prompt)
    assert_error(post(twin, "/v1/completions", {"max_tokens": 4}), 400, "BadRequestError", no_prompt)
    empty = post(twin, "/v1/chat/completions", {"messages": []})
    message = "Cannot apply chat template to an empty conversation. Provide at least one message."
    assert_error(empty, 400, "BadRequestError", message)
    assert empty.json()["error"]["param"] is None
    assert_error(post(twin, "/v1/chat/completions", {"model": "x"}), 400, "Bad Request")


def test_prompt_over_context_is_400_and_long_output_is_clamped(cpu_twin: FakeServer) -> None:
    response = post(cpu_twin, "/v1/completions", {"prompt": " the" * 9000, "max_tokens": 4})
    assert_error(
        response,
        400,
        "BadRequestError",
        "This model's maximum context length is 8192 tokens. However, your prompt contains at least 8193 input "
        "tokens, which exceeds this limit even without any output tokens. Please reduce the length of the input "
        "prompt. (parameter=input_tokens, value=8193)",
    )
    assert response.json()["error"]["param"] == "input_tokens"
    streamed = post(cpu_twin, "/v1/completions", {"prompt": " the" * 9000, "max_tokens": 4, "stream": True})
    assert_error(streamed, 400, "BadRequestError")
    exact = post(cpu_twin, "/v1/completions", {"prompt": " the" * 8192, "max_tokens": 1})
    zero = "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"
    assert_error(exact, 400, "BadRequestError", zero)
    fits = " the" * 8180
    body = post(cpu_twin, "/v1/completions", {"prompt": fits, "max_tokens": 100, "ignore_eos": True}).json()
    assert body["usage"]["completion_tokens"] == 12
    assert body["choices"][0]["finish_reason"] == "length"


def test_n_above_one_is_rejected(twin: FakeServer) -> None:
    assert_error(post(twin, "/v1/completions", {"prompt": "hi", "n": 2}), 400, "BadRequestError")


# --- API key ----------------------------------------------------------------------------------------


def test_api_key_guards_v1_only(tmp_path: Any) -> None:
    log = tmp_path / "vllm.log"
    key = "sk-twin-secret-123"
    with FakeServer("smollm2-cpu", time_scale=200, api_key=key, log_path=log) as server:
        unauthorized = requests.get(server.url + "/v1/models", timeout=5)
        assert unauthorized.status_code == 401
        assert unauthorized.json() == {"error": "Unauthorized"}
        ok = requests.get(server.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=5)
        assert ok.status_code == 200
        for path in ("/health", "/metrics", "/version"):
            assert requests.get(server.url + path, timeout=5).status_code == 200
    assert key not in log.read_text()


# --- key-for-key conformance with the real vLLM 0.32 samples (docs/real-vllm.md) ---------------------

REAL_COMPLETION_KEYS = [
    "id",
    "object",
    "created",
    "model",
    "choices",
    "service_tier",
    "system_fingerprint",
    "usage",
    "kv_transfer_params",
    "ec_transfer_params",
    "metrics",
]
REAL_COMPLETION_CHOICE_KEYS = [
    "index",
    "text",
    "logprobs",
    "finish_reason",
    "stop_reason",
    "token_ids",
    "prompt_logprobs",
    "prompt_token_ids",
    "routed_experts",
]
REAL_CHAT_KEYS = [
    "id",
    "object",
    "created",
    "model",
    "choices",
    "service_tier",
    "system_fingerprint",
    "usage",
    "prompt_logprobs",
    "prompt_token_ids",
    "prompt_text",
    "kv_transfer_params",
    "ec_transfer_params",
    "metrics",
]
REAL_CHAT_CHOICE_KEYS = [
    "index",
    "message",
    "logprobs",
    "finish_reason",
    "stop_reason",
    "token_ids",
    "routed_experts",
]
REAL_MESSAGE_KEYS = ["role", "content", "refusal", "annotations", "audio", "function_call", "reasoning"]
REAL_USAGE_KEYS = [
    "prompt_tokens",
    "total_tokens",
    "completion_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
]


def test_non_streaming_keys_match_real_vllm(cpu_twin: FakeServer) -> None:
    completion = post(cpu_twin, "/v1/completions", {"prompt": "Hi", "max_tokens": 4}).json()
    assert list(completion) == REAL_COMPLETION_KEYS
    assert list(completion["choices"][0]) == REAL_COMPLETION_CHOICE_KEYS
    assert list(completion["usage"]) == REAL_USAGE_KEYS
    assert re.fullmatch(r"cmpl-[0-9a-f]{16}", completion["id"])
    assert re.fullmatch(r"vllm-0\.32\.0-[0-9a-f]{8}", completion["system_fingerprint"])
    reply = chat(cpu_twin, max_tokens=4).json()
    assert list(reply) == REAL_CHAT_KEYS
    assert list(reply["choices"][0]) == REAL_CHAT_CHOICE_KEYS
    assert list(reply["choices"][0]["message"]) == REAL_MESSAGE_KEYS
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{16}", reply["id"])
    assert reply["usage"]["completion_tokens_details"] is None


def test_streaming_chunks_match_real_vllm(cpu_twin: FakeServer) -> None:
    events = read_events(chat(cpu_twin, max_tokens=2, stream=True, stream_options={"include_usage": True}))
    role, token, last, usage, done = events
    assert list(role) == ["id", "object", "created", "model", "choices", "prompt_token_ids", "prompt_text"]
    assert role["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    assert list(token["choices"][0]) == ["index", "delta", "logprobs", "finish_reason", "token_ids"]
    assert list(last) == ["id", "object", "created", "model", "choices"]
    assert list(last["choices"][0]) == [
        "index",
        "delta",
        "logprobs",
        "finish_reason",
        "stop_reason",
        "token_ids",
    ]
    assert last["choices"][0]["finish_reason"] == "length"
    assert list(usage) == ["id", "object", "created", "model", "choices", "usage", "system_fingerprint"]
    assert list(usage["usage"]) == ["prompt_tokens", "total_tokens", "completion_tokens"]
    assert done == "[DONE]"
    # Without include_usage the finishing chunk carries the fingerprint.
    plain = read_events(post(cpu_twin, "/v1/completions", {"prompt": "Hi", "max_tokens": 3, "stream": True}))
    assert plain[-1] == "[DONE]"
    assert "system_fingerprint" in plain[-2]
    assert all("system_fingerprint" not in e for e in plain[:-2])
    keys = ["index", "text", "logprobs", "finish_reason", "stop_reason", "prompt_token_ids", "token_ids"]
    assert list(plain[0]["choices"][0]) == keys


def test_natural_stop_ends_with_an_empty_content_delta(cpu_twin: FakeServer) -> None:
    events = read_events(chat(cpu_twin, max_tokens=1000, stream=True))
    last = events[-2]["choices"][0]
    assert last["finish_reason"] == "stop"
    assert last["delta"] == {"content": ""}  # the EOS token detokenizes to nothing
