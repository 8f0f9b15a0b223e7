"""Observing a server from outside: its log (file or container) and its /metrics.

No pytest here: the log sources, the signature catalogue and the metrics parser work as a plain
library.
"""

from __future__ import annotations

from pytest_gx10.observe.logs import (
    DockerLogSource,
    FileLogSource,
    LogLine,
    LogSource,
    LogSourceError,
    open_log_source,
    parse_line,
    parse_lines,
)
from pytest_gx10.observe.prometheus import MetricsError, SpecCounters, counter, spec_decode_counters
from pytest_gx10.observe.sentinel import EngineState, Sentinel, Verdict
from pytest_gx10.observe.signatures import (
    CRASH_SIGNATURES,
    FATAL_SIGNATURES,
    SIGNATURES,
    EngineConfig,
    EngineThroughput,
    Signature,
    SignatureHit,
    SpecDecodingLine,
    crash_hits,
    engine_config,
    engine_throughput,
    is_mtp_detected,
    method_matches,
    non_default_args,
    spec_decoding,
)

__all__ = [
    "CRASH_SIGNATURES",
    "FATAL_SIGNATURES",
    "SIGNATURES",
    "DockerLogSource",
    "EngineConfig",
    "EngineState",
    "EngineThroughput",
    "FileLogSource",
    "LogLine",
    "LogSource",
    "LogSourceError",
    "MetricsError",
    "Sentinel",
    "Signature",
    "SignatureHit",
    "SpecCounters",
    "SpecDecodingLine",
    "Verdict",
    "counter",
    "crash_hits",
    "engine_config",
    "engine_throughput",
    "is_mtp_detected",
    "method_matches",
    "non_default_args",
    "open_log_source",
    "parse_line",
    "parse_lines",
    "spec_decode_counters",
    "spec_decoding",
]
