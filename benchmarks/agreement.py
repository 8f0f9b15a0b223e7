"""Our measurement against vLLM's own benchmark client, on the same server, alternated and warmed.

For each server (the real CPU vLLM server started by ``scripts/real-vllm serve`` with prefix caching
off, and the twin of it at time scale 1) and each load shape, both clients send the same shape of
streaming completions (``ignore_eos``, temperature 0, prompts sized to exactly the input length by
the server's own /tokenize, a fresh set of prompts per run so nobody gets help from a cache):

* ``burst``: N requests at once (``vllm bench serve --max-concurrency N``; ours: the burst runner);
* ``rate``: M requests arriving at R requests/s, evenly spaced (``vllm bench serve --request-rate R
  --burstiness inf``; ours: the open-loop runner on a constant schedule), so the two schedules are
  the same and no arrival process's randomness lands in the ratio.

Both clients are warmed first (one untimed run each), then the rounds alternate who goes first
(round 1 theirs first, round 2 ours first, ...), so a server warming up or a machine getting busier
lands on both sides. Each round gives a ratio ours / theirs per figure; the summary prints each
ratio's median over the rounds, its spread (min..max) and the acceptance bound it is held to.

Each tool reports with its own window, and the table says which one:

* ``vllm bench serve`` divides by ``duration``: from before it creates its first request task to
  after the last one is gathered. In the rate mode that includes the schedule's first gap (its first
  request is due at 1/R, not at 0).
* ours divides by the span from the first request's send to the last request's end (the load
  modes' window, ``pytest_gx10.load.steady``).

The ``same window`` rows recompute both sides over one window (first send to last end, from each
tool's per-request records), so what remains there is measurement, not definition.

    python benchmarks/agreement.py [--rounds 5] [--n 4] [--input-len 500] [--output-len 64]
                                   [--rate 1.0] [--rate-requests 24] [--servers real,twin]
                                   [--shapes burst,rate]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import run_concurrent
from pytest_gx10.load.runner import run_open_loop
from pytest_gx10.load.steady import Sent, load_figures
from pytest_gx10.servers import VllmServer
from pytest_gx10.workload import sized_prompt

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "real-vllm"
MODEL = "SmolLM2-135M-Instruct"

# Acceptance bounds on |median ratio - 1| per shape and figure.
BOUNDS = {
    "burst": {"output_tps": 0.03, "median_ttft_s": 0.05},
    "rate": {"request_rps": 0.05, "output_tps": 0.05, "median_ttft_s": 0.10, "median_tpot_ms": 0.10},
}
LABELS = {
    "request_rps": "requests/s",
    "output_tps": "output tok/s",
    "median_ttft_s": "median TTFT s",
    "median_tpot_ms": "median TPOT ms",
    "same_window_output_tps": "output tok/s, same window",
    "same_window_request_rps": "requests/s, same window",
    "median_e2e_s": "median e2e s",
    "median_decode_s": "median e2e - TTFT s",
}


@dataclass(frozen=True)
class Shape:
    name: str
    n: int  # requests per run
    input_len: int
    output_len: int
    rate: float | None = None  # requests/s for the rate shape; None is a burst


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _paths() -> dict[str, str]:
    out = subprocess.run([str(SCRIPT), "paths"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def prompts(url: str, shape: Shape, who: str) -> list[str]:
    """``shape.n`` prompts of exactly ``shape.input_len`` tokens as the server counts them."""
    client = VllmClient(url, model=MODEL, timeout_s=30)
    try:
        return [
            sized_prompt(
                VllmServer(client).count_tokens,
                shape.input_len,
                seed=f"{who} {i}",
                chat=False,
                header=f"{who} {i}.\n",
            ).text
            for i in range(shape.n)
        ]
    finally:
        client.close()


def _ensure_pandas() -> None:
    """vllm bench's custom dataset reads JSONL with pandas, which the CPU build does not pull in."""
    check = subprocess.run([str(SCRIPT), "python", "-c", "import pandas"], capture_output=True)
    if check.returncode != 0:
        print("installing pandas into the real-vllm venv (vllm bench's custom dataset needs it)")
        subprocess.run(
            [str(SCRIPT), "python", "-m", "pip", "install", "-q", "pandas"], check=True, capture_output=True
        )


def _span(starts: list[float], ends: list[float]) -> float:
    return max(ends) - min(starts)


def theirs(url: str, shape: Shape, who: str) -> dict[str, float]:
    """``vllm bench serve`` against ``url``: its own figures, and its output over the common window."""
    with tempfile.TemporaryDirectory() as out:
        dataset = Path(out) / "prompts.jsonl"
        dataset.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts(url, shape, who)))
        argv = [
            str(SCRIPT), "vllm", "bench", "serve", "--backend", "vllm", "--base-url", url, "--model", MODEL,
            "--tokenizer", _paths()["model"], "--dataset-name", "custom", "--dataset-path", str(dataset),
            "--skip-chat-template", "--custom-output-len", str(shape.output_len),
            "--num-prompts", str(shape.n), "--ignore-eos", "--temperature", "0", "--num-warmups", "0",
            "--disable-tqdm", "--save-result", "--save-detailed", "--result-dir", out,
            "--result-filename", "r.json",
        ]  # fmt: skip
        if shape.rate is None:
            argv += ["--max-concurrency", str(shape.n)]
        else:
            argv += ["--request-rate", str(shape.rate), "--burstiness", "inf"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"vllm bench serve failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        r: dict[str, Any] = json.loads((Path(out) / "r.json").read_text())
    ok = [i for i, e in enumerate(r["errors"]) if not e]
    starts = [r["start_times"][i] for i in ok]
    ends = [r["start_times"][i] + r["latencies"][i] for i in ok]
    span = _span(starts, ends)
    return {
        "completed": r["completed"],
        "request_rps": r["request_throughput"],
        "output_tps": r["output_throughput"],
        "median_ttft_s": r["median_ttft_ms"] / 1000,
        "median_tpot_ms": r["median_tpot_ms"],
        "window_s": r["duration"],
        "same_window_output_tps": r["total_output_tokens"] / span,
        "same_window_request_rps": r["completed"] / span,
        "median_e2e_s": statistics.median(r["latencies"][i] for i in ok),
        "median_decode_s": statistics.median(r["latencies"][i] - r["ttfts"][i] for i in ok),
    }


def ours(url: str, shape: Shape, who: str) -> dict[str, float]:
    """Our runner against ``url``, the same shape of load; figures as the load modes define them."""
    bodies = [
        {"prompt": text, "max_tokens": shape.output_len, "ignore_eos": True, "temperature": 0}
        for text in prompts(url, shape, who)
    ]
    client = VllmClient(url, model=MODEL, timeout_s=30)
    try:
        if shape.rate is None:
            results = run_concurrent(client, "/v1/completions", bodies)
            start_ns = min(r.send_ns for r in results)
            sent = [Sent(r) for r in results]
        else:
            offsets = [i / shape.rate for i in range(shape.n)]
            start_ns, sent = run_open_loop(client, "/v1/completions", bodies, offsets)
    finally:
        client.close()
    f = load_figures(shape.name, shape.rate or shape.n, sent, start_ns=start_ns, warmup_s=0.0)
    ok = [x.result for x in sent if x.result.ok and x.result.ttft_s is not None]
    return {
        "completed": f["ok_requests"],
        "request_rps": f["request_throughput_rps"],
        "output_tps": f["output_tps"],
        "median_ttft_s": f["ttft_p50_s"],
        "median_tpot_ms": f["tpot_p50_ms"],
        "window_s": f["window_s"],
        "same_window_output_tps": f["output_tps"],
        "same_window_request_rps": f["request_throughput_rps"],
        "send_lag_max_ms": f["send_lag_max_ms"] or 0.0,
        "median_e2e_s": statistics.median(r.duration_s for r in ok),
        "median_decode_s": statistics.median(r.duration_s - (r.ttft_s or 0.0) for r in ok),
    }


@contextmanager
def serving(server: str) -> Iterator[str]:
    """The server's URL while it runs; stopped after, whatever happened."""
    if server == "twin":
        with FakeServer("smollm2-cpu", time_scale=1.0) as twin:
            yield twin.url
        return
    port = _free_port()
    argv = [str(SCRIPT), "serve", "--port", str(port), "--", "--no-enable-prefix-caching"]
    started = subprocess.run(argv, capture_output=True, text=True)
    if started.returncode != 0:
        raise SystemExit(f"scripts/real-vllm serve failed:\n{started.stderr[-2000:]}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(SCRIPT), "stop", "--port", str(port)], capture_output=True)


def measure(
    url: str, shape: Shape, rounds: int, log: Callable[[str], None]
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """Warm both clients, then ``rounds`` alternated runs: [(ours, theirs)] per round."""
    tag = f"{shape.name} {time.time_ns()}"
    log(f"  warm-up: vllm bench serve, then ours ({shape.name})")
    theirs(url, shape, f"warm theirs {tag}")
    ours(url, shape, f"warm ours {tag}")
    pairs = []
    for r in range(rounds):
        first = "theirs" if r % 2 == 0 else "ours"
        if first == "theirs":
            t = theirs(url, shape, f"theirs {r} {tag}")
            o = ours(url, shape, f"ours {r} {tag}")
        else:
            o = ours(url, shape, f"ours {r} {tag}")
            t = theirs(url, shape, f"theirs {r} {tag}")
        log(
            f"  round {r + 1} ({first} first): TTFT {o['median_ttft_s']:.3f} / {t['median_ttft_s']:.3f} s, "
            f"output {o['output_tps']:.1f} / {t['output_tps']:.1f} tok/s"
        )
        pairs.append((o, t))
    return pairs


def summarize(server: str, shape: Shape, pairs: list[tuple[dict[str, float], dict[str, float]]]) -> list[str]:
    """One row per figure: our and their medians, the ratio's median and spread, its bound and verdict."""
    rows = []
    bounds = BOUNDS[shape.name]
    figures = [*bounds, "same_window_output_tps"] + (["same_window_request_rps"] if shape.rate else [])
    figures += ["median_e2e_s", "median_decode_s"]  # where a difference in throughput comes from
    for figure in figures:
        ratios = [o[figure] / t[figure] for o, t in pairs if o.get(figure) and t.get(figure)]
        if not ratios:
            continue
        med = statistics.median(ratios)
        bound = bounds.get(figure)
        verdict = "-" if bound is None else ("ok" if abs(med - 1) <= bound else "OFF")
        rows.append(
            f"{server:<5} {shape.name:<5} {LABELS[figure]:<26} "
            f"{statistics.median(o[figure] for o, _ in pairs):>9.3f} "
            f"{statistics.median(t[figure] for _, t in pairs):>9.3f} "
            f"{med:>7.3f} {min(ratios):>7.3f}..{max(ratios):<7.3f} "
            f"{'±' + format(bound * 100, '.0f') + ' %' if bound else '':>6}  {verdict}"
        )
    windows_o = statistics.median(o["window_s"] for o, _ in pairs)
    windows_t = statistics.median(t["window_s"] for _, t in pairs)
    rows.append(
        f"{server:<5} {shape.name:<5} {'window s (own definition)':<26} {windows_o:>9.3f} {windows_t:>9.3f}"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=4, help="burst size")
    parser.add_argument("--input-len", type=int, default=500)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.5, help="requests/s of the rate shape")
    parser.add_argument("--rate-requests", type=int, default=16, help="requests of the rate shape")
    parser.add_argument("--servers", default="real,twin")
    parser.add_argument("--shapes", default="burst,rate")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    shapes = {
        "burst": Shape("burst", args.n, args.input_len, args.output_len),
        "rate": Shape("rate", args.rate_requests, args.input_len, args.output_len, rate=args.rate),
    }
    chosen = [shapes[s] for s in args.shapes.split(",")]
    if any(s.name == "rate" for s in chosen) or "real" in args.servers:
        _ensure_pandas()
    rows = []
    for server in args.servers.split(","):
        print(f"{server}:", flush=True)
        with serving(server) as url:
            for shape in chosen:
                pairs = measure(url, shape, args.rounds, lambda line: print(line, flush=True))
                rows += summarize(server, shape, pairs)
    print()
    print(
        f"burst N={args.n}; rate {args.rate:g}/s, {args.rate_requests} requests, evenly spaced; "
        f"{args.input_len} tokens in, {args.output_len} out, ignore_eos, temperature 0; "
        f"{args.rounds} alternated rounds after a warm-up each"
    )
    print(
        f"{'srv':<5} {'shape':<5} {'figure':<26} {'ours':>9} {'theirs':>9} {'ratio':>7} "
        f"{'spread':<16} {'bound':>6}  verdict"
    )
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
