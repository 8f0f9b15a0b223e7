"""Does the release gate tell a bad day from a busy machine, with medians of repeated points?

Saves one baseline of the MTP-2 twin's sweep with ``--gx10-repeat K`` (default 3), then, while a
process of ours keeps one core busy, runs the same sweep with the same K against it ``--good``
times (default 10): each run should pass at the default 10 % tolerance. Then runs the MTP-5 twin
(the post's bad day: N=2 decode 14-17 % down, N=4 a zero-token reply, N=8 engine dead) with the
same K against it ``--bad`` times (default 3): each should fail the gate. Prints each run's verdict,
the largest change seen per figure with the measured noise at that run, and a last line
``MTP-2: 10/10 passed; MTP-5: 3/3 failed``; exits 1 when a run went the other way.

Each run is a pytest subprocess of the shipped suites/perf (about 100 s with K=3 on a two-core
machine); the busy loop is stopped however the benchmark ends.

    python3 benchmarks/repeat_gate.py [--good 10] [--bad 3] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MTP2 = "qwen3.5-397b-fp8-mtp2-gx10x4"
MTP5 = "qwen3.5-397b-fp8-mtp5-gx10x4"


@contextmanager
def busy_core() -> Iterator[int]:
    """One core kept busy by a process of ours, stopped (and reaped) however the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sweep(profile: str, repeat: int, out: Path, *flags: str) -> tuple[int, dict[str, Any], float]:
    """Run suites/perf once; (exit code, the results document, seconds)."""
    return run_perf(out, f"--gx10-profile={profile}", f"--gx10-repeat={repeat}", *flags)


def run_perf(out: Path, *flags: str, site: Path | None = None) -> tuple[int, dict[str, Any], float]:
    """Run suites/perf once, results to ``out``; (exit code, the results document, seconds).

    ``site``: a folder with a sitecustomize.py that the run's processes load first.
    """
    argv = [
        sys.executable, "-m", "pytest", str(ROOT / "suites" / "perf"), f"--gx10-json={out}",
        "-p", "no:cacheprovider", "-q", *flags,
    ]  # fmt: skip
    path = [str(site) if site else None, str(ROOT), os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, path))}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if not out.exists():
        raise SystemExit(
            f"the run wrote no results ({' '.join(argv)}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    return done.returncode, json.loads(out.read_text()), seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=10, help="MTP-2 runs against the baseline (default 10)")
    parser.add_argument("--bad", type=int, default=3, help="MTP-5 runs against the baseline (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="--gx10-repeat of every run (default 3)")
    parser.add_argument("--keep", type=Path, help="keep the baseline and each run's JSON in this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gx10-repeat-gate-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        baseline = folder / "mtp2-baseline.json"
        code, _, seconds = sweep(
            MTP2, args.repeat, folder / "baseline-run.json", f"--gx10-save-baseline={baseline}"
        )
        if code != 0:
            raise SystemExit(
                f"the MTP-2 baseline run failed (exit {code}); see {folder / 'baseline-run.json'}"
            )
        print(
            f"baseline: MTP-2 twin, --gx10-repeat {args.repeat}, saved in {seconds:.0f} s (one core left idle)"
        )
        largest: dict[str, tuple[float, float | None, int]] = {}  # figure -> (change, noise, run)
        good_passed = bad_failed = 0
        with busy_core() as pid:
            print(f"busy loop: pid {pid} keeps one core busy for every run below")
            print(f"{'run':<10} {'gate':<7} {'exit':>4} {'s':>5}  {'largest change':<40} regressions")
            for kind, profile, runs in (("MTP-2", MTP2, args.good), ("MTP-5", MTP5, args.bad)):
                for i in range(1, runs + 1):
                    out = folder / f"{kind.lower()}-{i}.json"
                    code, doc, seconds = sweep(profile, args.repeat, out, f"--gx10-baseline={baseline}")
                    gate = doc.get("gate") or {}
                    rows = [r for r in gate.get("figures") or [] if isinstance(r.get("change"), float)]
                    worst = max(rows, key=lambda r: abs(r["change"]), default=None)
                    shown = ""
                    if worst is not None:
                        noise = worst.get("noise")
                        shown = f"{worst['figure']} {100 * worst['change']:+.1f} %" + (
                            f" (noise ±{100 * noise:.1f} %)" if noise is not None else ""
                        )
                    if kind == "MTP-2":
                        good_passed += bool(gate.get("passed"))
                        for r in rows:
                            if abs(r["change"]) > abs(largest.get(r["figure"], (0.0, None, 0))[0]):
                                largest[r["figure"]] = (r["change"], r.get("noise"), i)
                    else:
                        bad_failed += gate.get("passed") is False
                    verdict = "passed" if gate.get("passed") else "failed"
                    regressions = [line for line in gate.get("regressions") or [] if not line.startswith(" ")]
                    print(
                        f"{kind} {i:<4} {verdict:<7} {code:>4} {seconds:>5.0f}  {shown:<40} {len(regressions)}"
                    )
                    if kind == "MTP-5":
                        for line in regressions:
                            if "agg_decode_tps" in line:
                                print(f"           {line}")
        print()
        print(f"largest change per figure over the {args.good} MTP-2 runs (medians of {args.repeat}):")
        print(f"{'figure':<34} {'change':>8} {'noise':>9}  run")
        for figure, (change, noise, run) in sorted(largest.items(), key=lambda item: -abs(item[1][0])):
            shown_noise = "–" if noise is None else f"±{100 * noise:.1f} %"
            print(f"{figure:<34} {100 * change:>+7.1f} % {shown_noise:>9}  {run}")
        print()
        line = f"MTP-2: {good_passed}/{args.good} passed; MTP-5: {bad_failed}/{args.bad} failed"
        print(line)
        return 0 if good_passed == args.good and bad_failed == args.bad else 1


if __name__ == "__main__":
    sys.exit(main())
