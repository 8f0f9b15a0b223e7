"""Load: barrier-synchronised concurrent requests and the figures of a concurrency point."""

from __future__ import annotations

from pytest_gx10.load.points import PointFigures, percentile, point_figures
from pytest_gx10.load.runner import LoadProgress, run_concurrent

__all__ = ["LoadProgress", "PointFigures", "percentile", "point_figures", "run_concurrent"]
