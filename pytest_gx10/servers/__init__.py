"""The server seam: one adapter per engine, and the choice of the adapter for a target.

Everything engine-specific lives in an adapter (:class:`Server` subclasses): how tokens are counted,
the version and the context window, which metric means what, the log's crash signatures, how the
command line is written. The core, the suites, the sentinel and the launchers speak this interface.

Built in: ``vllm`` (and the twin), ``llama.cpp``, and ``openai``, which asks only what the OpenAI
API defines and so serves any other engine. Another package adds an adapter with an entry point in
the ``pytest_gx10.servers`` group (``name = "pkg.module:AdapterClass"``) or, from a conftest or
plugin, the ``pytest_gx10_server_adapters`` hook (see :mod:`pytest_gx10.hooks`).

The adapter is chosen by name (``--gx10-server``, the profile's ``[server] adapter``) or detected
from what the server says: each adapter's :meth:`Server.detect`, the most specific first.

Core: nothing here imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points

from pytest_gx10.client import EndpointError, VllmClient
from pytest_gx10.servers.base import MetricNames, NotOffered, Server, Telemetry
from pytest_gx10.servers.llamacpp import LlamaCppServer
from pytest_gx10.servers.vllm import VllmServer

__all__ = [
    "ENTRY_POINT_GROUP",
    "LlamaCppServer",
    "MetricNames",
    "NotOffered",
    "Server",
    "Telemetry",
    "UnknownServer",
    "VllmServer",
    "adapter_class",
    "adapters",
    "choose",
    "load_entry_points",
    "register",
    "reset",
]

ENTRY_POINT_GROUP = "pytest_gx10.servers"

_BUILTIN: tuple[type[Server], ...] = (VllmServer, LlamaCppServer, Server)
_REGISTERED: dict[str, type[Server]] = {}
_LOADED_ENTRY_POINTS = False


class UnknownServer(ValueError):
    """An adapter name nobody registered; the message lists the known ones."""


def register(adapters: Iterable[type[Server]]) -> None:
    """Add adapters (a later one of the same name replaces an earlier one)."""
    for cls in adapters:
        if not (isinstance(cls, type) and issubclass(cls, Server)):
            raise TypeError(f"a server adapter must be a subclass of pytest_gx10.servers.Server, not {cls!r}")
        _REGISTERED[cls.name] = cls


def _load_entry_points() -> None:
    global _LOADED_ENTRY_POINTS
    if _LOADED_ENTRY_POINTS:
        return
    _LOADED_ENTRY_POINTS = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        register([ep.load()])


def load_entry_points() -> None:
    """Register the installed packages' adapters now (once): what a run's hooks add then wins."""
    _load_entry_points()


def reset() -> None:
    """Forget every adapter registered (the built-in ones stay): the end of a run."""
    global _LOADED_ENTRY_POINTS
    _REGISTERED.clear()
    _LOADED_ENTRY_POINTS = False


def adapters() -> list[type[Server]]:
    """Every adapter known, most specific first (the order detection asks them in)."""
    _load_entry_points()
    known = {cls.name: cls for cls in _BUILTIN}
    known.update(_REGISTERED)
    return sorted(known.values(), key=lambda cls: -cls.priority)


def adapter_class(name: str) -> type[Server]:
    """The adapter called ``name``."""
    for cls in adapters():
        if cls.name == name:
            return cls
    names = ", ".join(cls.name for cls in adapters())
    raise UnknownServer(f"no server adapter named {name!r} (known: {names})")


def choose(client: VllmClient, name: str | None = None) -> Server:
    """The adapter for the server at ``client``: ``name``'s, else the first whose detection says yes.

    Detection asks only what any OpenAI-compatible server answers first (``/v1/models``), then each
    engine's own endpoints; a server that answers none of them gets the generic adapter.
    """
    if name:
        return adapter_class(name)(client)
    try:
        models = client.models()
    except EndpointError:
        models = []
    for cls in adapters():
        if cls.detect(client, models):
            return cls(client)
    return Server(client)
