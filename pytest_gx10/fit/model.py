"""Fit a twin's calibrated step-time model to measured sweeps, and write it as a profile.

The unknowns are :class:`pytest_gx10.fake.steptime.CalibratedStepTime`'s constants: the decode step
by batch size (one entry per measured concurrency), the warm prefill cost per token and per
token-position, the one-time warm-up and the cold surcharge on early prefill tokens; and the
scheduler's ``max_num_partial_prefills``, which decides how the first tokens of a burst group. Each
candidate schedule is replayed (:mod:`pytest_gx10.fit.schedule`), the constants solved by least
squares (:mod:`pytest_gx10.fit.solve`), and the schedule and surcharge with the lowest AICc kept.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pytest_gx10.fake.steptime import CalibratedStepTime, StepWork, mean_tokens_per_decode_step
from pytest_gx10.fit.inputs import FitError, MeasuredPoint, MeasuredRequest, Run
from pytest_gx10.fit.schedule import Replay, replay
from pytest_gx10.fit.solve import interp_weights, solve_least_squares
from pytest_gx10.profiles import Profile, ProfileError, load_profile, profile_from_data
from pytest_gx10.tomlfile import dumps

__all__ = [
    "FIGURES",
    "RATE_FIGURES",
    "FitOptions",
    "FitResult",
    "StepFit",
    "figures_of",
    "fit_runs",
    "point_figures",
    "rate_figures",
]

PARTIAL_PREFILL_CANDIDATES = (0, 2, 3, 4, 5, 6, 8)
# Step token budgets tried when the results do not say the deployment's (llama.cpp's server batches
# 2 048 prompt tokens by default and does not say so; vLLM's default is 8 192 on GPUs, 2 048 on CPUs).
BUDGET_CANDIDATES = (8192, 2048, 4096, 1024, 512)
COLD_FACTORS = tuple(0.25 * i for i in range(1, 17))  # 0.25 .. 4
COLD_SPANS = tuple(0.1 * i for i in range(1, 16))  # share of the first run's long-prefill tokens
WARMUP_MIN_PREFILL_TOKENS = 1024  # the reference profile's: a health check's prompt is far shorter
GROWTHS = ("auto", "linear", "log")
# How far apart the mean positions of the prompt tokens requests computed must be to fit a cost per
# token-position: a shared-prefix burst's first request computes 0-1 400, the others 1 024-1 400 (1.7x).
CONTEXT_SPREAD = 1.5
# A mixture-of-experts model by its name: an active-parameter tag (Qwen3-30B-A3B, Qwen3.5-397B-A17B),
# experts x size (Mixtral-8x7B), or the word.
MOE_NAME = re.compile(r"-A\d+(\.\d+)?B\b|\bmoe\b|mixtral|\d+x\d+(\.\d+)?B\b", re.IGNORECASE)
LOG_ITERATIONS = 4  # Gauss-Newton steps from relative to logarithmic residuals
SPLIT_ROUNDS = 2  # rounds of decode table from decode times, prefill constants from TTFTs
TIMED_ITERATIONS = 6  # replays of open-loop points, each with the constants the last one gave
MIN_KNOT_STEPS = 8  # decode steps an open-loop fit needs near a batch size to put it in the table
# The warm prefill speeds the points allow: every fit over the cold-surcharge grid within the 95 %
# profile-likelihood bound of the best (n ln(sse / min sse) <= chi-squared, one degree of freedom), and
# how far apart its ends must be for the fit to say that the points do not pin the speed down.
CHI2_95_1 = 3.841
WIDE_BAND = 1.25
# A burst that lands within this of the request waking an idle engine shares its first step
# (twin.idle_gather_s, written when the data show whole bursts in one step).
GATHER_S = 0.02
# The figures each burst point is judged by (the post's aggregate table), and each open-loop point.
FIGURES = ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps")
RATE_FIGURES = ("output_tps", "median_ttft_s", "p90_ttft_s", "median_tpot_ms")
_DEPLOYMENT_INTS = ("max_model_len", "max_num_seqs", "max_num_batched_tokens", "tensor_parallel_size")
_DEPLOYMENT_CLAIMS = ("gpu", "gpu_memory", "driver", "cuda", "torch", "image", "gpu_count", "nodes")


@dataclass(frozen=True)
class FitOptions:
    """What the fit may choose, and what it is told."""

    partial_prefills: int | None = None  # None: chosen from the data
    prefill_context_s: float | None = None  # fixed; None: fitted where computed tokens' places differ, else 0
    decode_growth: str = "auto"  # how decode_step_s grows past the largest measured batch
    cold: bool = True  # search a cold prefill surcharge
    cold_held: tuple[float, int] | None = None  # hold it at (factor, tokens) instead
    time_scale: float | None = None  # the fitted twin's; None: the run's when it was a twin, else 1
    like: str | None = None  # a profile to take what results do not say from (reasoning parser, GPU)


@dataclass(frozen=True)
class StepFit:
    """The fitted constants, and how well they fit."""

    sizes: tuple[int, ...]
    decode_s: tuple[float, ...]
    prefill_token_s: float
    prefill_context_s: float
    warmup_s: float
    warmup_min_prefill_tokens: int
    cold_prefill_factor: float
    cold_prefill_tokens: int
    partial_prefills: int
    gather: bool  # a burst out of idle shares the first step (twin.idle_gather_s)
    sse: float
    equations: int
    aic: float
    constants: int = 0  # how many were fitted (for the criterion)
    budget: int | None = None  # the step token budget, when the fit chose it (the results did not say)
    band: SpeedBand | None = None  # the warm prefill speeds the points allow (cold surcharge searched)
    notes: tuple[str, ...] = ()

    @property
    def unpinned(self) -> bool:
        """The points do not pin the warm prefill speed down (``band`` is wide)."""
        return self.band is not None and self.band.wide


@dataclass(frozen=True)
class SpeedBand:
    """The warm prefill speeds (tokens per second) of every fit over the cold-surcharge grid that the
    points cannot tell from the best, and the surcharge of the fastest: an engine this slow and one
    still warming up can fit the same points alike."""

    slowest_tps: float
    fastest_tps: float
    fastest_cold: tuple[float, int]  # (cold_prefill_factor, cold_prefill_tokens) of the fastest
    at_edge: bool  # the fastest is at the grid's largest factor or span: faster ones may fit too

    @property
    def wide(self) -> bool:
        return self.fastest_tps >= WIDE_BAND * self.slowest_tps

    def note(self) -> str:
        factor, tokens = self.fastest_cold
        edge = ", the search's edge" if self.at_edge else ""
        return (
            f"these points do not pin the warm prefill speed down: fits from {self.slowest_tps:,.0f} to "
            f"{self.fastest_tps:,.0f} tok/s (a median prompt, warm) match them alike (95 % profile "
            f"likelihood; the fastest with a cold surcharge of {factor:g} fading over {tokens:,} "
            f"tokens{edge}). They cannot tell an engine "
            "this slow from one still warming up, so figures past them (larger bursts, a longer run) "
            "carry that range; points with more prefill tell them apart "
            f"(--cold {factor:g},{tokens} fits the fastest)"
        )


@dataclass(frozen=True)
class FitResult:
    """A fit: the profile it makes, and the fitted figures beside the measured ones."""

    runs: tuple[Run, ...]
    fit: StepFit
    table: tuple[tuple[int, float], ...]  # decode_step_s as written, extended to max_num_seqs
    profile_data: Mapping[str, Any]
    figures: tuple[tuple[str, str, str, float, float], ...]  # (run, point, figure, measured, fitted)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def toml(self, source: str | None = None) -> str:
        """The profile as TOML, the fit's summary in its opening comment (``source``: what it was fitted
        to, by default the results files' paths)."""
        header = [
            "Fitted by python -m pytest_gx10 fit from "
            + (source or ", ".join(str(r.path) for r in self.runs)),
            "(docs/twin-calibration.md). Each figure fitted beside the measured one:",
            *self.figure_lines(),
            *self.all_notes,
        ]
        return dumps(self.profile_data, header="\n".join(header))

    @property
    def all_notes(self) -> list[str]:
        """The fit's notes (what it could not tell), then the runs' (what it left out)."""
        band = [self.fit.band.note()] if self.fit.band is not None and self.fit.unpinned else []
        return [*self.fit.notes, *band, *self.notes]

    def figure_lines(self) -> list[str]:
        """One line per point and figure: measured, fitted, residual."""
        lines = [f"{'run':<14} {'point':>8} {'figure':<18} {'measured':>10} {'fitted':>10} {'resid':>7}"]
        for label, point, name, measured, fitted in self.figures:
            resid = fitted / measured - 1 if measured else math.nan
            lines.append(
                f"{label:<14} {point:>8} {name:<18} {measured:>10.2f} {fitted:>10.2f} {resid:>+7.1%}"
            )
        return lines

    def text(self) -> str:
        """What the command prints: the constants, then each figure fitted beside the measured one."""
        f = self.fit
        lines = [
            f"fitted on {sum(len(r.points) for r in self.runs)} point(s) of {len(self.runs)} file(s), "
            f"{f.equations} equations (each request's TTFT and decode time), rms residual "
            f"{math.sqrt(f.sse / max(f.equations, 1)):.1%}",
            *(
                [f"  max_num_batched_tokens    {f.budget}  (chosen: the results do not say the deployment's)"]
                if f.budget
                else []
            ),
            f"  max_num_partial_prefills  {f.partial_prefills}",
            f"  idle_gather_s             {GATHER_S if f.gather else 0:g}  "
            + (
                "(a burst out of idle shares the first step)"
                if f.gather
                else "(the first request starts alone)"
            ),
            "  decode_step_s             "
            + ", ".join(f"{n}: {s:.5f}" for n, s in self.table)
            + f"  (measured batches {', '.join(map(str, f.sizes))})",
            f"  prefill_token_s           {f.prefill_token_s:.4g}  ({1 / f.prefill_token_s:,.0f} tok/s warm)",
            f"  prefill_context_s         {f.prefill_context_s:.4g}",
            f"  warmup_s                  {f.warmup_s:.3f}  (steps of >= {f.warmup_min_prefill_tokens} prompt tokens)",
            f"  cold_prefill_factor       {f.cold_prefill_factor:g} over {f.cold_prefill_tokens} tokens",
            "",
            *self.figure_lines(),
        ]
        notes = self.all_notes
        if notes:
            lines += ["", *(f"note: {n}" for n in notes)]
        return "\n".join(lines) + "\n"


# --- the equations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Equation:
    run: int
    start: int  # first step of the span
    end: int  # last step of the span (inclusive)
    measured: float
    decode: bool = False  # a decode time (duration minus TTFT), else a TTFT
    offset: float = 0.0  # a known part: the engine's wake-up less the send (open-loop points)
    mid_step: bool = False  # sent while the first step ran: half of it counts (the expected wait)


def _equations(replays: Sequence[Replay], runs: Sequence[Run]) -> list[_Equation]:
    out: list[_Equation] = []
    for r, (rep, run) in enumerate(zip(replays, runs, strict=True)):
        for point, done in zip(run.points, rep.requests, strict=True):
            for measured, req in zip(point.requests, done, strict=True):
                out.append(
                    _Equation(
                        r,
                        req.first_step,
                        req.ttft_step,
                        measured.ttft_s,
                        offset=req.offset_s,
                        mid_step=req.mid_step,
                    )
                )
                if req.last_step > req.ttft_step and measured.duration_s > measured.ttft_s:
                    out.append(
                        _Equation(
                            r, req.ttft_step + 1, req.last_step, measured.duration_s - measured.ttft_s, True
                        )
                    )
    return out


def _prefix_columns(
    steps: Sequence[StepWork], sizes: Sequence[int], factor: float, span: float, min_long: int
) -> list[list[float]]:
    """Running sums over the steps of [table weights..., cold x tokens, cold x token-positions, warm-up]."""
    width = len(sizes) + 3
    sums = [[0.0] * width]
    seen = 0
    warmed = False
    for work in steps:
        row = [*interp_weights(work.decode_seqs, sizes), 0.0, 0.0, 0.0]
        if work.prefill_tokens > 0:
            cold = 1.0
            if work.prefill_tokens >= min_long:
                if span > 0:
                    cold += factor * max(0.0, 1.0 - seen / span)
                seen += work.prefill_tokens
                if not warmed:
                    row[-1] = 1.0
                    warmed = True
            row[-3] = cold * work.prefill_tokens
            row[-2] = cold * work.prefill_context
        last = sums[-1]
        sums.append([a + b for a, b in zip(last, row, strict=True)])
    return sums


def _row(prefix: Sequence[Sequence[float]], eq: _Equation) -> list[float]:
    """The equation's columns: its steps' sums (the first only half for a request sent during it)."""
    hi, lo = prefix[eq.end + 1], prefix[eq.start]
    if not eq.mid_step:
        return [a - b for a, b in zip(hi, lo, strict=True)]
    first = prefix[eq.start + 1]
    return [a - b - 0.5 * (f - b) for a, b, f in zip(hi, lo, first, strict=True)]


@dataclass(frozen=True)
class _Solved:
    x: list[float]  # table entries, prefill_token_s, prefill_context_s, warmup_s
    sse: float
    free: int  # constants fitted
    held: frozenset[int] = frozenset()  # columns held at 0


def _solve(
    equations: Sequence[_Equation],
    prefix: Sequence[Sequence[Sequence[float]]],
    m: int,
    *,
    context_fixed: float | None,
    fit_context: bool,
) -> _Solved:
    rows, measured = [], []
    for eq in equations:
        rows.append(_row(prefix[eq.run], eq))
        measured.append(eq.measured)
    # A fixed cost per token-position is a known part of each duration.
    offsets = [
        (context_fixed or 0.0) * row[m + 1] + eq.offset for row, eq in zip(rows, equations, strict=True)
    ]
    targets = [t - o for t, o in zip(measured, offsets, strict=True)]
    weights = [1.0 / t for t in measured]
    best: _Solved | None = None
    # The constants that must not go negative are tried free, then held at 0 (a small exhaustive NNLS).
    optional = [m + 1] if fit_context and not context_fixed else []
    optional.append(m + 2)
    for mask in range(1 << len(optional)):
        held = {j for b, j in enumerate(optional) if mask >> b & 1}
        if not fit_context or context_fixed:
            held.add(m + 1)
        trial = [[0.0 if j in held else v for j, v in enumerate(row)] for row in rows]
        try:
            x, sse = solve_least_squares(trial, targets, weights)
        except ValueError:
            continue
        if any(v < 0 for v in x[m:]) or any(v <= 0 for v in x[:m]):
            continue
        free = sum(1 for j in range(m + 3) if j not in held and any(r[j] for r in trial))
        if best is None or sse < best.sse:
            best = _Solved(x, sse, free, frozenset(held))
    if best is None:
        raise FitError(
            "no step-time constants fit these points with positive decode steps and prefill cost; "
            "the points are too few or too noisy"
        )
    live = {j for j in range(m + 3) if j not in best.held}
    trial = [[0.0 if j in best.held else v for j, v in enumerate(row)] for row in rows]
    x = _log_refine(trial, measured, offsets, best.x, live, m)
    # Then each kind of duration fits the constants of the steps it is made of: the decode times
    # (nearly all decode steps) the decode table, the TTFTs (nearly all prefill) the prefill constants.
    # Fitted jointly, the TTFTs, which the model fits worse (shapes of the post's N = 2 and 4 the
    # scheduler does not make), bend the table through the decode-step base of each prefill step.
    table, prefill = set(range(m)), live - set(range(m))
    for _ in range(SPLIT_ROUNDS):
        for cols, kind in ((table, True), (prefill, False)):
            use = [i for i, eq in enumerate(equations) if eq.decode is kind]
            if use and cols:
                pick = [trial[i] for i in use]
                x = _log_refine(pick, [measured[i] for i in use], [offsets[i] for i in use], x, cols, m)
    best = _Solved(x, _log_sse(_fitted(trial, offsets, x), measured), best.free, best.held)
    if context_fixed:
        best.x[m + 1] = context_fixed
    return best


def _log_refine(
    rows: Sequence[Sequence[float]],
    measured: Sequence[float],
    offsets: Sequence[float],
    x0: Sequence[float],
    free: set[int],
    m: int,
    iterations: int = LOG_ITERATIONS,
) -> list[float]:
    """Gauss-Newton steps towards the least squares of log(fitted / measured), over columns ``free``.

    Relative errors weigh an over-prediction of a short TTFT more than an under-prediction of a long
    one (1.72 s fitted as 2.6 s is +51 %, 4.19 s fitted as 2.1 s is -50 %, a factor of 2); logarithms
    weigh a factor alike either way, as the figures are judged (by their ratio to the measured ones).
    Linearised at the current fit f0 (``offsets``: a known part of each duration; the columns not in
    ``free`` stay at ``x0``'s values), log f - log m ~ (f - f0 (1 - log(f0 / m))) / f0: a weighted
    least squares again. A step that breaks a sign or does not improve ends it.
    """
    sub = [[v if j in free else 0.0 for j, v in enumerate(row)] for row in rows]
    x = list(x0)
    current = _fitted(rows, offsets, x)
    sse = _log_sse(current, measured)
    for _ in range(iterations):
        if math.isinf(sse):
            break
        fixed = [
            f - sum(v * xj for v, xj in zip(r, x, strict=True)) for f, r in zip(current, sub, strict=True)
        ]
        targets = [f * (1 - math.log(f / t)) - c for f, t, c in zip(current, measured, fixed, strict=True)]
        try:
            step, _ = solve_least_squares(sub, targets, [1 / f for f in current])
        except ValueError:
            break
        trial = [step[j] if j in free else x[j] for j in range(len(x))]
        if any(v < 0 for v in trial[m:]) or any(v <= 0 for v in trial[:m]):
            break
        values = _fitted(rows, offsets, trial)
        new = _log_sse(values, measured)
        if new >= sse:
            break
        x, current, sse = trial, values, new
    return x


def _fitted(rows: Sequence[Sequence[float]], offsets: Sequence[float], x: Sequence[float]) -> list[float]:
    return [sum(v * xj for v, xj in zip(r, x, strict=True)) + o for r, o in zip(rows, offsets, strict=True)]


def _log_sse(values: Sequence[float], measured: Sequence[float]) -> float:
    if any(f <= 0 for f in values):
        return math.inf
    return sum(math.log(f / t) ** 2 for f, t in zip(values, measured, strict=True))


def _aic(sse: float, n: int, k: int) -> float:
    """Akaike's criterion with the small-sample correction (AICc): a run of a few points has about as
    many equations as constants, and plain AIC would let a surcharge's two constants fit its noise
    exactly (six equations, six constants: any residual at all loses). No fit with n <= k + 1."""
    if n - k - 1 <= 0:
        return math.inf
    return n * math.log(max(sse, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def _table_sizes(runs: Sequence[Run], replays: Sequence[Replay]) -> list[int]:
    """The decode table's batch sizes: each burst's N; for open-loop points, powers of two up to the
    largest batch the replay decoded (and that batch), each kept only where enough steps are near it
    to say its cost (a size with a handful of steps would take their noise for its slope)."""
    sizes = {p.concurrency for run in runs for p in run.points if not p.timed}
    if any(p.timed for run in runs for p in run.points):
        batches = [max(w.decode_seqs, 1) for rep in replays for w in rep.steps]
        top = max(batches)
        knots = sorted({*(1 << i for i in range(top.bit_length()) if 1 << i <= top), top})
        support = [0.0] * len(knots)
        for b in batches:
            for j, w in enumerate(interp_weights(b, knots)):
                support[j] += w
        sizes |= {k for k, held in zip(knots, support, strict=True) if k == 1 or held >= MIN_KNOT_STEPS}
    return sorted(sizes)


def _fit_schedule(
    runs: Sequence[Run],
    replays: Sequence[Replay],
    partial: int,
    gather: bool,
    options: FitOptions,
    min_long: int,
) -> StepFit:
    sizes = _table_sizes(runs, replays)
    m = len(sizes)
    equations = _equations(replays, runs)
    # Where the computed tokens sit: from what the prefix cache served to the prompt's end. A cost per
    # token-position is told from a flat one only where those places differ enough between requests.
    reach = [(r.prompt_tokens + (r.cached_tokens or 0)) / 2 for r in _requests(runs)]
    fit_context = options.prefill_context_s is None and max(reach) >= CONTEXT_SPREAD * min(reach)
    notes: list[str] = []
    if options.prefill_context_s is None and not fit_context:
        notes.append(
            f"the prompt tokens computed sit at places differing by less than {CONTEXT_SPREAD:g}x (mean "
            "position): a cost per token-position cannot be told from a flat one, prefill_context_s = 0 "
            "(pass --prefill-context-s from a long-prompt run to split it)"
        )
    first_long = sum(w.prefill_tokens for w in replays[0].steps if w.prefill_tokens >= min_long)
    grid: list[tuple[float, float]] = [(0.0, 0.0)]
    if options.cold_held is not None:
        grid = [(float(options.cold_held[0]), float(options.cold_held[1]))]
    elif options.cold and first_long:
        grid += [(f, s * first_long) for f in COLD_FACTORS for s in COLD_SPANS]
    best: tuple[float, float, float, _Solved] | None = None
    failed: FitError | None = None
    # Each fit's (sse, warm seconds per prompt token at the median request's place, factor, span).
    tried: list[tuple[float, float, float, float]] = []
    place = statistics.median(reach)
    surcharge = 0 if options.cold_held is not None else 2  # its constants, when fitted

    def consider(factor: float, span: float) -> None:
        nonlocal best, failed
        prefix = [_prefix_columns(rep.steps, sizes, factor, span, min_long) for rep in replays]
        try:
            solved = _solve(
                equations, prefix, m, context_fixed=options.prefill_context_s, fit_context=fit_context
            )
        except FitError as exc:  # e.g. a surcharge on a fixed context cost exceeding what was measured
            failed = exc
            return
        aic = _aic(solved.sse, len(equations), solved.free + (surcharge if factor else 0))
        tried.append((solved.sse, solved.x[m] + solved.x[m + 1] * place, factor, span))
        if best is None or aic < best[0]:
            best = (aic, factor, span, solved)

    for factor, span in grid:
        consider(factor, span)
    if options.cold_held is None and best is not None and best[1]:
        # A finer grid around the coarse grid's best surcharge: fifths of its steps, five either side.
        _, f0, s0, _ = best
        df, ds = COLD_FACTORS[0] / 5, COLD_SPANS[0] * first_long / 5
        for i in range(-5, 6):
            for j in range(-5, 6):
                if (i or j) and f0 + i * df > 0 and s0 + j * ds > 0:
                    consider(f0 + i * df, s0 + j * ds)
    if best is None:
        assert failed is not None
        raise failed
    aic, factor, span, solved = best
    x = solved.x
    band = None
    if len(tried) > 1:
        band = _band(tried, len(equations), (COLD_FACTORS[-1], COLD_SPANS[-1] * first_long))
    return StepFit(
        sizes=tuple(sizes),
        decode_s=tuple(x[:m]),
        prefill_token_s=x[m],
        prefill_context_s=x[m + 1],
        warmup_s=x[m + 2],
        warmup_min_prefill_tokens=min_long,
        cold_prefill_factor=round(factor, 3),
        cold_prefill_tokens=round(span),
        partial_prefills=partial,
        gather=gather,
        sse=solved.sse,
        equations=len(equations),
        aic=aic,
        constants=solved.free + (surcharge if factor else 0),
        band=band,
        notes=tuple(notes),
    )


def _band(tried: Sequence[tuple[float, float, float, float]], n: int, edge: tuple[float, float]) -> SpeedBand:
    """The warm prefill speeds of the fits the points cannot tell from the best one."""
    least = min(sse for sse, *_ in tried)
    near = [t for t in tried if n * math.log(max(t[0], 1e-300) / max(least, 1e-300)) <= CHI2_95_1]
    slow = max(near, key=lambda t: t[1])
    fast = min(near, key=lambda t: t[1])
    _, cost, factor, span = fast
    return SpeedBand(
        slowest_tps=1 / max(slow[1], 1e-12),
        fastest_tps=1 / max(cost, 1e-12),
        fastest_cold=(round(factor, 3), round(span)),
        at_edge=factor >= edge[0] - 1e-9 or span >= edge[1] - 1e-6,
    )


# --- predictions ------------------------------------------------------------------------------------


def rate_figures(requests: Sequence[MeasuredRequest]) -> dict[str, float]:
    """An open-loop point's figures from its requests: output tokens per second from the first send
    to the last answer, and the median and p90 TTFT and median time per output token after the first."""
    ttfts = sorted(r.ttft_s for r in requests)
    span = max(r.send_s + r.duration_s for r in requests) - min(r.send_s for r in requests)
    tpots = [
        (r.duration_s - r.ttft_s) / (r.completion_tokens - 1) for r in requests if r.completion_tokens > 1
    ]
    return {
        "output_tps": sum(r.completion_tokens for r in requests) / max(span, 1e-9),
        "median_ttft_s": statistics.median(ttfts),
        "p90_ttft_s": ttfts[min(len(ttfts) - 1, math.ceil(0.9 * len(ttfts)) - 1)],
        "median_tpot_ms": 1000 * statistics.median(tpots) if tpots else math.nan,
    }


def figures_of(point: MeasuredPoint, requests: Sequence[MeasuredRequest]) -> dict[str, float]:
    """A point's figures (:data:`FIGURES` for a burst, :data:`RATE_FIGURES` for an open-loop point)."""
    return rate_figures(requests) if point.timed else point_figures(requests)


def point_figures(requests: Sequence[MeasuredRequest]) -> dict[str, float]:
    """The post's five figures of a point from its requests (pytest_gx10.load.points' definitions)."""
    ttfts = [r.ttft_s for r in requests]
    wall = max(r.duration_s for r in requests)
    return {
        "wall_s": wall,
        "agg_prefill_tps": sum(r.prompt_tokens for r in requests) / max(ttfts),
        "agg_decode_tps": sum(r.completion_tokens for r in requests) / max(wall - min(ttfts), 1e-9),
        "median_ttft_s": statistics.median(ttfts),
        "median_decode_tps": statistics.median(r.decode_tps for r in requests),
    }


def _step_model(fit: StepFit) -> CalibratedStepTime:
    """The twin's step-time model with the fitted constants, fresh (not warmed up)."""
    return CalibratedStepTime(
        decode_step_s=list(zip(fit.sizes, fit.decode_s, strict=True)),
        prefill_token_s=fit.prefill_token_s,
        prefill_context_s=fit.prefill_context_s,
        warmup_s=fit.warmup_s,
        warmup_min_prefill_tokens=fit.warmup_min_prefill_tokens,
        cold_prefill_factor=fit.cold_prefill_factor,
        cold_prefill_tokens=fit.cold_prefill_tokens,
    )


def _step_seconds(fit: StepFit, steps: Sequence[StepWork]) -> list[float]:
    """Each step's seconds under the fitted model."""
    model = _step_model(fit)
    return [model.step_s(w) for w in steps]


def _fitted_points(fit: StepFit, run: Run, rep: Replay) -> list[tuple[MeasuredPoint, list[MeasuredRequest]]]:
    seconds = _step_seconds(fit, rep.steps)
    clock = [0.0]
    for s in seconds:
        clock.append(clock[-1] + s)
    out = []
    for point, done in zip(run.points, rep.requests, strict=True):
        fitted = []
        for measured, req in zip(point.requests, done, strict=True):
            if rep.timed and req.ttft_s is not None and req.duration_s is not None:
                # Replayed on the fitted constants' own clock: what the twin does, arrivals and all.
                fitted.append(replace(measured, ttft_s=req.ttft_s, duration_s=req.duration_s))
                continue
            t0 = clock[req.first_step] - req.offset_s  # the send, on the busy period's clock
            fitted.append(
                replace(
                    measured, ttft_s=clock[req.ttft_step + 1] - t0, duration_s=clock[req.last_step + 1] - t0
                )
            )
        out.append((point, fitted))
    return out


def extended_table(fit: StepFit, max_num_seqs: int, growth: str) -> tuple[tuple[int, float], ...]:
    """The fitted decode steps, continued to ``max_num_seqs`` by a least-squares line in N or log2 N.

    The twin's model would carry on the line through the last two entries; a line through all of them
    is steadier. ``log``: a step that grows ever more slowly with the batch, as a memory-bound MoE
    step does once most experts are read anyway.
    """
    table = list(zip(fit.sizes, fit.decode_s, strict=True))
    if len(table) < 2:
        return tuple(table)
    xs = [math.log2(n) if growth == "log" else float(n) for n, _ in table]
    ys = [s for _, s in table]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = max(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx, 0.0) if sxx else 0.0
    n = table[-1][0]
    while n < max_num_seqs:
        n = min(2 * n, max_num_seqs)
        x = math.log2(n) if growth == "log" else float(n)
        table.append((n, round(max(my + slope * (x - mx), table[-1][1]), 6)))
    return tuple(table)


# --- the profile ------------------------------------------------------------------------------------


def _base_profile(runs: Sequence[Run], like: str | None) -> Profile | None:
    name = like or runs[0].profile
    if name is None:
        return None
    try:
        base = load_profile(name)
    except ProfileError as exc:
        if like is not None:
            raise FitError(str(exc)) from None
        return None
    model = runs[0].facts.get("model")
    if like is None and model is not None and base.deployment.served_model_name != model:
        return None
    return base


def _deployment(run: Run, base: Profile | None) -> dict[str, Any]:
    facts = run.facts
    dep: dict[str, Any] = {}
    if base is not None:
        dep = {k: v for k, v in (base.raw.get("deployment") or {}).items() if k not in ("speculative",)}
    if isinstance(facts.get("model"), str):
        dep["served_model_name"] = facts["model"]
    for key in _DEPLOYMENT_INTS:
        if isinstance(facts.get(key), int) and not isinstance(facts.get(key), bool):
            dep[key] = facts[key]
    slots = facts.get("parallel_slots")
    if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0:
        # llama.cpp's server runs at most its slots at once, whatever a profile said of sequences.
        dep["max_num_seqs"] = slots
    for key in ("kv_cache_dtype", *_DEPLOYMENT_CLAIMS):
        if isinstance(facts.get(key), str | int) and not isinstance(facts.get(key), bool):
            dep[key] = facts[key]
    version = facts.get("server_version")
    if isinstance(version, str) and version:
        dep["server_version"] = re.escape(version)
    for key in ("served_model_name", "max_model_len"):
        if key not in dep:
            raise FitError(
                f"{run.path}: the results do not say the deployment's {key}; pass --like PROFILE "
                "to take it from a profile"
            )
    if run.acceptance_per_position is not None and run.speculative_tokens:
        method = run.speculative_method
        if method is None and base is not None and base.deployment.speculative is not None:
            method = base.deployment.speculative.method
        dep["speculative"] = {
            "method": method or "mtp",
            "num_speculative_tokens": run.speculative_tokens,
            "acceptance_per_position": [round(r, 4) for r in run.acceptance_per_position],
        }
    if run.cached_said:  # its twin's answers say it too (vLLM: --enable-prompt-tokens-details)
        dep["enable_prompt_tokens_details"] = True
    if run.reasoning and not dep.get("reasoning_parser"):
        dep["reasoning_parser"] = "qwen3"  # the one the twin speaks
    return dep


def _twin(run: Run, base: Profile | None, partial: int, gather: bool) -> dict[str, Any]:
    twin: dict[str, Any] = {}
    if base is not None:
        raw = base.raw.get("twin") or {}
        twin = {k: raw[k] for k in ("version", "reasoning_tokens", "needle_horizon_tokens") if k in raw}
    version = run.facts.get("server_version")
    if isinstance(version, str) and version:
        twin["version"] = version
    block, blocks = run.facts.get("block_size"), run.facts.get("num_gpu_blocks")
    if isinstance(block, int) and block > 0:
        twin["block_size"] = block
        if isinstance(blocks, int) and blocks > 0:
            twin["kv_cache_tokens"] = block * blocks
    elif base is not None and "kv_cache_tokens" in (base.raw.get("twin") or {}):
        twin["kv_cache_tokens"] = base.raw["twin"]["kv_cache_tokens"]
    twin["max_num_partial_prefills"] = partial
    twin["idle_gather_s"] = GATHER_S if gather else 0.0
    return twin


def _data(
    run: Run, base: Profile | None, partial: int, gather: bool, name: str, budget: int | None = None
) -> dict[str, Any]:
    deployment = _deployment(run, base)
    if budget is not None:
        deployment["max_num_batched_tokens"] = budget
    return {
        "profile": {"name": name, "description": f"fitted to {run.path.name}"},
        "deployment": deployment,
        "twin": {**_twin(run, base, partial, gather), "decode_step_s": [[1, 0.05]]},
    }


def _shared_prefixes(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The run's shared-prefix workload, for the twin's own perf runs: what its prefix cache served
    depends on it (a filler run shares nothing, so the default workload needs no saying)."""
    shared = workload.get("shared")
    if workload.get("kind") != "shared-prefix" or not isinstance(shared, Mapping):
        return {}
    groups, tokens = shared.get("groups"), shared.get("prefix_tokens")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (groups, tokens)):
        return {}
    return {"workload": "shared-prefix", "shared_groups": groups, "shared_prefix_tokens": tokens}


def _requests(runs: Sequence[Run]) -> list[MeasuredRequest]:
    """Every request of every point of the runs."""
    return [r for run in runs for p in run.points for r in p.requests]


def _first_guess(runs: Sequence[Run]) -> CalibratedStepTime:
    """Rough constants to replay open-loop points with first: each request's own prefill and decode pace."""
    requests = _requests(runs)
    prefill = statistics.median(r.ttft_s / r.prompt_tokens for r in requests)
    decode = statistics.median((r.duration_s - r.ttft_s) / max(r.completion_tokens - 1, 1) for r in requests)
    return CalibratedStepTime(decode_step_s=[(1, max(decode, 1e-4))], prefill_token_s=max(prefill, 1e-7))


def _replay_sse(fit: StepFit, runs: Sequence[Run], replays: Sequence[Replay]) -> float:
    """The log residuals of the fit on a schedule replayed with its own constants (a self-consistent error)."""
    x = [*fit.decode_s, fit.prefill_token_s, fit.prefill_context_s, fit.warmup_s]
    prefixes = [
        _prefix_columns(
            rep.steps,
            fit.sizes,
            fit.cold_prefill_factor,
            fit.cold_prefill_tokens,
            fit.warmup_min_prefill_tokens,
        )
        for rep in replays
    ]
    equations = _equations(replays, runs)
    rows = [_row(prefixes[eq.run], eq) for eq in equations]
    values = _fitted(rows, [eq.offset for eq in equations], x)
    return _log_sse(values, [eq.measured for eq in equations])


def _fit_candidate(
    runs: Sequence[Run],
    sim: Profile,
    partial: int,
    gather: bool,
    split: bool,
    options: FitOptions,
    min_long: int,
) -> tuple[StepFit, list[Replay]]:
    """The best constants for one schedule setting, and the replays they were fitted on.

    Bursts alone are replayed once. Open-loop points are replayed with the last constants, and fitted
    again, until the schedule holds still; the fit kept is the one whose own replay fits best.
    """
    if not any(p.timed for run in runs for p in run.points):
        replays = [replay(sim, run.points, reasoning=run.reasoning, split=split) for run in runs]
        return _fit_schedule(runs, replays, partial, gather, options, min_long), replays
    guess = _first_guess(runs)
    # The schedule settles without the cold surcharge's grid (hundreds of solves per replay); the
    # surcharge is searched once on the settled schedule, and kept if its own replay earns it.
    plain = dataclasses.replace(options, cold=False)
    fit: StepFit | None = None
    best: tuple[float, StepFit, list[Replay]] | None = None
    seen: list[tuple[StepWork, ...]] | None = None
    for i in range(TIMED_ITERATIONS + 1):
        replays = [
            replay(
                sim,
                run.points,
                reasoning=run.reasoning,
                split=split,
                model=guess if fit is None else _step_model(fit),
            )
            for run in runs
        ]
        if fit is not None:
            sse = _replay_sse(fit, runs, replays)
            if best is None or sse < best[0]:
                best = (sse, fit, replays)
        steps = [rep.steps for rep in replays]
        if i == TIMED_ITERATIONS or steps == seen:
            break
        seen = steps
        try:
            fit = _fit_schedule(runs, replays, partial, gather, plain, min_long)
        except FitError:
            if best is None:
                raise
            break  # this schedule admits no constants: keep the best fit so far
    assert best is not None
    sse, fit, replays = best
    fit = dataclasses.replace(fit, sse=sse)
    if options.cold:
        cold = _fit_schedule(runs, replays, partial, gather, options, min_long)
        if cold.cold_prefill_factor:
            again = [
                replay(sim, run.points, reasoning=run.reasoning, split=split, model=_step_model(cold))
                for run in runs
            ]
            cold = dataclasses.replace(cold, sse=_replay_sse(cold, runs, again))
            n = cold.equations
            if options.cold_held is not None or _aic(cold.sse, n, cold.constants) < _aic(
                fit.sse, n, fit.constants
            ):
                return cold, again
        fit = dataclasses.replace(fit, band=cold.band)
    return fit, replays


def fit_runs(runs: Sequence[Run], options: FitOptions | None = None, *, name: str = "fitted") -> FitResult:
    """Fit the step-time model to the runs' sweeps; raises :class:`FitError` on unusable input."""
    options = options or FitOptions()
    if not runs:
        raise FitError("no results files given")
    if options.decode_growth not in GROWTHS:
        raise FitError(f"decode growth {options.decode_growth!r}: expected one of {', '.join(GROWTHS)}")
    base = _base_profile(runs, options.like)
    requests = _requests(runs)
    prompts = [r.prompt_tokens for r in requests]
    # A warm-up is paid by a step that computes a whole prompt: what the prefix cache served is not.
    computed = [r.prompt_tokens - (r.cached_tokens or 0) for r in requests]
    min_long = max(1, min(WARMUP_MIN_PREFILL_TOKENS, min(computed)))
    partials = (
        (options.partial_prefills,) if options.partial_prefills is not None else PARTIAL_PREFILL_CANDIDATES
    )
    # How a burst leaves idle: with plain chunking, all of it in the first step (gathered) or only the
    # first TTFT group, the rest landing during that step (split); with partial prefills, the first
    # request alone (the engine takes one out of idle) or all of it sharing the budget (gathered).
    # The step budget decides how a burst's prompts share steps; a run that does not say it (a server
    # that does not tell, no profile) has it chosen with the rest of the schedule.
    said = _deployment(runs[0], base).get("max_num_batched_tokens")
    budgets: tuple[int | None, ...] = (None,) if isinstance(said, int) else BUDGET_CANDIDATES
    candidates = [
        (budget, p, gather, not gather and p == 0)
        for budget in budgets
        for p in partials
        for gather in ((True, False) if p == 0 else (False, True))
    ]
    best: tuple[StepFit, list[Replay], Profile] | None = None
    failed: FitError | None = None
    for budget, partial, gather, split in candidates:
        try:
            data = _data(runs[0], base, partial, gather, name, budget)
            sim = profile_from_data(f"{runs[0].path} (fit)", data)
        except ProfileError as exc:
            raise FitError(f"{runs[0].path}: its facts do not make a profile: {exc}") from None
        try:
            fitted, replays = _fit_candidate(runs, sim, partial, gather, split, options, min_long)
        except FitError as exc:  # no constants for this schedule; another may have them
            failed = exc
            continue
        fitted = dataclasses.replace(fitted, budget=budget)
        # A schedule must earn its place: ties (within 1 % of the error) keep the plainer one.
        if best is None or fitted.sse < best[0].sse * 0.99:
            best = (fitted, replays, sim)
    if best is None:
        assert failed is not None
        raise failed
    fit, replays, sim = best
    growth = options.decode_growth
    if growth == "auto":
        growth = "log" if MOE_NAME.search(sim.deployment.served_model_name) else "linear"
    table = extended_table(fit, sim.deployment.max_num_seqs, growth)
    rates = sim.deployment.speculative.acceptance_per_position if sim.deployment.speculative else ()
    data = _data(runs[0], base, fit.partial_prefills, fit.gather, name, fit.budget)
    time_scale = options.time_scale
    if time_scale is None:
        time_scale = runs[0].time_scale if runs[0].facts.get("twin") else 1.0
    data["twin"].update(
        {
            "time_scale": time_scale,
            "prefill_tps": round(1.0 / fit.prefill_token_s, 1),
            "decode_tps": round(mean_tokens_per_decode_step(rates) / table[0][1], 2),
            "decode_step_s": [[n, round(s, 6)] for n, s in table],
            "prefill_token_s": float(f"{fit.prefill_token_s:.4g}"),
            "prefill_context_s": float(f"{fit.prefill_context_s:.4g}"),
            "warmup_s": round(fit.warmup_s, 4),
            "warmup_min_prefill_tokens": fit.warmup_min_prefill_tokens,
            "cold_prefill_factor": fit.cold_prefill_factor,
            "cold_prefill_tokens": fit.cold_prefill_tokens,
        }
    )
    bursts = sorted({p.concurrency for run in runs for p in run.points if not p.timed})
    data["perf"] = {
        "concurrency": bursts or list(fit.sizes),
        "input_tokens": round(statistics.median(prompts)),
        "max_tokens": round(statistics.median(r.completion_tokens for r in requests)),
        **_shared_prefixes(runs[0].workload),
    }
    figures = []
    for run, rep in zip(runs, replays, strict=True):
        for point, predicted in _fitted_points(fit, run, rep):
            measured_f, fitted_f = figures_of(point, point.requests), figures_of(point, predicted)
            figures += [(run.path.name[:14], point.label, f, measured_f[f], fitted_f[f]) for f in measured_f]
    notes = [f"{run.path}: {why}" for run in runs for why in run.skipped]
    if len(fit.sizes) < 2:
        notes.append("one batch size measured: the decode step does not grow with the batch")
    elif table[-1][0] > fit.sizes[-1]:
        notes.append(
            f"decode_step_s past batch {fit.sizes[-1]} is extrapolated ({growth} in the batch size"
            + (
                ", the prior for a mixture of experts"
                if options.decode_growth == "auto" and growth == "log"
                else ""
            )
            + "), not measured"
        )
    return FitResult(tuple(runs), fit, table, data, tuple(figures), tuple(notes))
