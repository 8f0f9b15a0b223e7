"""The run's results file: every figure measured, rewritten after each test so nothing is lost.

Tests record figures on their reports (so that under pytest-xdist they reach the controller); the
controller folds each report into a :class:`ResultsStore`, which rewrites the JSON file atomically.
A run that dies mid-sweep leaves a file holding every point measured before it died.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_gx10.figures import declared
from pytest_gx10.report.provenance import merge
from pytest_gx10.report.redact import Redactor

__all__ = ["SCHEMA_VERSION", "ResultsStore"]

SCHEMA_VERSION = 1


class ResultsStore:
    """Figures of one run, keyed by section; optionally mirrored to a JSON file."""

    def __init__(self, path: Path | None = None, *, parent: ResultsStore | None = None) -> None:
        self.path = path
        self.meta: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.sections: dict[str, list[dict[str, Any]]] = {}
        self.redactor: Redactor | None = None  # applied to everything written
        self.parent = parent  # a matrix cell's block is written with the run's document
        self.cells: dict[str, ResultsStore] = {}

    def cell(self, cell_id: str) -> ResultsStore:
        """The block of a matrix cell: a results document of its own, written in the run's ``cells``."""
        if cell_id not in self.cells:
            self.cells[cell_id] = ResultsStore(parent=self)
        return self.cells[cell_id]

    def update_meta(self, meta: Mapping[str, Any]) -> None:
        """Add run facts (target, model, profile, server version, time scale).

        The ``deployment`` block is merged fact by fact, the most direct source winning
        (:func:`pytest_gx10.report.provenance.merge`): each test's record brings the server's facts,
        the image suite the image's, the launch the recipe's, in whatever order they arrive.
        """
        for key, value in meta.items():
            if value is None:
                continue
            if key == "deployment" and isinstance(value, Mapping):
                self.meta[key] = merge(self.meta.get(key) or {}, value)
            else:
                self.meta[key] = value

    def add(self, section: str, entry: Mapping[str, Any]) -> None:
        """Record one entry; an entry with the same key replaces the earlier one (a rerun).

        The key is the section's declared one (:mod:`pytest_gx10.figures`); entries of a section
        nothing declared are kept in the order they came.
        """
        declaration = declared(section)
        key = declaration.key if declaration is not None else None
        rows = self.sections.setdefault(section, [])
        if key is not None and key in entry:
            rows[:] = [r for r in rows if r.get(key) != entry[key]]
        rows.append(dict(entry))
        if key is not None:
            assert declaration is not None
            fields = declaration.sort_by or (key,)
            rows.sort(key=lambda r: [(r.get(f) is None, r.get(f)) for f in fields])
        self.write()

    def document(self) -> dict[str, Any]:
        """The whole results document; sections in their declared order (the same under xdist)."""
        arrival = list(self.sections)

        def place(name: str) -> tuple[int, int]:
            declaration = declared(name)
            return (declaration.order if declaration is not None else 1_000_000, arrival.index(name))

        document = {**self.meta, **{name: self.sections[name] for name in sorted(arrival, key=place)}}
        if self.cells:
            document["cells"] = [cell.document() for cell in self.cells.values()]
        return document

    def write(self) -> None:
        """Rewrite the file atomically (a reader never sees half a document)."""
        if self.parent is not None:
            self.parent.write()
            return
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".gx10-", suffix=".json", dir=self.path.parent)
        with os.fdopen(fd, "w") as out:
            document = self.document()
            json.dump(
                self.redactor.value(document) if self.redactor else document, out, indent=2, default=str
            )
            out.write("\n")
        os.replace(tmp, self.path)
