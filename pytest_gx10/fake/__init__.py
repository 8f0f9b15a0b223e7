"""The embedded vLLM twin: a simulated vLLM 0.32 server that speaks vLLM's wire format.

``FakeServer`` runs it in-process; ``python -m pytest_gx10.fake`` runs it as a process.
"""

from __future__ import annotations

from pytest_gx10.fake.app import (
    TIME_SCALE_HEADER,
    VIRTUAL_ARRIVAL_HEADER,
    VIRTUAL_TIME_HEADER,
    TwinState,
    create_app,
)
from pytest_gx10.fake.engine import Engine, Output, SamplingParams
from pytest_gx10.fake.server import FakeServer
from pytest_gx10.fake.steptime import LinearStepTime, StepTimeModel
from pytest_gx10.fake.tokenizer import Tokenizer

__all__ = [
    "TIME_SCALE_HEADER",
    "VIRTUAL_ARRIVAL_HEADER",
    "VIRTUAL_TIME_HEADER",
    "Engine",
    "FakeServer",
    "LinearStepTime",
    "Output",
    "SamplingParams",
    "StepTimeModel",
    "Tokenizer",
    "TwinState",
    "create_app",
]
