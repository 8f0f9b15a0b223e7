"""A server's /metrics: counters read with prometheus_client's parser, and spec-decode deltas.

The counters are server-wide and cumulative, so a test scrapes before and after its window and uses
the delta (:meth:`SpecCounters.delta`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "MetricsError",
    "SpecCounters",
    "counter",
    "counters",
    "number_or_text",
    "samples",
    "spec_decode_counters",
]


class MetricsError(ValueError):
    """The /metrics text is not Prometheus text."""


def samples(text: str, only: Iterable[str] | None = None) -> Iterator[tuple[str, dict[str, str], float]]:
    """(sample name, labels, value) for every sample; ``_created`` timestamps left out.

    ``only`` names the metrics wanted (with or without ``_total``): the lines of every other family
    are dropped before parsing. vLLM's /metrics is mostly histogram buckets, and parsing them all
    costs a scrape every 0.5 s some 17 ms of the client's interpreter, time its event loop needs.
    """
    if only is not None:
        text = _only(text, only)
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                yield sample.name, dict(sample.labels), float(sample.value)
    except ValueError as exc:
        raise MetricsError(f"/metrics is not Prometheus text: {exc}") from None


def _only(text: str, names: Iterable[str]) -> str:
    """The lines of ``text`` that belong to the metrics ``names`` (their samples, HELP and TYPE)."""
    keep: set[str] = set()
    for name in names:
        base = name.removesuffix("_total")
        keep.update((base, base + "_total"))
    lines = []
    for line in text.splitlines():
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] not in keep:
                continue
        else:
            name = next(iter(line.split("{", 1)[0].split(None, 1)), "")
            if name not in keep:
                continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def _is(sample_name: str, name: str) -> bool:
    base = name.removesuffix("_total")
    return sample_name in (base, base + "_total")


def _model_ok(labels: dict[str, str], model: str | None) -> bool:
    return model is None or labels.get("model_name", model) == model


def counter(text: str, name: str, model: str | None = None) -> float | None:
    """The sum of counter ``name`` (with or without ``_total``) over its label sets; None when absent.

    ``model`` keeps only samples labelled ``model_name=model`` (samples without the label count).
    """
    found = [v for n, labels, v in samples(text, [name]) if _is(n, name) and _model_ok(labels, model)]
    return sum(found) if found else None


def counters(text: str, names: Iterable[str], model: str | None = None) -> dict[str, float | None]:
    """:func:`counter` for several names from one parse of the text (a scrape read many ways)."""
    wanted = list(dict.fromkeys(names))  # a metric that means two things is summed once
    found: dict[str, float | None] = dict.fromkeys(wanted)
    for sample_name, labels, value in samples(text, wanted):
        if not _model_ok(labels, model):
            continue
        for name in wanted:
            if _is(sample_name, name):
                found[name] = (found[name] or 0.0) + value
    return found


@dataclass(frozen=True)
class SpecCounters:
    """The spec-decode counters (cumulative, or a delta over a window)."""

    drafts: float
    draft_tokens: float
    accepted: float
    accepted_per_pos: tuple[float, ...]

    def delta(self, before: SpecCounters) -> SpecCounters:
        """What accrued since ``before``."""
        n = max(len(self.accepted_per_pos), len(before.accepted_per_pos))
        mine = self.accepted_per_pos + (0.0,) * (n - len(self.accepted_per_pos))
        theirs = before.accepted_per_pos + (0.0,) * (n - len(before.accepted_per_pos))
        return SpecCounters(
            drafts=self.drafts - before.drafts,
            draft_tokens=self.draft_tokens - before.draft_tokens,
            accepted=self.accepted - before.accepted,
            accepted_per_pos=tuple(a - b for a, b in zip(mine, theirs, strict=True)),
        )

    @property
    def acceptance_rate(self) -> float | None:
        """accepted / draft_tokens (None when nothing was drafted)."""
        return self.accepted / self.draft_tokens if self.draft_tokens else None

    @property
    def acceptance_length(self) -> float | None:
        """Mean tokens per draft step: 1 + accepted / drafts (None when nothing was drafted)."""
        return 1 + self.accepted / self.drafts if self.drafts else None

    @property
    def per_position(self) -> tuple[float, ...]:
        """Acceptance rate at each draft position: accepted_per_pos[i] / drafts."""
        if not self.drafts:
            return ()
        return tuple(n / self.drafts for n in self.accepted_per_pos)


def spec_decode_counters(
    text: str, model: str | None = None, *, prefix: str = "vllm:spec_decode"
) -> SpecCounters | None:
    """The spec-decode counters summed over label sets; None when the server exposes none.

    A server started without a speculative config has none of these metrics at all. ``prefix`` names
    the engine's family (vLLM's ``vllm:spec_decode``, llama.cpp's ``llamacpp:spec_decode``); the
    counters after it are named alike.
    """
    drafts, draft_tokens, accepted, accepted_per_pos = (
        prefix + suffix
        for suffix in (
            "_num_drafts",
            "_num_draft_tokens",
            "_num_accepted_tokens",
            "_num_accepted_tokens_per_pos",
        )
    )
    totals: dict[str, float] = defaultdict(float)
    per_pos: dict[int, float] = defaultdict(float)
    seen = False
    for name, labels, value in samples(text, (drafts, draft_tokens, accepted, accepted_per_pos)):
        if not _model_ok(labels, model):
            continue
        if _is(name, accepted_per_pos):
            seen = True
            try:
                per_pos[int(labels.get("position", "0"))] += value
            except ValueError:
                continue
            continue
        for metric in (drafts, draft_tokens, accepted):
            if _is(name, metric):
                seen = True
                totals[metric] += value
    if not seen:
        return None
    k = max(per_pos) + 1 if per_pos else 0
    return SpecCounters(
        drafts=totals[drafts],
        draft_tokens=totals[draft_tokens],
        accepted=totals[accepted],
        accepted_per_pos=tuple(per_pos.get(i, 0.0) for i in range(k)),
    )


def number_or_text(text: str) -> Any:
    """``"16"`` -> 16, ``"0.92"`` -> 0.92, anything else as it was written."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
