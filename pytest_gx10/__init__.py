"""pytest-gx10: a pytest plugin that treats a served LLM deployment (vLLM) as a test target."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
