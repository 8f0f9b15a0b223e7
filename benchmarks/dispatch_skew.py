"""How together is "together": the barrier's dispatch skew at N = 16 and N = 64.

Each request thread waits on one barrier and takes its send time the moment it is released; the
skew is the spread of those send times (last minus first). Runs against the embedded twin (short
prompts, a few tokens out) so that only the client's release is measured. Prints a table.

    python benchmarks/dispatch_skew.py [--repeats 5] [--points 16,64]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import point_figures, run_concurrent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", default="16,64")
    args = parser.parse_args()
    with FakeServer("smollm2-cpu", time_scale=50.0) as server:
        client = VllmClient(server.url)
        print(f"{'N':>4} {'skew median ms':>15} {'skew max ms':>12} {'skew per request us':>20}")
        for n in (int(p) for p in args.points.split(",")):
            skews = []
            for r in range(args.repeats):
                bodies = [
                    {"prompt": f"Request {i} of run {r}.", "max_tokens": 4, "temperature": 0}
                    for i in range(n)
                ]
                results = run_concurrent(client, "/v1/completions", bodies)
                skew = point_figures(n, results).dispatch_skew_ms
                if skew is not None:
                    skews.append(skew)
            median = statistics.median(skews)
            print(f"{n:>4} {median:>15.3f} {max(skews):>12.3f} {1000 * median / n:>20.1f}")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
