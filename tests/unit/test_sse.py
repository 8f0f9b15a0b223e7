"""The SSE parser: framing by the specification, any split of the bytes parses the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_gx10.client.sse import SseEvent, SseParser

# Data lines may hold any character but the line terminators.
line_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=40)
events = st.lists(st.lists(line_text, min_size=1, max_size=3), min_size=1, max_size=8)
newline = st.sampled_from(["\n", "\r\n", "\r"])


def _encode(payloads: list[list[str]], nl: str) -> bytes:
    out = ""
    for lines in payloads:
        out += "".join(f"data: {line}{nl}" for line in lines) + nl
    return out.encode()


def _parse(chunks: list[bytes]) -> list[str]:
    parser = SseParser()
    got: list[SseEvent] = []
    for i, chunk in enumerate(chunks):
        got += parser.feed(chunk, i)
    assert not parser.close()
    return [e.data for e in got]


@given(events, newline, st.lists(st.integers(min_value=0, max_value=10_000), max_size=30))
def test_any_split_parses_the_same(payloads: list[list[str]], nl: str, cuts: list[int]) -> None:
    """Splitting a valid stream anywhere (inside UTF-8, between CR and LF) changes nothing."""
    data = _encode(payloads, nl)
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    expected = ["\n".join(lines) for lines in payloads]
    assert _parse([data]) == expected
    assert _parse(chunks) == expected


def test_vllm_stream_frames() -> None:
    """vLLM's framing: one data line per chunk, blank line between, [DONE] last."""
    raw = b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n'
    assert _parse([raw]) == ['{"a": 1}', '{"b": 2}', "[DONE]"]


def test_comments_event_names_and_ids() -> None:
    """Comment lines are ignored; event and id fields are kept; no space after the colon is fine."""
    parser = SseParser()
    got = parser.feed(b": keep-alive\nevent: update\nid: 7\ndata:x\n\n", 5)
    assert got == [SseEvent(data="x", event="update", id="7", t_ns=5)]
    assert got[0].comment == "keep-alive"  # kept beside the event (the twin's virtual time rides in one)
    # Only the event's own comment: the next event starts without one.
    assert parser.feed(b"data: y\n\n", 6)[0].comment is None


def test_event_without_data_is_not_dispatched() -> None:
    """A block with no data field dispatches nothing."""
    assert SseParser().feed(b"event: ping\n\n") == []


def test_cut_mid_event_is_reported() -> None:
    """close() says True when the stream stopped inside an event."""
    parser = SseParser()
    assert parser.feed(b'data: {"partial": tr') == []
    assert parser.close() is True


def test_arrival_time_is_the_completing_chunk() -> None:
    """An event is stamped with the time of the chunk that completed it."""
    parser = SseParser()
    assert parser.feed(b"data: he", 1) == []
    assert parser.feed(b"llo\n", 2) == []
    assert parser.feed(b"\n", 3) == [SseEvent(data="hello", t_ns=3)]
