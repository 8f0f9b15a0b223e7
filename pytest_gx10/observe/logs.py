"""Server log lines and where to read them: a file, or a container through the docker SDK.

vLLM prefixes its lines ``(APIServer pid=N) INFO MM-DD HH:MM:SS [file.py:123] message``; uvicorn
prints ``INFO:     ...`` with no process tag; torch's C++ side prints
``[rank0]:[E613 16:13:25 ProcessGroupNCCL.cpp:2119] ...``; hand-copied lines (as in a blog post) often
lose the time and brackets: ``ERROR async_llm.py:704 message``. :func:`parse_line` reads all of these;
anything else (traceback frames, wrapped continuations) becomes a line with only ``message``.

A source can be *marked* and later read *since* the mark, so a test reads only the lines written
during its own window.
"""

from __future__ import annotations

import importlib
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = [
    "DockerLogSource",
    "FileLogSource",
    "LogLine",
    "LogSource",
    "LogSourceError",
    "open_log_source",
    "parse_line",
    "parse_lines",
]


class LogSourceError(RuntimeError):
    """A log source could not be opened or read; the message names its URI."""


@dataclass(frozen=True)
class LogLine:
    """One parsed log line. Fields the line does not carry are None."""

    raw: str
    message: str
    process: str | None = None  # "APIServer", "EngineCore", "RayWorkerWrapper", "rank0", ...
    pid: int | None = None
    level: str | None = None  # DEBUG | INFO | WARNING | ERROR | CRITICAL
    time: str | None = None  # "MM-DD HH:MM:SS" as printed (no year)
    source: str | None = None  # "file.py:123"


_LEVELS = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
# (Proc pid=N[, ip=A]) LEVEL MM-DD HH:MM:SS [file:line] message
_VLLM = re.compile(
    r"^(?:\((?P<tag>[^()]*)\)\s+)?(?P<level>" + _LEVELS + r")\s+"
    r"(?P<time>\d\d-\d\d \d\d:\d\d:\d\d)(?:\.\d+)?\s+\[(?P<source>[^\]\s]+)\]\s?(?P<message>.*)$"
)
# Hand-copied form without a time: LEVEL file.py:123 message
_SHORT = re.compile(
    r"^(?:\((?P<tag>[^()]*)\)\s+)?(?P<level>" + _LEVELS + r")\s+"
    r"(?P<source>[\w.\-/]+\.(?:py|cpp|cc|h):\d+)\]?\s+(?P<message>.*)$"
)
# [rank0]:[E613 16:13:25 ProcessGroupNCCL.cpp:2119] message  (glog-style from torch's C++ side; the
# month is not zero-padded)
_GLOG = re.compile(
    r"^(?:\[(?P<tag>[^\]]+)\]:)?\[(?P<lvl>[IWEF])(?P<mm>\d{1,2})(?P<dd>\d\d) (?P<hms>\d\d:\d\d:\d\d)(?:\.\d+)?"
    r"(?:\s+\d+)?\s+(?P<source>[^\]\s]+)\]\s?(?P<message>.*)$"
)
# uvicorn: "INFO:     message"
_UVICORN = re.compile(r"^(?P<level>" + _LEVELS + r"):\s+(?P<message>.*)$")
_GLOG_LEVELS = {"I": "INFO", "W": "WARNING", "E": "ERROR", "F": "FATAL"}
_TAG = re.compile(r"^(?P<process>.*?)(?:\s+pid=(?P<pid>\d+))?(?:,.*)?$")


def _tag(tag: str | None) -> tuple[str | None, int | None]:
    if not tag:
        return None, None
    m = _TAG.match(tag.strip())
    if m is None:  # pragma: no cover - the pattern matches any string
        return tag, None
    pid = m.group("pid")
    return (m.group("process") or None), (int(pid) if pid else None)


def parse_line(raw: str) -> LogLine:
    """Parse one line of a server log (trailing newline and docker's \\r tolerated)."""
    text = raw.rstrip("\r\n")
    for pattern in (_VLLM, _SHORT):
        m = pattern.match(text)
        if m is not None:
            process, pid = _tag(m.group("tag"))
            level = m.group("level")
            return LogLine(
                raw=text,
                message=m.group("message"),
                process=process,
                pid=pid,
                level="WARNING" if level == "WARN" else level,
                time=m.groupdict().get("time"),
                source=m.group("source"),
            )
    m = _GLOG.match(text)
    if m is not None:
        return LogLine(
            raw=text,
            message=m.group("message"),
            process=m.group("tag"),
            level=_GLOG_LEVELS[m.group("lvl")],
            time=f"{int(m.group('mm')):02d}-{m.group('dd')} {m.group('hms')}",
            source=m.group("source"),
        )
    m = _UVICORN.match(text)
    if m is not None:
        return LogLine(raw=text, message=m.group("message"), level=m.group("level"))
    return LogLine(raw=text, message=text)


def parse_lines(text: str) -> list[LogLine]:
    """Parse a block of log text, one :class:`LogLine` per non-empty line."""
    return [parse_line(line) for line in text.splitlines() if line.strip()]


class LogSource(ABC):
    """Where a server's log can be read. ``uri`` names it in every message."""

    uri: str

    @abstractmethod
    def text(self) -> str:
        """The whole log as text."""

    @abstractmethod
    def mark(self) -> int:
        """An opaque position: :meth:`since` returns what is written after it."""

    @abstractmethod
    def text_since(self, mark: int) -> str:
        """The text written after ``mark`` (complete lines only)."""

    def lines(self) -> list[LogLine]:
        """Every line of the log, parsed."""
        return parse_lines(self.text())

    def since(self, mark: int) -> list[LogLine]:
        """The lines written after ``mark``, parsed."""
        return parse_lines(self.text_since(mark))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class FileLogSource(LogSource):
    """A log file on this machine (a launcher's or the twin's log, or ``--gx10-logs=file:///...``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.uri = self.path.absolute().as_uri()

    def _read(self, offset: int) -> bytes:
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                return f.read()
        except OSError as exc:
            raise LogSourceError(f"log {self.uri}: cannot read: {exc.strerror or exc}") from None

    def text(self) -> str:
        """The whole file."""
        return self._read(0).decode("utf-8", "replace")

    def follow(self, offset: int = 0) -> tuple[list[LogLine], int]:
        """Lines completed after byte ``offset``, and the offset to follow on from.

        A last line still being written (no newline yet) is left for the next call.
        """
        data = self._read(offset)
        end = data.rfind(b"\n") + 1
        return parse_lines(data[:end].decode("utf-8", "replace")), offset + end

    def mark(self) -> int:
        """The current end of the file (0 when it does not exist yet)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def text_since(self, mark: int) -> str:
        """Complete lines written after byte offset ``mark``."""
        data = self._read(mark)
        return data[: data.rfind(b"\n") + 1].decode("utf-8", "replace")


_CONTAINER = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"


class DockerLogSource(LogSource):
    """A container's log through the docker SDK, on the local engine or over ``ssh://``.

    ``base_url`` None means the local engine as the environment configures it (``DOCKER_HOST``);
    ``ssh://user@host`` goes through the ssh client. Marks are wall-clock times (ns): the SDK asks the
    engine for lines since a time, so the engine's clock and ours should agree to within a second.
    """

    def __init__(self, container: str, base_url: str | None = None) -> None:
        if not re.fullmatch(_CONTAINER, container):
            raise LogSourceError(f"log docker://{container}: not a container name or id")
        self.container = container
        self.base_url = base_url
        self.uri = f"docker://{container}" + (f"@{base_url}" if base_url else "")

    def _logs(self, **kwargs: Any) -> str:
        # A client per read, closed after it: a source lives as long as a test session and must not
        # hold a socket to the engine (or an ssh process) open all that time.
        try:
            docker: Any = importlib.import_module("docker")
        except ImportError:
            raise LogSourceError(
                f"log {self.uri}: the docker SDK is not installed (pip install docker)"
            ) from None
        client = None
        try:
            if self.base_url is None:
                client = docker.from_env()
            else:
                client = docker.DockerClient(
                    base_url=self.base_url, use_ssh_client=self.base_url.startswith("ssh://")
                )
            data = client.containers.get(self.container).logs(stdout=True, stderr=True, **kwargs)
        except Exception as exc:  # the SDK raises its own and requests' errors
            raise LogSourceError(f"log {self.uri}: {type(exc).__name__}: {exc}") from None
        finally:
            if client is not None:
                client.close()
        # The engine hands back bytes, not lines; a multi-byte character split across its frames
        # decodes whole here because the frames are joined first.
        return bytes(data).decode("utf-8", "replace")

    def text(self) -> str:
        """The container's whole log (stdout and stderr interleaved, as ``docker logs`` shows it)."""
        return self._logs()

    def mark(self) -> int:
        """Now, in ns since the epoch."""
        return time.time_ns()

    def text_since(self, mark: int) -> str:
        """Lines the engine stamped at or after ``mark``."""
        return self._logs(since=mark / 1e9)


def _parse_docker(uri: str, rest: str) -> DockerLogSource:
    name, sep, base = rest.partition("@")
    if not name:
        raise LogSourceError(
            f"log source {uri!r}: no container name; expected docker://NAME[@ssh://user@host]"
        )
    if sep and not re.match(r"^(ssh|tcp|unix|npipe|http|https)://.+", base):
        raise LogSourceError(
            f"log source {uri!r}: engine {base!r} is not a docker URL; expected e.g. docker://NAME@ssh://user@host"
        )
    try:
        return DockerLogSource(name, base or None)
    except LogSourceError as exc:
        raise LogSourceError(f"log source {uri!r}: {exc}") from None


def open_log_source(uri: str) -> LogSource:
    """Open ``file:///path`` (or a plain path), ``docker://NAME`` or ``docker://NAME@ssh://user@host``.

    Nothing is read yet: a missing file or container is reported when the source is first read.
    """
    if uri.startswith("docker://"):
        return _parse_docker(uri, uri[len("docker://") :])
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise LogSourceError(f"log source {uri!r}: file URIs must be local (file:///path)")
        path = unquote(parts.path)
        if not path:
            raise LogSourceError(f"log source {uri!r}: no path; expected file:///path/to/server.log")
        return FileLogSource(path)
    if "://" in uri:
        scheme = uri.split("://", 1)[0]
        raise LogSourceError(
            f"log source {uri!r}: unknown scheme {scheme!r}; expected file:///path or docker://NAME"
        )
    if not uri:
        raise LogSourceError("log source '': expected file:///path or docker://NAME")
    return FileLogSource(uri)


def messages(lines: Iterable[LogLine]) -> list[str]:
    """The message of each line (handy for signature matching)."""
    return [line.message for line in lines]
