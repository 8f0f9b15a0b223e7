"""Load: barrier-synchronised concurrent requests and the figures of a concurrency point."""

from __future__ import annotations

from pytest_gx10.load.metrics import PointFigures, percentile, point_figures
from pytest_gx10.load.runner import Progress, run_concurrent

__all__ = ["PointFigures", "Progress", "percentile", "point_figures", "run_concurrent"]
