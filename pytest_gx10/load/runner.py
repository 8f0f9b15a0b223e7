"""Release N streaming requests together and measure each one.

Each request runs in its own thread and waits on a shared barrier; its send time is taken the
moment the barrier lets it go, so the spread of send times (the dispatch skew) says how together
"together" was. A progress callback sees every finished request; nothing here prints.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.client import StreamResult, VllmClient

__all__ = ["LoadProgress", "run_concurrent"]


@dataclass(frozen=True)
class LoadProgress:
    """Where a running point is: for a progress line."""

    concurrency: int
    done: int
    completion_tokens: int
    elapsed_s: float


def run_concurrent(
    client: VllmClient,
    path: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    stall_timeout_s: float | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
    barrier_timeout_s: float = 60.0,
) -> list[StreamResult]:
    """Stream every body at once (one thread each, released by a barrier); results in body order."""
    n = len(bodies)
    barrier = threading.Barrier(n, timeout=barrier_timeout_s)
    results: list[StreamResult | None] = [None] * n
    lock = threading.Lock()
    done = 0
    tokens = 0
    start = time.perf_counter()

    def one(i: int) -> None:
        nonlocal done, tokens
        result = client.stream(path, bodies[i], stall_timeout_s=stall_timeout_s, ready=barrier.wait)
        results[i] = result
        with lock:
            done += 1
            tokens += result.completion_tokens or 0
            snapshot = LoadProgress(n, done, tokens, time.perf_counter() - start)
        if on_progress is not None:
            on_progress(snapshot)

    threads = [threading.Thread(target=one, args=(i,), name=f"gx10-load-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"requests {missing} of {n} never ran (barrier broken?)")
    return [r for r in results if r is not None]
