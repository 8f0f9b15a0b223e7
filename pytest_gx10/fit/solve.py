"""Weighted least squares for the step-time constants, by the normal equations (no numpy).

Every measured duration (a request's TTFT, its decode time) is a sum of step times over steps the
replay knows, and a calibrated step (:class:`pytest_gx10.fake.steptime.CalibratedStepTime`) costs

    decode_s(batch) + cold x (prefill_token_s x prefill tokens + prefill_context_s x token-positions)
    [+ warmup_s on the first long prefill step]

``decode_s`` is a table interpolated linearly between batch sizes, so a step's cost is linear in the
table's entries too: for a fixed cold surcharge (factor, tokens) the whole sum is linear in the
unknowns (table entries, prefill_token_s, prefill_context_s, warmup_s). The surcharge is searched on a
grid around that. Residuals are relative (each equation divided by what was measured), so a 5 s TTFT
and a 50 s decode weigh alike; :mod:`pytest_gx10.fit.model` then takes Gauss-Newton steps from there to
logarithmic residuals, each a weighted least squares solved here.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

__all__ = ["interp_weights", "solve_least_squares"]


def interp_weights(batch: int, sizes: Sequence[int]) -> list[float]:
    """Weights on the table's entries giving ``decode_s(batch)``, as CalibratedStepTime.decode_s does."""
    weights = [0.0] * len(sizes)
    batch = max(batch, 1)
    if len(sizes) == 1:
        weights[0] = 1.0
        return weights
    i = bisect.bisect_left(sizes, batch)
    if i < len(sizes) and sizes[i] == batch:
        weights[i] = 1.0
        return weights
    i = min(max(i, 1), len(sizes) - 1)
    n0, n1 = sizes[i - 1], sizes[i]
    t = (batch - n0) / (n1 - n0)
    weights[i - 1], weights[i] = 1.0 - t, t
    return weights


def solve_least_squares(
    rows: Sequence[Sequence[float]], targets: Sequence[float], weights: Sequence[float]
) -> tuple[list[float], float]:
    """The x minimising sum((w (row . x - target))^2), and that sum; columns of zeros get x = 0.

    Columns are scaled to unit norm before the normal equations are solved (Gaussian elimination
    with partial pivoting), which keeps a table entry in seconds and a per-token cost in
    microseconds on one footing.
    """
    if not rows:
        raise ValueError("no equations")
    m = len(rows[0])
    a = [[w * v for v in row] for row, w in zip(rows, weights, strict=True)]
    b = [w * t for t, w in zip(targets, weights, strict=True)]
    norms = [math.sqrt(sum(r[j] ** 2 for r in a)) for j in range(m)]
    live = [j for j in range(m) if norms[j] > 0]
    ata = [[sum(r[i] * r[j] for r in a) / (norms[i] * norms[j]) for j in live] for i in live]
    atb = [sum(r[i] * bi for r, bi in zip(a, b, strict=True)) / norms[i] for i in live]
    k = len(live)
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(ata[r][col]))
        if abs(ata[pivot][col]) < 1e-12:
            raise ValueError("the equations do not determine every constant (a singular system)")
        ata[col], ata[pivot] = ata[pivot], ata[col]
        atb[col], atb[pivot] = atb[pivot], atb[col]
        for r in range(col + 1, k):
            f = ata[r][col] / ata[col][col]
            if f:
                for c in range(col, k):
                    ata[r][c] -= f * ata[col][c]
                atb[r] -= f * atb[col]
    y = [0.0] * k
    for r in range(k - 1, -1, -1):
        y[r] = (atb[r] - sum(ata[r][c] * y[c] for c in range(r + 1, k))) / ata[r][r]
    x = [0.0] * m
    for idx, j in enumerate(live):
        x[j] = y[idx] / norms[j]
    sse = sum(
        (sum(v * xj for v, xj in zip(row, x, strict=True)) - t) ** 2 for row, t in zip(a, b, strict=True)
    )
    return x, sse
