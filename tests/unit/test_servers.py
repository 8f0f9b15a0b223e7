"""The server seam: adapters detected from what a server says, each asking its engine's own endpoints.

A small stand-in answers as llama.cpp's server does (its wire facts from ``tools/server``); the twin
answers as vLLM does; a server with only the OpenAI routes gets the generic adapter, which counts
tokens by ``usage.prompt_tokens``. The real tier runs the same adapters against the real engines.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.launch.recipes import load_recipe
from pytest_gx10.servers import (
    LlamaCppServer,
    NotOffered,
    Server,
    UnknownServer,
    VllmServer,
    adapter_class,
    adapters,
    choose,
)

LLAMACPP_METRICS = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 120
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 48
# TYPE llamacpp:n_decode_total counter
llamacpp:n_decode_total 61
# TYPE llamacpp:spec_decode_num_draft_tokens_total counter
llamacpp:spec_decode_num_draft_tokens_total 40
# TYPE llamacpp:spec_decode_num_accepted_tokens_total counter
llamacpp:spec_decode_num_accepted_tokens_total 30
# TYPE llamacpp:spec_decode_num_drafts_total counter
llamacpp:spec_decode_num_drafts_total 20
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 2
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 1
# TYPE llamacpp:spec_decode_num_accepted_tokens_per_pos_total counter
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 18
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="1"} 12
"""


class _Handler(BaseHTTPRequestHandler):
    """Answers as llama.cpp's server (``llama=True``) or as a bare OpenAI-compatible server."""

    llama = True

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            card: dict[str, Any] = {"id": "tiny", "object": "model"}
            if self.llama:
                card.update(owned_by="llamacpp", meta={"n_ctx": 4096, "n_vocab": 100})
            self._send(200, {"object": "list", "data": [card]})
        elif self.path == "/props" and self.llama:
            self._send(200, {"build_info": "b7000-abcdef0", "default_generation_settings": {"n_ctx": 4096}})
        elif self.path == "/metrics" and self.llama:
            self._send(200, LLAMACPP_METRICS, "text/plain; version=0.0.4")
        else:
            self._send(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        words = lambda text: text.split()  # noqa: E731 - one token per word, a BOS when asked
        if self.path == "/tokenize" and self.llama:
            tokens = [len(w) for w in words(body["content"])]
            self._send(200, {"tokens": ([1] if body.get("add_special") else []) + tokens})
        elif self.path == "/apply-template" and self.llama:
            text = "".join(f"<|{m['role']}|> {m['content']} <|end|> " for m in body["messages"])
            self._send(200, {"prompt": text + "<|assistant|>"})
        elif self.path == "/detokenize" and self.llama:
            self._send(200, {"content": " ".join("x" * t for t in body["tokens"])})
        elif self.path in ("/v1/completions", "/v1/chat/completions"):
            text = body.get("prompt") or " ".join(m["content"] for m in body.get("messages", []))
            prompt_tokens = len(words(text)) + (3 if "messages" in body else 0)
            choice = {"index": 0, "text": "ok", "finish_reason": "length"}
            self._send(200, {"choices": [choice], "usage": {"prompt_tokens": prompt_tokens}})
        else:
            self._send(404, {"error": {"code": 404, "message": "File Not Found"}})


def _serve(llama: bool) -> Iterator[str]:
    handler = type("Handler", (_Handler,), {"llama": llama})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    """A stand-in that answers as llama.cpp's server."""
    yield from _serve(llama=True)


@pytest.fixture(scope="module")
def openai_url() -> Iterator[str]:
    """A stand-in with only the OpenAI routes."""
    yield from _serve(llama=False)


def test_llamacpp_is_detected_and_asked_its_own_way(llama_url: str) -> None:
    """owned_by llamacpp: its build, the slot's context, chat counts through /apply-template."""
    with VllmClient(llama_url) as client:
        server = choose(client)
        assert isinstance(server, LlamaCppServer)
        assert server.version() == "b7000-abcdef0"
        assert server.max_model_len("tiny") == 4096
        assert server.count_tokens("one two three") == 4  # the BOS the server adds to a prompt
        messages = [{"role": "user", "content": "one two"}]
        assert server.count_tokens(messages=messages) == 1 + len(
            ["<|user|>", "one", "two", "<|end|>", "<|assistant|>"]
        )
        assert server.tokenize("one two", add_special_tokens=False) == [3, 3]
        assert server.detokenize([3, 1]) == "xxx x"


def test_llamacpp_metrics_read_by_their_meaning(llama_url: str) -> None:
    """Running, waiting and progress from llamacpp: names; spec-decode counters from its family."""
    with VllmClient(llama_url) as client:
        server = LlamaCppServer(client)
        seen = server.telemetry(client.metrics_text())
        assert (seen.running, seen.waiting, seen.progress, seen.generated_tokens) == (2, 1, 61, 48)
        assert seen.kv_usage is None  # llama.cpp exposes none
        spec = server.spec_counters(client.metrics_text())
        assert spec is not None
        assert (spec.drafts, spec.draft_tokens, spec.accepted) == (20, 40, 30)
        assert spec.per_position == (0.9, 0.6)
        assert VllmServer(client).spec_counters(client.metrics_text()) is None  # not vLLM's names


def test_a_server_with_only_the_openai_api_gets_the_generic_adapter(openai_url: str) -> None:
    """No engine endpoint answers: counts come from usage.prompt_tokens; the rest is not offered."""
    with VllmClient(openai_url) as client:
        server = choose(client)
        assert type(server) is Server
        assert server.name == "openai"
        assert server.count_tokens("one two three") == 3
        assert server.count_tokens(messages=[{"role": "user", "content": "one two"}]) == 5
        assert server.max_model_len("tiny") is None
        with pytest.raises(NotOffered, match=r"gives no tokenize endpoint \(openai adapter\)"):
            server.tokenize("one")
        with pytest.raises(NotOffered, match="gives no version"):
            server.version()
        assert "usage.prompt_tokens" in server.facts()["token_counting"]


def test_the_twin_is_vllm() -> None:
    """The twin answers as vLLM does, so vLLM's adapter is chosen and its /tokenize counts."""
    with FakeServer("smollm2-cpu", time_scale=50) as twin, VllmClient(twin.url) as client:
        server = choose(client)
        assert isinstance(server, VllmServer)
        assert server.version() == "0.32.0"
        assert server.max_model_len("SmolLM2-135M-Instruct") == 8192
        assert server.count_tokens("Hello there") == len(server.tokenize("Hello there"))


def test_a_name_chooses_and_an_unknown_name_lists_the_known(llama_url: str) -> None:
    """--gx10-server's value is taken at its word; a wrong one names the adapters there are."""
    with VllmClient(llama_url) as client:
        assert type(choose(client, "openai")) is Server
    with pytest.raises(
        UnknownServer, match=r"no server adapter named 'sglang' \(known: vllm, llama.cpp, openai"
    ):
        adapter_class("sglang")
    assert [cls.name for cls in adapters()][-1] == "openai"  # the generic one is asked last


def test_each_engine_writes_its_own_command_line(tmp_path: Any) -> None:
    """vLLM: the model first and --no-flag for false; llama.cpp: --model, false flags left out."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[recipe]\nkind = "process"\nserver = "llama.cpp"\n'
        '[serve]\nentrypoint = ["llama-server"]\nmodel = "m.gguf"\nport = 9\n'
        "[serve.args]\nctx_size = 4096\nmetrics = true\nmlock = false\n"
    )
    assert load_recipe(recipe).serve_argv() == [
        "llama-server", "--model", "m.gguf", "--port", "9", "--ctx-size", "4096", "--metrics",
    ]  # fmt: skip
    recipe.write_text(recipe.read_text().replace('server = "llama.cpp"', 'server = "vllm"'))
    assert load_recipe(recipe).serve_argv()[:3] == ["llama-server", "m.gguf", "--port"]
    assert "--no-mlock" in load_recipe(recipe).serve_argv()
    recipe.write_text(recipe.read_text().replace('server = "vllm"', 'server = "tgi"'))
    with pytest.raises(Exception, match=r"recipe\.server.*no server adapter named 'tgi'"):
        load_recipe(recipe)


@pytest.mark.parametrize(("profile", "block_size", "blocks"), [("smollm2-cpu", 128, 364), (None, 16, 34442)])
def test_the_block_size_is_the_twins(profile: str | None, block_size: int, blocks: int) -> None:
    """vLLM's adapter reads it from vllm:cache_config_info; the deployment facts carry it and the blocks."""
    name = profile or "qwen3.5-397b-fp8-mtp2-gx10x4"
    with FakeServer(name, time_scale=50) as twin, VllmClient(twin.url) as client:
        server = choose(client)
        assert isinstance(server, VllmServer)
        assert server.block_size(twin.served_model_name) == block_size
        facts = server.deployment_facts(twin.served_model_name)
    assert (facts["block_size"], facts["num_gpu_blocks"]) == (block_size, blocks)


def test_without_the_cache_config_gauge_there_is_no_block_size(llama_url: str, openai_url: str) -> None:
    """A /metrics without vllm:cache_config_info, none at all, or an adapter that cannot say: None
    (llama.cpp's says 1 without asking: its prompt cache reuses a prefix to the token)."""
    with VllmClient(llama_url) as client:
        assert VllmServer(client).block_size("tiny") is None  # metrics, but not vLLM's gauge
        assert LlamaCppServer(client).block_size("tiny") == 1  # its prompt cache is token-granular
    with VllmClient(openai_url) as client:
        assert VllmServer(client).block_size("tiny") is None  # /metrics answers 404
        assert Server(client).block_size("tiny") is None

    class Scrape:
        """A client whose /metrics is ``text``."""

        def __init__(self, text: str) -> None:
            self.text = text

        def metrics_text(self) -> str:
            return self.text

    gauge = 'vllm:cache_config_info{block_size="%s",engine="0"} 1.0\n'
    assert VllmServer(Scrape(gauge % "128")).block_size("m") == 128  # type: ignore[arg-type]
    for text in (
        gauge % "None",
        gauge % "big",
        gauge % "0",
        "vllm:num_requests_running 0.0\n",
        "{not prometheus",
    ):
        assert VllmServer(Scrape(text)).block_size("m") is None, text  # type: ignore[arg-type]
