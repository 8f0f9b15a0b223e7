"""Reading a /metrics scrape: only the families asked for are parsed, and they read the same."""

from __future__ import annotations

from pytest_gx10.fake.telemetry import EngineMetrics
from pytest_gx10.observe.prometheus import counters, samples, spec_decode_counters
from pytest_gx10.profiles import load_profile

TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine="0",model_name="m"} 7.0
# HELP vllm:num_preemptions_created Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_created gauge
vllm:num_preemptions_created{engine="0",model_name="m"} 1.7e+09
# HELP vllm:e2e_request_latency_seconds Histogram of e2e request latency in seconds.
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{engine="0",le="0.3",model_name="m"} 1.0
vllm:e2e_request_latency_seconds_bucket{engine="0",le="+Inf",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_count{engine="0",model_name="m"} 2.0
vllm:e2e_request_latency_seconds_sum{engine="0",model_name="m"} 1.5
# HELP vllm:request_params_n {a label value may hold braces}
# TYPE vllm:request_params_n gauge
vllm:request_params_n{model_name="m with { and } inside"} 4.0
"""


def test_only_the_families_asked_for_are_parsed() -> None:
    names = {name for name, _, _ in samples(TEXT, ["vllm:num_preemptions", "vllm:request_params_n"])}
    assert names == {"vllm:num_preemptions_total", "vllm:request_params_n"}
    assert list(samples(TEXT, [])) == []


def test_asking_for_every_family_reads_what_a_full_parse_reads() -> None:
    full = list(samples(TEXT))
    assert list(samples(TEXT, {name for name, _, _ in full})) == full
    assert len(full) == 7  # the _created timestamp is left out


def test_the_twins_scrape_reads_the_same_filtered_or_not() -> None:
    """On a whole engine's /metrics (python_*, process_*, every vLLM family), the counters the
    telemetry reads come out the same from the filtered text as from a full parse."""
    text = EngineMetrics(load_profile("qwen3.5-397b-fp8-mtp2-gx10x4")).render().decode()
    full = list(samples(text))
    assert len(full) > 100
    wanted = ["vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:generation_tokens"]
    assert counters(text, wanted) == {
        name: sum(v for n, _, v in full if n in (name, name + "_total")) for name in wanted
    }
    assert spec_decode_counters(text) is not None
