"""A twin fitted to some points of a sweep, judged on the points it was not fitted on.

Two halves:

- ``post`` (default): a results file built from the reference post's tables
  (``pytest_gx10/profiles/reference_post.py``) for N = 1, 2, 4 only is fitted with
  ``python -m pytest_gx10 fit``; the fitted twin then runs the post's sweep in the post's order
  (N = 1, 2, 4, 8, 16, the perf suite in a pytest subprocess) and its N = 8 and 16 are printed beside
  the post's. Targets: aggregate decode and wall within 10 %, median TTFT and aggregate prefill within
  25 %.
- ``results RESULTS.json``: a real run's results file; the points ``--fit`` (default 1,2) are fitted,
  the fitted twin runs the run's workload at the points ``--predict`` (default 4,8) after the fitted
  ones, and the predictions are printed beside what the run measured. Targets: 15 % on throughput
  (aggregate prefill and decode) and median TTFT; wall time is printed, not judged.
- ``rates RESULTS.json``: a real run's open-loop load (``--gx10-load-mode=rate``); the rates
  ``--fit`` are fitted, the fitted twin runs all the run's rates (same arrivals, duration, warm-up and
  lengths) and the rates ``--predict`` are judged: 15 % on output throughput and median TTFT.

    python benchmarks/twin_fit.py post [--decode-growth log]
    python benchmarks/twin_fit.py results RUN.json [--fit 1,2] [--predict 4,8]
    python benchmarks/twin_fit.py rates RUN.json --fit 0.36,1.8 --predict 0.9

Where the fitted points do not pin the warm prefill speed down (the fit's note), the twin fitted at
the fastest speed they allow (``fit --cold``) runs the same points too, and each judged figure is
printed with the range the two predictions span: what the fitted points can and cannot say.

Exit code 1 when a figure misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pytest_gx10.fit import FIGURES, RATE_FIGURES, Run, point_figures, rate_figures, read_run
from pytest_gx10.profiles.reference_post import results_document as post_results

TARGETS = {"wall_s": 0.10, "agg_decode_tps": 0.10, "median_ttft_s": 0.25, "agg_prefill_tps": 0.25}
# A server of your own, fitted on some points (the bar for the CPU server).
REAL_TARGETS = {"agg_prefill_tps": 0.15, "agg_decode_tps": 0.15, "median_ttft_s": 0.15}
RATE_TARGETS = {"output_tps": 0.15, "median_ttft_s": 0.15}
ROOT = Path(__file__).resolve().parent.parent


def run_fit(results: Path, profile: Path, extra: list[str], echo: bool = True) -> str:
    """``python -m pytest_gx10 fit``; what it printed (echoed to our stdout)."""
    command = [sys.executable, "-m", "pytest_gx10", "fit", str(results), "-o", str(profile), *extra]
    done = subprocess.run(command, check=True, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if echo:
        sys.stdout.write(done.stdout)
    return done.stdout


def fastest_allowed(fit_text: str) -> str | None:
    """The cold surcharge (``FACTOR,TOKENS``) of the fastest fit the points allow, when the fit's note
    says they do not pin the warm prefill speed down."""
    found = re.search(r"--cold (\S+,\d+) fits the fastest", fit_text)
    return found.group(1) if found else None


def span_table(
    slow: dict[Any, dict[str, float]],
    fast: dict[Any, dict[str, float]],
    measured: dict[Any, dict[str, float]],
    judged: list[Any],
    figures: tuple[str, ...],
) -> None:
    """Each judged figure: the two predictions, the measured one, and whether it lies between them."""
    print(f"{'point':>6} {'figure':<18} {'predicted':<24}{'measured':>10}  inside")
    for n in judged:
        if n not in slow or n not in fast or n not in measured:
            continue
        for name in figures:
            lo, hi = sorted((slow[n][name], fast[n][name]))
            m = measured[n][name]
            inside = "yes" if lo <= m <= hi else "no"
            print(f"{n:>6g} {name:<18} {lo:>10.2f} to {hi:<10.2f}{m:>10.2f}  {inside}")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def run_suite(test_file: str, profile: Path, options: list[str], out: Path) -> Run:
    """One perf-suite file against the fitted twin (a pytest subprocess); the run it wrote to ``out``."""
    command = [
        sys.executable, "-m", "pytest", str(ROOT / "suites" / "perf" / test_file), "-q",
        "-p", "no:cacheprovider", f"--gx10-profile={profile}", f"--gx10-json={out}", "--gx10-no-summary",
        *options,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True)
    if not out.exists():
        sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
        raise SystemExit(f"the fitted twin's {test_file} wrote no results (exit {done.returncode})")
    return read_run(out)


def run_twin(profile: Path, points: list[int], workload: list[str], out: Path) -> dict[int, dict[str, float]]:
    """The perf suite's sweep against the fitted twin; each point's five figures."""
    run = run_suite(
        "test_sweep.py", profile, [f"--gx10-concurrency={','.join(map(str, points))}", *workload], out
    )
    return by_point(run)


def run_twin_rates(
    profile: Path, rates: list[float], load: list[dict[str, Any]], workload: list[str], out: Path
) -> dict[float, dict[str, float]]:
    """The perf suite's open-loop points against the fitted twin, as the run sent them; each rate's figures."""
    first = load[0]
    sends = [r["send_s"] for p in load for r in p["requests"] if p["level"] == first["level"]]
    duration = round(max(sends) + 1 / first["level"])
    options = [
        "--gx10-load-mode=rate",
        f"--gx10-rate={','.join(f'{r:g}' for r in rates)}",
        f"--gx10-arrival={first.get('arrival') or 'poisson'}",
        f"--gx10-duration={duration}",
        f"--gx10-warmup={first.get('warmup_s') or 0:g}",
        *workload,
    ]
    run = run_suite("test_load.py", profile, options, out)
    return {p.rate: rate_figures(p.requests) for p in run.points if p.rate is not None}


def length_options(lengths: list[tuple[int, int]]) -> list[str]:
    """The suite options for the run's most common prompt and output lengths (the prompt the suite
    builds has the asked length, chat template included)."""
    prompts, outputs = [p for p, _ in lengths], [o for _, o in lengths]
    return [
        f"--gx10-input-len={max(set(prompts), key=prompts.count)}",
        f"--gx10-output-len={max(set(outputs), key=outputs.count)}",
    ]


def table(
    predicted: dict[Any, dict[str, float]],
    measured: dict[Any, dict[str, float]],
    judged: list[Any],
    targets: dict[str, float] = TARGETS,
    figures: tuple[str, ...] = FIGURES,
) -> int:
    """Print predicted against measured; the number of misses among the judged points."""
    misses = 0
    print(
        f"{'point':>6} {'figure':<18} {'predicted':>10} {'measured':>10} {'error':>8} {'target':>7}  result"
    )
    for n in sorted(measured):
        if n not in predicted:
            continue
        for name in figures:
            p, m = predicted[n][name], measured[n][name]
            error = p / m - 1
            target = targets.get(name)
            verdict = ""
            if n in judged and target is not None:
                ok = abs(error) <= target
                misses += not ok
                verdict = "PASS" if ok else "MISS"
            elif n not in judged:
                verdict = "(fitted)"
            tol = f"{target:.0%}" if target is not None and n in judged else ""
            print(f"{n:>6g} {name:<18} {p:>10.2f} {m:>10.2f} {error:>+8.1%} {tol:>7}  {verdict}")
    print(f"{misses} miss(es) on the points not fitted ({', '.join(map(str, judged))})")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="half")
    sub.add_parser("post", help="the reference post: fit 1,2,4, predict 8,16")
    real = sub.add_parser("results", help="a run's results file: fit some points, predict others")
    real.add_argument("results", type=Path)
    real.add_argument("--fit", default="1,2")
    real.add_argument("--predict", default="4,8")
    rates = sub.add_parser("rates", help="a run's open-loop load: fit some rates, predict another")
    rates.add_argument("results", type=Path)
    rates.add_argument("--fit", required=True, help="rates to fit on, as the run's levels: 0.36,1.8")
    rates.add_argument("--predict", required=True, help="rates to judge: 0.9")
    for p in (parser, *sub.choices.values()):
        p.add_argument("--decode-growth", choices=("linear", "log"), default=None)
        p.add_argument("--keep", type=Path, help="a folder to keep the fitted profile and results in")
    args = parser.parse_args()
    half = args.half or "post"
    extra = ["--decode-growth", args.decode_growth] if args.decode_growth else []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        fit_input, profile, twin_out = folder / "fit-input.json", folder / "fitted.toml", folder / "twin.json"
        if half == "rates":
            return rates_half(args, folder, extra)
        if half == "post":
            fitted, judged = [1, 2, 4], [8, 16]
            fit_input.write_text(json.dumps(post_results(fitted)), encoding="utf-8")
            everything = read_run_doc(post_results([*fitted, *judged]), folder / "post.json")
            extra = [*extra, "--time-scale", "15"]
            fit_text = run_fit(fit_input, profile, extra)
            workload: list[str] = []
        else:
            fitted = [int(n) for n in args.fit.split(",")]
            judged = [int(n) for n in args.predict.split(",")]
            doc = json.loads(args.results.read_text(encoding="utf-8"))
            doc["sweep"] = [p for p in doc["sweep"] if p.get("concurrency") in fitted]
            fit_input.write_text(json.dumps(doc), encoding="utf-8")
            measured = read_run(args.results)
            everything = by_point(measured)
            fit_text = run_fit(fit_input, profile, extra)
            # The twin runs the points as the run did: the same lengths, each point as often.
            repeats = max(p.take for p in measured.points)
            workload = length_options(
                [(r.prompt_tokens, r.completion_tokens) for p in measured.points for r in p.requests]
            ) + ([f"--gx10-repeat={repeats}"] if repeats > 1 else [])
        print()
        predicted = run_twin(profile, [*fitted, *judged], workload, twin_out)
        print(f"the fitted twin ({profile.name}) against the measured run, fitted on {fitted}:")
        targets = TARGETS if half == "post" else REAL_TARGETS
        misses = table(predicted, everything, judged, targets)
        cold = fastest_allowed(fit_text)
        if cold is not None:
            fast_profile = folder / "fitted-fastest.toml"
            run_fit(fit_input, fast_profile, [*extra, "--cold", cold], echo=False)
            fast = run_twin(fast_profile, [*fitted, *judged], workload, folder / "twin-fastest.json")
            print(
                f"\nthe fastest warm prefill the fitted points allow (fit --cold {cold}; reported, not judged):"
            )
            table({n: fast[n] for n in judged if n in fast}, everything, judged, targets)
            print("\nwhat the fitted points can say of the points not fitted (the two twins' range):")
            span_table(predicted, fast, everything, judged, FIGURES)
        return 1 if misses else 0


def rates_half(args: argparse.Namespace, folder: Path, extra: list[str]) -> int:
    """Fit the run's open-loop points at ``--fit``; the twin runs every rate; ``--predict`` is judged."""
    fitted = [float(r) for r in args.fit.split(",")]
    judged = [float(r) for r in args.predict.split(",")]
    doc = json.loads(args.results.read_text(encoding="utf-8"))
    load = [p for p in doc.get("load") or [] if p.get("mode") == "rate"]
    levels = [p["level"] for p in load]
    missing = [r for r in [*fitted, *judged] if r not in levels]
    if missing:
        raise SystemExit(f"{args.results}: no rate point at {missing} (the run has {levels})")
    fit_input, profile = folder / "fit-input.json", folder / "fitted.toml"
    doc.pop("sweep", None)
    doc["load"] = [p for p in load if p["level"] in fitted]
    fit_input.write_text(json.dumps(doc), encoding="utf-8")
    run_fit(fit_input, profile, [*extra, "--time-scale", "4"])
    measured = {p.rate: rate_figures(p.requests) for p in read_run(args.results).points if p.rate is not None}
    workload = length_options(
        [(r["prompt_tokens"], r["completion_tokens"]) for p in load for r in p["requests"]]
    )
    print()
    predicted = run_twin_rates(profile, levels, load, workload, folder / "twin.json")
    print(f"the fitted twin ({profile.name}) against the measured run's load, fitted on {fitted} /s:")
    return 1 if table(predicted, measured, judged, RATE_TARGETS, RATE_FIGURES) else 0


def read_run_doc(doc: dict[str, Any], path: Path) -> dict[int, dict[str, float]]:
    """Each point's figures of a results document (written to ``path`` to be read as a file is)."""
    path.write_text(json.dumps(doc), encoding="utf-8")
    return by_point(read_run(path))


def by_point(run: Run) -> dict[int, dict[str, float]]:
    """Each burst point's five figures: the medians over its repeats (``--gx10-repeat``), as the suite
    reports a point run more than once."""
    takes: dict[int, list[dict[str, float]]] = {}
    for p in run.points:
        takes.setdefault(p.concurrency, []).append(point_figures(p.requests))
    return {n: {f: statistics.median(t[f] for t in figs) for f in FIGURES} for n, figs in takes.items()}


if __name__ == "__main__":
    sys.exit(main())
