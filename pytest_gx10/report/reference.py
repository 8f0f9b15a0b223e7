"""What a run is drawn and compared against: the reference post's figures, a baseline's.

The bundled Qwen3.5-397B profiles reproduce the post (:mod:`pytest_gx10.profiles.reference_post`):
their reports overlay the post's sweep and add change columns against it. A baseline given with
``--gx10-baseline`` comes first. Each comparison is an :class:`~pytest_gx10.figures.Overlay`, a
results-document-shaped mapping every section's presenters read the same way as the run's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_gx10.figures import Overlay
from pytest_gx10.profiles.reference_post import AGGREGATE, MTP5_AGGREGATE

__all__ = ["MTP2_PROFILE", "MTP5_PROFILE", "overlays", "post_mtp2", "post_mtp5"]

MTP2_PROFILE = "qwen3.5-397b-fp8-mtp2-gx10x4"
MTP5_PROFILE = "qwen3.5-397b-fp8-mtp5-gx10x4"


def post_mtp2() -> Overlay:
    """The post's MTP-2 sweep (its aggregate table), every point ok."""
    keys = ("wall_s", "agg_prefill_tps", "agg_decode_tps", "median_ttft_s", "median_decode_tps")
    sweep = [
        {"concurrency": n, **dict(zip(keys, row, strict=True)), "status": "ok"}
        for n, row in AGGREGATE.items()
    ]
    return Overlay("post MTP-2", {"sweep": sweep})


def post_mtp5() -> Overlay:
    """The post's MTP-5 retest: N=1 and 2 ok, N=4 a 0-token reply, N=8 engine dead, N=16 not attempted."""
    sweep: list[dict[str, Any]] = []
    for n, (wall, prefill, decode) in MTP5_AGGREGATE.items():
        status = "ok" if decode is not None else "zero-token"
        sweep.append(
            {
                "concurrency": n,
                "wall_s": wall,
                "agg_prefill_tps": prefill,
                "agg_decode_tps": decode,
                "status": status,
            }
        )
    sweep.append({"concurrency": 8, "status": "engine dead", "why": "HTTP 500"})
    sweep.append({"concurrency": 16, "status": "not attempted"})
    return Overlay("post MTP-5", {"sweep": sweep})


def overlays(document: Mapping[str, Any], baseline: Mapping[str, Any] | None = None) -> list[Overlay]:
    """The comparisons of a run, the first being the one its change columns are against.

    A baseline's results come first when given; then the post's run of the same profile; then, for
    MTP-5, the post's MTP-2 (the post's MTP-5 table compares with it).
    """
    out: list[Overlay] = []
    if baseline:
        out.append(Overlay("baseline", baseline))
    profile = str(document.get("profile") or "")
    if profile == MTP2_PROFILE:
        out.append(post_mtp2())
    elif profile == MTP5_PROFILE:
        out += [post_mtp5(), post_mtp2()]
    return out
