"""``python -m pytest_gx10.fake`` as a process: one URL line, clean exit on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def launch(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_gx10.fake", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_url_serves_and_exits_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    log = tmp_path / "twin.log"
    key = "sk-never-print-me"
    proc = launch(
        "--port",
        "0",
        "--profile",
        "smollm2-cpu",
        "--time-scale",
        "50",
        "--log-file",
        str(log),
        env_extra={"GX10_API_KEY": key},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(
            r"pytest-gx10 twin of SmolLM2-135M-Instruct \(profile smollm2-cpu, time scale 50\) "
            r"at (http://127\.0\.0\.1:(\d+))\n",
            line,
        )
        assert match, line
        url = match.group(1)
        assert int(match.group(2)) > 0
        assert requests.get(url + "/health", timeout=5).status_code == 200
        assert requests.get(url + "/v1/models", timeout=5).status_code == 401
        headers = {"Authorization": f"Bearer {key}"}
        assert requests.get(url + "/v1/models", headers=headers, timeout=5).status_code == 200
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == ""
    assert key not in err
    assert key not in log.read_text()
    assert "Application shutdown complete." in log.read_text()


def test_unknown_profile_is_a_usage_error() -> None:
    proc = launch("--port", "0", "--profile", "no-such-profile")
    _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert "no such profile" in err


def test_exit_with_parent_stops_an_orphaned_twin(tmp_path: Path) -> None:
    """A twin whose starter is killed (SIGKILL, no teardown) stops by itself within a second or two."""
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'pytest_gx10.fake', '--port', '0', '--profile', 'smollm2-cpu',"
        " '--exit-with-parent', '--log-file', sys.argv[1]], stdout=subprocess.PIPE, text=True)\n"
        "print(p.pid, p.stdout.readline().strip(), flush=True)\n"
        "time.sleep(60)\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "twin.log")], stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    twin_pid = int(starter.stdout.readline().split()[0])
    starter.kill()
    starter.wait()
    starter.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{twin_pid}").exists():
        if Path(f"/proc/{twin_pid}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    alive = (
        Path(f"/proc/{twin_pid}").exists() and Path(f"/proc/{twin_pid}/stat").read_text().split()[2] != "Z"
    )
    assert not alive, f"twin {twin_pid} outlived its starter"
