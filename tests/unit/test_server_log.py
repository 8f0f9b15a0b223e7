"""Where the server's log is read from: ``--gx10-logs``, else the target's log, else nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_gx10.launch import Target
from pytest_gx10.observe import FileLogSource, LogSourceError
from pytest_gx10.state import server_log


def _no_target() -> Target:
    raise AssertionError("the target is not asked for when --gx10-logs is given")


def test_gx10_logs_wins_and_the_target_is_not_started(tmp_path: Path) -> None:
    """A --gx10-logs path is the source; the target (which may have to start) is left alone."""
    source = server_log(str(tmp_path / "server.log"), _no_target)
    assert isinstance(source, FileLogSource)
    assert Path(source.path) == tmp_path / "server.log"


def test_a_malformed_gx10_logs_names_the_option() -> None:
    """The error says it is --gx10-logs that is wrong, and why."""
    with pytest.raises(LogSourceError, match=r"^--gx10-logs: log source 'ftp://x': unknown scheme 'ftp'"):
        server_log("ftp://x", _no_target)


def test_the_targets_log_file_and_uri(tmp_path: Path) -> None:
    """Without --gx10-logs: the launched target's log URI, else its log file, else no log at all."""
    twin = Target("http://127.0.0.1:1", "twin", "twin", log_path=tmp_path / "twin.log")
    source = server_log(None, lambda: twin)
    assert isinstance(source, FileLogSource)
    assert Path(source.path) == tmp_path / "twin.log"
    attached = Target("http://127.0.0.1:1", "attach", "attached")
    assert server_log(None, lambda: attached) is None
    bad = Target("http://127.0.0.1:1", "launch", "recipe", log_uri="docker://")
    with pytest.raises(LogSourceError, match=r"^log of the launched target: "):
        server_log(None, lambda: bad)
