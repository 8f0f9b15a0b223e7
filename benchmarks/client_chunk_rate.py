"""How many SSE chunks per second our client takes in on one core before its timestamps distort.

A synthetic server (its own process, pinned to the other core) streams chunks at a programmed rate,
each carrying its send time from CLOCK_MONOTONIC, which ``time.perf_counter_ns`` reads in every
process on Linux. The client (pinned to one core) stamps each chunk on arrival as it does when
measuring a deployment. The lag (arrival minus send) is the distortion of our timings: flat and
small while the client keeps up, growing once it falls behind. Prints a table; exits 0.

    python benchmarks/client_chunk_rate.py [--seconds 2] [--rates 500,1000,...]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import textwrap

from pytest_gx10.client import VllmClient
from pytest_gx10.load.metrics import percentile

SERVER = textwrap.dedent(
    """
    import json, os, socket, sys, time
    os.sched_setaffinity(0, {int(sys.argv[2])})
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        req = b""
        while b"\\r\\n\\r\\n" not in req:
            req += conn.recv(65536)
        head, _, body = req.partition(b"\\r\\n\\r\\n")
        length = int([l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")][0].split(b":")[1])
        while len(body) < length:
            body += conn.recv(65536)
        spec = json.loads(body)
        rate, seconds = spec["rate"], spec["seconds"]
        conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: text/event-stream; charset=utf-8\\r\\n"
                     b"transfer-encoding: chunked\\r\\n\\r\\n")
        n = int(rate * seconds)
        start = time.perf_counter_ns()
        period = 1e9 / rate
        for i in range(n):
            due = start + int(i * period)
            while time.perf_counter_ns() < due:
                pass
            # The chunk's text is its send time, so the client's own record carries it.
            frame = json.dumps({"choices": [{"index": 0, "delta": {"content": " %d" % time.perf_counter_ns()},
                                             "finish_reason": None}]})
            data = f"data: {frame}\\n\\n".encode()
            conn.sendall(b"%x\\r\\n%s\\r\\n" % (len(data), data))
        tail = (b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": %d, "total_tokens": %d}}'
                b"\\n\\ndata: [DONE]\\n\\n") % (n, n + 1)
        conn.sendall(b"%x\\r\\n%s\\r\\n0\\r\\n\\r\\n" % (len(tail), tail))
        conn.close()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rates", default="500,1000,2000,5000,10000,20000,40000")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {client_core})
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(server_core)], stdout=subprocess.PIPE, text=True
    )
    try:
        if server.stdout is None or server.stdout.readline().strip() != "ready":
            raise SystemExit("the synthetic server did not start")
        client = VllmClient(f"http://127.0.0.1:{port}", model="synthetic")
        print(f"client on core {client_core}, server on core {server_core}, {args.seconds:g} s per rate")
        print(
            f"{'rate/s':>8} {'received':>9} {'lag p50 ms':>11} {'lag p99 ms':>11} {'lag max ms':>11} "
            f"{'drift ms':>9} {'kept up':>8}"
        )
        best, best_missed = 0, False
        for rate in (int(r) for r in args.rates.split(",")):
            result = client.stream("/v1/chat/completions", {"rate": rate, "seconds": args.seconds})
            lags = [(c.t_ns - int(c.content)) / 1e6 for c in result.chunks if c.content.strip().isdigit()]
            if not lags:
                print(f"{rate:>8} {'(none)':>9}")
                continue
            head, tail = (
                statistics.median(lags[: len(lags) // 10 or 1]),
                statistics.median(lags[-(len(lags) // 10 or 1) :]),
            )
            drift = tail - head
            kept = "yes" if drift < 1.0 and (percentile(lags, 99) or 0) < 5.0 else "no"
            best = rate if kept == "yes" and not best_missed else best
            best_missed = best_missed or kept == "no"
            print(
                f"{rate:>8} {len(lags):>9} {percentile(lags, 50):>11.3f} {percentile(lags, 99):>11.3f} "
                f"{max(lags):>11.3f} {drift:>9.3f} {kept:>8}"
            )
        print(f"highest rate kept up with (lag p99 < 5 ms, no drift): {best} chunks/s on one core")
        client.close()
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
