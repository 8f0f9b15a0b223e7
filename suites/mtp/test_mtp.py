"""Speculative decoding: wired as the profile says, and accepting drafts as well as the floors demand.

Evidence comes from three places: the engine's boot lines (config, "Detected MTP model" per TP rank),
/metrics (spec-decode counters scraped before and after one greedy generation window) and the
periodic SpecDecoding log lines written during that window. One check per test; a failure names the
evidence that is missing or off. A server without speculative decoding fails these tests when the
profile expects it; when the profile expects none, the tests assert there is none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from pytest_gx10.client import StreamResult, VllmClient
from pytest_gx10.observe import (
    EngineConfig,
    LogLine,
    LogSource,
    LogSourceError,
    SpecCounters,
    engine_config,
    is_mtp_detected,
    method_matches,
    spec_decoding,
)
from pytest_gx10.profiles import Profile
from pytest_gx10.servers import Server

from .figures import MTP

# One window for the module; its tests must not share the server with another window.
pytestmark = pytest.mark.gx10_load

Recorder = Callable[[str, Mapping[str, Any]], None]

WINDOW_PROMPT = (
    "Write a long, detailed essay on the history of lighthouses: how they were built, how their "
    "lights and lenses changed over the centuries, and what the life of a lighthouse keeper was like."
)
LOG_INTERVAL_S = 10.0  # vLLM prints its periodic stat lines every 10 s of (the target's) time
POLL_S = 0.25


@dataclass
class Window:
    """One greedy generation window with /metrics scraped around it and the log marked before it."""

    stream: StreamResult
    before: SpecCounters | None
    after: SpecCounters | None
    generation_tokens: float | None  # vllm:generation_tokens_total delta
    logs: LogSource | None
    log_mark: int | None
    log_skip: str | None  # why there is no log source

    @property
    def delta(self) -> SpecCounters | None:
        """The counters' rise over the window (None when the server exposes none)."""
        if self.after is None:
            return None
        if self.before is None:
            return self.after
        return self.after.delta(self.before)


def _expected(profile: Profile) -> str:
    spec = profile.deployment.speculative
    return "no speculative decoding" if spec is None else f"{spec.method} k={spec.num_speculative_tokens}"


@pytest.fixture(scope="module")
def spec_window(
    request: pytest.FixtureRequest, gx10_client: VllmClient, gx10_server: Server, gx10_profile: Profile
) -> Window:
    """Generate ``mtp.window_tokens`` tokens of real text at temperature 0, scraping before and after.

    Needs the engine's spec-decode counters (its adapter's names); skips naming the engine without.
    """
    gx10_server.require("spec_decode_metrics")
    logs: LogSource | None = None
    mark: int | None = None
    skip: str | None = None
    try:
        logs = request.getfixturevalue("gx10_logs")
    except pytest.skip.Exception as exc:
        skip = str(exc.msg)
    if logs is not None:
        try:
            mark = logs.mark()
        except LogSourceError as exc:
            logs, skip = None, str(exc)
    model = gx10_client.served_model()
    before_text = gx10_client.metrics_text()
    stream = gx10_client.chat_stream(
        {
            "messages": [{"role": "user", "content": WINDOW_PROMPT}],
            "max_tokens": gx10_profile.mtp.window_tokens,
            "temperature": 0,
            "ignore_eos": True,  # exactly window_tokens tokens, whatever the model would stop at
        }
    )
    after_text = gx10_client.metrics_text()
    gen_before = gx10_server.telemetry(before_text, model).generated_tokens
    gen_after = gx10_server.telemetry(after_text, model).generated_tokens
    return Window(
        stream=stream,
        before=gx10_server.spec_counters(before_text, model),
        after=gx10_server.spec_counters(after_text, model),
        generation_tokens=None if gen_before is None or gen_after is None else gen_after - gen_before,
        logs=logs,
        log_mark=mark,
        log_skip=skip,
    )


def _window_counters(window: Window, profile: Profile) -> SpecCounters | None:
    """The window's counter delta, failing when the profile and the server disagree about having them.

    None (after asserting there are none) when the profile expects no speculative decoding.
    """
    __tracebackhide__ = True
    assert window.stream.ok, f"the generation window failed: {window.stream.describe()}"
    spec = profile.deployment.speculative
    delta = window.delta
    if spec is None:
        drafts = delta.drafts if delta is not None else 0
        assert drafts == 0, (
            f"the profile ({profile.name}) expects no speculative decoding, but /metrics shows "
            f"{drafts:g} spec-decode drafts over the window"
        )
        return None
    assert delta is not None, (
        f"no spec-decode counters on /metrics: the server runs without speculative decoding "
        f"but the profile expects {_expected(profile)}"
    )
    return delta


def _rates(delta: SpecCounters) -> dict[str, Any]:
    return {
        "acceptance_rate": delta.acceptance_rate,
        "acceptance_length": delta.acceptance_length,
        "per_position": list(delta.per_position),
    }


# --- wiring, from the boot lines ------------------------------------------------------------------


def _boot(logs: LogSource) -> tuple[EngineConfig | None, list[LogLine]]:
    """The last boot's engine config and the lines after it (a log file may hold several boots)."""
    lines = logs.lines()
    last: tuple[int, EngineConfig] | None = None
    for i, line in enumerate(lines):
        config = engine_config(line)
        if config is not None:
            last = (i, config)
    if last is None:
        return None, lines
    return last[1], lines[last[0] + 1 :]


def test_engine_config_shows_speculative_method(
    gx10_logs: LogSource, gx10_server: Server, gx10_profile: Profile
) -> None:
    """The engine config line carries the profile's speculative method and num_spec_tokens."""
    gx10_server.require("engine_config_log")
    config, _ = _boot(gx10_logs)
    assert config is not None, (
        f"no engine config line ('Initializing a V1 LLM engine ... with config:') in {gx10_logs.uri}"
    )
    spec = gx10_profile.deployment.speculative
    if spec is None:
        assert config.speculative_method is None, (
            f"the engine runs speculative_config={config.speculative_config} but the profile "
            f"({gx10_profile.name}) expects no speculative decoding"
        )
        return
    assert method_matches(spec.method, config.speculative_method), (
        f"engine config shows speculative_config={config.speculative_config}, expected method "
        f"{spec.method!r} ({gx10_profile.name})"
    )
    assert config.num_spec_tokens == spec.num_speculative_tokens, (
        f"engine config shows num_spec_tokens={config.num_spec_tokens}, expected "
        f"{spec.num_speculative_tokens} ({config.speculative_config})"
    )


def test_mtp_detected_once_per_tp_rank(
    gx10_logs: LogSource, gx10_server: Server, gx10_profile: Profile
) -> None:
    """With MTP, every TP rank prints "Detected MTP model ..." once; without speculation, none does."""
    gx10_server.require("mtp_log")
    spec = gx10_profile.deployment.speculative
    tp = gx10_profile.deployment.tensor_parallel_size
    _, lines = _boot(gx10_logs)
    found = sum(1 for line in lines if is_mtp_detected(line))
    if spec is None:
        assert found == 0, (
            f"{found} 'Detected MTP model' lines, but the profile expects no speculative decoding"
        )
        return
    if not method_matches("mtp", spec.method):
        pytest.skip(
            f"the profile's speculative method is {spec.method!r}; the MTP line is printed only for MTP"
        )
    assert found == tp, (
        f"'Detected MTP model. Sharing target model embedding weights with the draft model.' appears "
        f"{found} times in {gx10_logs.uri} since the last engine config line, expected {tp} (one per TP rank)"
    )


# --- acceptance, from /metrics over one window -----------------------------------------------------


def test_spec_decode_counters_rise(spec_window: Window, gx10_profile: Profile, gx10_record: Recorder) -> None:
    """Over a greedy generation window the spec-decode counters rise (drafts made, tokens accepted)."""
    delta = _window_counters(spec_window, gx10_profile)
    if delta is None:
        return
    gx10_record(
        MTP.name,
        {
            "name": "window",
            "method": _expected(gx10_profile),
            "window_tokens": gx10_profile.mtp.window_tokens,
            "completion_tokens": spec_window.stream.completion_tokens,
            "generation_tokens": spec_window.generation_tokens,
            "drafts": delta.drafts,
            "draft_tokens": delta.draft_tokens,
            "accepted": delta.accepted,
            "accepted_per_pos": list(delta.accepted_per_pos),
            **_rates(delta),
        },
    )
    assert min(delta.drafts, delta.draft_tokens) > 0, (
        f"spec-decode counters did not rise over a {spec_window.stream.completion_tokens}-token window "
        f"(drafts +{delta.drafts:g}, draft tokens +{delta.draft_tokens:g}); the profile expects {_expected(gx10_profile)}"
    )


def _drafted(delta: SpecCounters, window: Window) -> None:
    __tracebackhide__ = True
    assert min(delta.drafts, delta.draft_tokens) > 0, (
        f"nothing was drafted over a {window.stream.completion_tokens}-token window: no acceptance to measure"
    )


def _drafted_window(window: Window, profile: Profile) -> SpecCounters | None:
    """The window's counters, checked to hold drafts; None when the profile expects no speculation."""
    __tracebackhide__ = True
    delta = _window_counters(window, profile)
    if delta is not None:
        _drafted(delta, window)
    return delta


def test_acceptance_rate_meets_floor(spec_window: Window, gx10_profile: Profile) -> None:
    """accepted / draft tokens over the window is at least ``mtp.acceptance_rate_min``."""
    delta = _drafted_window(spec_window, gx10_profile)
    if delta is None:
        return
    floor = gx10_profile.mtp.acceptance_rate_min
    if floor is None:
        pytest.skip(f"the profile {gx10_profile.name} sets no mtp.acceptance_rate_min")
    rate = delta.acceptance_rate or 0.0  # drafted > 0 was checked above
    assert rate >= floor, (
        f"acceptance rate {rate:.3f} ({delta.accepted:g} accepted / {delta.draft_tokens:g} drafted) "
        f"< floor {floor:.3f}"
    )


def test_acceptance_length_meets_floor(spec_window: Window, gx10_profile: Profile) -> None:
    """Mean acceptance length 1 + accepted / drafts over the window is at least the floor."""
    delta = _drafted_window(spec_window, gx10_profile)
    if delta is None:
        return
    floor = gx10_profile.mtp.acceptance_length_min
    if floor is None:
        pytest.skip(f"the profile {gx10_profile.name} sets no mtp.acceptance_length_min")
    length = delta.acceptance_length or 0.0  # drafts > 0 was checked above
    assert length >= floor, (
        f"mean acceptance length {length:.2f} (1 + {delta.accepted:g} / {delta.drafts:g} drafts) < floor {floor:.2f}"
    )


def test_per_position_rates_meet_floors(spec_window: Window, gx10_profile: Profile) -> None:
    """Each draft position's acceptance rate is at least its floor (``mtp.per_position_min``)."""
    delta = _drafted_window(spec_window, gx10_profile)
    if delta is None:
        return
    floors = gx10_profile.mtp.per_position_min
    if not floors:
        pytest.skip(f"the profile {gx10_profile.name} sets no mtp.per_position_min")
    rates = delta.per_position
    assert len(rates) >= len(floors), (
        f"/metrics gives per-position counts for {len(rates)} positions, the floors name {len(floors)}"
    )
    misses = [
        f"position {i}: {rate:.3f} < floor {floor:.3f}"
        for i, (rate, floor) in enumerate(zip(rates, floors, strict=False))
        if rate < floor
    ]
    assert not misses, "per-position acceptance below floor: " + "; ".join(misses)


def test_per_position_rates_do_not_rise(spec_window: Window, gx10_profile: Profile) -> None:
    """A later draft position never accepts more often than an earlier one."""
    delta = _drafted_window(spec_window, gx10_profile)
    if delta is None:
        return
    rates = delta.per_position
    k = (
        gx10_profile.deployment.speculative.num_speculative_tokens
        if gx10_profile.deployment.speculative
        else 0
    )
    assert len(rates) == k, f"/metrics gives per-position counts for {len(rates)} positions, expected k={k}"
    rises = [
        f"position {i + 1}: {rates[i + 1]:.3f} > position {i}: {rates[i]:.3f}"
        for i in range(len(rates) - 1)
        if rates[i + 1] > rates[i] + 1e-9
    ]
    assert not rises, "per-position acceptance rises with position: " + "; ".join(rises)


# --- the log agrees with /metrics ------------------------------------------------------------------


def _log_totals(logs: LogSource, mark: int) -> tuple[int, int, int]:
    """(lines, accepted, drafted) summed over the SpecDecoding lines written since ``mark``."""
    n = accepted = drafted = 0
    for line in logs.since(mark):
        parsed = spec_decoding(line)
        if parsed is None or parsed.accepted is None or parsed.drafted is None:
            continue
        n, accepted, drafted = n + 1, accepted + parsed.accepted, drafted + parsed.drafted
    return n, accepted, drafted


def test_spec_decoding_log_agrees_with_metrics(
    spec_window: Window, gx10_server: Server, gx10_profile: Profile, gx10_record: Recorder
) -> None:
    """The SpecDecoding lines written during the window tell the same acceptance as /metrics."""
    gx10_server.require("spec_decode_log")
    delta = _window_counters(spec_window, gx10_profile)
    logs, mark = spec_window.logs, spec_window.log_mark
    if logs is None or mark is None:
        pytest.skip(spec_window.log_skip or "no log source")
    if delta is None:
        n, _, drafted = _log_totals(logs, mark)
        assert drafted == 0, (
            f"{n} SpecDecoding lines in {logs.uri}, but the profile expects no speculative decoding"
        )
        return
    _drafted(delta, spec_window)
    tolerance = gx10_profile.mtp.log_tolerance
    # The window's last interval is printed at the next 10 s tick of the target's clock.
    deadline = time.monotonic() + LOG_INTERVAL_S * 1.5 / max(spec_window.stream.time_scale, 1e-9) + 2.0
    n, accepted, drafted = _log_totals(logs, mark)
    while drafted < delta.draft_tokens * (1 - tolerance) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        n, accepted, drafted = _log_totals(logs, mark)
    log_rate = accepted / drafted if drafted else None
    metrics_rate = delta.acceptance_rate
    gx10_record(
        MTP.name,
        {
            "name": "log",
            "log_lines": n,
            "log_accepted": accepted,
            "log_drafted": drafted,
            "log_acceptance_rate": log_rate,
            "metrics_acceptance_rate": metrics_rate,
        },
    )
    assert drafted > 0, (
        f"no SpecDecoding metrics line with Accepted/Drafted counts in {logs.uri} during the window "
        f"(/metrics counted {delta.draft_tokens:g} draft tokens)"
    )
    log_rate = accepted / drafted
    metrics_rate = delta.acceptance_rate or 0.0
    assert abs(log_rate - metrics_rate) <= tolerance * metrics_rate, (
        f"SpecDecoding log acceptance {log_rate:.3f} ({accepted} / {drafted} over {n} lines) differs from "
        f"/metrics {metrics_rate:.3f} ({delta.accepted:g} / {delta.draft_tokens:g}) by more than {tolerance:.0%}"
    )
