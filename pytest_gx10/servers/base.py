"""What every server adapter says about its engine, and the base the built-in adapters share.

A :class:`Server` is bound to one client. Its class holds the engine's static facts (its name, the
metrics it exposes and what each means, its log signatures, how its command line is written); its
methods ask the server (version, context window, token counts). A fact the engine does not give
raises :class:`NotOffered`, whose message names the engine and the fact, so a check that needs it
can skip saying why.

Core: nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.observe.prometheus import MetricsError, SpecCounters, counters, spec_decode_counters
from pytest_gx10.observe.signatures import Signature

__all__ = ["MetricNames", "NotOffered", "Server", "Telemetry"]


class NotOffered(Exception):
    """The engine does not give this fact (e.g. no ``/tokenize``); the message says which and where."""


@dataclass(frozen=True)
class MetricNames:
    """Which of the engine's Prometheus metrics means what; None where it exposes no such metric.

    ``progress`` is a counter that moves while the engine generates (the hang detector watches it);
    ``spec_prefix`` is the prefix of the spec-decode counters (``..._num_drafts``,
    ``..._num_draft_tokens``, ``..._num_accepted_tokens``, ``..._num_accepted_tokens_per_pos``);
    ``prefix_cache_queries`` and ``prefix_cache_hits`` count prompt tokens looked up in the prefix
    cache and found there.
    """

    running: str | None = None
    waiting: str | None = None
    kv_usage: str | None = None
    progress: str | None = None
    generated_tokens: str | None = None
    prompt_tokens: str | None = None
    preemptions: str | None = None
    spec_prefix: str | None = None
    prefix_cache_queries: str | None = None
    prefix_cache_hits: str | None = None


@dataclass(frozen=True)
class Telemetry:
    """One scrape of the server's metrics, read through its adapter: None where it has no such metric.

    The gauges (running, waiting, KV usage) are as of the scrape; the rest are the server's
    cumulative counters. ``spec`` holds the spec-decode counters (None without speculative decoding).
    """

    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    progress: float | None = None
    generated_tokens: float | None = None
    prompt_tokens: float | None = None
    preemptions: float | None = None
    prefix_cache_queries: float | None = None
    prefix_cache_hits: float | None = None
    spec: SpecCounters | None = None


class Server:
    """An OpenAI-compatible server, asked only what the OpenAI API defines.

    Subclasses describe one engine each. ``name`` is what ``--gx10-server`` and the profile's
    ``[server] adapter`` say; ``label`` is for people. ``offers`` lists the optional facts the engine
    gives: ``tokenize``, ``detokenize``, ``version``, ``max_model_len``, ``metrics``,
    ``spec_decode_metrics``, ``engine_config_log`` (method and k in the boot log), ``mtp_log``,
    ``spec_decode_log`` (periodic acceptance lines), ``usage_per_chunk`` (the usage in every streamed
    chunk when asked, ``stream_options.continuous_usage_stats``: a chunk's tokens are counted).
    """

    name: ClassVar[str] = "openai"
    label: ClassVar[str] = "an OpenAI-compatible server"
    offers: ClassVar[frozenset[str]] = frozenset()
    metric_names: ClassVar[MetricNames] = MetricNames()
    crash_signatures: ClassVar[tuple[Signature, ...]] = ()
    fatal_signatures: ClassVar[tuple[Signature, ...]] = ()
    # How prompt sizes are known: said in the results next to every figure that depends on them.
    token_counting: ClassVar[str] = "usage.prompt_tokens of a one-token request (the server's own count)"
    # Detection order: higher asks first; the generic adapter answers last, for anything.
    priority: ClassVar[int] = 0

    def __init__(self, client: VllmClient) -> None:
        self.client = client
        self._counts: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.client.base_url!r})"

    # --- detection -------------------------------------------------------------------------------

    @classmethod
    def detect(cls, client: VllmClient, models: Sequence[Mapping[str, Any]]) -> bool:
        """Whether the server at ``client`` is this engine; ``models`` is its ``/v1/models`` list."""
        return True

    # --- facts -----------------------------------------------------------------------------------

    def require(self, fact: str) -> None:
        """Raise :class:`NotOffered` unless the engine gives ``fact``."""
        if fact not in self.offers:
            raise NotOffered(f"{self.label} gives no {fact} ({self.name} adapter)")

    def version(self) -> str:
        """The server's version string."""
        raise NotOffered(f"{self.label} gives no version ({self.name} adapter)")

    def card(self, model: str) -> Mapping[str, Any]:
        """``model``'s card on ``/v1/models`` (empty when it is not listed)."""
        return next((m for m in self.client.models() if m.get("id") == model), {})

    def max_model_len(self, model: str) -> int | None:
        """The served context window of ``model`` (None when the server does not say)."""
        served = self.card(model).get("max_model_len")
        return served if isinstance(served, int) and served > 0 else None

    def facts(self) -> dict[str, Any]:
        """What the results say about the server: the adapter's name and label, and how prompt
        sizes are counted (the version is asked separately: it needs the server)."""
        return {"server": self.name, "server_label": self.label, "token_counting": self.token_counting}

    def deployment_facts(self, model: str) -> dict[str, Any]:
        """What the server says about its deployment: its label and version, the model, its path and
        context window, and what ``/metrics`` tells (:meth:`metric_facts`). A fact it does not give
        is left out; this never raises for a fact the server cannot give.
        """
        facts: dict[str, Any] = {"server": self.label, "model": model}
        with contextlib.suppress(EndpointError, NotOffered):
            facts["server_version"] = self.version()
        try:
            card = self.card(model)
            facts["max_model_len"] = self.max_model_len(model)
        except EndpointError:
            card = {}
        root = card.get("root")
        if isinstance(root, str) and root and root != model:
            facts["model_path"] = root
        if "metrics" in self.offers:
            with contextlib.suppress(EndpointError, MetricsError):
                facts.update(self.metric_facts(self.client.metrics_text(), model))
        return {k: v for k, v in facts.items() if v is not None}

    def block_size(self, model: str) -> int | None:
        """Tokens per KV cache block, as the server says it (None when it does not): the prefix cache
        keeps and serves whole blocks only. This never raises for a server that cannot say."""
        return None

    def metric_facts(self, text: str, model: str | None = None) -> dict[str, Any]:
        """Deployment facts in one ``/metrics`` scrape: here, the draft positions the spec-decode
        counters have (an engine's adapter adds its info gauges)."""
        counters = self.spec_counters(text, model)
        if counters is None or not counters.accepted_per_pos:
            return {}
        return {"speculative_tokens": len(counters.accepted_per_pos)}

    # --- tokens ----------------------------------------------------------------------------------

    def count_prompt(self, prompt: str | list[dict[str, str]]) -> int:
        """A prompt's tokens as the server counts them: a string as a completion prompt, a list of
        messages as a chat with its template applied (a workload's ``PromptCounter``)."""
        if isinstance(prompt, str):
            return self.count_tokens(prompt)
        return self.count_tokens(messages=list(prompt))

    def count_tokens(self, prompt: str | None = None, *, messages: list[dict[str, Any]] | None = None) -> int:
        """The server's own token count for a completion prompt or a chat (template applied).

        The generic way: one request with ``max_tokens`` 1, and its ``usage.prompt_tokens``; exact, at
        the price of a prefill. Counts are remembered per prompt.
        """
        key = hashlib.sha256(json.dumps([prompt, messages], ensure_ascii=False).encode()).hexdigest()
        if key in self._counts:
            return self._counts[key]
        body: dict[str, Any] = {"model": self.client.served_model(), "max_tokens": 1, "temperature": 0}
        if messages is not None:
            reply = self.client.complete({**body, "messages": messages}, chat=True)
        else:
            reply = self.client.complete({**body, "prompt": prompt or ""})
        usage = reply.get("usage") if isinstance(reply, dict) else None
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        if not isinstance(tokens, int):
            where = "/v1/chat/completions" if messages is not None else "/v1/completions"
            raise EndpointError(
                self.client.base_url + where,
                f"no usage.prompt_tokens to count tokens by ({str(reply)[:100]})",
            )
        self._counts[key] = tokens
        return tokens

    def tokenize(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """The token ids of ``text``."""
        raise NotOffered(f"{self.label} gives no tokenize endpoint ({self.name} adapter)")

    def detokenize(self, tokens: list[int]) -> str:
        """The text of ``tokens``."""
        raise NotOffered(f"{self.label} gives no detokenize endpoint ({self.name} adapter)")

    # --- metrics ---------------------------------------------------------------------------------

    def telemetry(self, text: str, model: str | None = None) -> Telemetry:
        """Read one ``/metrics`` scrape by this engine's names (the text is parsed once per family)."""
        names = self.metric_names
        wanted = [
            name
            for name in (
                names.running,
                names.waiting,
                names.kv_usage,
                names.progress,
                names.generated_tokens,
                names.prompt_tokens,
                names.preemptions,
                names.prefix_cache_queries,
                names.prefix_cache_hits,
            )
            if name is not None
        ]
        found = counters(text, wanted, model)

        def read(name: str | None) -> float | None:
            return found.get(name) if name else None

        return Telemetry(
            running=read(names.running),
            waiting=read(names.waiting),
            kv_usage=read(names.kv_usage),
            progress=read(names.progress),
            generated_tokens=read(names.generated_tokens),
            prompt_tokens=read(names.prompt_tokens),
            preemptions=read(names.preemptions),
            prefix_cache_queries=read(names.prefix_cache_queries),
            prefix_cache_hits=read(names.prefix_cache_hits),
            spec=self.spec_counters(text, model),
        )

    def spec_counters(self, text: str, model: str | None = None) -> SpecCounters | None:
        """The spec-decode counters in one scrape (None when the engine exposes none)."""
        prefix = self.metric_names.spec_prefix
        return spec_decode_counters(text, model, prefix=prefix) if prefix else None

    # --- launching -------------------------------------------------------------------------------

    default_entrypoint: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def render_flag(cls, flag: str, value: Any) -> list[str]:
        """One recipe ``[serve]`` key as command-line words: ``max_model_len = 8192`` -> ``--max-model-len 8192``.

        A true flag is given bare and a false one left out; a table is written as JSON; a list as
        repeated words.
        """
        option = "--" + flag.replace("_", "-")
        if isinstance(value, bool):
            return [option] if value else []
        if isinstance(value, dict):
            return [option, json.dumps(value, separators=(",", ":"))]
        if isinstance(value, list):
            return [option, *(str(v) for v in value)]
        return [option, str(value)]

    @classmethod
    def model_argv(cls, model: str) -> list[str]:
        """How the model is named on the command line."""
        return ["--model", model]
