"""Our throughput measurement against vLLM's own benchmark client, on the same server.

For each server (the real CPU vLLM server started by ``scripts/real-vllm serve``, and the twin of
it at time scale 1), both clients send N concurrent streaming completions of the same input and
output lengths (``ignore_eos``, temperature 0): first ``vllm bench serve`` (custom dataset,
``--max-concurrency N``, all requests at once), then ours (the barrier runner). Both send prompts
sized to exactly the input length by the server's own /tokenize, one set each (same length,
different text, so the second client gets no help from the prefix cache the first one filled).
Prints median TTFT and output tokens/s side by side with their ratio.

Output tokens/s is vLLM's definition here: all output tokens over the whole run's duration (ours:
over ``wall_s``, the longest request). The two runs are sequential, so the machine's noise lands
in the ratio too; run it twice before reading a difference of a few per cent into it.

    python benchmarks/agreement.py [--n 4] [--input-len 500] [--output-len 64] [--servers real,twin]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_gx10.client import VllmClient
from pytest_gx10.fake import FakeServer
from pytest_gx10.load import run_concurrent
from pytest_gx10.servers import VllmServer
from pytest_gx10.workload import sized_prompt

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "real-vllm"
MODEL = "SmolLM2-135M-Instruct"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _paths() -> dict[str, str]:
    out = subprocess.run([str(SCRIPT), "paths"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def prompts(url: str, n: int, input_len: int, who: str) -> list[str]:
    """N prompts of exactly ``input_len`` tokens as the server counts them."""
    client = VllmClient(url, model=MODEL, timeout_s=30)
    try:
        return [
            sized_prompt(
                VllmServer(client).count_tokens,
                input_len,
                seed=f"{who} {i}",
                chat=False,
                header=f"{who} {i}.\n",
            ).text
            for i in range(n)
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


def theirs(url: str, n: int, input_len: int, output_len: int) -> dict[str, float]:
    """``vllm bench serve`` against ``url``; its median TTFT (s) and output tokens/s."""
    _ensure_pandas()
    with tempfile.TemporaryDirectory() as out:
        dataset = Path(out) / "prompts.jsonl"
        dataset.write_text(
            "".join(json.dumps({"prompt": p}) + "\n" for p in prompts(url, n, input_len, "theirs"))
        )
        argv = [
            str(SCRIPT), "vllm", "bench", "serve", "--backend", "vllm", "--base-url", url, "--model", MODEL,
            "--tokenizer", _paths()["model"], "--dataset-name", "custom", "--dataset-path", str(dataset),
            "--skip-chat-template", "--custom-output-len", str(output_len), "--num-prompts", str(n),
            "--max-concurrency", str(n), "--ignore-eos", "--temperature", "0", "--num-warmups", "0",
            "--disable-tqdm", "--save-result", "--result-dir", out, "--result-filename", "r.json",
        ]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0:
            raise SystemExit(f"vllm bench serve failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        result: dict[str, Any] = json.loads((Path(out) / "r.json").read_text())
    return {
        "median_ttft_s": result["median_ttft_ms"] / 1000,
        "output_tps": result["output_throughput"],
        "completed": result["completed"],
    }


def ours(url: str, n: int, input_len: int, output_len: int) -> dict[str, float]:
    """Our barrier runner against ``url``, the same shape of load."""
    bodies = [
        {"prompt": text, "max_tokens": output_len, "ignore_eos": True, "temperature": 0}
        for text in prompts(url, n, input_len, "ours")
    ]
    client = VllmClient(url, model=MODEL, timeout_s=30)
    try:
        results = run_concurrent(client, "/v1/completions", bodies)
    finally:
        client.close()
    ok = [r for r in results if r.ok]
    wall = max(r.duration_s for r in ok)
    return {
        "median_ttft_s": statistics.median(r.ttft_s or 0.0 for r in ok),
        "output_tps": sum(r.completion_tokens or 0 for r in ok) / wall,
        "completed": len(ok),
    }


def _row(server: str, figure: str, mine: float, their: float) -> str:
    return f"{server:<6} {figure:<16} {mine:>10.3f} {their:>10.3f} {mine / their:>7.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--input-len", type=int, default=500)
    parser.add_argument("--output-len", type=int, default=64)
    parser.add_argument("--servers", default="real,twin")
    args = parser.parse_args()
    rows = []
    for server in args.servers.split(","):
        if server == "real":
            port = _free_port()
            # No prefix caching: vllm bench sends its first prompt once as a readiness check before
            # measuring, which would otherwise hand that prompt a cached prefill.
            argv = [str(SCRIPT), "serve", "--port", str(port), "--", "--no-enable-prefix-caching"]
            started = subprocess.run(argv, capture_output=True, text=True)
            if started.returncode != 0:
                raise SystemExit(f"scripts/real-vllm serve failed:\n{started.stderr[-2000:]}")
            url = started.stdout.strip().splitlines()[-1]
            try:
                their = theirs(url, args.n, args.input_len, args.output_len)
                mine = ours(url, args.n, args.input_len, args.output_len)
            finally:
                subprocess.run([str(SCRIPT), "stop", "--port", str(port)], capture_output=True)
        else:
            with FakeServer("smollm2-cpu", time_scale=1.0) as twin:
                their = theirs(twin.url, args.n, args.input_len, args.output_len)
                mine = ours(twin.url, args.n, args.input_len, args.output_len)
        rows.append(_row(server, "median TTFT s", mine["median_ttft_s"], their["median_ttft_s"]))
        rows.append(_row(server, "output tok/s", mine["output_tps"], their["output_tps"]))
    print(f"N={args.n}, {args.input_len} tokens in, {args.output_len} out, ignore_eos, temperature 0")
    print(f"{'server':<6} {'figure':<16} {'ours':>10} {'vllm bench':>10} {'ratio':>7}")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
