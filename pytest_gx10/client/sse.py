"""An incremental Server-Sent Events parser that keeps the arrival time of every event.

vLLM frames each streamed chunk as ``data: {json}`` followed by a blank line, and ends with
``data: [DONE]``. The parser follows the SSE specification (lines end in LF, CRLF or CR; ``data``
lines of one event are joined with LF; comment lines start with a colon) so that framing quirks of
proxies in front of a server do not change what we measure. Bytes may arrive split anywhere,
including inside a UTF-8 sequence or between CR and LF.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["SseEvent", "SseParser"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event: its data, its type and when its last byte arrived.

    ``comment``: the last comment line inside the event (its text after the colon and one space),
    which the specification has clients ignore; the twin says its virtual time in one when asked.
    """

    data: str
    event: str = "message"
    id: str | None = None
    t_ns: int = 0
    comment: str | None = field(default=None, compare=False)


class SseParser:
    """Feed bytes as they arrive; get whole events back.

    ``feed(chunk, t_ns)`` returns the events completed by ``chunk``, each stamped with ``t_ns``
    (the time the chunk arrived). ``close()`` reports whether the stream ended mid-event.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._comment: str | None = None
        self._has_field = False

    def feed(self, chunk: bytes, t_ns: int = 0) -> list[SseEvent]:
        """Parse ``chunk``; return the events it completed, stamped with ``t_ns``."""
        text = self._decoder.decode(chunk)
        if self._pending_cr:
            # A CR ended the previous chunk: a LF opening this one belongs to the same line end.
            self._pending_cr = False
            if text.startswith("\n"):
                text = text[1:]
        self._buffer += text
        events: list[SseEvent] = []
        for line in self._lines():
            event = self._line(line, t_ns)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> bool:
        """End of stream. True when bytes of an unfinished event were left over (a cut stream)."""
        tail = self._decoder.decode(b"", final=True)
        self._buffer += tail
        return bool(self._buffer) or self._has_field

    def _lines(self) -> Iterator[str]:
        buf = self._buffer
        start = 0
        for match in _LINE_END.finditer(buf):
            if match.group() == "\r" and match.end() == len(buf):
                # A CR at the very end may be the first half of a CRLF still in flight.
                self._pending_cr = True
            yield buf[start : match.start()]
            start = match.end()
        self._buffer = buf[start:]

    def _line(self, line: str, t_ns: int) -> SseEvent | None:
        if line == "":
            return self._dispatch(t_ns)
        if line.startswith(":"):
            self._comment = line[2:] if line.startswith(": ") else line[1:]
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_field = True
        elif name == "event":
            self._event = value
            self._has_field = True
        elif name == "id" and "\0" not in value:
            self._id = value
            self._has_field = True
        # "retry" and unknown fields are ignored, as the specification says.
        return None

    def _dispatch(self, t_ns: int) -> SseEvent | None:
        has_data = bool(self._data)
        event = SseEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._id,
            t_ns=t_ns,
            comment=self._comment,
        )
        self._data = []
        self._event = ""
        self._comment = None
        self._has_field = False
        return event if has_data else None
