"""``python -m pytest_gx10.fake``: serve the twin until SIGINT or SIGTERM.

``--fault KIND[:key=value,...]`` (repeatable) injects faults besides the profile's; the syntax and the
kinds are in :mod:`pytest_gx10.fake.faults` and in ``--help``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pytest_gx10.fake.server import FakeServer
from pytest_gx10.profiles import DEFAULT_PROFILE, ProfileError, load_profile
from pytest_gx10.profiles.faults import KINDS, Fault, FaultSpecError, parse_fault

__all__ = ["main"]


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _fault(text: str) -> Fault:
    try:
        return parse_fault(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_FAULT_HELP = """\
faults (--fault KIND[:key=value,...], repeatable; also [[twin.faults]] in a profile, or the
x-gx10-fault request header for one request):
  death           the engine dies: streams get an in-band error frame, other requests HTTP 500,
                  /health 503 for grace_s, then connections are refused (the process stays up)
  zombie          /health stays 200 but the engine makes no progress
  http_500        HTTP 500 instead of the completion (body=json|text|empty)
  error_fraction  http_500 on a fraction p of requests, seeded (p, seed, body)
  zero_tokens     HTTP 200 with no generated token (completion_tokens 0, finish_reason stop)
  abort           finish_reason abort after `tokens` tokens
  cut             the stream ends after `tokens` tokens without [DONE]
  stall           after `tokens` tokens nothing for stall_s, then=continue|abort|cut
  slow_ttft       extra_s more before the first token
triggers: after=K (let K generation requests through first), running=N (death/zombie: N requests in
  the running batch; others: a request arriving with N in the engine), count=C (per-request faults:
  at most C requests), delay_s (death/zombie: simulated seconds from trigger to effect).
Seconds are simulated (the twin's clock). Examples:
  --fault death:running=8,delay_s=20   --fault zero_tokens:after=3,count=1   --fault stall:tokens=16,stall_s=60
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_gx10.fake",
        description="Serve the pytest-gx10 twin of a vLLM deployment (vLLM's OpenAI-compatible API).",
        epilog=_FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port to bind; 0 picks a free one (default 8000)"
    )
    parser.add_argument("--profile", default=DEFAULT_PROFILE, help="bundled profile name or path to a .toml")
    parser.add_argument(
        "--time-scale",
        type=_positive_float,
        default=None,
        help="run this many times faster than real time (default: the profile's)",
    )
    parser.add_argument("--log-file", default=None, help="append the vLLM-style log here (default: stderr)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on /v1/* (default: $GX10_API_KEY)",
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND[:key=value,...]",
        help=f"inject a fault (repeatable); kinds: {', '.join(KINDS)}; see below",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started the twin goes away (no orphan after a killed test run)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the twin; print its URL on one stdout line; return 0 after a clean stop."""
    args = _parser().parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    api_key = args.api_key or os.environ.get("GX10_API_KEY") or None
    server = FakeServer(
        profile,
        host=args.host,
        port=args.port,
        time_scale=args.time_scale,
        log_path=args.log_file,
        api_key=api_key,
        log_stream=None if args.log_file else sys.stderr,
        faults=args.fault,
    )
    # Read before the URL line goes out: a starter killed right after reading it would otherwise
    # already be gone, and the twin would take its new parent (init) for the one to watch.
    parent = os.getppid() if args.exit_with_parent else None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(
        f"pytest-gx10 twin of {profile.deployment.served_model_name} "
        f"(profile {profile.name}, time scale {server.time_scale:g}) at {server.url}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            if not server.running:
                print("error: the twin stopped unexpectedly", file=sys.stderr)
                return 1
            if parent is not None and os.getppid() != parent:
                break  # orphaned: whoever started us was killed without stopping us
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
