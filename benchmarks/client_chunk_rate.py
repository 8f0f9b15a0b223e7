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
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import requests

from pytest_gx10.client import VllmClient
from pytest_gx10.load.points import percentile

SERVER = textwrap.dedent(
    """
    import json, os, socket, sys, time
    os.sched_setaffinity(0, {int(sys.argv[2])})
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
    default = {"rate": 1000, "seconds": 1.0}
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        req = b""
        while b"\\r\\n\\r\\n" not in req:
            req += conn.recv(65536)
        head, _, body = req.partition(b"\\r\\n\\r\\n")
        lengths = [l for l in head.split(b"\\r\\n") if l.lower().startswith(b"content-length")]
        length = int(lengths[0].split(b":")[1]) if lengths else 0
        if head.startswith(b"GET"):  # readiness probes and model listings
            listing = b'{"object": "list", "data": [{"id": "synthetic", "object": "model", "max_model_len": 100000}]}'
            conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n%s"
                         % (len(listing), listing))
            conn.close()
            continue
        while len(body) < length:
            body += conn.recv(65536)
        spec = json.loads(body)
        if b"/control" in head.split(b"\\r\\n")[0]:
            default = spec
            conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{}")
            conn.close()
            continue
        rate, seconds = spec.get("rate", default["rate"]), spec.get("seconds", default["seconds"])
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
            # Both shapes at once: chat's delta.content (ours) and completions' text (vllm bench).
            stamp = " %d" % time.perf_counter_ns()
            frame = json.dumps({"choices": [{"index": 0, "text": stamp, "delta": {"content": stamp},
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
    parser.add_argument(
        "--vllm-bench",
        action="store_true",
        help="also run vllm bench serve's client (scripts/real-vllm setup) at each rate",
    )
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
        if args.vllm_bench:
            _compare_with_vllm_bench(port, client_core, args)
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    return 0


def _kept_up(e2e_s: float, median_itl_s: float, rate: int, seconds: float) -> bool:
    """The same rule for both clients: whole stream on time, chunk gaps as sent."""
    return e2e_s <= seconds * 1.02 + 0.05 and abs(median_itl_s * rate - 1.0) <= 0.10


def _compare_with_vllm_bench(port: int, core: int, args: argparse.Namespace) -> None:
    """Both clients by their own reported figures (end-to-end time, median inter-chunk time)."""
    root = Path(__file__).resolve().parents[1]
    script = root / "scripts" / "real-vllm"
    paths = dict(
        line.split("=", 1)
        for line in subprocess.run([str(script), "paths"], capture_output=True, text=True).stdout.splitlines()
        if "=" in line
    )
    url = f"http://127.0.0.1:{port}"
    client = VllmClient(url, model="synthetic")
    print(
        f"\nboth clients on core {core}, judged alike: e2e <= {args.seconds:g} s + 2 % and median gap within 10 %"
    )
    print(
        f"{'rate/s':>8} {'ours e2e s':>11} {'ours gap us':>12} {'ours':>5} {'vllm e2e s':>11} {'vllm gap us':>12} {'vllm':>5}"
    )
    best = {"ours": 0, "vllm": 0}
    for rate in (int(r) for r in args.rates.split(",")):
        result = client.stream("/v1/completions", {"rate": rate, "seconds": args.seconds})
        times = [c.t_ns for c in result.chunks]
        gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(times)]
        ours_ok = bool(gaps) and _kept_up(result.duration_s, statistics.median(gaps), rate, args.seconds)
        requests.post(url + "/control", json={"rate": rate, "seconds": args.seconds}, timeout=10)
        with tempfile.TemporaryDirectory() as out:
            argv = [
                str(script), "vllm", "bench", "serve", "--backend", "vllm", "--base-url", url,
                "--model", "synthetic", "--tokenizer", paths["model"], "--dataset-name", "random",
                "--random-input-len", "8", "--random-output-len", "16", "--num-prompts", "1",
                "--max-concurrency", "1", "--num-warmups", "0", "--disable-tqdm", "--save-result",
                "--percentile-metrics", "itl,e2el", "--result-dir", out, "--result-filename", "r.json",
            ]  # fmt: skip
            done = subprocess.run(
                argv, capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {core})
            )
            if done.returncode != 0:
                print(f"{rate:>8} vllm bench serve failed: {done.stderr[-300:]}")
                continue
            theirs = json.loads((Path(out) / "r.json").read_text())
        their_e2e = theirs["median_e2el_ms"] / 1000
        their_gap = theirs["median_itl_ms"] / 1000
        their_ok = _kept_up(their_e2e, their_gap, rate, args.seconds)
        for name, ok in (("ours", ours_ok), ("vllm", their_ok)):
            if ok and best[name] == _previous_rate(args.rates, rate):
                best[name] = rate
        print(
            f"{rate:>8} {result.duration_s:>11.3f} {1e6 * statistics.median(gaps) if gaps else 0:>12.1f} "
            f"{'yes' if ours_ok else 'no':>5} {their_e2e:>11.3f} {1e6 * their_gap:>12.1f} {'yes' if their_ok else 'no':>5}"
        )
    client.close()
    print(
        f"highest rate kept up on one core: ours {best['ours']} chunks/s, vllm bench serve {best['vllm']} chunks/s"
    )


def _previous_rate(rates: str, rate: int) -> int:
    """The rate before ``rate`` in the list (0 for the first): a client keeps its best only while unbroken."""
    values = [int(r) for r in rates.split(",")]
    i = values.index(rate)
    return values[i - 1] if i else 0


if __name__ == "__main__":
    sys.exit(main())
