"""The reference post's measured tables (Qwen3.5-397B-A17B-FP8, MTP-2, 4x GX10, 2026-06-13).

Kept as data so that tests check our figure definitions against them and the twin's calibration is
judged against them. Input was 9 818 tokens and output 1 024 tokens for every request.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AGGREGATE", "INPUT_TOKENS", "MTP5_AGGREGATE", "OUTPUT_TOKENS", "PER_REQUEST", "results_document"]

INPUT_TOKENS = 9818
OUTPUT_TOKENS = 1024

# N -> [(ttft_s, duration_s, prefill_tps, decode_tps)] in request order.
PER_REQUEST: dict[int, list[tuple[float, float, float, float]]] = {
    1: [(5.37, 30.78, 1830, 40.3)],
    2: [(1.72, 33.21, 5693, 32.5), (4.19, 33.88, 2342, 34.5)],
    4: [
        (5.13, 52.79, 1912, 21.5),
        (5.14, 53.19, 1912, 21.3),
        (6.32, 53.26, 1553, 21.8),
        (1.75, 52.58, 5601, 20.1),
    ],
    8: [
        (4.35, 61.86, 2258, 17.8),
        (4.35, 58.85, 2258, 18.8),
        (4.35, 60.88, 2255, 18.1),
        (4.35, 61.62, 2257, 17.9),
        (5.70, 61.71, 1721, 18.3),
        (1.01, 59.84, 9732, 17.4),
        (5.70, 59.16, 1722, 19.1),
        (4.35, 61.50, 2255, 17.9),
    ],
    16: [
        (7.54, 88.64, 1303, 12.6),
        (9.60, 87.65, 1023, 13.1),
        (4.26, 86.35, 2305, 12.5),
        (7.53, 88.71, 1303, 12.6),
        (7.53, 87.95, 1304, 12.7),
        (9.59, 88.35, 1024, 13.0),
        (4.26, 88.10, 2306, 12.2),
        (9.58, 87.46, 1024, 13.1),
        (4.26, 88.10, 2302, 12.2),
        (9.59, 85.72, 1024, 13.4),
        (7.54, 86.14, 1303, 13.0),
        (4.26, 88.65, 2304, 12.1),
        (7.55, 87.65, 1301, 12.8),
        (7.53, 84.81, 1303, 13.2),
        (0.91, 86.54, 10754, 11.9),
        (4.27, 86.55, 2301, 12.4),
    ],
}

# N -> (wall_s, agg_prefill_tps, agg_decode_tps, median_ttft_s, median_decode_tps)
AGGREGATE: dict[int, tuple[float, float, float, float, float]] = {
    1: (30.8, 1830, 40.3, 5.37, 40.3),
    2: (33.9, 4684, 63.6, 2.96, 33.5),
    4: (53.3, 6209, 79.4, 5.13, 21.4),
    8: (61.9, 13761, 134.5, 4.35, 18.0),
    16: (88.7, 16369, 186.4, 7.53, 12.7),
}

# The MTP-5 retest: N -> (wall_s, agg_prefill_tps, agg_decode_tps); N=4 returned a 0-token
# completion, N=8 died with HTTP 500 (engine dead), N=16 was not attempted.
MTP5_AGGREGATE: dict[int, tuple[float, float, float | None]] = {
    1: (34.6, 1066, 40.3),
    2: (43.5, 3324, 54.4),
    4: (76.4, 6172, None),
}


def results_document(points: list[int]) -> dict[str, Any]:
    """A results document (as --gx10-json writes) holding the post's per-request rows at ``points``,
    with the deployment's facts from the bundled reference profile: what ``python -m pytest_gx10 fit``
    reads."""
    from pytest_gx10.profiles import DEFAULT_PROFILE, load_profile

    profile = load_profile(DEFAULT_PROFILE)
    dep = profile.deployment
    spec = dep.speculative
    assert spec is not None
    facts = {
        "model": dep.served_model_name,
        "max_model_len": dep.max_model_len,
        "max_num_seqs": dep.max_num_seqs,
        "max_num_batched_tokens": dep.max_num_batched_tokens,
        "tensor_parallel_size": dep.tensor_parallel_size,
        "kv_cache_dtype": dep.kv_cache_dtype,
        "speculative": f"{spec.method} k={spec.num_speculative_tokens}",
    }
    sweep = [
        {
            "concurrency": n,
            "requests": [
                {
                    "ttft_s": ttft,
                    "duration_s": duration,
                    "prompt_tokens": INPUT_TOKENS,
                    "completion_tokens": OUTPUT_TOKENS,
                    "decode_tps": decode,
                    "outcome": "ok",
                }
                for ttft, duration, _prefill, decode in PER_REQUEST[n]
            ],
        }
        for n in points
    ]
    return {
        "schema_version": 1,
        "model": dep.served_model_name,
        "profile": profile.name,
        "time_scale": 1.0,
        "deployment": {k: {"value": v, "source": "post"} for k, v in facts.items()},
        "sweep": sweep,
        "mtp": [{"name": "window", "per_position": list(spec.acceptance_per_position)}],
    }
