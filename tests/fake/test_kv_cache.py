"""The twin's KV cache: a pool of the profile's size, preemption by recomputation as vLLM V1 does it."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from dataclasses import replace

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from pytest_gx10.fake import FakeServer
from pytest_gx10.fake.engine import BLOCK_SIZE, Engine, SamplingParams, StepStats, collect
from pytest_gx10.fake.model import write_script
from pytest_gx10.fake.tokenizer import Tokenizer
from pytest_gx10.profiles import Profile, load_profile

TOK = Tokenizer()
CPU = load_profile("smollm2-cpu")
REFERENCE = load_profile("qwen3.5-397b-fp8-mtp2-gx10x4")


def small(
    profile: Profile, kv_cache_tokens: int, max_model_len: int = 512, block_size: int = BLOCK_SIZE
) -> Profile:
    """``profile`` with a short context and a KV pool of ``kv_cache_tokens`` in ``block_size``-token
    blocks (16 unless told, whatever the profile says: these tests count 32 blocks in 512 tokens)."""
    return replace(
        profile,
        deployment=replace(profile.deployment, max_model_len=max_model_len),
        twin=replace(profile.twin, kv_cache_tokens=kv_cache_tokens, block_size=block_size),
    )


def prompt(n: int, salt: int) -> list[int]:
    words = TOK.word_ids
    return [words[(i * 7 + salt * 13) % len(words)] for i in range(n)]


class Steps:
    """Every step's stats."""

    def __init__(self) -> None:
        self.stats: list[StepStats] = []

    def on_step(self, stats: StepStats) -> None:
        self.stats.append(stats)

    @property
    def preemptions(self) -> int:
        return sum(s.num_preemptions for s in self.stats)

    @property
    def peak_kv_usage(self) -> float:
        return max(s.kv_cache_usage for s in self.stats)


async def generate(
    profile: Profile, prompts: Sequence[Sequence[int]], max_tokens: int, seed: int = 0
) -> tuple[list[tuple[tuple[int, ...], str, str | None]], Steps, Engine]:
    """Run ``prompts`` released together; each request's token ids, text and finish reason."""
    engine = Engine(profile, TOK, time_scale=1e6, seed=seed)
    steps = Steps()
    engine.observers.append(steps)
    engine.start()
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)

    async def one(i: int, ids: Sequence[int]) -> tuple[tuple[int, ...], str, str | None]:
        script = write_script(TOK, ids, "", kind="completion", reasoning=False)
        outs = [out async for out in engine.add_request(f"r{i}", ids, script, params)]
        token_ids = tuple(t for out in outs for t in out.token_ids)
        return token_ids, "".join(out.text for out in outs), outs[-1].finish_reason

    try:
        results = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    finally:
        await engine.stop()
    return list(results), steps, engine


PROMPTS = [prompt(100, salt) for salt in range(8)]


@pytest.mark.parametrize("base", [CPU, REFERENCE], ids=["plain-chunking", "partial-prefills-mtp"])
def test_a_small_pool_preempts_and_every_stream_stays_whole(base: Profile) -> None:
    # 8 requests of 100 + 300 tokens need 25 blocks each at the end; 512 tokens are 32 blocks.
    tight, tight_steps, engine = asyncio.run(generate(small(base, 512), PROMPTS, 300))
    ample, ample_steps, _ = asyncio.run(generate(small(base, 100_000), PROMPTS, 300))
    assert engine.num_blocks == 512 // BLOCK_SIZE
    assert tight_steps.preemptions > 0
    assert ample_steps.preemptions == 0
    assert tight_steps.peak_kv_usage >= 0.95, tight_steps.peak_kv_usage
    assert ample_steps.peak_kv_usage < 0.5
    for (ids, text, reason), (ample_ids, ample_text, _) in zip(tight, ample, strict=True):
        assert len(ids) == 300
        assert reason == "length"
        assert ids == ample_ids  # not a token repeated nor lost across preemptions
        assert text == ample_text
    # Preempted work is computed again: more steps, and the recomputed outputs are not counted as
    # prompt tokens a second time (vLLM counts a prompt once).
    assert len(tight_steps.stats) > len(ample_steps.stats)
    assert sum(s.num_prompt_tokens for s in tight_steps.stats) == 8 * 100
    assert sum(s.num_generation_tokens for s in tight_steps.stats) == 8 * 300


def test_blocks_held_never_exceed_the_pool() -> None:
    profile = small(CPU, 512)
    engine = Engine(profile, TOK, time_scale=1e6)
    seen: list[int] = []

    class Watch:
        def on_step(self, stats: StepStats) -> None:
            seen.append(engine.num_used_blocks)

    async def go() -> None:
        engine.observers.append(Watch())
        engine.start()
        params = SamplingParams(max_tokens=300, ignore_eos=True)
        streams = []
        for i, ids in enumerate(PROMPTS):
            script = write_script(TOK, ids, "", kind="completion", reasoning=False)
            streams.append(engine.add_request(f"r{i}", ids, script, params))
        try:
            await asyncio.gather(*(collect(s) for s in streams))
        finally:
            await engine.stop()

    asyncio.run(go())
    assert seen
    assert max(seen) <= engine.num_blocks
    assert max(seen) >= engine.num_blocks - 1


def test_preemption_is_reproducible() -> None:
    first, first_steps, _ = asyncio.run(generate(small(CPU, 512), PROMPTS, 300, seed=3))
    again, again_steps, _ = asyncio.run(generate(small(CPU, 512), PROMPTS, 300, seed=3))
    assert first == again
    assert first_steps.preemptions == again_steps.preemptions > 0


def test_a_lone_request_filling_the_context_fits_a_pool_of_max_model_len() -> None:
    # The pool is never smaller than max_model_len (vLLM would refuse to start): one request of
    # max_model_len tokens runs to the end without preempting itself.
    profile = small(CPU, 100, max_model_len=512)
    (result,), steps, engine = asyncio.run(generate(profile, [prompt(200, 1)], 312))
    assert engine.kv_cache_tokens == 512
    assert len(result[0]) == 312
    assert steps.preemptions == 0
    assert steps.peak_kv_usage == 1.0


def test_the_argument_wins_over_the_profile() -> None:
    profile = small(CPU, 4096)
    assert Engine(profile, TOK).kv_cache_tokens == 4096
    assert Engine(profile, TOK, kv_cache_tokens=2048).kv_cache_tokens == 2048
    assert Engine(
        replace(profile, twin=replace(profile.twin, kv_cache_tokens=None)), TOK
    ).kv_cache_tokens == int(512 * 2.1)


def test_resumed_requests_reuse_their_cached_blocks() -> None:
    # A preempted request's blocks stay in the prefix cache, so it recomputes only what was evicted.
    # Like vLLM, its lookup is not counted in the prefix cache's queries (new requests only).
    _, steps, _ = asyncio.run(generate(small(CPU, 512), PROMPTS, 300))
    assert steps.preemptions > 0
    assert sum(s.prefix_cache_queries for s in steps.stats) == 8 * 100
    prefill_tokens = sum(s.num_scheduled_tokens for s in steps.stats) - 8 * 300
    assert prefill_tokens < 8 * 100 + steps.preemptions * (100 + 300) / 2


def test_a_small_pool_of_128_token_blocks_preempts_and_every_stream_stays_whole() -> None:
    """8 requests of 100 + 300 tokens hold 4 blocks of 128 each at the end; a pool of 1 024 tokens is
    8 such blocks: preemptions, and every stream the same as in an ample pool."""
    tight, tight_steps, engine = asyncio.run(generate(small(CPU, 1024, 1024, block_size=128), PROMPTS, 300))
    ample, ample_steps, _ = asyncio.run(generate(small(CPU, 100_000, 1024, block_size=128), PROMPTS, 300))
    assert engine.num_blocks == 8
    assert tight_steps.preemptions > 0
    assert ample_steps.preemptions == 0
    assert tight_steps.peak_kv_usage == 1.0
    assert tight == ample
    assert all(len(ids) == 300 and reason == "length" for ids, _, reason in tight)
    assert sum(s.num_prompt_tokens for s in tight_steps.stats) == 8 * 100
    assert sum(s.num_generation_tokens for s in tight_steps.stats) == 8 * 300


def test_kv_usage_moves_in_whole_128_token_blocks() -> None:
    """Usage is held blocks over the pool's: with 8 blocks every step's usage is a multiple of 1/8,
    and a request's first 128 tokens take one block (100 prompt tokens and 28 outputs: 1/8)."""
    _, steps, _ = asyncio.run(generate(small(CPU, 1024, 1024, block_size=128), PROMPTS[:1], 300))
    usages = {round(s.kv_cache_usage * 8, 9) for s in steps.stats}
    assert usages <= {0.0, 1.0, 2.0, 3.0, 4.0}, usages
    assert {1.0, 2.0, 3.0, 4.0} <= usages  # 100 + 300 tokens end in a 4th block


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "qwen3.5-397b-fp8-mtp2-gx10x4",
            "GPU KV cache size: 551,076 tokens, Maximum concurrency for 262,144 tokens per request: 2.10x",
        ),
        (
            "smollm2-cpu",
            "CPU KV cache size: 46,592 tokens, Maximum concurrency for 8,192 tokens per request: 5.69x",
        ),
    ],
)
def test_boot_log_says_the_profiles_pool(name: str, line: str) -> None:
    stream = io.StringIO()
    with FakeServer(name, time_scale=100, log_stream=stream):
        pass
    assert line in stream.getvalue()


def _metrics(url: str) -> dict[str, float]:
    text = requests.get(url + "/metrics", timeout=5).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def test_metrics_show_preemptions_and_a_full_cache() -> None:
    profile = small(CPU, 512)
    with FakeServer(profile, time_scale=200) as server:
        peak = 0.0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _metrics(server.url)["vllm:kv_cache_usage_perc"])
                done.wait(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        texts: dict[int, str] = {}

        def one(i: int) -> None:
            body = {
                "model": server.served_model_name,
                "prompt": f"Request {i}: tell a long story about the sea.",
                "max_tokens": 300,
                "ignore_eos": True,
                "temperature": 0,
            }
            answer = requests.post(server.url + "/v1/completions", json=body, timeout=60).json()
            assert answer["usage"]["completion_tokens"] == 300
            texts[i] = answer["choices"][0]["text"]

        clients = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for client in clients:
            client.start()
        for client in clients:
            client.join()
        done.set()
        watcher.join()
        after = _metrics(server.url)
    assert len(texts) == 8
    # A preemption happens only when a sequence needs a block and none is free: the cache was full.
    assert after["vllm:num_preemptions_total"] > 0
    # The gauge, sampled every 10 ms from outside, catches it full or within two of its 32 blocks
    # (the full moment lasts one step, and a busy machine delays the sampler).
    blocks = 512 // 16
    assert peak >= (blocks - 2) / blocks, peak
