"""``python -m pytest_gx10 COMMAND``: the tool's commands outside a pytest run.

``compare`` holds results and baseline files to the first one by the release gate's rules, or shows
a history folder's trends (:mod:`pytest_gx10.report.compare`). Exit codes: 0 nothing regressed, 1 a
regression, 2 unusable input (a usage error, or a file that cannot be read as a run).

``fit`` fits the twin's step-time model to results files of the perf sweep and writes a profile
(:mod:`pytest_gx10.fit`). Exit codes: 0 written, 2 unusable input.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_gx10.config import parse_tolerances
from pytest_gx10.fit.inputs import FitError
from pytest_gx10.profiles import ProfileError, load_profile
from pytest_gx10.report.baseline import DEFAULT_GREEDY_MATCH_MIN, Tolerances, profile_gate
from pytest_gx10.report.compare import (
    CompareError,
    Comparison,
    History,
    compare_files,
    load_history,
    load_run,
)

__all__ = ["main"]

PROG = "python -m pytest_gx10"
USAGE_ERROR = 2


def _tolerance(text: str) -> tuple[tuple[str, float], ...]:
    try:
        return parse_tolerances(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="pytest-gx10 commands outside a pytest run.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    compare = commands.add_parser(
        "compare",
        help="hold results/baseline files to the first by the release gate's rules, or show a history",
        description=(
            "Hold each file to the first (results files from --gx10-json, baselines from "
            "--gx10-save-baseline, history entries, in any mix) with the release gate's rules; or, "
            "with --history, show each gated figure's trend across the runs of a --gx10-history folder. "
            "Exit code 0: nothing regressed; 1: a file regressed; 2: unusable input."
        ),
    )
    compare.set_defaults(command_parser=compare)
    compare.add_argument("files", nargs="*", type=Path, metavar="FILE", help="the reference, then the others")
    compare.add_argument("--history", type=Path, metavar="DIR", help="a folder --gx10-history wrote")
    compare.add_argument("--html", type=Path, metavar="OUT", help="write a standalone HTML page with plots")
    compare.add_argument("--markdown", type=Path, metavar="OUT", help="write the tables in Markdown")
    compare.add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        default=[],
        metavar="NAME=PCT",
        help="tolerance per figure name or id, as --gx10-tolerance: agg_decode_tps=5%%; a bare 15%% sets "
        "the default (10%%); repeatable",
    )
    compare.add_argument(
        "--profile",
        metavar="NAME|PATH",
        help="take tolerances and greedy_match_min from this profile's [baseline] table, as a run with "
        "--gx10-profile does",
    )
    compare.add_argument(
        "--gate-facts",
        action="store_true",
        help="a different model, profile, target kind or time scale is a regression, as --gx10-gate-facts",
    )
    fit = commands.add_parser(
        "fit",
        help="fit a twin to results files of the perf sweep and write it as a profile",
        description=(
            "Fit the twin's calibrated step-time model (decode step by batch size, prefill cost per token "
            "and per token-position, warm-up, cold surcharge, partial prefills) to the sweep points of "
            "results files (--gx10-json), print each fitted figure beside the measured one, and write a "
            "profile whose twin serves at the fitted speed. Exit code 0: written; 2: unusable input."
        ),
    )
    fit.set_defaults(command_parser=fit)
    fit.add_argument(
        "files", nargs="+", type=Path, metavar="RESULTS.json", help="results files, in run order"
    )
    fit.add_argument(
        "-o", "--output", type=Path, required=True, metavar="PROFILE.toml", help="the profile to write"
    )
    fit.add_argument(
        "--like",
        metavar="NAME|PATH",
        help="a profile to take what results do not record from (reasoning parser, GPU claims); default: "
        "the run's own profile when it serves the same model",
    )
    fit.add_argument(
        "--partial-prefills",
        type=int,
        metavar="P",
        help="the twin's max_num_partial_prefills (default: the one whose schedule fits best)",
    )
    fit.add_argument(
        "--prefill-context-s",
        type=float,
        metavar="S",
        help="hold the cost per token-position at S (default: fitted where the prompt tokens computed sit 1.5x apart, else 0)",
    )
    fit.add_argument(
        "--decode-growth",
        choices=("auto", "linear", "log"),
        default="auto",
        help="how the decode step grows past the largest measured batch: a line in N or in log2 N; "
        "auto (default): log for a mixture-of-experts model (by its name), else linear",
    )
    cold = fit.add_mutually_exclusive_group()
    cold.add_argument("--no-cold", action="store_true", help="fit no cold prefill surcharge")
    cold.add_argument(
        "--cold",
        type=_cold_surcharge,
        metavar="FACTOR,TOKENS",
        help="hold the cold prefill surcharge: the first long-prefill token costs 1 + FACTOR times a warm "
        "one, fading to 1 over TOKENS (default: chosen by AICc; the fit's note names the fastest the "
        "points allow when they do not pin it down)",
    )
    fit.add_argument(
        "--time-scale",
        type=float,
        metavar="X",
        help="the fitted twin's time scale (default: the run's, else 1)",
    )
    return parser


def _cold_surcharge(text: str) -> tuple[float, int]:
    """``FACTOR,TOKENS`` of ``--cold``: a factor >= 0 and a whole number of tokens > 0."""
    factor, sep, tokens = text.partition(",")
    try:
        value = (float(factor), int(tokens))
    except ValueError:
        value = (-1.0, 0)
    if not sep or not value[0] >= 0 or value[1] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FACTOR,TOKENS such as 2.35,91307")
    return value


def _fit(args: argparse.Namespace) -> int:
    from pytest_gx10.fit import FitOptions, fit_runs, read_run

    runs = [read_run(path) for path in args.files]
    options = FitOptions(
        partial_prefills=args.partial_prefills,
        prefill_context_s=args.prefill_context_s,
        decode_growth=args.decode_growth,
        cold=not args.no_cold,
        cold_held=args.cold,
        time_scale=args.time_scale,
        like=args.like,
    )
    result = fit_runs(runs, options, name=args.output.stem)
    try:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(result.toml(), encoding="utf-8")
    except OSError as exc:
        raise CompareError(f"{args.output}: cannot write it: {exc.strerror or exc}") from None
    sys.stdout.write(result.text() + f"gx10 fit: profile written to {args.output}\n")
    return 0


def _compare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.history is not None and args.files:
        parser.error("give either files or --history DIR, not both")
    if args.history is None and len(args.files) < 2:
        parser.error("compare needs at least two files (the reference first), or --history DIR")
    tolerances, greedy_min = Tolerances(), DEFAULT_GREEDY_MATCH_MIN
    if args.profile is not None:
        try:
            tolerances, greedy_min = profile_gate(load_profile(args.profile))
        except ProfileError as exc:
            parser.error(str(exc))
    tolerances = tolerances.with_overrides([pair for given in args.tolerance for pair in given])
    view: Comparison | History
    if args.history is not None:
        view = load_history(args.history, tolerances)
        code = 0
    else:
        runs = [load_run(path) for path in args.files]
        comparison = compare_files(runs, tolerances, greedy_min=greedy_min, strict_facts=args.gate_facts)
        view, code = comparison, comparison.exit_code
    written = []  # the files first: a reader that stops reading (| head) loses none of them
    for path, text, what in ((args.markdown, view.markdown, "Markdown"), (args.html, view.html, "HTML")):
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text(), encoding="utf-8")
            except OSError as exc:
                raise CompareError(f"{path}: cannot write it: {exc.strerror or exc}") from None
            written.append(f"gx10 compare: {what} written to {path}\n")
    try:
        sys.stdout.write(view.text() + "".join(written))
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``| head``): the verdict is still the exit code, and Python must not
        # complain again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            return _compare(args, args.command_parser)
        if args.command == "fit":
            return _fit(args)
    except (CompareError, FitError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover - argparse refuses it first
    return USAGE_ERROR  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
