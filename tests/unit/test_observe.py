"""Log parsing, the signature catalogue and /metrics parsing, on lines as servers and the post print them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_gx10.observe import (
    DockerLogSource,
    FileLogSource,
    LogSourceError,
    SpecCounters,
    counter,
    crash_hits,
    engine_config,
    engine_throughput,
    is_mtp_detected,
    method_matches,
    non_default_args,
    open_log_source,
    parse_line,
    parse_lines,
    spec_decode_counters,
    spec_decoding,
)

# --- the reference post's lines, verbatim --------------------------------------------------------

POST_SPEC = """SpecDecoding metrics: Mean acceptance length: 2.72,
  Accepted: 31 tokens, Drafted: 36 tokens,
  Per-position acceptance rate: 0.889, 0.833,
  Avg Draft acceptance rate: 86.1%"""

POST_CRASH = """torch.AcceleratorError: CUDA error: an illegal memory access was encountered
[rank0]:[E613 16:13:25 ProcessGroupNCCL.cpp:2119] [PG ID 2 PG GUID 3 Rank 0]
  Process group watchdog thread terminated with exception:
  CUDA error: an illegal memory access was encountered
... Worker exit type: SYSTEM_ERROR ...
ERROR 06-13 16:14:15 [ray_executor_v2.py:464] RayWorkerProc rank=[0] died
  unexpectedly, shutting down executor.
ERROR async_llm.py:704 vllm.v1.engine.exceptions.EngineDeadError: EngineCore
  encountered an issue."""

# --- vLLM 0.32 (CPU build), as printed here -------------------------------------------------------

REAL_SPEC = (
    "(APIServer pid=12649) INFO 11-27 05:56:38 [metrics.py:120] SpecDecoding metrics: Mean acceptance "
    "length: 3.00, Accepted throughput: 0.68 tokens/s, Drafted throughput: 0.68 tokens/s, Accepted: 42 "
    "tokens, Drafted: 42 tokens, Per-position acceptance rate: 1.000, 1.000, Avg Draft acceptance rate: 100.0%"
)
REAL_CONFIG = (
    "(EngineCore pid=12714) INFO 11-27 05:55:17 [core.py:133] Initializing a V1 LLM engine (v0.32.0) with "
    "config: model='/m/SmolLM2-135M-Instruct', speculative_config=SpeculativeConfig(method='draft_model', "
    "model='/m/SmolLM2-135M-Instruct', num_spec_tokens=2), tokenizer='/m/SmolLM2-135M-Instruct', "
    "tensor_parallel_size=1, pipeline_parallel_size=1"
)
REAL_THROUGHPUT = (
    "(APIServer pid=12649) INFO 11-27 05:56:38 [loggers.py:335] Engine 000: Avg prompt throughput: 3.9 "
    "tokens/s, Avg generation throughput: 6.4 tokens/s, Running: 0 reqs, Waiting: 0 reqs, CPU KV cache "
    "usage: 0.0%, Prefix cache hit rate: 0.0%"
)


def test_parse_vllm_prefixed_line() -> None:
    line = parse_line(REAL_THROUGHPUT + "\n")
    assert (line.process, line.pid, line.level) == ("APIServer", 12649, "INFO")
    assert (line.time, line.source) == ("11-27 05:56:38", "loggers.py:335")
    assert line.message.startswith("Engine 000: Avg prompt throughput")


def test_parse_ray_worker_tag_with_ip() -> None:
    line = parse_line(
        "(RayWorkerWrapper pid=7, ip=10.0.0.11) INFO 06-13 10:00:00 [eagle.py:983] Detected MTP model. "
        "Sharing target model embedding weights with the draft model."
    )
    assert (line.process, line.pid, line.source) == ("RayWorkerWrapper", 7, "eagle.py:983")
    assert is_mtp_detected(line)


def test_parse_lines_without_process_prefix() -> None:
    uvicorn = parse_line('INFO:     127.0.0.1:5 - "GET /health HTTP/1.1" 200 OK')
    assert (uvicorn.level, uvicorn.process) == ("INFO", None)
    assert uvicorn.message.startswith("127.0.0.1:5")
    nccl = parse_line("[rank0]:[E613 16:13:25 ProcessGroupNCCL.cpp:2119] [PG ID 2 PG GUID 3 Rank 0]")
    assert (nccl.process, nccl.level, nccl.time) == ("rank0", "ERROR", "06-13 16:13:25")
    assert nccl.source == "ProcessGroupNCCL.cpp:2119"
    ray = parse_line("ERROR 06-13 16:14:15 [ray_executor_v2.py:464] RayWorkerProc rank=[0] died")
    assert (ray.process, ray.level, ray.source) == (None, "ERROR", "ray_executor_v2.py:464")
    short = parse_line("ERROR async_llm.py:704 vllm.v1.engine.exceptions.EngineDeadError: EngineCore")
    assert (short.level, short.source, short.time) == ("ERROR", "async_llm.py:704", None)
    frame = parse_line('  File "x.py", line 3, in f')
    assert (frame.level, frame.message) == (None, '  File "x.py", line 3, in f')


def test_post_spec_decoding_short_form() -> None:
    spec = spec_decoding(" ".join(POST_SPEC.split()))
    assert spec is not None
    assert spec.mean_acceptance_length == 2.72
    assert (spec.accepted, spec.drafted) == (31, 36)
    assert spec.per_position == (0.889, 0.833)
    assert spec.avg_acceptance_rate == pytest.approx(0.861)
    assert spec.accepted_tps is None
    # Wrapped across lines as the post prints it, it still reads.
    assert spec_decoding(POST_SPEC) == spec


def test_vllm_032_spec_decoding_line() -> None:
    spec = spec_decoding(parse_line(REAL_SPEC))
    assert spec is not None
    assert (spec.accepted, spec.drafted, spec.per_position) == (42, 42, (1.0, 1.0))
    assert (spec.mean_acceptance_length, spec.avg_acceptance_rate) == (3.0, 1.0)
    assert (spec.accepted_tps, spec.drafted_tps) == (0.68, 0.68)
    assert spec_decoding(REAL_THROUGHPUT) is None


def test_vllm_06_speculative_metrics_line() -> None:
    spec = spec_decoding(
        "Speculative metrics: Draft acceptance rate: 0.734, System efficiency: 0.611, Number of speculative "
        "tokens: 2, Number of accepted tokens: 734, Number of draft tokens: 1000, Number of emitted tokens: 1222."
    )
    assert spec is not None
    assert (spec.accepted, spec.drafted, spec.avg_acceptance_rate) == (734, 1000, 0.734)


def test_engine_config_line() -> None:
    config = engine_config(parse_line(REAL_CONFIG))
    assert config is not None
    assert (config.version, config.speculative_method, config.num_spec_tokens) == ("0.32.0", "draft_model", 2)
    assert config.tensor_parallel_size == 1
    post = engine_config(
        "Initializing a V1 LLM engine (v0.22.1rc1) with config: model='q', "
        "speculative_config=SpeculativeConfig(method='mtp', num_spec_tokens=5), tensor_parallel_size=4"
    )
    assert post is not None
    assert (post.speculative_method, post.num_spec_tokens, post.tensor_parallel_size) == ("mtp", 5, 4)
    plain = engine_config("Initializing a V1 LLM engine (v0.32.0) with config: speculative_config=None, x=1")
    assert plain is not None
    assert plain.speculative_method is None
    assert engine_config(REAL_SPEC) is None


def test_method_aliases() -> None:
    assert method_matches("mtp", "qwen3_next_mtp")
    assert method_matches("mtp", "mtp")
    assert method_matches("qwen3_next_mtp", "mtp")
    assert not method_matches("mtp", "draft_model")
    assert not method_matches("draft_model", None)
    assert method_matches("eagle", "eagle3")


def test_non_default_args_and_mtp_lines() -> None:
    args = non_default_args("non-default args: {'port': 8000, 'speculative_config': {'method': 'mtp'}}")
    assert args == {"port": 8000, "speculative_config": {"method": "mtp"}}
    assert non_default_args("non-default args: {'x': <object at 0x1>}") is None
    assert is_mtp_detected("Assuming the EAGLE head shares the same vocab embedding with the target model.")
    assert not is_mtp_detected(REAL_SPEC)


def test_engine_throughput_line() -> None:
    tp = engine_throughput(parse_line(REAL_THROUGHPUT))
    assert tp is not None
    assert (tp.prompt_tps, tp.generation_tps, tp.running, tp.waiting) == (3.9, 6.4, 0, 0)
    assert (tp.kv_cache_usage, tp.engine) == (0.0, "000")


def test_post_crash_lines() -> None:
    names = [hit.name for hit in crash_hits(parse_lines(POST_CRASH))]
    assert names.count("illegal_memory_access") == 2
    for name in ("nccl_watchdog", "ray_worker_died", "engine_dead"):
        assert name in names, names
    assert [h.name for h in crash_hits(["Traceback (most recent call last):"])] == ["traceback"]
    assert crash_hits([REAL_SPEC, REAL_CONFIG]) == []


# --- sources ----------------------------------------------------------------------------------------


def test_file_source_follows_from_a_mark(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_text(REAL_CONFIG + "\n")
    source = open_log_source(path.as_uri())
    assert isinstance(source, FileLogSource)
    assert len(source.lines()) == 1
    mark = source.mark()
    with path.open("a") as f:
        f.write(REAL_SPEC + "\n" + REAL_THROUGHPUT[:20])  # the last line is still being written
    assert [spec_decoding(line) is not None for line in source.since(mark)] == [True]
    lines, offset = source.follow(mark)
    assert len(lines) == 1
    with path.open("a") as f:
        f.write(REAL_THROUGHPUT[20:] + "\n")
    more, _ = source.follow(offset)
    assert [engine_throughput(line) is not None for line in more] == [True]


def test_file_source_missing_names_uri(tmp_path: Path) -> None:
    source = open_log_source(f"file://{tmp_path}/nope.log")
    with pytest.raises(LogSourceError, match=r"file://.*nope\.log"):
        source.lines()


@pytest.mark.parametrize(
    ("uri", "container", "base_url"),
    [
        ("docker://qwen397-fp8-mtp-tp4", "qwen397-fp8-mtp-tp4", None),
        ("docker://vllm@ssh://root@gx10-head", "vllm", "ssh://root@gx10-head"),
        ("docker://vllm@tcp://10.0.0.1:2375", "vllm", "tcp://10.0.0.1:2375"),
    ],
)
def test_docker_uri(uri: str, container: str, base_url: str | None) -> None:
    source = open_log_source(uri)
    assert isinstance(source, DockerLogSource)
    assert (source.container, source.base_url, source.uri) == (container, base_url, uri)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("docker://", "no container name"),
        ("docker://vllm@gx10-head", "not a docker URL"),
        ("docker://bad name", "not a container name"),
        ("http://x/log", "unknown scheme 'http'"),
        ("file://remote/x.log", "must be local"),
    ],
)
def test_bad_uris_name_the_uri(uri: str, match: str) -> None:
    with pytest.raises(LogSourceError, match=match) as info:
        open_log_source(uri)
    assert uri.split("@")[0] in str(info.value)


# --- /metrics ---------------------------------------------------------------------------------------

SPEC_METRICS = """# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 21.0
vllm:spec_decode_num_drafts_created{engine="0",model_name="m"} 1.7e+09
# TYPE vllm:spec_decode_num_draft_tokens_total counter
vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 42.0
# TYPE vllm:spec_decode_num_accepted_tokens_total counter
vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 36.0
# TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="0"} 20.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",model_name="m",position="1"} 16.0
vllm:spec_decode_num_accepted_tokens_per_pos_created{engine="0",model_name="m",position="1"} 1.7e+09
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 64.0
vllm:generation_tokens_total{engine="1",model_name="m"} 6.0
vllm:generation_tokens_total{engine="0",model_name="other"} 100.0
"""
PLAIN_METRICS = """# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="m"} 5.0
"""


def test_spec_decode_counters() -> None:
    c = spec_decode_counters(SPEC_METRICS, "m")
    assert c == SpecCounters(drafts=21, draft_tokens=42, accepted=36, accepted_per_pos=(20, 16))
    assert c.acceptance_rate == pytest.approx(36 / 42)
    assert c.acceptance_length == pytest.approx(1 + 36 / 21)
    assert c.per_position == pytest.approx((20 / 21, 16 / 21))
    assert spec_decode_counters(PLAIN_METRICS) is None


def test_counter_sums_label_sets_of_the_model() -> None:
    assert counter(SPEC_METRICS, "vllm:generation_tokens_total", "m") == 70
    assert counter(SPEC_METRICS, "vllm:generation_tokens") == 170
    assert counter(SPEC_METRICS, "vllm:num_preemptions_total") is None


def test_delta() -> None:
    before = SpecCounters(drafts=10, draft_tokens=20, accepted=15, accepted_per_pos=(9, 6))
    after = SpecCounters(drafts=21, draft_tokens=42, accepted=36, accepted_per_pos=(20, 16))
    d = after.delta(before)
    assert d == SpecCounters(drafts=11, draft_tokens=22, accepted=21, accepted_per_pos=(11, 10))
    assert d.acceptance_length == pytest.approx(1 + 21 / 11)
    empty = after.delta(after)
    assert (empty.acceptance_rate, empty.acceptance_length, empty.per_position) == (None, None, ())
