"""``python -m pytest_gx10 fit``: a twin fitted to one run's results.

Reads results files (``--gx10-json``) of the perf suite's burst sweep or open-loop load, replays
each point through the twin's scheduler, fits the calibrated step-time model's constants by least
squares and writes a profile whose twin serves at the fitted speed (docs/twin-calibration.md).
"""

from __future__ import annotations

from pytest_gx10.fit.inputs import FitError, MeasuredPoint, MeasuredRequest, Run, read_run, run_from
from pytest_gx10.fit.model import (
    FIGURES,
    RATE_FIGURES,
    FitOptions,
    FitResult,
    StepFit,
    figures_of,
    fit_runs,
    point_figures,
    rate_figures,
)

__all__ = [
    "FIGURES",
    "RATE_FIGURES",
    "FitError",
    "FitOptions",
    "FitResult",
    "MeasuredPoint",
    "MeasuredRequest",
    "Run",
    "StepFit",
    "figures_of",
    "fit_runs",
    "point_figures",
    "rate_figures",
    "read_run",
    "run_from",
]
