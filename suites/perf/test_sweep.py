"""Throughput: a barrier-synchronised concurrency sweep with exact-token prompts, held to floors.

One test per concurrency point (``--gx10-concurrency=1,2,4`` or the profile's ``perf.concurrency``).
Each point releases N streaming requests together; each prompt has exactly the profile's input
tokens as the server counts them, and, with ``ignore_eos``, every request decodes exactly
``max_tokens``. With ``--gx10-repeat K`` each point does so K times, each repeat with prompts of
its own; the point's figures are then the medians, beside each repeat's and the spread
(:mod:`pytest_gx10.load.repeats`). Figures follow the reference post's definitions (see the README); every point's
figures are recorded before any assertion, so a failing point still lands in ``--gx10-json``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from pytest_gx10.client import StreamResult, VllmClient
from pytest_gx10.load import LoadProgress, point_figures, run_concurrent
from pytest_gx10.load.floors import check_limits
from pytest_gx10.load.points import reasoning_figures
from pytest_gx10.load.repeats import combine_repeats
from pytest_gx10.load.telemetry import combine_telemetry, sample_telemetry, telemetry_figures
from pytest_gx10.load.turns import turn_rows
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.settings import Settings
from pytest_gx10.workload import RequestFacts

from .figures import SWEEP
from .loadpoint import body_form, kv_block_size, workload_figures

pytestmark = pytest.mark.gx10_load  # points run one after another, never beside each other


RUN_NONCE = uuid.uuid4().hex[:8]


def _requests(
    server: Server, settings: Settings, n: int, repeat: int, block_size: int
) -> list[tuple[dict[str, Any], RequestFacts]]:
    """The point's N request bodies and their facts, from the run's workload.

    Filler has a header of its own per request and per run: prefix caching cannot share prompts
    beyond the template, neither between the point's requests nor with an earlier run against the
    same server. A shared prefix is this point's and run's own.
    """
    point = f"N={n}{_take(repeat)}"
    workload = settings.workload_for(point, RUN_NONCE, block_size)
    form = body_form(server, settings, point)
    return [
        workload.body(
            i,
            **form,
        )
        for i in range(n)
    ]


def _conversations(
    server: Server,
    settings: Settings,
    n: int,
    repeat: int,
    block_size: int,
    burst: Callable[[list[tuple[dict[str, Any], RequestFacts]]], tuple[list[StreamResult], dict[str, Any]]],
    progress: Callable[[str], None],
) -> tuple[list[RequestFacts], list[StreamResult], dict[str, Any]]:
    """N conversations, turn by turn: each turn is a burst of every conversation still going.

    The point's figures are the last turn's burst (the deepest history), with ``turns``, a row per
    turn, beside; every turn's requests are returned for the checks.
    """
    point = f"N={n}{_take(repeat)}"
    workload = settings.workload_for(point, RUN_NONCE, block_size)
    form = body_form(server, settings, point)
    chats = [
        workload.conversation(
            c,
            **form,
        )
        for c in range(n)
    ]
    prompts: list[RequestFacts] = []
    results: list[StreamResult] = []
    hit_rates: dict[int, float | None] = {}
    measured: dict[str, Any] = {}
    for turn in range(workload.turns):
        going = [c for c in chats if not c.done]
        if not going:
            break
        progress(f"N={n}: turn {turn + 1}/{workload.turns}")
        planned = [c.next_body() for c in going]
        turn_results, measured = burst(planned)
        for chat, result in zip(going, turn_results, strict=True):
            chat.answer(result.content if result.ok else None, result.completion_tokens)
        hit_rates[turn + 1] = measured.get("prefix_cache_hit_rate")
        prompts.extend(f for _, f in planned)
        results.extend(turn_results)
    measured["turns"] = turn_rows(list(zip(prompts, results, strict=True)), hit_rates)
    return prompts, results, measured


def _take(repeat: int) -> str:
    # Repeats after the first get prompts of their own: the prefix cache must not help them.
    return f", take {repeat + 1}" if repeat else ""


def _failures(results: list[StreamResult], where: str = "") -> list[str]:
    return [f"{where}request {i}: {r.describe()}" for i, r in enumerate(results) if not r.ok]


def test_sweep_point(
    gx10_concurrency: int,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_profile: Profile,
    gx10_settings: Settings,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
    gx10_progress: Callable[[str], None],
    gx10_engine: Callable[[], Verdict],
) -> None:
    """N requests released together (K times with ``--gx10-repeat K``): all succeed with exact token
    counts, and the floors hold for the median of the repeats."""
    n, k = gx10_concurrency, gx10_settings.repeat
    perf = gx10_profile.perf
    path = "/v1/chat/completions" if perf.endpoint == "chat" else "/v1/completions"
    taken: list[tuple[str, list[RequestFacts], list[StreamResult]]] = []
    block_size = kv_block_size(gx10_server, gx10_client.model)
    repeats: list[dict[str, Any]] = []
    for repeat in range(k):
        where = f"repeat {repeat + 1}/{k}: " if k > 1 else ""

        def burst(
            planned: list[tuple[dict[str, Any], RequestFacts]], where: str = where
        ) -> tuple[list[StreamResult], dict[str, Any]]:
            """Release one burst (a barrier) and measure it, the server's telemetry beside."""

            def progress(p: LoadProgress) -> None:
                gx10_progress(
                    f"N={n}: {where}{p.done}/{n} done, {p.completion_tokens} tokens, {p.elapsed_s:.1f} s"
                )

            # What the server saw meanwhile: /metrics scraped from just before the sends to after the ends.
            with sample_telemetry(gx10_server, gx10_client.model) as sampler:
                results = run_concurrent(gx10_client, path, [b for b, _ in planned], on_progress=progress)
            failed = any(not r.ok for r in results)
            measured = point_figures(n, results, engine_dead=failed and not gx10_engine().alive).as_dict()
            measured.update(reasoning_figures([r for r in results if r.ok]))
            completion = sum(r.completion_tokens or 0 for r in results)
            measured.update(telemetry_figures(sampler.series(), client_completion_tokens=completion))
            return results, measured

        if gx10_settings.workload == "multi-turn":
            prompts, results, measured = _conversations(
                gx10_server, gx10_settings, n, repeat, block_size, burst, gx10_progress
            )
        else:
            planned = _requests(gx10_server, gx10_settings, n, repeat, block_size)
            prompts = [facts for _, facts in planned]
            results, measured = burst(planned)
        # The point's own figures are its last burst's: a conversation's last turn, or the whole point.
        last_turn = max((f.turn for f in prompts if f.turn is not None), default=None)
        headline = [f for f in prompts if f.turn == last_turn]
        repeats.append({**measured, **workload_figures(gx10_settings, headline, block_size)})
        taken.append((where, prompts, results))
        if any(not r.ok for r in results):
            break  # the point fails; a failing engine is not loaded again
    gated = [f.name for f in SWEEP.figures if f.gated]
    figures = combine_telemetry(combine_repeats(repeats, gated), repeats)
    gx10_record(SWEEP.name, figures)

    failures = [line for where, _, results in taken for line in _failures(results, where)]
    assert not failures, (
        f"N={n}: {len(failures)} of {sum(len(r) for _, _, r in taken)} requests failed:\n"
        + "\n".join(failures)
    )
    wrong_prompt = [
        f"{where}request {i}: usage.prompt_tokens {r.prompt_tokens} != {p.input_tokens} from the tokenizer"
        for where, prompts, results in taken
        for i, (r, p) in enumerate(zip(results, prompts, strict=True))
        if r.prompt_tokens != p.input_tokens
    ]
    assert not wrong_prompt, f"N={n}: prompts not the size the tokenizer said:\n" + "\n".join(wrong_prompt)
    if perf.ignore_eos:
        short = [
            f"{where}request {i}: {r.completion_tokens} completion tokens, finish_reason {r.finish_reason}"
            for where, facts, results in taken
            for i, r in enumerate(results)
            if r.completion_tokens != facts[i].output_tokens
        ]
        assert not short, (
            f"N={n}: with ignore_eos every request should decode the max_tokens it asked:\n"
            + "\n".join(short)
        )
    misses = check_limits(SWEEP, figures, perf.floors.get(n, {}))
    assert not misses, "\n".join(misses)
