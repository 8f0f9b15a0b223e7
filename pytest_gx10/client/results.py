"""What one streamed request measured: a value that travels into reports and baselines."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chunk", "Outcome", "StreamEnd", "StreamResult"]

# perf_counter_ns (stamped on every chunk) to Unix time: comparable across processes, as the send
# times of points measured on different pytest-xdist workers must be.
_UNIX_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


class StreamEnd:
    """How a stream ended. Plain strings so they serialise as themselves."""

    DONE = "done"  # "data: [DONE]" arrived
    CUT = "cut"  # the connection closed without [DONE]
    ERROR = "error"  # an in-band error frame: HTTP 200, then data: {"error": ...}
    HTTP_ERROR = "http_error"  # a non-200 status; the body is the error
    STALL = "stall"  # no byte for the stall timeout
    UNREACHABLE = "unreachable"  # no HTTP response at all (refused, timed out, reset)


class Outcome:
    """What became of a request, one word each: every request is exactly one of these.

    The post's MTP-5 run showed most of them in one sweep: a reply with 0 completion tokens at N=4,
    HTTP 500s and a refused /health after the engine died at N=8.
    """

    OK = "ok"
    HTTP_ERROR = "http_error"  # a non-200 status (see ``status``)
    INBAND_ERROR = "inband_error"  # HTTP 200, then data: {"error": ...}
    ZERO_TOKENS = "zero_tokens"  # HTTP 200 and [DONE], but 0 completion tokens and no text
    CUT = "cut"  # the stream ended without [DONE]
    STALL = "stall"  # no byte for the stall timeout
    ABORT = "abort"  # finish_reason "abort": the engine dropped the request
    UNREACHABLE = "unreachable"  # no HTTP response (refused, timed out, reset)


@dataclass(frozen=True)
class Chunk:
    """One SSE data event that carried choices, as it arrived."""

    t_ns: int
    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    tokens: int | None = None  # tokens it carried, when the server put the usage in every chunk

    @property
    def has_token(self) -> bool:
        """True when the chunk carries generated text (content or reasoning)."""
        return bool(self.content or self.reasoning)


@dataclass
class StreamResult:
    """One streaming completion or chat request, measured.

    Raw times are ``perf_counter_ns`` values in this process. Figures in seconds are in the
    target's time: a twin running ``time_scale`` times faster than real time reports its scale,
    and durations are multiplied by it so they read as the simulated deployment's.
    """

    endpoint: str  # "chat" or "completions"
    url: str
    send_ns: int
    status: int | None = None
    end_ns: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    role_chunk: bool = False  # the first event was {"delta": {"role": "assistant", ...}}
    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None  # the usage's completion_tokens_details, when the server says
    # The usage's prompt_tokens_details: prompt tokens served from the prefix cache (vLLM with
    # --enable-prompt-tokens-details, llama.cpp's server always); None when the server does not say.
    cached_tokens: int | None = None
    usage_chunks: int = 0
    events: int = 0  # data events, [DONE] included
    events_after_done: int = 0
    ended: str = StreamEnd.CUT
    error: Any = None  # the in-band error frame, the HTTP error body, or the transport error text
    time_scale: float = 1.0
    response_id: str | None = None
    # The embedded twin's virtual time (its seconds) of the request's arrival, when it told it (see
    # docs/twin.md): then every chunk's t_ns and end_ns are send_ns plus the twin's virtual times
    # since the arrival, divided by time_scale, so that the figures carry no host scheduling jitter.
    virtual_arrival_s: float | None = None
    # With virtual stamps: the client's own clock at the stream's last byte (end_ns is the twin's),
    # for the request's Unix end time, which places it on the client's timeline.
    wall_end_ns: int | None = None

    # --- figures (DESIGN.md's definitions) ------------------------------------------------------

    @property
    def outcome(self) -> str:
        """The request's :class:`Outcome`."""
        if self.ended == StreamEnd.UNREACHABLE:
            return Outcome.UNREACHABLE
        if self.ended == StreamEnd.HTTP_ERROR or self.status != 200:
            return Outcome.HTTP_ERROR
        if self.ended == StreamEnd.STALL:
            return Outcome.STALL
        if self.ended == StreamEnd.ERROR or (self.ended == StreamEnd.DONE and self.error is not None):
            return Outcome.INBAND_ERROR
        if self.ended != StreamEnd.DONE:
            return Outcome.CUT
        if self.finish_reason == "abort":
            return Outcome.ABORT
        if self.completion_tokens == 0 or (self.completion_tokens is None and not self.text):
            return Outcome.ZERO_TOKENS
        return Outcome.OK

    @property
    def ok(self) -> bool:
        """HTTP 200, [DONE] reached, no error frame, some tokens, not aborted."""
        return self.outcome == Outcome.OK

    @property
    def first_token_ns(self) -> int | None:
        """Arrival time of the first chunk that carries a token."""
        for chunk in self.chunks:
            if chunk.has_token:
                return chunk.t_ns
        return None

    @property
    def ttft_s(self) -> float | None:
        """First chunk that carries a token, minus send time."""
        first = self.first_token_ns
        if first is None:
            return None
        return (first - self.send_ns) / 1e9 * self.time_scale

    @property
    def first_answer_ns(self) -> int | None:
        """Arrival time of the first chunk that carries answer text (content, not reasoning)."""
        for chunk in self.chunks:
            if chunk.content:
                return chunk.t_ns
        return None

    @property
    def ttfat_s(self) -> float | None:
        """Time to the first answer token: the first content chunk minus send time. For a reasoning
        model TTFT is the first thinking token; this is when the answer starts."""
        first = self.first_answer_ns
        if first is None:
            return None
        return (first - self.send_ns) / 1e9 * self.time_scale

    @property
    def duration_s(self) -> float:
        """Send time to the stream's last byte."""
        return (self.end_ns - self.send_ns) / 1e9 * self.time_scale

    @property
    def prefill_tps(self) -> float | None:
        """prompt_tokens / ttft_s."""
        ttft = self.ttft_s
        if not self.prompt_tokens or not ttft:
            return None
        return self.prompt_tokens / ttft

    @property
    def decode_tps(self) -> float | None:
        """completion_tokens / (duration_s - ttft_s); tokens from the usage chunk, never counted."""
        ttft = self.ttft_s
        if ttft is None or not self.completion_tokens:
            return None
        window = self.duration_s - ttft
        return self.completion_tokens / window if window > 0 else None

    @property
    def token_chunks(self) -> int:
        """Chunks that carried a token."""
        return sum(1 for c in self.chunks if c.has_token)

    @property
    def text(self) -> str:
        """Reasoning then content, as generated."""
        return self.reasoning + self.content

    def summary(self) -> dict[str, Any]:
        """The per-request figures, JSON-ready."""
        return {
            "ttft_s": self.ttft_s,
            "duration_s": self.duration_s,
            "prefill_tps": self.prefill_tps,
            "decode_tps": self.decode_tps,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
            "ttfat_s": self.ttfat_s,
            "chunks": self.token_chunks,
            "finish_reason": self.finish_reason,
            "status": self.status,
            "outcome": self.outcome,
            "ended": self.ended,
            "error": None if self.error is None else str(self.error)[:500],
            "sent_unix_s": round((self.send_ns + _UNIX_OFFSET_NS) / 1e9, 6),
            "ended_unix_s": round((self.wall_end + _UNIX_OFFSET_NS) / 1e9, 6) if self.end_ns else None,
        }

    @property
    def wall_end(self) -> int:
        """The stream's end on the client's clock (``end_ns`` unless that is the twin's virtual time)."""
        return self.end_ns if self.wall_end_ns is None else self.wall_end_ns

    def describe(self) -> str:
        """One line saying what the server did, for assertion messages."""
        parts = [f"{self.outcome}: {self.endpoint} stream, HTTP {self.status}", f"ended {self.ended}"]
        if self.finish_reason:
            parts.append(f"finish_reason {self.finish_reason}")
        if self.completion_tokens is not None:
            parts.append(f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens")
        parts.append(f"{self.events} events, {self.usage_chunks} usage chunk(s)")
        if self.error is not None:
            parts.append(f"error {str(self.error)[:200]}")
        return ", ".join(parts)
