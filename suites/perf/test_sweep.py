"""Throughput: a barrier-synchronised concurrency sweep with exact-token prompts, held to floors.

One test per concurrency point (``--gx10-concurrency=1,2,4`` or the profile's ``perf.concurrency``).
Each point releases N streaming requests together; each prompt has exactly the profile's input
tokens as the server counts them, and, with ``ignore_eos``, every request decodes exactly
``max_tokens``. Figures follow the reference post's definitions (see the README); every point's
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
from pytest_gx10.observe.sentinel import Verdict
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server
from pytest_gx10.workload import SizedPrompt, sized_prompt

from .figures import SWEEP

pytestmark = pytest.mark.gx10_load  # points run one after another, never beside each other


RUN_NONCE = uuid.uuid4().hex[:8]


def _prompts(server: Server, profile: Profile, n: int) -> list[SizedPrompt]:
    perf = profile.perf
    chat = perf.endpoint == "chat"

    def count(text: str) -> int:
        if chat:
            return server.count_tokens(messages=[{"role": "user", "content": text}])
        return server.count_tokens(text)

    # A header of its own per request and per run: prefix caching cannot share prompts beyond the
    # template, neither between the point's requests nor with an earlier run against the same server.
    return [
        sized_prompt(
            count,
            perf.input_tokens,
            seed=f"N={n} request {i}",
            chat=chat,
            header=f"Story {i + 1} of {n}, chapter {n}, edition {RUN_NONCE}.\n\n",
        )
        for i in range(n)
    ]


def _failures(results: list[StreamResult]) -> list[str]:
    return [f"request {i}: {r.describe()}" for i, r in enumerate(results) if not r.ok]


def test_sweep_point(
    gx10_concurrency: int,
    gx10_client: VllmClient,
    gx10_server: Server,
    gx10_profile: Profile,
    gx10_record: Callable[[str, Mapping[str, Any]], None],
    gx10_progress: Callable[[str], None],
    gx10_engine: Callable[[], Verdict],
) -> None:
    """N requests released together: all succeed with exact token counts, and the floors hold."""
    n = gx10_concurrency
    perf = gx10_profile.perf
    prompts = _prompts(gx10_server, gx10_profile, n)
    bodies = [
        {
            **p.body(),
            "max_tokens": perf.max_tokens,
            "temperature": 0,
            **({"ignore_eos": True} if perf.ignore_eos else {}),
        }
        for p in prompts
    ]
    path = "/v1/chat/completions" if perf.endpoint == "chat" else "/v1/completions"

    def progress(p: LoadProgress) -> None:
        gx10_progress(f"N={n}: {p.done}/{n} done, {p.completion_tokens} tokens, {p.elapsed_s:.1f} s")

    results = run_concurrent(gx10_client, path, bodies, on_progress=progress)
    failed = any(not r.ok for r in results)
    figures = point_figures(n, results, engine_dead=failed and not gx10_engine().alive).as_dict()
    gx10_record(SWEEP.name, figures)

    failures = _failures(results)
    assert not failures, f"N={n}: {len(failures)} of {n} requests failed:\n" + "\n".join(failures)
    wrong_prompt = [
        f"request {i}: usage.prompt_tokens {r.prompt_tokens} != {p.tokens} from the tokenizer"
        for i, (r, p) in enumerate(zip(results, prompts, strict=True))
        if r.prompt_tokens != p.tokens
    ]
    assert not wrong_prompt, f"N={n}: prompts not the size the tokenizer said:\n" + "\n".join(wrong_prompt)
    if perf.ignore_eos:
        short = [
            f"request {i}: {r.completion_tokens} completion tokens, finish_reason {r.finish_reason}"
            for i, r in enumerate(results)
            if r.completion_tokens != perf.max_tokens
        ]
        assert not short, (
            f"N={n}: with ignore_eos every request should decode {perf.max_tokens} tokens:\n"
            + "\n".join(short)
        )
    misses = check_limits(SWEEP, figures, perf.floors.get(n, {}))
    assert not misses, "\n".join(misses)
