"""The twin's /metrics: vLLM's Prometheus names, labels and buckets, fed by the engine's steps.

Built on prometheus_client with a private registry, which is what vLLM uses too, so the text format
(HELP/TYPE lines, ``_total`` and ``_created`` samples, bucket labels) comes out the same.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from pytest_gx10.fake.engine import StepStats, kv_pool
from pytest_gx10.profiles import Profile

__all__ = ["CONTENT_TYPE", "EngineMetrics", "cache_config_info"]

CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"  # what vLLM 0.32 sends

_TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
_ITL_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
_REQUEST_LATENCY_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
_ITERATION_TOKENS_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
_REQUEST_PARAMS_N_BUCKETS = (1, 2, 5, 10, 20)
_REQUEST_NUM_PREEMPTIONS_BUCKETS = (1, 2, 3, 4, 5, 10, 20)
_FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")
_WAITING_REASONS = ("capacity", "deferred")
_SLEEP_STATES = {"awake": 1, "weights_offloaded": 0, "discard_all": 0}  # an engine that never slept
_PROMPT_SOURCES = ("local_compute", "local_cache_hit", "external_kv_transfer")
_CACHE_HIT_SOURCES = ("device", "host", "p2p", "disk", "external_unspecified")
_ADMISSION_REASONS = ("max_num_queued_reqs", "max_num_queued_tokens")


def _1_2_5_buckets(max_value: int) -> list[float]:
    buckets: list[float] = []
    scale = 1
    while True:
        for mantissa in (1, 2, 5):
            if mantissa * scale > max_value:
                return buckets
            buckets.append(float(mantissa * scale))
        scale *= 10


def cache_config_info(profile: Profile, kv_cache_tokens: int | None = None) -> dict[str, str]:
    """The labels of ``vllm:cache_config_info`` for the twin of ``profile``, as vLLM 0.32 writes them.

    vLLM's ``log_metrics_info`` labels the gauge with ``CacheConfig.metrics_info()`` (every field of
    the API server's cache config, as ``str()`` of its value, in field order) and ``engine``. The
    API server learns the block size, the blocks and the pool's tokens and concurrency from the
    engine core; the layout and hash block size stay in the engine core's process ("None" here).
    The twin fills in its pool (``kv_pool``: the KV blocks are ``num_gpu_blocks``), the profile's
    ``kv_cache_dtype`` and ``serve_args.gpu_memory_utilization`` (vLLM's 0.92 without it), prefix
    caching on, and vLLM's defaults for the rest; a profile of the CPU build
    (``twin.cpu_kv_cache_space_gib``) gets what vLLM's CPU platform sets: the KV cache's bytes and
    a float32 SSM cache dtype.
    """
    dep = profile.deployment
    block_size = profile.twin.block_size
    tokens, blocks = kv_pool(profile, kv_cache_tokens)
    gmu = dep.serve_args.get("gpu_memory_utilization", 0.92)
    cpu_gib = profile.twin.cpu_kv_cache_space_gib
    return {
        "block_size": str(block_size),
        "user_specified_block_size": str("block_size" in dep.serve_args),
        "kv_cache_layout": "None",
        "prefix_match_unit": "None",
        "gpu_memory_utilization": str(gmu),
        "cache_dtype": dep.kv_cache_dtype,
        "is_attention_free": "False",
        "num_gpu_blocks_override": "None",
        "sliding_window": "None",
        "enable_prefix_caching": "True",
        "prefix_caching_hash_algo": "sha256",
        "prefix_cache_retention_interval": "0",
        "kv_cache_dtype_skip_layers": "[]",
        "mamba_page_size_padded": "None",
        "skip_page_size_padded": "None",
        "mamba_block_size": "None",
        "mamba_cache_dtype": "auto",
        "mamba_ssm_cache_dtype": "auto" if cpu_gib is None else "float32",
        "mamba_cache_mode": "none",
        "enable_mamba_shared_prefix_checkpoint": "False",
        "replayssm_buffer_len": "16",
        "use_replayssm": "False",
        "use_kda_recoverssm": "False",
        "num_gpu_blocks": str(blocks),
        "num_cpu_blocks": "None",
        "effective_attention_block_size": str(block_size),
        "kv_cache_size_tokens": str(tokens),
        "kv_cache_max_concurrency": str(tokens / dep.max_model_len),
        "hash_block_size": "None",
        "cache_hit_alignment_tokens": "None",
        "kv_sharing_fast_prefill": "False",
        "swa_bounded_replay": "True",
        "kv_cache_memory_bytes": "None" if cpu_gib is None else str(int(cpu_gib * 2**30)),
        "kv_offloading_size": "None",
        "kv_offloading_backend": "native",
        "_block_size_resolved": "True",
        "engine": "0",
    }


class EngineMetrics:
    """Prometheus metrics for one engine (``engine="0"``); an :class:`EngineObserver`.

    ``kv_cache_tokens`` is the engine's pool when it was given one apart from the profile (as
    :class:`~pytest_gx10.fake.engine.Engine` takes it); ``vllm:cache_config_info`` says that pool.
    """

    def __init__(self, profile: Profile, *, kv_cache_tokens: int | None = None) -> None:
        dep = profile.deployment
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("model_name", "engine")
        values = (dep.served_model_name, "0")
        reg = self.registry
        # vLLM serves prometheus_client's default registry, so python_* and process_* come first.
        GCCollector(registry=reg)
        PlatformCollector(registry=reg)
        ProcessCollector(registry=reg)

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=reg).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=reg).labels(*values)

        def histogram(name: str, doc: str, buckets: tuple[float, ...] | list[float]) -> Histogram:
            return Histogram(name, doc, labels, registry=reg, buckets=buckets).labels(*values)

        def by(
            kind: type[Gauge] | type[Counter], name: str, doc: str, label: str, keys: tuple[str, ...]
        ) -> dict[str, Any]:
            family = kind(name, doc, (*labels, label), registry=reg)
            return {key: family.labels(*values, key) for key in keys}

        # vLLM's estimated-performance counters (PerfMetricsProm) come first; the twin estimates
        # nothing, so they stay at 0 as on a CPU build that cannot estimate either.
        for name, doc in (
            ("flops", "Estimated number of floating point operations per GPU"),
            ("read_bytes", "Estimated number of bytes read from memory per GPU"),
            ("write_bytes", "Estimated number of bytes written to memory per GPU"),
        ):
            counter(f"vllm:estimated_{name}_per_gpu", f"{doc} (for Model Flops Utilization calculations).")
        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.waiting_by_reason = by(
            Gauge,
            "vllm:num_requests_waiting_by_reason",
            "Number of waiting requests by reason. Reason labels: 'capacity' = waiting for scheduling "
            "capacity; 'deferred' = deferred by transient constraints (LoRA budget, KV transfer, blocked "
            "status). Sum of all reasons equals vllm:num_requests_waiting.",
            "reason",
            _WAITING_REASONS,
        )
        sleep = by(
            Gauge,
            "vllm:engine_sleep_state",
            "Engine sleep state; awake = 0 means engine is sleeping; awake = 1 means engine is awake; "
            "weights_offloaded = 1 means sleep level 1; discard_all = 1 means sleep level 2.",
            "sleep_state",
            tuple(_SLEEP_STATES),
        )
        for state, value in _SLEEP_STATES.items():
            sleep[state].set(value)
        self.kv_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."
        )
        self.prefix_hits = counter(
            "vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens."
        )
        # No KV connector and no multimodal input: these stay at 0, as on the real CPU server.
        counter(
            "vllm:external_prefix_cache_queries",
            "External prefix cache queries from KV connector cross-instance cache sharing, in terms of "
            "number of queried tokens.",
        )
        counter(
            "vllm:external_prefix_cache_hits",
            "External prefix cache hits from KV connector cross-instance cache sharing, in terms of "
            "number of cached tokens.",
        )
        counter("vllm:mm_cache_queries", "Multi-modal cache queries, in terms of number of queried items.")
        counter("vllm:mm_cache_hits", "Multi-modal cache hits, in terms of number of cached items.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.prompt_by_source = by(
            Counter,
            "vllm:prompt_tokens_by_source",
            "Number of prompt tokens by source.",
            "source",
            _PROMPT_SOURCES,
        )
        self.prompt_cached = counter(
            "vllm:prompt_tokens_cached", "Number of cached prompt tokens (local + external)."
        )
        self.cached_by_source = by(
            Counter,
            "vllm:prompt_tokens_cached_by_source",
            "Prefix-cache hit tokens by the cache tier that supplied them: device (local HBM), host "
            "(offloaded to DRAM), disk, p2p (transferred from another vLLM instance) or "
            "external_unspecified. Counted at admission; sums to vllm:prefix_cache_hits + "
            "vllm:external_prefix_cache_hits.",
            "source",
            _CACHE_HIT_SOURCES,
        )
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            (*labels, "finished_reason"),
            registry=reg,
        )
        self.success = {reason: success.labels(*values, reason) for reason in _FINISH_REASONS}
        rejections = Counter(
            "vllm:admission_rejections",
            "Number of admission attempts rejected by a queue limit, by reason.",
            ("model_name", "reason"),
            registry=reg,
        )
        for reason in _ADMISSION_REASONS:  # the twin sets no queue limit: never rejects
            rejections.labels(dep.served_model_name, reason)
        lengths = _1_2_5_buckets(dep.max_model_len)
        self.req_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", lengths
        )
        self.req_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", lengths
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            _ITERATION_TOKENS_BUCKETS,
        )
        self.req_max_generation = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            lengths,
        )
        self.req_n = histogram(
            "vllm:request_params_n", "Histogram of the n request parameter.", _REQUEST_PARAMS_N_BUCKETS
        )
        self.req_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", lengths
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", _TTFT_BUCKETS
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", _ITL_BUCKETS
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            _REQUEST_LATENCY_BUCKETS,
        )
        self.queue = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            _REQUEST_LATENCY_BUCKETS,
        )
        self.inference = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            _REQUEST_LATENCY_BUCKETS,
        )
        self.prefill = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            _REQUEST_LATENCY_BUCKETS,
        )
        self.decode = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            _REQUEST_LATENCY_BUCKETS,
        )
        self.tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            _ITL_BUCKETS,
        )
        self.req_preemptions = histogram(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            _REQUEST_NUM_PREEMPTIONS_BUCKETS,
        )
        self.req_prefill_computed = histogram(
            "vllm:request_prefill_kv_computed_tokens",
            "Histogram of new KV tokens computed during prefill (excluding cached tokens).",
            lengths,
        )
        self.spec: tuple[Counter, Counter, Counter, list[Counter]] | None = None
        if dep.speculative is not None:
            per_pos = Counter(
                "vllm:spec_decode_num_accepted_tokens_per_pos",
                "Accepted tokens per draft position.",
                (*labels, "position"),
                registry=reg,
            )
            self.spec = (
                counter("vllm:spec_decode_num_drafts", "Number of spec decoding drafts."),
                counter("vllm:spec_decode_num_draft_tokens", "Number of draft tokens."),
                counter("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens."),
                [per_pos.labels(*values, str(i)) for i in range(dep.speculative.num_speculative_tokens)],
            )
        # vLLM registers its info gauge once the engine is up, after every other family: last.
        info = cache_config_info(profile, kv_cache_tokens)
        Gauge(
            "vllm:cache_config_info", "Information of the LLMEngine CacheConfig", tuple(info), registry=reg
        ).labels(**info).set(1)

    def on_step(self, stats: StepStats) -> None:
        """Fold one engine step into the metrics."""
        self.running.set(stats.num_running)
        self.waiting.set(stats.num_waiting)
        self.waiting_by_reason["capacity"].set(stats.num_waiting)  # the twin defers nothing
        self.kv_usage.set(stats.kv_cache_usage)
        self.prefix_queries.inc(stats.prefix_cache_queries)
        self.prefix_hits.inc(stats.prefix_cache_hits)
        self.preemptions.inc(stats.num_preemptions)
        self.prompt_tokens.inc(stats.num_prompt_tokens)
        # Hits count at scheduling, prompt tokens when a prefill completes: the sums agree over a run.
        self.prompt_cached.inc(stats.prefix_cache_hits)
        self.cached_by_source["device"].inc(stats.prefix_cache_hits)
        self.prompt_by_source["local_cache_hit"].inc(stats.prefix_cache_hits)
        self.prompt_by_source["local_compute"].inc(max(stats.num_prompt_tokens - stats.prefix_cache_hits, 0))
        if stats.num_scheduled_tokens:
            self.iteration_tokens.observe(stats.num_scheduled_tokens)
        self.generation_tokens.inc(stats.num_generation_tokens)
        for ttft in stats.ttfts_s:
            self.ttft.observe(ttft)
        for itl in stats.inter_token_latencies_s:
            self.itl.observe(itl)
        for done in stats.finished:
            self.success[done.finish_reason].inc()
            self.e2e.observe(done.e2e_s)
            self.queue.observe(done.queued_s)
            self.inference.observe(done.inference_s)
            self.prefill.observe(done.prefill_s)
            self.decode.observe(done.decode_s)
            if done.num_generation_tokens > 1:
                self.tpot.observe(done.decode_s / (done.num_generation_tokens - 1))
            self.req_prompt_tokens.observe(done.num_prompt_tokens)
            self.req_generation_tokens.observe(done.num_generation_tokens)
            self.req_max_tokens.observe(done.max_tokens)
            self.req_max_generation.observe(done.max_tokens)
            self.req_n.observe(1)
            self.req_preemptions.observe(done.num_preemptions)
            self.req_prefill_computed.observe(max(done.num_prompt_tokens - done.num_cached_tokens, 0))
        if self.spec is not None and stats.num_drafts:
            drafts, draft_tokens, accepted, per_pos = self.spec
            drafts.inc(stats.num_drafts)
            draft_tokens.inc(stats.num_draft_tokens)
            accepted.inc(stats.num_accepted_tokens)
            for counter, n in zip(per_pos, stats.accepted_per_pos, strict=False):
                counter.inc(n)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
