"""llama.cpp's server (``llama-server``): ``/props``, ``/tokenize``, ``/apply-template``, ``llamacpp:`` metrics.

The wire facts are those of llama.cpp's ``tools/server`` (``server-context.cpp``): the model card says
``owned_by: llamacpp`` and carries ``meta.n_ctx``; ``/props`` holds ``build_info``; a chat is
tokenized as the server does it, its template applied by ``/apply-template`` and the result tokenized
with special tokens added and parsed; ``/metrics`` (started with ``--metrics``) counts decode calls
on every step, where its generated-token counter moves only when a request ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.observe.signatures import Signature
from pytest_gx10.servers.base import MetricNames, Server

__all__ = ["LlamaCppServer"]


def _sig(name: str, pattern: str, description: str) -> Signature:
    return Signature(name, re.compile(pattern), description)


CRASH_SIGNATURES: tuple[Signature, ...] = (
    _sig("ggml_assert", r"GGML_ASSERT\(|GGML_ABORT", "a ggml assertion failed (the process aborts)"),
    _sig("segfault", r"Segmentation fault|SIGSEGV", "the process crashed"),
    _sig("cxx_terminate", r"terminate called after throwing", "an uncaught C++ exception"),
    _sig("alloc_failed", r"failed to allocate|std::bad_alloc|out of memory", "memory exhausted"),
)
FATAL_SIGNATURES = CRASH_SIGNATURES


class LlamaCppServer(Server):
    """llama.cpp's ``llama-server``."""

    name = "llama.cpp"
    label = "llama.cpp's server"
    priority = 10
    offers = frozenset(
        {"tokenize", "detokenize", "version", "max_model_len", "metrics", "spec_decode_metrics"}
    )
    metric_names = MetricNames(
        running="llamacpp:requests_processing",
        waiting="llamacpp:requests_deferred",
        progress="llamacpp:n_decode_total",
        generated_tokens="llamacpp:tokens_predicted_total",
        prompt_tokens="llamacpp:prompt_tokens_total",
        spec_prefix="llamacpp:spec_decode",
    )
    crash_signatures = CRASH_SIGNATURES
    fatal_signatures = FATAL_SIGNATURES
    token_counting = "exact: the server's POST /tokenize (after POST /apply-template for chats)"
    default_entrypoint: ClassVar[tuple[str, ...]] = ("llama-server",)

    @classmethod
    def detect(cls, client: VllmClient, models: Sequence[Mapping[str, Any]]) -> bool:
        """The model card says ``owned_by: llamacpp``, or ``/props`` carries ``build_info``."""
        if any(m.get("owned_by") == "llamacpp" for m in models):
            return True
        try:
            props = client.get_json("/props")
        except EndpointError:
            return False
        return isinstance(props, dict) and "build_info" in props

    def version(self) -> str:
        """``/props``'s build_info (``b1234-abcdef0``)."""
        props = self.client.get_json("/props")
        build = props.get("build_info") if isinstance(props, dict) else None
        if not isinstance(build, str) or not build:
            raise EndpointError(self.client.base_url + "/props", f"no build_info in {str(props)[:100]}")
        return build

    def max_model_len(self, model: str) -> int | None:
        """The card's ``meta.n_ctx`` (a slot's context), else ``/props``' ``n_ctx``."""
        meta = self.card(model).get("meta")
        n_ctx = meta.get("n_ctx") if isinstance(meta, dict) else None
        if isinstance(n_ctx, int) and n_ctx > 0:
            return n_ctx
        props = self.client.get_json("/props")
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
        return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None

    def block_size(self, model: str) -> int | None:
        """1: llama-server keeps each slot's KV cache and reuses the longest prefix a new prompt shares
        with it, token by token, evaluating at least the prompt's last token again (its prompt cache,
        on by default). Its usage's ``cached_tokens`` is that prefix: 231 tokens of a 413-token second
        turn on the real server, which 16-token blocks would have capped at 224."""
        return 1

    def deployment_facts(self, model: str) -> dict[str, Any]:
        """The common facts, and what ``/props`` adds: the model file and the parallel slots."""
        facts = super().deployment_facts(model)
        try:
            props = self.client.get_json("/props")
        except EndpointError:
            return facts
        if isinstance(props, dict):
            if isinstance(props.get("model_path"), str) and props["model_path"]:
                facts["model_path"] = props["model_path"]
            if isinstance(props.get("total_slots"), int):
                facts["parallel_slots"] = props["total_slots"]
        return facts

    def _tokens(self, content: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = self.client.post_json(
            "/tokenize", {"content": content, "add_special": add_special, "parse_special": parse_special}
        )
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise EndpointError(self.client.base_url + "/tokenize", f"no tokens in {str(data)[:100]}")
        return [int(t) for t in tokens]

    def count_tokens(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None) -> int:
        """As the server counts a request: the chat template applied, special tokens added and parsed."""
        if messages is not None:
            applied = self.client.post_json("/apply-template", {"messages": messages})
            text = applied.get("prompt") if isinstance(applied, dict) else None
            if not isinstance(text, str):
                raise EndpointError(
                    self.client.base_url + "/apply-template", f"no prompt in {str(applied)[:100]}"
                )
            prompt = text
        return len(self._tokens(prompt or "", add_special=True, parse_special=True))

    def tokenize(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """POST /tokenize; special tokens written in the text stay text."""
        return self._tokens(text, add_special=add_special_tokens, parse_special=False)

    def detokenize(self, tokens: list[int]) -> str:
        """POST /detokenize."""
        data = self.client.post_json("/detokenize", {"tokens": tokens})
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(content, str):
            raise EndpointError(self.client.base_url + "/detokenize", f"no content in {str(data)[:100]}")
        return content
