"""How together is "together": the dispatch skew of a burst at N = 16, 256 and 1 000.

The load runner opens every connection of a burst first, then writes the N requests back to back in
one pass of its event loop, taking each send time at its write; the skew is the spread of those send
times (last minus first). The twin runs as the plugin runs it, in a process of its own
(``python -m pytest_gx10.fake``), pinned to the other core; the client is pinned to one core. Short
prompts, a few tokens out, so that only the client's release is measured. Prints a table, with the
thread-per-request barrier's figure at N = 16 (3.2 ms, measured before the event loop) beside it.

    python benchmarks/dispatch_skew.py [--repeats 5] [--points 16,256,1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from pytest_gx10.client import VllmClient
from pytest_gx10.load import point_figures, run_concurrent

BARRIER_N16_MS = 3.2  # threading.Barrier release of 16 threads, each then writing its request
TARGET_N1000_MS = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", default="16,256,1000")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {client_core})
    argv = [sys.executable, "-m", "pytest_gx10.fake", "--port", "0", "--profile", "smollm2-cpu"]
    argv += ["--time-scale", "50", "--log-file", os.devnull, "--exit-with-parent"]
    twin = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {server_core})
    )
    try:
        line = twin.stdout.readline() if twin.stdout is not None else ""
        url = next((word for word in line.split() if word.startswith("http")), None)
        if url is None:
            raise SystemExit(f"the twin did not start: {line!r}")
        client = VllmClient(url)
        print(
            f"client on core {client_core}, twin (its own process) on core {server_core}, {args.repeats} bursts each"
        )
        print(
            f"{'N':>5} {'skew median ms':>15} {'skew max ms':>12} {'per request us':>15} {'all ok':>7}  compared with"
        )
        for n in (int(p) for p in args.points.split(",")):
            skews, ok = [], True
            for r in range(args.repeats):
                bodies = [
                    {"prompt": f"Request {i} of run {r}.", "max_tokens": 4, "temperature": 0}
                    for i in range(n)
                ]
                results = run_concurrent(client, "/v1/completions", bodies)
                ok = ok and all(x.ok for x in results)
                skew = point_figures(n, results).dispatch_skew_ms
                if skew is not None:
                    skews.append(skew)
            median = statistics.median(skews)
            note = ""
            if n == 16:
                note = f"barrier of threads {BARRIER_N16_MS} ms: {BARRIER_N16_MS / median:.0f}x tighter"
            elif n == 1000:
                note = (
                    f"target {TARGET_N1000_MS:g} ms: {'met' if max(skews) <= TARGET_N1000_MS else 'missed'}"
                )
            print(
                f"{n:>5} {median:>15.3f} {max(skews):>12.3f} {1000 * median / n:>15.1f} {'yes' if ok else 'no':>7}  {note}"
            )
        client.close()
    finally:
        twin.terminate()
        twin.wait()
        if twin.stdout is not None:
            twin.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
