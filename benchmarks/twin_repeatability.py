"""How repeatable are the twin's figures, on a quiet machine and with one core kept busy?

Runs the shipped suites/perf against the default twin (the reference profile, time scale 15) twice
with a process of ours keeping one core busy, then twice without it. For each pair it prints every
figure of every point from both runs, their relative difference, and the largest difference; the
last lines say the largest per condition. The busy loop is started and stopped by the benchmark
(reaped however it ends). Exits 1 when a busy pair differs by more than ``--max`` (default 2 %).

Each run's prompts are its own (the suite puts a per-run nonce in them, to keep prefix caching out),
and the twin's MTP acceptance draws follow the prompt: so two runs differ a little even on a perfect
clock, mostly in the inter-token percentiles, whose values are a step time over 1, 2 or 3 tokens.
``--same-prompts`` gives both runs the same nonce (uuid4 made deterministic in the runs' processes),
which leaves only what the host's scheduling adds.

    python3 benchmarks/twin_repeatability.py [--max 0.02] [--keep DIR] [--quiet-only | --busy-only]
        [--same-prompts]
"""

from __future__ import annotations

import argparse
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from repeat_gate import busy_core, run_perf  # benchmarks/ is on the path of a script run from it

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (
    "wall_s",
    "agg_prefill_tps",
    "agg_decode_tps",
    "median_ttft_s",
    "median_decode_tps",
    "p90_ttft_s",
    "p99_ttft_s",
    "itl_p50_ms",
    "itl_p90_ms",
    "itl_p99_ms",
)


SAME_PROMPTS = """import random, uuid
_rng = random.Random(0)
uuid.uuid4 = lambda: uuid.UUID(int=_rng.getrandbits(128), version=4)
"""


def sweep(out: Path, site: Path | None = None) -> tuple[dict[str, Any], float]:
    """Run suites/perf once against the default twin; (the results document, seconds).

    ``site``: a folder with a sitecustomize.py that the run's processes load first.
    """
    _, document, seconds = run_perf(out, site=site)
    return document, seconds


def compare(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Print each figure of each point of two runs and their relative difference; the largest."""
    worst = 0.0
    print(f"{'point':>6} {'figure':<18} {'run 1':>12} {'run 2':>12} {'diff':>8}")
    for pa, pb in zip(a.get("sweep") or [], b.get("sweep") or [], strict=False):
        for name in FIGURES:
            x, y = pa.get(name), pb.get(name)
            if not isinstance(x, (int, float)) or not isinstance(y, (int, float)):
                continue
            diff = abs(x - y) / max(abs(x), abs(y)) if max(abs(x), abs(y)) > 0 else 0.0
            worst = max(worst, diff)
            print(f"N={pa['concurrency']:<4} {name:<18} {x:>12.4g} {y:>12.4g} {diff:>7.2%}")
    print(f"max difference: {worst:.2%}")
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=0.02, help="largest busy difference allowed (0.02)")
    parser.add_argument("--keep", type=Path, help="keep each run's JSON in this folder")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--quiet-only", action="store_true", help="skip the busy pair")
    only.add_argument("--busy-only", action="store_true", help="skip the quiet pair")
    parser.add_argument("--same-prompts", action="store_true", help="the same prompts in every run")
    args = parser.parse_args()
    conditions = [c for c in ("busy", "quiet") if not (c == "busy" and args.quiet_only)]
    conditions = [c for c in conditions if not (c == "quiet" and args.busy_only)]
    worst: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gx10-twin-repeat-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        site = None
        if args.same_prompts:
            site = Path(tmp) / "site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(SAME_PROMPTS)
        for condition in conditions:
            runs = []
            with busy_core() if condition == "busy" else nullcontext():
                for i in (1, 2):
                    doc, seconds = sweep(folder / f"{condition}-{i}.json", site)
                    print(f"{condition} run {i}: {seconds:.1f} s")
                    runs.append(doc)
            print(f"--- {condition}: one core {'kept busy' if condition == 'busy' else 'left alone'}")
            worst[condition] = compare(*runs)
    for condition, value in worst.items():
        print(f"{condition}: max difference {value:.2%}")
    return 1 if worst.get("busy", 0.0) > args.max else 0


if __name__ == "__main__":
    raise SystemExit(main())
