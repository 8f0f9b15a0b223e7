"""The README never lies: its quick start is two commands, CI runs the second, the first works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from readme import quick_start

ROOT = Path(__file__).resolve().parents[1]


def test_quick_start_is_two_commands() -> None:
    """Main job (the suites against the twin), then our tests."""
    main, tests = quick_start()
    assert main.endswith("pytest suites"), main
    assert tests.endswith("python -m pytest"), tests


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run executes exactly the quick start's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "tests/readme.py test-command" in ci
    assert 'bash -c "$test_command"' in ci


def test_main_job_passes_against_the_twin() -> None:
    """The quick start's main job (already installed here) passes, offline, against the twin."""
    main, _ = quick_start()
    command = main.split("&&", 1)[1].strip()
    assert command.startswith("python -m pytest")
    argv = [sys.executable, *command.split()[1:], "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]
