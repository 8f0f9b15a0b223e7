"""The embedded twin is a launcher like the others: start, log, relaunch on its URL, stop its group."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pytest_gx10.client import VllmClient
from pytest_gx10.launch import Launcher, TwinLauncher
from pytest_gx10.profiles import load_profile

PROFILE = "smollm2-cpu"


def test_the_twin_starts_logs_relaunches_on_its_url_and_stops(tmp_path: Path) -> None:
    """A killed twin comes back on the same URL with a fresh log; stop leaves no process behind."""
    twin = TwinLauncher(str(load_profile(PROFILE).path), log_dir=tmp_path)
    assert isinstance(twin, Launcher)
    try:
        target = twin.start()
        assert (target.kind, target.url, target.log_path) == ("twin", twin.url, tmp_path / "twin-server.log")
        assert target.description == twin.banner
        assert twin.alive
        with VllmClient(target.url, timeout_s=10) as client:
            assert client.health() == 200
        assert "Uvicorn running" in twin.log_tail() or "startup" in twin.log_tail()
        pid = twin._proc.pid if twin._proc is not None else -1
        os.killpg(pid, signal.SIGKILL)
        again = twin.relaunch()
        assert again.url == target.url
        assert twin._proc is not None
        assert twin._proc.pid != pid
        with VllmClient(again.url, timeout_s=10) as client:
            assert client.health() == 200
    finally:
        twin.stop()
    assert not twin.alive
    assert not Path(f"/proc/{pid}").exists()
