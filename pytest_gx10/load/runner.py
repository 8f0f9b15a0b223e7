"""Release N streaming requests together and measure each one; or keep sending for a while.

``run_closed_loop`` keeps N requests in flight (the ``concurrency`` mode), ``run_open_loop`` sends
on a schedule whatever the server does (the ``rate`` mode).

Each request runs in its own thread and waits on a shared barrier; its send time is taken the
moment the barrier lets it go, so the spread of send times (the dispatch skew) says how together
"together" was. A progress callback sees every finished request; nothing here prints.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gx10.client import StreamResult, VllmClient
from pytest_gx10.load.steady import Sent

__all__ = ["LoadProgress", "run_closed_loop", "run_concurrent", "run_open_loop"]


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


def _sleep_until(deadline_ns: int) -> None:
    while (left := deadline_ns - time.perf_counter_ns()) > 0:
        time.sleep(min(left / 1e9, 0.05))


def run_closed_loop(
    client: VllmClient,
    path: str,
    body_for: Callable[[int], Mapping[str, Any]],
    concurrency: int,
    duration_s: float,
    *,
    stall_timeout_s: float | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
) -> tuple[int, list[Sent]]:
    """Keep ``concurrency`` requests in flight for ``duration_s`` (real seconds); (start ns, requests).

    One thread per slot: each sends, and as soon as its request ends sends the next
    (``body_for(i)`` builds request i just before it leaves), until the duration is over; requests
    in flight then run to their end. Requests come back in send order.
    """
    start = time.perf_counter_ns()
    end = start + int(duration_s * 1e9)
    lock = threading.Lock()
    sent: list[Sent] = []
    counter = itertools.count()
    tokens = 0

    def slot() -> None:
        nonlocal tokens
        while time.perf_counter_ns() < end:
            with lock:
                i = next(counter)
            result = client.stream(path, body_for(i), stall_timeout_s=stall_timeout_s)
            with lock:
                sent.append(Sent(result))
                tokens += result.completion_tokens or 0
                snapshot = LoadProgress(
                    concurrency, len(sent), tokens, (time.perf_counter_ns() - start) / 1e9
                )
            if on_progress is not None:
                on_progress(snapshot)

    threads = [threading.Thread(target=slot, name=f"gx10-slot-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return start, sorted(sent, key=lambda s: s.result.send_ns)


def run_open_loop(
    client: VllmClient,
    path: str,
    bodies: Sequence[Mapping[str, Any]],
    offsets_s: Sequence[float],
    *,
    max_in_flight: int = 256,
    stall_timeout_s: float | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
    lead_s: float = 0.05,
) -> tuple[int, list[Sent]]:
    """Send ``bodies[i]`` at ``offsets_s[i]`` real seconds after the start, whatever the server does.

    A thread per request, started ``lead_s`` early to open its connection, then held until its
    time (its send time is taken then). At most ``max_in_flight`` requests run at once: past the
    cap the next arrival waits for one to end and is sent late, which its lag records. Returns the
    start (perf_counter_ns) and every request with its scheduled time, in schedule order.
    """
    if len(bodies) != len(offsets_s):
        raise ValueError(f"{len(bodies)} bodies for {len(offsets_s)} arrival times")
    start = time.perf_counter_ns() + int(0.2 * 1e9)  # room to start the first thread before its time
    cap = threading.BoundedSemaphore(max_in_flight)
    lock = threading.Lock()
    results: list[Sent | None] = [None] * len(bodies)
    done = tokens = 0

    def one(i: int, due_ns: int) -> None:
        nonlocal done, tokens
        try:
            result = client.stream(
                path, bodies[i], stall_timeout_s=stall_timeout_s, ready=lambda: _sleep_until(due_ns)
            )
        finally:
            cap.release()
        results[i] = Sent(result, scheduled_ns=due_ns)
        with lock:
            done += 1
            tokens += result.completion_tokens or 0
            snapshot = LoadProgress(len(bodies), done, tokens, (time.perf_counter_ns() - start) / 1e9)
        if on_progress is not None:
            on_progress(snapshot)

    threads = []
    for i, offset in enumerate(offsets_s):
        due = start + int(offset * 1e9)
        _sleep_until(due - int(lead_s * 1e9))
        cap.acquire()
        t = threading.Thread(target=one, args=(i, due), name=f"gx10-arrival-{i}", daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    missing = [i for i, r in enumerate(results) if r is None]
    if missing:
        raise RuntimeError(f"requests {missing} of {len(bodies)} never ran")
    return start, [r for r in results if r is not None]
