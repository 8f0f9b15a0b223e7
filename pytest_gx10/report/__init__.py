"""Results: the JSON results file (Markdown, HTML extras and baselines build on it)."""

from __future__ import annotations

from pytest_gx10.report.results import SCHEMA_VERSION, ResultsStore

__all__ = ["SCHEMA_VERSION", "ResultsStore"]
