"""The twin's KV block is the profile's ``twin.block_size``: its pool, its prefix cache and its
preemptions count in such blocks, and its /metrics says them in ``vllm:cache_config_info`` as vLLM
0.32 does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.fake.engine import Engine
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import Profile, ProfileError, load_profile

TOK = Tokenizer()
CPU = load_profile("smollm2-cpu")
REFERENCE = load_profile("qwen3.5-397b-fp8-mtp2-gx10x4")
FAST = 200.0

# The labels vLLM 0.32 writes on vllm:cache_config_info: CacheConfig.metrics_info() (every field of
# the cache config) and the engine index.
VLLM_CACHE_CONFIG_LABELS = {
    "block_size", "user_specified_block_size", "kv_cache_layout", "prefix_match_unit",
    "gpu_memory_utilization", "cache_dtype", "is_attention_free", "num_gpu_blocks_override",
    "sliding_window", "enable_prefix_caching", "prefix_caching_hash_algo",
    "prefix_cache_retention_interval", "kv_cache_dtype_skip_layers", "mamba_page_size_padded",
    "skip_page_size_padded", "mamba_block_size", "mamba_cache_dtype", "mamba_ssm_cache_dtype",
    "mamba_cache_mode", "enable_mamba_shared_prefix_checkpoint", "replayssm_buffer_len",
    "use_replayssm", "use_kda_recoverssm", "num_gpu_blocks", "num_cpu_blocks",
    "effective_attention_block_size", "kv_cache_size_tokens", "kv_cache_max_concurrency",
    "hash_block_size", "cache_hit_alignment_tokens", "kv_sharing_fast_prefill", "swa_bounded_replay",
    "kv_cache_memory_bytes", "kv_offloading_size", "kv_offloading_backend", "_block_size_resolved",
    "engine",
}  # fmt: skip


def details(profile: Profile) -> Profile:
    """``profile`` whose usage says the cached prompt tokens."""
    return replace(profile, deployment=replace(profile.deployment, enable_prompt_tokens_details=True))


def cache_config(url: str) -> tuple[dict[str, str], float]:
    """The labels and value of the one ``vllm:cache_config_info`` sample on ``url``'s /metrics."""
    text = requests.get(url + "/metrics", timeout=5).text
    found = [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        if family.name == "vllm:cache_config_info"
        for sample in family.samples
    ]
    assert len(found) == 1, found
    return found[0]


def prefix_cache_hits(url: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "vllm:prefix_cache_hits_total"
    )


# --- the profile key -----------------------------------------------------------------------------


def test_the_cpu_profiles_say_128_and_the_reference_16() -> None:
    for name in ("smollm2-cpu", "smollm2-cpu-spec", "smollm2-cpu-ngram"):
        assert load_profile(name).twin.block_size == 128, name
    for name in ("qwen3.5-397b-fp8-mtp2-gx10x4", "qwen3.5-397b-fp8-mtp5-gx10x4"):
        assert load_profile(name).twin.block_size == 16, name


def test_the_pool_is_its_tokens_in_blocks() -> None:
    """kv_cache_tokens stays the pool's size in tokens; the blocks are so many of block_size."""
    cpu = Engine(CPU, TOK)
    assert (cpu.block_size, cpu.kv_cache_tokens, cpu.num_blocks) == (128, 46592, 364)
    spec = Engine(load_profile("smollm2-cpu-spec"), TOK)
    assert (spec.block_size, spec.kv_cache_tokens, spec.num_blocks) == (128, 11648, 91)
    reference = Engine(REFERENCE, TOK)
    assert (reference.block_size, reference.kv_cache_tokens, reference.num_blocks) == (16, 551076, 34442)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "must be positive, got 0"),
        ("-16", "must be positive, got -16"),
        ("12.5", "expected integer"),
        ("true", "expected integer"),
        ('"128"', "expected integer"),
    ],
)
def test_a_malformed_block_size_is_refused_naming_the_key(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        f'[deployment]\nserved_model_name = "m"\nmax_model_len = 4096\n\n[twin]\nblock_size = {value}\n',
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match=re.escape("'twin.block_size'")) as refused:
        load_profile(path)
    assert problem in str(refused.value)


# --- the prefix cache ----------------------------------------------------------------------------


@pytest.fixture
def cpu_details() -> Iterator[FakeServer]:
    """A fresh CPU twin (128-token blocks) whose usage says the cached tokens."""
    with FakeServer(details(CPU), time_scale=FAST) as twin:
        yield twin


def _twice(server: FakeServer, ids: list[int]) -> tuple[int | None, int | None, float]:
    """The cached tokens of a prompt sent twice, and what vllm:prefix_cache_hits_total gained."""
    before = prefix_cache_hits(server.url)
    body = {"prompt": ids, "max_tokens": 4, "temperature": 0}
    with VllmClient(server.url) as client:
        first, second = (client.stream("/v1/completions", body) for _ in range(2))
    assert first.ok, first.describe()
    assert second.ok, second.describe()
    assert first.prompt_tokens == second.prompt_tokens == len(ids)
    return first.cached_tokens, second.cached_tokens, prefix_cache_hits(server.url) - before


def _ids(server: FakeServer, n: int) -> list[int]:
    with VllmClient(server.url) as client:
        words = client.post_json("/tokenize", {"prompt": "the keeper of the lighthouse watched"})["tokens"]
    return [words[i % len(words)] for i in range(n)]


def test_a_128_token_block_twin_serves_whole_blocks_only(cpu_details: FakeServer) -> None:
    """300 tokens: two whole 128-token blocks (256), the 44 after them computed again."""
    first, second, hits = _twice(cpu_details, _ids(cpu_details, 300))
    assert (first, second) == (0, 256)
    assert hits == 256


def test_the_same_prompt_on_16_token_blocks_hits_more() -> None:
    """The same 300 tokens on 16-token blocks: 18 whole blocks before the last token, 288."""
    profile = details(replace(CPU, twin=replace(CPU.twin, block_size=16)))
    with FakeServer(profile, time_scale=FAST) as twin:
        first, second, hits = _twice(twin, _ids(twin, 300))
    assert (first, second) == (0, 288)
    assert hits == 288


def test_a_shorter_prompt_than_a_block_is_never_cached(cpu_details: FakeServer) -> None:
    first, second, hits = _twice(cpu_details, _ids(cpu_details, 120))
    assert (first, second, hits) == (0, 0, 0)


# --- /metrics --------------------------------------------------------------------------------------


def test_metrics_say_the_cache_config_as_vllm_does() -> None:
    """The CPU twin: 364 blocks of 128 tokens (46 592), bf16's "auto" dtype, vLLM's default
    gpu_memory_utilization; every label vLLM 0.32 writes, the gauge set to 1."""
    with FakeServer(CPU, time_scale=FAST) as twin:
        labels, value = cache_config(twin.url)
    assert value == 1.0
    assert set(labels) == VLLM_CACHE_CONFIG_LABELS
    assert {k: labels[k] for k in ("block_size", "num_gpu_blocks", "kv_cache_size_tokens")} == {
        "block_size": "128",
        "num_gpu_blocks": "364",
        "kv_cache_size_tokens": "46592",
    }
    assert labels["cache_dtype"] == "auto"
    assert labels["gpu_memory_utilization"] == "0.92"
    assert labels["enable_prefix_caching"] == "True"
    assert labels["kv_cache_max_concurrency"] == "5.6875"  # the boot log's 5.69x
    assert labels["engine"] == "0"
    assert labels["num_cpu_blocks"] == "None"


def test_the_reference_twin_says_its_profiles_cache_config() -> None:
    """fp8 KV cache and gpu_memory_utilization 0.90 from the profile's deployment, 16-token blocks."""
    with FakeServer(REFERENCE, time_scale=FAST) as twin:
        labels, _ = cache_config(twin.url)
    assert labels["block_size"] == "16"
    assert labels["num_gpu_blocks"] == str(551076 // 16)
    assert labels["cache_dtype"] == "fp8"
    assert labels["gpu_memory_utilization"] == "0.9"


def test_metrics_say_the_pool_the_engine_was_given() -> None:
    profile = replace(
        CPU,
        deployment=replace(CPU.deployment, max_model_len=1024),
        twin=replace(CPU.twin, kv_cache_tokens=2048),
    )
    with FakeServer(profile, time_scale=FAST) as twin:
        labels, _ = cache_config(twin.url)
    assert (labels["num_gpu_blocks"], labels["kv_cache_size_tokens"]) == ("16", "2048")
