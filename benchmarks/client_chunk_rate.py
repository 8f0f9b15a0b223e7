"""How many SSE chunks per second each client takes in on one core before its timestamps distort.

Synthetic servers (their own processes, pinned to the other core) stream chunks at a programmed rate,
each carrying its send time from CLOCK_MONOTONIC, which ``time.perf_counter_ns`` reads in every
process on Linux. The clients (all pinned to one core, run one after the other in this one run)
stamp each chunk on arrival as they do when measuring a deployment. The lag (arrival minus send) is
the distortion of our timings: flat and small while a client keeps up, growing once it falls behind.

1. One stream at rising rates: our event-loop client (``client/aio.py``, what the load runner uses),
   our threaded client (``VllmClient.stream``, single requests) and, when ``scripts/real-vllm`` has
   its venv, ``vllm bench serve`` (aiohttp), all judged by the same rule; the ratio of the highest
   rates kept up, ours over theirs.
2. Many concurrent streams (1 000 by default) at an aggregate rate, every chunk stamped on arrival:
   the lag p50 / p99 / max of the event loop, and of a thread per stream (the runner before it).

Prints tables; exits 0.

    python benchmarks/client_chunk_rate.py [--seconds 2] [--rates 1000,2000,...] [--streams 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import requests

from pytest_gx10.client import StreamResult, VllmClient, aio
from pytest_gx10.load import run_concurrent
from pytest_gx10.load.points import percentile
from pytest_gx10.load.runner import ensure_open_files

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


# Many streams at once: one asyncio loop paces every open stream, phases spread over a period, each
# chunk written with its send time. A request's body says its stream's rate and length.
MANY_SERVER = textwrap.dedent(
    """
    import asyncio, heapq, itertools, json, os, random, sys, time
    os.sched_setaffinity(0, {int(sys.argv[2])})
    due = []  # (due ns, seq, [writer, sent, total, period ns, start ns])
    seq = itertools.count()
    wake = asyncio.Event()

    async def handle(reader, writer):
        head = await reader.readuntil(b"\\r\\n\\r\\n")
        length = 0
        for line in head.split(b"\\r\\n"):
            if line.lower().startswith(b"content-length"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        spec = json.loads(body)
        writer.write(b"HTTP/1.1 200 OK\\r\\ncontent-type: text/event-stream\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n")
        period = int(1e9 / spec["rate"])
        start = time.perf_counter_ns() + int(random.random() * period)
        heapq.heappush(due, (start, next(seq), [writer, 0, int(spec["rate"] * spec["seconds"]), period, start]))
        wake.set()

    async def pace():
        while True:
            if not due:
                wake.clear()
                await wake.wait()
                continue
            left = due[0][0] - time.perf_counter_ns()
            if left > 2_000_000:
                await asyncio.sleep(left / 1e9 - 0.001)
                continue
            for _ in range(200):
                if not due or due[0][0] > time.perf_counter_ns():
                    break
                _, _, s = heapq.heappop(due)
                writer = s[0]
                stamp = " %d" % time.perf_counter_ns()
                data = b"data: " + json.dumps({"choices": [{"index": 0, "text": stamp, "finish_reason": None}]}).encode() + b"\\n\\n"
                writer.write(b"%x\\r\\n%s\\r\\n" % (len(data), data))
                s[1] += 1
                if s[1] < s[2]:
                    heapq.heappush(due, (s[4] + s[1] * s[3], next(seq), s))
                else:
                    tail = (b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": %d, '
                            b'"total_tokens": %d}}\\n\\ndata: [DONE]\\n\\n') % (s[2], s[2] + 1)
                    writer.write(b"%x\\r\\n%s\\r\\n0\\r\\n\\r\\n" % (len(tail), tail))
                    writer.close()
            await asyncio.sleep(0)

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=4096)
        print("ready", flush=True)
        await asyncio.gather(pace(), server.serve_forever())

    asyncio.run(main())
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(script: str, core: int) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", script, str(port), str(core)], stdout=subprocess.PIPE, text=True
    )
    if server.stdout is None or server.stdout.readline().strip() != "ready":
        raise SystemExit("a synthetic server did not start")
    return server, f"http://127.0.0.1:{port}"


def _stop(server: subprocess.Popen[str]) -> None:
    server.kill()
    server.wait()
    if server.stdout is not None:
        server.stdout.close()


def _lags_ms(result: StreamResult) -> list[float]:
    """Arrival minus send time of every chunk (the chunk's text is its send time)."""
    return [(c.t_ns - int(c.content)) / 1e6 for c in result.chunks if c.content.strip().isdigit()]


def _kept_up(e2e_s: float, median_itl_s: float, rate: int, seconds: float) -> bool:
    """The same rule for every client: whole stream on time, chunk gaps as sent."""
    return e2e_s <= seconds * 1.02 + 0.05 and abs(median_itl_s * rate - 1.0) <= 0.10


def _ours(result: StreamResult, rate: int, seconds: float) -> tuple[float, float, bool]:
    """(lag p99 ms, e2e s, kept up) of one of our streams."""
    gaps = [(b.t_ns - a.t_ns) / 1e9 for a, b in itertools.pairwise(result.chunks)]
    lags = _lags_ms(result)
    kept = bool(gaps) and result.ok and _kept_up(result.duration_s, statistics.median(gaps), rate, seconds)
    return (percentile(lags, 99) or float("nan")) if lags else float("nan"), result.duration_s, kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rates", default="1000,2000,5000,10000,20000,30000,40000,60000")
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams of part 2")
    parser.add_argument(
        "--stream-rates", default="10,20,40", help="chunks/s of each stream in part 2 (aggregate = x streams)"
    )
    parser.add_argument("--no-vllm-bench", action="store_true", help="leave out vllm bench serve")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    client_core, server_core = cores[0], cores[-1]
    os.sched_setaffinity(0, {client_core})
    vllm = None if args.no_vllm_bench else _vllm_bench()
    print(f"clients on core {client_core}, servers on core {server_core}, python {sys.version.split()[0]}")
    _one_stream(args, client_core, vllm)
    _many_streams(args)
    return 0


def _one_stream(args: argparse.Namespace, core: int, vllm: tuple[Path, dict[str, str]] | None) -> None:
    server, url = _start(
        SERVER, sorted(os.sched_getaffinity(0) | {os.cpu_count() or 1})[-1] if False else _other_core(core)
    )
    rates = [int(r) for r in args.rates.split(",")]
    client = VllmClient(url, model="synthetic")
    print(
        f"\n1. one stream, {args.seconds:g} s per rate; kept up = e2e <= {args.seconds:g} s + 2 % + 50 ms "
        "and median chunk gap within 10 % of the period (every client judged so)"
    )
    print(
        f"{'rate/s':>7} | {'loop lag p99 ms':>15} {'e2e s':>6} {'kept':>4} | {'threads lag p99 ms':>18} "
        f"{'e2e s':>6} {'kept':>4} | {'vllm e2e s':>10} {'gap us':>7} {'kept':>4}"
    )
    best = {"loop": 0, "threads": 0, "vllm": 0}
    broken: set[str] = set()
    try:
        for rate in rates:
            spec = {"rate": rate, "seconds": args.seconds}
            looped = asyncio.run(aio.stream(client, "/v1/completions", spec))
            threaded = client.stream("/v1/completions", spec)
            figures = {
                "loop": _ours(looped, rate, args.seconds),
                "threads": _ours(threaded, rate, args.seconds),
            }
            theirs = _run_vllm_bench(url, core, rate, args.seconds, vllm) if vllm is not None else None
            kept = {name: f[2] for name, f in figures.items()}
            if theirs is not None:
                kept["vllm"] = _kept_up(theirs[0], theirs[1], rate, args.seconds)
            for name, ok in kept.items():
                if not ok:
                    broken.add(name)
                elif name not in broken:
                    best[name] = rate
            cells = [
                f"{rate:>7}",
                *(
                    f"{figures[n][0]:>{w}.3f} {figures[n][1]:>6.3f} {_yes(kept[n]):>4}"
                    for n, w in (("loop", 15), ("threads", 18))
                ),
                f"{theirs[0]:>10.3f} {1e6 * theirs[1]:>7.1f} {_yes(kept['vllm']):>4}"
                if theirs
                else f"{'(not run)':>23}",
            ]
            print(" | ".join(cells))
    finally:
        client.close()
        _stop(server)
    print(
        f"highest rate kept up on one core: event loop {best['loop']}, threads {best['threads']}, "
        f"vllm bench serve {best['vllm'] if vllm else '(not run)'} chunks/s"
    )
    if vllm is not None:
        ratio = best["loop"] / best["vllm"] if best["vllm"] else float("inf")
        print(f"ratio ours (event loop) / theirs (vllm bench serve): {ratio:.2f}")


def _yes(ok: bool) -> str:
    return "yes" if ok else "no"


def _other_core(core: int) -> int:
    cores = sorted(set(range(os.cpu_count() or 1)) - {core})
    return cores[0] if cores else core


def _many_streams(args: argparse.Namespace) -> None:
    """N streams at once, each at a per-stream rate: the lag of every chunk, event loop vs threads."""
    n = args.streams
    ensure_open_files(n)
    server, url = _start(MANY_SERVER, _other_core(sorted(os.sched_getaffinity(0))[0]))
    client = VllmClient(url, model="synthetic", timeout_s=30.0)
    print(
        f"\n2. {n} concurrent streams for {args.seconds:g} s, every chunk stamped on arrival (lag = arrival - server's send)"
    )
    print(
        f"{'aggregate/s':>11} {'client':>8} {'chunks':>8} {'ok':>5} {'lag p50 ms':>11} {'lag p99 ms':>11} "
        f"{'lag max ms':>11} {'connect+send s':>14}"
    )
    try:
        for per_stream in (float(r) for r in args.stream_rates.split(",")):
            bodies = [{"rate": per_stream, "seconds": args.seconds}] * n
            for name in ("loop", "threads"):
                start = time.perf_counter()
                results = (
                    run_concurrent(client, "/v1/completions", bodies)
                    if name == "loop"
                    else _threads(client, bodies)
                )
                sent_s = max(r.send_ns for r in results) / 1e9 - start  # perf_counter's clock, in ns
                lags = [lag for r in results for lag in _lags_ms(r)]
                print(
                    f"{int(per_stream * n):>11} {name:>8} {len(lags):>8} {sum(r.ok for r in results):>5} "
                    f"{percentile(lags, 50) or 0:>11.3f} {percentile(lags, 99) or 0:>11.3f} {max(lags, default=0):>11.3f} "
                    f"{sent_s:>14.3f}"
                )
    finally:
        client.close()
        _stop(server)


def _threads(client: VllmClient, bodies: list[dict[str, Any]]) -> list[StreamResult]:
    """A thread per stream released by a barrier: how the load runner sent before the event loop."""
    barrier = threading.Barrier(len(bodies))
    results: list[StreamResult | None] = [None] * len(bodies)

    def one(i: int) -> None:
        barrier.wait()
        results[i] = client.stream("/v1/completions", bodies[i])

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for r in results if r is not None]


def _vllm_bench() -> tuple[Path, dict[str, str]] | None:
    """scripts/real-vllm and its paths, when its venv is set up."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "real-vllm"
    done = subprocess.run([str(script), "paths"], capture_output=True, text=True)
    paths = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    if done.returncode != 0 or not Path(paths.get("python", "/nonexistent")).exists():
        print("vllm bench serve: not set up (scripts/real-vllm setup); its column is left out")
        return None
    return script, paths


def _run_vllm_bench(
    url: str, core: int, rate: int, seconds: float, vllm: tuple[Path, dict[str, str]]
) -> tuple[float, float] | None:
    """vllm bench serve's (median e2e s, median inter-chunk gap s) of one stream at ``rate``."""
    script, paths = vllm
    requests.post(url + "/control", json={"rate": rate, "seconds": seconds}, timeout=10)
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
            print(f"vllm bench serve failed at {rate}/s: {done.stderr[-300:]}")
            return None
        theirs = json.loads((Path(out) / "r.json").read_text())
    return theirs["median_e2el_ms"] / 1000, theirs["median_itl_ms"] / 1000


if __name__ == "__main__":
    sys.exit(main())
