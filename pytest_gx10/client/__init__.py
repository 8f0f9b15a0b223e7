"""HTTP client for an OpenAI-compatible server: plain calls and measured streams. No pytest here."""

from __future__ import annotations

from pytest_gx10.client.http import (
    EndpointError,
    RawResponse,
    VllmClient,
    abort_open_streams,
    estimate_work_s,
    open_stream_count,
    open_work_s,
    resume_streams,
    stream_events_seen,
)
from pytest_gx10.client.results import Chunk, Outcome, StreamEnd, StreamResult
from pytest_gx10.client.sse import SseEvent, SseParser

__all__ = [
    "Chunk",
    "EndpointError",
    "Outcome",
    "RawResponse",
    "SseEvent",
    "SseParser",
    "StreamEnd",
    "StreamResult",
    "VllmClient",
    "abort_open_streams",
    "estimate_work_s",
    "open_stream_count",
    "open_work_s",
    "resume_streams",
    "stream_events_seen",
]
