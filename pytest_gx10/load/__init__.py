"""Load: requests released together or sustained, from one event loop, and the figures of a point."""

from __future__ import annotations

from pytest_gx10.load.points import PointFigures, PointStatus, percentile, point_figures, point_status
from pytest_gx10.load.runner import LoadProgress, run_concurrent

__all__ = [
    "LoadProgress",
    "PointFigures",
    "PointStatus",
    "percentile",
    "point_figures",
    "point_status",
    "run_concurrent",
]
