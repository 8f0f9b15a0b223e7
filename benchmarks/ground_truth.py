"""Our per-request figures against the twin's programmed ground truth.

The twin knows, in simulated seconds, when each request arrived, when its first token left the
engine and when it finished (``GET /gx10/requests``). Our client measures the same requests from
the outside, in real time scaled by the twin's announced time scale. The difference is our
measurement error: HTTP and event-loop overhead, thread wake-ups, clock reads. Goal: under 1 %.

The twin's truth starts when a request reaches its engine, after the twin has parsed it. That
parsing takes real milliseconds which a time scale multiplies: at the default scale 1 the table is
our client's error; at scale 15 (the reference profile's) it also holds the twin's own overhead
times 15, a few per cent of TTFT at N=16.

Uses the completions endpoint of the reference profile (the chat endpoint hides the first generated
token, ``<think>``, behind the reasoning parser: its TTFT is one step later by design).

    python benchmarks/ground_truth.py [--time-scale 1] [--points 1,4,16]
"""

from __future__ import annotations

import argparse
import statistics
import sys

import requests

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import run_concurrent
from pytest_gx10.servers import VllmServer
from pytest_gx10.workload import sized_prompt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--points", default="1,4,16")
    parser.add_argument("--input-tokens", type=int, default=9818)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    print(
        f"twin of the reference profile, time scale {args.time_scale:g}; completions, "
        f"{args.input_tokens} tokens in, {args.max_tokens} out"
    )
    print(
        f"{'N':>3} {'TTFT err med %':>15} {'TTFT err max %':>15} {'decode err med %':>17} "
        f"{'decode err max %':>17}"
    )
    worst = 0.0
    with FakeServer(time_scale=args.time_scale) as twin:
        client = VllmClient(twin.url)
        for n in (int(p) for p in args.points.split(",")):
            bodies = [
                {"prompt": sized_prompt(VllmServer(client).count_tokens, args.input_tokens, seed=f"gt {n} {i}", chat=False,
                                        header=f"Request {i} of {n}.\n").text,
                 "max_tokens": args.max_tokens, "ignore_eos": True, "temperature": 0}
                for i in range(n)
            ]  # fmt: skip
            results = run_concurrent(client, "/v1/completions", bodies)
            truth = {
                r["id"]: r for r in requests.get(twin.url + "/gx10/requests", timeout=10).json()["requests"]
            }
            ttft_err, decode_err = [], []
            for r in results:
                t = truth[r.response_id or ""]
                true_decode = t["completion_tokens"] / (t["duration_s"] - t["ttft_s"])
                ttft_err.append(100 * ((r.ttft_s or 0) - t["ttft_s"]) / t["ttft_s"])
                decode_err.append(100 * ((r.decode_tps or 0) - true_decode) / true_decode)
            worst = max(worst, *map(abs, ttft_err), *map(abs, decode_err))
            print(
                f"{n:>3} {statistics.median(ttft_err):>15.3f} {max(ttft_err, key=abs):>15.3f} "
                f"{statistics.median(decode_err):>17.3f} {max(decode_err, key=abs):>17.3f}"
            )
        client.close()
    print(f"largest error: {worst:.3f} % (goal: under 1 %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
