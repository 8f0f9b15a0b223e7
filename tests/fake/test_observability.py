"""The twin's /metrics and log: vLLM's names, counters that move with real work, boot lines."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from pytest_gx10.fake import FakeServer


def scrape(server: FakeServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    matches = [v for (n, lbls), v in samples.items() if n == name and set(labels.items()) <= set(lbls)]
    assert matches, f"{name} {labels} not exposed"
    return sum(matches)


def test_metric_names_and_labels(twin: FakeServer) -> None:
    samples = scrape(twin)
    names = {name for name, _ in samples}
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:request_success_total",
        "vllm:num_preemptions_total",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_count",
        "vllm:e2e_request_latency_seconds_sum",
        "vllm:request_queue_time_seconds_count",
        "vllm:request_prefill_time_seconds_count",
        "vllm:request_decode_time_seconds_count",
        "vllm:spec_decode_num_drafts_total",
        "vllm:spec_decode_num_draft_tokens_total",
        "vllm:spec_decode_num_accepted_tokens_total",
        "vllm:spec_decode_num_accepted_tokens_per_pos_total",
    ):
        assert name in names, name
    labels = dict(next(lbls for (n, lbls) in samples if n == "vllm:prompt_tokens_total"))
    assert labels == {"model_name": "Qwen3.5-397B-A17B-FP8", "engine": "0"}
    positions = {
        dict(lbls)["position"]
        for (n, lbls) in samples
        if n == "vllm:spec_decode_num_accepted_tokens_per_pos_total"
    }
    assert positions == {"0", "1"}


def test_no_spec_decode_metrics_without_speculative_config(cpu_twin: FakeServer) -> None:
    assert not any(name.startswith("vllm:spec_decode") for name, _ in scrape(cpu_twin))


def test_counters_move_with_real_work(twin: FakeServer) -> None:
    before = scrape(twin)
    body = {"prompt": "The river runs", "max_tokens": 50, "ignore_eos": True}
    usage = requests.post(twin.url + "/v1/completions", json=body, timeout=30).json()["usage"]
    after = scrape(twin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vllm:prompt_tokens_total") == usage["prompt_tokens"]
    assert delta("vllm:generation_tokens_total") == usage["completion_tokens"] == 50
    assert delta("vllm:request_success_total", finished_reason="length") == 1
    assert delta("vllm:time_to_first_token_seconds_count") == 1
    assert delta("vllm:e2e_request_latency_seconds_count") == 1
    drafts = delta("vllm:spec_decode_num_drafts_total")
    accepted = delta("vllm:spec_decode_num_accepted_tokens_total")
    assert drafts > 0
    assert delta("vllm:spec_decode_num_draft_tokens_total") == 2 * drafts
    # Every decode step emits 1 + accepted tokens; the first token comes from the prefill step.
    assert drafts + accepted >= 49


def test_log_has_boot_lines_mtp_per_rank_and_stats(twin: FakeServer, twin_log: Path) -> None:
    body = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 400, "ignore_eos": True}
    requests.post(twin.url + "/v1/chat/completions", json=body, timeout=30)
    time.sleep(2 * twin.profile.twin.log_interval_s / twin.time_scale)
    text = twin_log.read_text()
    prefix = r"\(APIServer pid=\d+\) INFO \d\d-\d\d \d\d:\d\d:\d\d \[[a-z_]+\.py:\d+\] "
    assert re.search(prefix + r".*  version 0\.22\.1rc1", text)
    assert re.search(r"non-default args: \{.*'tensor_parallel_size': 4", text)
    config = re.search(r"Initializing a V1 LLM engine \(v[^)]+\) with config: (.*)", text)
    assert config is not None
    assert "speculative_config=SpeculativeConfig(method='mtp'" in config.group(1)
    assert "num_spec_tokens=2" in config.group(1)
    assert "max_seq_len=262144" in config.group(1)
    assert "tensor_parallel_size=4" in config.group(1)
    mtp = re.findall(
        r"^\(RayWorkerWrapper pid=\d+(?:, ip=[\d.]+)?\) INFO .* Detected MTP model\. Sharing target model "
        r"embedding weights with the draft model\.$",
        text,
        re.MULTILINE,
    )
    assert len(mtp) == 4
    assert "Application startup complete." in text
    assert re.search(
        r'^INFO:     127\.0\.0\.1:\d+ - "POST /v1/chat/completions HTTP/1\.1" 200 OK$', text, re.MULTILINE
    )
    assert re.search(
        r"Engine 000: Avg prompt throughput: [\d.]+ tokens/s, Avg generation throughput: [\d.]+ tokens/s, "
        r"Running: \d+ reqs, Waiting: \d+ reqs, GPU KV cache usage: [\d.]+%, Prefix cache hit rate: [\d.]+%",
        text,
    )
    assert re.search(
        r"SpecDecoding metrics: Mean acceptance length: [\d.]+, Accepted throughput: [\d.]+ tokens/s, "
        r"Drafted throughput: [\d.]+ tokens/s, Accepted: \d+ tokens, Drafted: \d+ tokens, "
        r"Per-position acceptance rate: [\d.]+, [\d.]+, Avg Draft acceptance rate: [\d.]+%",
        text,
    )
