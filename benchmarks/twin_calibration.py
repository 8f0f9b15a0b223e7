"""The twin against the reference post: the 10k-in / 1024-out concurrency sweep, cell by cell.

Starts the embedded twin of the reference profile, runs the sweep N = 1, 2, 4, 8, 16 the way
``suites/perf/test_sweep.py`` does (exact 9 818-token chat prompts, one of its own per request,
max_tokens 1024, ignore_eos, temperature 0, released together by a barrier) and prints, per N and per
figure, the twin's value, the post's, their ratio, the tolerance and PASS or MISS; then each point's
TTFTs in finishing order, to show the post's groups. Exit code 1 on any MISS.

    python benchmarks/twin_calibration.py [--time-scale 10] [--points 1,2,4,8,16]

The twin starts fresh, so N=1 pays the one-time warm-up as the post's first point did; the sweep takes
about 270 simulated seconds, 27 s of wall clock at the profile's time scale of 10.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import PointFigures, point_figures, run_concurrent
from pytest_gx10.profiles import DEFAULT_PROFILE, load_profile
from pytest_gx10.profiles.reference_post import AGGREGATE, PER_REQUEST
from pytest_gx10.servers import VllmServer
from pytest_gx10.workload import sized_prompt

# figure -> (column of AGGREGATE, relative tolerance)
FIGURES: dict[str, tuple[int, float]] = {
    "wall_s": (0, 0.10),
    "agg_prefill_tps": (1, 0.35),
    "agg_decode_tps": (2, 0.10),
    "median_ttft_s": (3, 0.35),
    "median_decode_tps": (4, 0.10),
}
GROUP_GAP_S = 0.25  # TTFTs closer than this print as one group


def run_point(client: VllmClient, n: int, input_tokens: int, max_tokens: int) -> PointFigures:
    """One sweep point, built and measured as the perf suite does."""

    def count(text: str) -> int:
        return VllmServer(client).count_tokens(messages=[{"role": "user", "content": text}])

    prompts = [
        sized_prompt(
            count, input_tokens, seed=f"N={n} request {i}", header=f"Story {i + 1} of {n}, chapter {n}.\n\n"
        )
        for i in range(n)
    ]
    bodies: list[dict[str, Any]] = [
        {**p.body(), "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True} for p in prompts
    ]
    results = run_concurrent(client, "/v1/chat/completions", bodies)
    failed = [r.describe() for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"N={n}: {len(failed)} requests failed: {failed[0]}")
    return point_figures(n, results)


def groups(ttfts: list[float]) -> str:
    """``0.91 | 4.26 x5 | 7.53 x6``: sorted TTFTs, runs closer than GROUP_GAP_S merged."""
    runs: list[list[float]] = []
    for t in sorted(ttfts):
        if runs and t - runs[-1][-1] < GROUP_GAP_S:
            runs[-1].append(t)
        else:
            runs.append([t])
    return " | ".join(f"{r[0]:.2f}" + (f"-{r[-1]:.2f} x{len(r)}" if len(r) > 1 else "") for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default=DEFAULT_PROFILE)
    parser.add_argument("--time-scale", type=float, default=None, help="default: the profile's")
    parser.add_argument("--points", default="1,2,4,8,16")
    args = parser.parse_args()
    profile = load_profile(args.profile)
    points = [int(p) for p in args.points.split(",")]
    started = time.perf_counter()
    measured: dict[int, PointFigures] = {}
    with FakeServer(profile, time_scale=args.time_scale) as server:
        client = VllmClient(server.url, model=server.served_model_name, virtual_time=True)
        for n in points:
            measured[n] = run_point(client, n, profile.perf.input_tokens, profile.perf.max_tokens)
        client.close()
        scale = server.time_scale
    elapsed = time.perf_counter() - started

    misses = 0
    print(f"twin of {profile.name} at time scale {scale:g} vs the reference post (one run, 2026-06-13)")
    print(f"{'N':>3} {'figure':<18} {'twin':>10} {'post':>10} {'ratio':>7} {'tol':>6}  result")
    for n in points:
        figures = measured[n].as_dict()
        for name, (column, tol) in FIGURES.items():
            post = AGGREGATE[n][column] if n in AGGREGATE else None
            twin = figures[name]
            if post is None or twin is None:
                print(f"{n:>3} {name:<18} {twin!s:>10} {post!s:>10}")
                continue
            ratio = twin / post
            ok = abs(ratio - 1.0) <= tol
            misses += not ok
            print(
                f"{n:>3} {name:<18} {twin:>10.2f} {post:>10.2f} {ratio:>7.3f} {tol:>6.0%}  {'PASS' if ok else 'MISS'}"
            )
    print("\nTTFT per request (s, request order), then as groups (sorted; runs within 0.25 s merged)")
    for n in points:
        ttfts = [r["ttft_s"] for r in measured[n].requests if r.get("ttft_s") is not None]
        print(f"{n:>3} twin  {' '.join(f'{t:.2f}' for t in ttfts)}")
        print(f"{'':>3}       {groups(ttfts)}")
        if n in PER_REQUEST:
            post_ttfts = [row[0] for row in PER_REQUEST[n]]
            print(f"{'':>3} post  {' '.join(f'{t:.2f}' for t in post_ttfts)}")
            print(f"{'':>3}       {groups(post_ttfts)}")
    print(f"\n{misses} miss(es); {elapsed:.1f} s of wall clock")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
