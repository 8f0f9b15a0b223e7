"""The small twin profile the plugin tests run suites/perf against: one place, a few knobs."""

from __future__ import annotations


def tiny_profile(
    concurrency: tuple[int, ...] = (1, 2), *, prefill_tps: float = 4000.0, decode_tps: float = 100.0
) -> str:
    """A profile of a small, fast twin: 300-token prompts, 32 tokens out, at the twin's real time."""
    return f"""
[profile]
name = "tiny"

[deployment]
served_model_name = "tiny-model"
max_model_len = 8192
max_num_seqs = 8

[twin]
prefill_tps = {prefill_tps!r}
decode_tps = {decode_tps!r}
# Real time: a faster twin multiplies its own milliseconds of overhead and our figures would wobble.
time_scale = 1.0

[perf]
concurrency = {list(concurrency)!r}
input_tokens = 300
max_tokens = 32
"""
