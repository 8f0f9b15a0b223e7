"""The hooks pytest-gx10 offers other plugins and conftests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_gx10.servers import Server

__all__ = ["pytest_gx10_server_adapters"]


@pytest.hookspec
def pytest_gx10_server_adapters() -> list[type[Server]]:  # type: ignore[empty-body]
    """Server adapters to add: subclasses of :class:`pytest_gx10.servers.Server`.

    Called once when the run is configured, before the target is asked anything; every plugin's and
    initial conftest's list is added over the installed packages' entry points (a name given twice:
    a conftest's wins over a plugin's, a plugin's over an entry point's). An adapter is then
    chosen by its ``name`` (``--gx10-server``, the profile's ``[server] adapter``, a recipe's
    ``server``) or by its ``detect``, in ``priority`` order. Another package can do the same with an
    entry point in the ``pytest_gx10.servers`` group.
    """
