"""``--gx10-history DIR``: each run appended to a folder as one JSON file, for trends across runs.

An entry holds the run's results document, its software, deployment and client-machine facts, and
the release gate's verdict when a gate ran. Its name starts with the UTC time it was written to the microsecond,
so the folder's listing sorted by name is the runs in time order; a random tail keeps two runs
finishing in the same microsecond apart. It is written to a hidden temporary file first and then
linked under its name, so a reader never sees half an entry and no entry is ever overwritten.
``python -m pytest_gx10 compare --history DIR`` reads the folder (:mod:`pytest_gx10.report.compare`).
This module imports nothing from pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_gx10.report.baseline import run_facts
from pytest_gx10.report.redact import Redactor

__all__ = ["HISTORY_FORMAT", "HISTORY_VERSION", "append_run", "history_entry", "history_files"]

HISTORY_FORMAT = "pytest-gx10-history"
HISTORY_VERSION = 1


def history_entry(document: Mapping[str, Any], gate: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One run as the history keeps it: results document, run facts, the gate's verdict (or None)."""
    return {
        "format": HISTORY_FORMAT,
        "version": HISTORY_VERSION,
        "written_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        **run_facts(document),
        "gate": None if gate is None else dict(gate),
        "results": dict(document),
    }


def _name(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(3)}.json"


def append_run(
    directory: Path,
    document: Mapping[str, Any],
    gate: Mapping[str, Any] | None = None,
    redactor: Redactor | None = None,
) -> Path:
    """Write the run into ``directory`` (created if needed) under a new time-sortable name; its path."""
    entry: dict[str, Any] = history_entry(document, gate)
    if redactor is not None:
        entry = redactor.value(entry)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gx10-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(entry, out, indent=2, default=str)
            out.write("\n")
        while True:
            path = directory / _name(datetime.now(UTC))
            try:
                os.link(tmp, path)  # fails on an existing name: an entry is never replaced
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: the random tail keeps names apart
                os.replace(tmp, path)
            return path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def history_files(directory: Path) -> list[Path]:
    """The folder's entries in time order (by name); hidden and temporary files left out."""
    return sorted(p for p in directory.glob("*.json") if not p.name.startswith(".") and p.is_file())
