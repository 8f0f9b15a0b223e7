"""Killing a real engine mid-sweep, on an event rather than a clock, and what the run must then show.

The kill waits for the first request the server reports running on its /metrics (the adapter's
``running`` gauge): a fast machine runs a whole sweep in seconds, so a fixed delay would kill nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
import requests

from helpers.realserver import ROOT, RealServer
from pytest_gx10.observe.prometheus import counter

WAIT_FOR_REQUEST_S = 300.0  # pytest's start-up and the prompts sized by the tokenizer, on a slow machine
POLL_S = 0.02


@contextmanager
def kill_when_running(url: str, running_metric: str, kill: Callable[[], None]) -> Iterator[list[datetime]]:
    """While the block runs, call ``kill`` once ``running_metric`` on ``url``/metrics reaches 1.

    Yields the list that receives the kill's time (empty when no request was ever seen running).
    """
    killed_at: list[datetime] = []
    stop = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + WAIT_FOR_REQUEST_S
        with requests.Session() as session:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    text = session.get(url + "/metrics", timeout=5).text
                except requests.RequestException:
                    text = ""
                if (counter(text, running_metric) or 0) >= 1:
                    killed_at.append(datetime.now())
                    kill()
                    return
                time.sleep(POLL_S)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield killed_at
    finally:
        stop.set()
        thread.join()


def sweep_until_killed(
    pytester: pytest.Pytester,
    server: RealServer,
    profile: str | Path,
    running_metric: str,
    kill: Callable[[], None],
    *extra: str,
) -> None:
    """suites/perf against ``server``, killed at its first running request; then the death is checked.

    The server is stopped in any case (it does not come back).
    """
    out = pytester.path / "out.json"
    try:
        with kill_when_running(server.url, running_metric, kill) as killed_at:
            result = pytester.runpytest_subprocess(
                str(ROOT / "suites" / "perf"),
                f"--gx10-endpoint={server.url}",
                f"--gx10-profile={profile}",
                f"--gx10-json={out}",
                "-p",
                "no:cacheprovider",
                "-vv",
                *extra,
            )
    finally:
        server.stop()
    assert_death_seen(result, out, killed_at, server.url)


def assert_death_seen(result: pytest.RunResult, out: Path, killed_at: list[datetime], url: str) -> None:
    """N=1 failed with the verdict, N=2 and N=4 errored with it, and death was seen within 15 s."""
    __tracebackhide__ = True
    tail = result.stdout.str()[-3000:]
    assert killed_at, f"no request was ever seen running on {url}: {tail}"
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, tail
    assert outcomes.get("errors", 0) + outcomes.get("error", 0) == 2, tail
    result.stdout.fnmatch_lines(["FAILED *test_sweep_point?N=1? - engine dead since ??:??:??: *"])
    result.stdout.fnmatch_lines(["ERROR *test_sweep_point?N=2? - Failed: engine dead since ??:??:??: *"])
    engine = json.loads(out.read_text())["engine"]
    assert engine["state"] == "dead"
    seen = datetime.combine(killed_at[0].date(), datetime.strptime(engine["since"], "%H:%M:%S").time())
    delay_s = (seen - killed_at[0].replace(microsecond=0)).total_seconds()
    assert -1 <= delay_s <= 15, f"death seen {delay_s:.0f} s after the kill ({engine})"
