"""Release N streaming requests together and measure each one; or keep sending for a while.

``run_concurrent`` is the burst (the post's N requests at once), ``run_closed_loop`` keeps N
requests in flight (the ``concurrency`` mode), ``run_open_loop`` sends on a schedule whatever the
server does (the ``rate`` mode).

Every call runs its requests on one asyncio event loop in one thread of its own
(:mod:`pytest_gx10.client.aio`): a thread per request would cost a core's worth of switching at a
thousand streams, and would spread a burst's sends over tens of milliseconds. A burst opens every
connection first, then writes the N requests back to back in one pass of the loop, each send time
taken at its write, so the spread of send times (the dispatch skew) is the client's own. Progress
callbacks are called from the loop's thread; nothing here prints.
"""

from __future__ import annotations

import asyncio
import itertools
import resource
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_gx10.client import StreamResult, VllmClient
from pytest_gx10.client.aio import OpenStream, open_stream
from pytest_gx10.client.http import StreamRequest
from pytest_gx10.load.steady import Sent

__all__ = ["LoadProgress", "ensure_open_files", "run_closed_loop", "run_concurrent", "run_open_loop"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class LoadProgress:
    """Where a running point is: for a progress line."""

    concurrency: int
    done: int
    completion_tokens: int
    elapsed_s: float


def ensure_open_files(streams: int) -> None:
    """Make room for ``streams`` connections at once: raise the soft limit of open files toward the
    hard one if needed (a twin in this process holds the other end of each), or fail saying so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * streams + 256  # both ends when the server is in this process, and room for the rest
    if soft != resource.RLIM_INFINITY and soft < want:
        target = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < streams + 64:
        raise RuntimeError(
            f"{streams} streams at once need at least {streams + 64} open files; this process may open "
            f"{soft} (hard limit {hard}): raise it (ulimit -n) or lower the concurrency"
        )


def _on_loop(main: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``main`` on a new event loop in a thread of its own (the caller may be on a loop already)."""
    box: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        async def wrapped() -> _T:
            return await main()

        try:
            box.append(asyncio.run(wrapped()))
        except BaseException as exc:  # handed to the caller, who sees it as if raised here
            failure.append(exc)

    thread = threading.Thread(target=run, name="gx10-load-loop", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box[0]


class _Tally:
    """Finished requests and their tokens, for progress lines (one loop thread: no lock)."""

    def __init__(self, concurrency: int, on_progress: Callable[[LoadProgress], None] | None) -> None:
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.start_ns = time.perf_counter_ns()
        self.done = 0
        self.tokens = 0

    def add(self, result: StreamResult) -> None:
        self.done += 1
        self.tokens += result.completion_tokens or 0
        if self.on_progress is not None:
            elapsed_s = (time.perf_counter_ns() - self.start_ns) / 1e9
            self.on_progress(LoadProgress(self.concurrency, self.done, self.tokens, elapsed_s))


def run_concurrent(
    client: VllmClient,
    path: str,
    bodies: Sequence[Mapping[str, Any]],
    *,
    stall_timeout_s: float | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
) -> list[StreamResult]:
    """Stream every body at once; results in body order.

    Every request is built and its connection opened first; then all are written back to back,
    each send time taken at its write.
    """
    n = len(bodies)
    ensure_open_files(n)
    requests = [client.stream_request(path, body) for body in bodies]  # the model looked up once

    async def burst() -> list[StreamResult]:
        tally = _Tally(n, on_progress)
        opened = await asyncio.gather(
            *(open_stream(client, request, stall_timeout_s=stall_timeout_s) for request in requests)
        )
        tally.start_ns = time.perf_counter_ns()
        for stream in opened:  # one pass, nothing awaited: the writes leave together
            stream.send()

        async def finish(stream: OpenStream) -> StreamResult:
            result = await stream.finished()
            tally.add(result)
            return result

        return list(await asyncio.gather(*(finish(s) for s in opened)))

    return _on_loop(burst)


def run_closed_loop(
    client: VllmClient,
    path: str,
    body_for: Callable[[int, int], Mapping[str, Any]],
    concurrency: int,
    duration_s: float | None,
    *,
    max_requests: int | None = None,
    stall_timeout_s: float | None = None,
    on_progress: Callable[[LoadProgress], None] | None = None,
    on_result: Callable[[int, int, StreamResult], None] | None = None,
) -> tuple[int, list[Sent]]:
    """Keep ``concurrency`` requests in flight for ``duration_s`` (real seconds); (start ns, requests).

    Each of ``concurrency`` slots sends, and as soon as its request ends sends the next
    (``body_for(i, slot)`` builds request i just before it leaves from slot ``slot``, and
    ``on_result(i, slot, result)`` hears how it ended, both in a worker thread: a slot's requests go
    one after another, so a slot can carry a conversation), until the duration is over or
    ``max_requests`` have been sent, whichever comes first (at least one of the two must be given);
    requests in flight then run to their end. Requests come back in send order.
    """
    if duration_s is None and max_requests is None:
        raise ValueError("a closed loop needs a duration, a request count or both")
    if max_requests is not None and max_requests < 1:
        raise ValueError(f"max_requests must be at least 1, got {max_requests}")
    ensure_open_files(concurrency)

    async def closed() -> tuple[int, list[Sent]]:
        tally = _Tally(concurrency, on_progress)
        start = tally.start_ns
        end = None if duration_s is None else start + int(duration_s * 1e9)
        counter = itertools.count()
        claimed = 0
        sent: list[Sent] = []
        loop = asyncio.get_running_loop()

        def build(i: int, slot: int) -> StreamRequest:
            return client.stream_request(path, body_for(i, slot))

        def more() -> bool:
            nonlocal claimed
            if end is not None and time.perf_counter_ns() >= end:
                return False
            if max_requests is not None and claimed >= max_requests:
                return False
            claimed += 1  # one loop thread: claiming and counting need no lock
            return True

        async def slot(index: int, builders: ThreadPoolExecutor) -> None:
            while more():
                # Built in a thread: a body may take network calls (a prompt sized by the server's
                # tokenizer), and the loop must go on reading the streams in flight meanwhile.
                i = next(counter)
                request = await loop.run_in_executor(builders, build, i, index)
                stream = await open_stream(client, request, stall_timeout_s=stall_timeout_s)
                stream.send()
                result = await stream.finished()
                sent.append(Sent(result))
                tally.add(result)
                if on_result is not None:
                    await loop.run_in_executor(builders, on_result, i, index, result)

        with ThreadPoolExecutor(concurrency, thread_name_prefix="gx10-body") as builders:
            await asyncio.gather(*(slot(k, builders) for k in range(concurrency)))
        return start, sorted(sent, key=lambda s: s.result.send_ns)

    return _on_loop(closed)


async def _sleep_until(deadline_ns: int) -> None:
    left_ns = deadline_ns - time.perf_counter_ns()
    if left_ns > 0:
        await asyncio.sleep(left_ns / 1e9)


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
    follow: Callable[[int, StreamResult], Mapping[str, Any] | None] | None = None,
) -> tuple[int, list[Sent]]:
    """Send ``bodies[i]`` at ``offsets_s[i]`` real seconds after the start, whatever the server does.

    Each request's connection is opened ``lead_s`` before its time, then the request is written at
    its time (its send time is taken then). At most ``max_in_flight`` requests run at once: past the
    cap the next arrival waits for one to end and is sent late, which its lag records. Returns the
    start (perf_counter_ns) and every request with its scheduled time, in schedule order.

    ``follow(i, result)``, when given, is asked (in a worker thread) after each request of arrival
    i ends for the body that continues it (a conversation's next turn), None when it is over; a
    follow-up is sent as soon as it is built, holds the arrival's place under the cap, has no
    scheduled time, and comes back after its arrival's earlier requests.
    """
    if len(bodies) != len(offsets_s):
        raise ValueError(f"{len(bodies)} bodies for {len(offsets_s)} arrival times")
    ensure_open_files(max_in_flight)
    requests = [client.stream_request(path, body) for body in bodies]  # built before the clock starts

    async def scheduled() -> tuple[int, list[Sent]]:
        start = time.perf_counter_ns() + int(0.2 * 1e9)  # room to open the first connection before its time
        tally = _Tally(len(bodies), on_progress)
        tally.start_ns = start
        cap = asyncio.Semaphore(max_in_flight)
        sent: list[list[Sent]] = [[] for _ in bodies]
        loop = asyncio.get_running_loop()

        async def one(i: int, due_ns: int, builders: ThreadPoolExecutor) -> None:
            try:
                stream = await open_stream(client, requests[i], stall_timeout_s=stall_timeout_s)
                await _sleep_until(due_ns)
                stream.send()
                result = await stream.finished()
                sent[i].append(Sent(result, scheduled_ns=due_ns))
                tally.add(result)
                while follow is not None:
                    body = await loop.run_in_executor(builders, follow, i, result)
                    if body is None:
                        break
                    request = client.stream_request(path, body)
                    stream = await open_stream(client, request, stall_timeout_s=stall_timeout_s)
                    stream.send()
                    result = await stream.finished()
                    sent[i].append(Sent(result))
                    tally.add(result)
            finally:
                cap.release()

        tasks = []
        with ThreadPoolExecutor(4, thread_name_prefix="gx10-follow") as builders:
            for i, offset in enumerate(offsets_s):
                due = start + int(offset * 1e9)
                await _sleep_until(due - int(lead_s * 1e9))
                await cap.acquire()
                tasks.append(asyncio.create_task(one(i, due, builders), name=f"gx10-arrival-{i}"))
            await asyncio.gather(*tasks)
        missing = [i for i, s in enumerate(sent) if not s]
        if missing:
            raise RuntimeError(f"requests {missing} of {len(bodies)} never ran")
        return start, [s for chain in sent for s in chain]

    return _on_loop(scheduled)
