"""vLLM's OpenAI-compatible server: ``/version``, ``/tokenize``, ``vllm:`` metrics, its boot log.

The wire facts are those of vLLM's own API server (``vllm/entrypoints/openai``, ``/metrics`` from
``vllm/v1/metrics``); the twin speaks the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.observe.prometheus import MetricsError, number_or_text, samples
from pytest_gx10.observe.signatures import CRASH_SIGNATURES, FATAL_SIGNATURES
from pytest_gx10.servers.base import MetricNames, Server

__all__ = ["CACHE_CONFIG_INFO", "VllmServer"]

# The info gauge whose labels carry the engine's cache config (vllm/config/cache.py metrics_info()):
# label -> deployment fact.
CACHE_CONFIG_INFO = "vllm:cache_config_info"
_CACHE_FACTS = {
    "gpu_memory_utilization": "gpu_memory_utilization",
    "block_size": "block_size",
    "num_gpu_blocks": "num_gpu_blocks",
    "cache_dtype": "kv_cache_dtype",
    "enable_prefix_caching": "enable_prefix_caching",
}


def _label_value(text: str) -> Any:
    """A label's text as the value it stands for: ``"16"`` -> 16, ``"True"`` -> True, ``"None"`` -> None."""
    if text in ("None", "null", ""):
        return None
    if text in ("True", "False"):
        return text == "True"
    return number_or_text(text)


class VllmServer(Server):
    """vLLM (``vllm serve``), also the embedded twin, which answers as vLLM does."""

    name = "vllm"
    label = "vLLM"
    priority = 20
    offers = frozenset(
        {
            "tokenize",
            "detokenize",
            "version",
            "max_model_len",
            "metrics",
            "spec_decode_metrics",
            "engine_config_log",
            "mtp_log",
            "spec_decode_log",
            "usage_per_chunk",
        }
    )
    metric_names = MetricNames(
        running="vllm:num_requests_running",
        waiting="vllm:num_requests_waiting",
        kv_usage="vllm:kv_cache_usage_perc",
        progress="vllm:generation_tokens_total",
        generated_tokens="vllm:generation_tokens_total",
        prompt_tokens="vllm:prompt_tokens_total",
        preemptions="vllm:num_preemptions_total",
        spec_prefix="vllm:spec_decode",
        prefix_cache_queries="vllm:prefix_cache_queries",
        prefix_cache_hits="vllm:prefix_cache_hits",
    )
    crash_signatures = CRASH_SIGNATURES
    fatal_signatures = FATAL_SIGNATURES
    token_counting = "exact: the server's POST /tokenize (chat template applied for chats)"
    default_entrypoint: ClassVar[tuple[str, ...]] = ("vllm", "serve")

    @classmethod
    def detect(cls, client: VllmClient, models: Sequence[Mapping[str, Any]]) -> bool:
        """vLLM's model cards say ``owned_by: vllm``; its ``/version`` is ``{"version": ...}``."""
        if any(m.get("owned_by") == "vllm" for m in models):
            return True
        try:
            data = client.request("GET", "/version")
            return data.status_code == 200 and isinstance(data.json().get("version"), str)
        except (EndpointError, ValueError, AttributeError):
            return False

    def version(self) -> str:
        """GET /version."""
        data = self.client.get_json("/version")
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise EndpointError(self.client.base_url + "/version", f"no version in {str(data)[:100]}")
        return str(data["version"])

    def metric_facts(self, text: str, model: str | None = None) -> dict[str, Any]:
        """The draft positions, and the cache config ``vllm:cache_config_info``'s labels carry
        (``gpu_memory_utilization``, ``block_size``, ``num_gpu_blocks``, ``cache_dtype``, ...)."""
        facts = super().metric_facts(text, model)
        for name, labels, _ in samples(text):
            if name != CACHE_CONFIG_INFO:
                continue
            for label, fact in _CACHE_FACTS.items():
                value = _label_value(labels.get(label, ""))
                if value is not None:
                    facts[fact] = value
            break
        return facts

    def block_size(self, model: str) -> int | None:
        """``block_size`` of ``vllm:cache_config_info`` in one ``/metrics`` scrape; None when the gauge
        or the label is missing or unreadable, or ``/metrics`` cannot be read."""
        try:
            value = self.metric_facts(self.client.metrics_text(), model).get("block_size")
        except (EndpointError, MetricsError):
            return None
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    def tokenize_request(
        self,
        prompt: str | None = None,
        *,
        messages: list[dict[str, Any]] | None = None,
        add_special_tokens: bool | None = None,
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> dict[str, Any]:
        """POST /tokenize, completion form (``prompt``) or chat form (``messages``, template applied)."""
        body: dict[str, Any] = {"model": self.client.served_model(), **extra}
        if messages is not None:
            body["messages"] = messages
            body["add_generation_prompt"] = add_generation_prompt
        else:
            body["prompt"] = prompt or ""
        if add_special_tokens is not None:
            body["add_special_tokens"] = add_special_tokens
        data = self.client.post_json("/tokenize", body)
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise EndpointError(self.client.base_url + "/tokenize", f"no tokens in {str(data)[:100]}")
        return data

    def count_tokens(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None) -> int:
        """POST /tokenize's count."""
        data = self.tokenize_request(prompt, messages=messages)
        count = data.get("count")
        return int(count) if isinstance(count, int) else len(data["tokens"])

    def tokenize(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """POST /tokenize, completion form."""
        return [int(t) for t in self.tokenize_request(text, add_special_tokens=add_special_tokens)["tokens"]]

    def detokenize(self, tokens: list[int]) -> str:
        """POST /detokenize."""
        data = self.client.post_json("/detokenize", {"model": self.client.served_model(), "tokens": tokens})
        if not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise EndpointError(self.client.base_url + "/detokenize", f"no prompt in {str(data)[:100]}")
        return str(data["prompt"])

    @classmethod
    def render_flag(cls, flag: str, value: Any) -> list[str]:
        """vLLM normalizes underscores in an option's name; after a dot comes a config field, kept as is.

        A false boolean is ``--no-flag`` (vLLM's argparse gives every boolean its negation).
        """
        name, dot, sub = flag.partition(".")
        option = "--" + name.replace("_", "-") + dot + sub
        if value is False:
            return ["--no-" + option[2:]]
        return [option, *Server.render_flag(flag, value)[1:]]

    @classmethod
    def model_argv(cls, model: str) -> list[str]:
        """``vllm serve MODEL``: the model is the first positional argument."""
        return [model]
