"""The plugin's own warning class, in a module that imports nothing of the package.

Both the hooks (:mod:`pytest_gx10.plugin`) and the report gate (:mod:`pytest_gx10.report.session`) raise
it; living here, neither has to import the other for it.
"""

from __future__ import annotations

import pytest

__all__ = ["Gx10Warning"]


class Gx10Warning(pytest.PytestWarning):
    """Something about the target a user should know, that does not fail a test."""
