"""The pytest-xdist scheduler for ``-n N`` runs: the shipped suites on one worker, in order.

The suites share one server, and what one measures the next would disturb (a sweep point beside
another, a needle's long prefill beside a sweep, the crash load or a bad input beside anything), so
under xdist they form one scope that a single worker runs in collection order, which the plugin
sets non-destructive first. Every other test is a scope of its own and spreads as under ``--dist
load``. xdist's own ``xdist_group`` mark is not used for this: it counts only under ``--dist
loadgroup``, and it depends on renaming node ids, which current pytest no longer lets it do.

Imported only when pytest-xdist is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

__all__ = ["SUITES_SCOPE", "SuitesScheduling", "initial_paths"]

SUITES_SCOPE = "gx10-suites"


class SuitesScheduling(LoadScopeScheduling):
    """``--dist load`` for everything but the shipped suites, which run together on one worker."""

    def __init__(
        self, config: pytest.Config, log: object = None, *, is_suite: Callable[[Path], bool]
    ) -> None:
        super().__init__(config, log)
        self._root = Path(config.rootpath)
        self._initial = initial_paths(config)
        self._is_suite = is_suite
        self._scopes: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        scope = self._scopes.get(nodeid)
        if scope is None:
            path = self._file_of(nodeid.split("::", 1)[0].split("@", 1)[0])
            scope = SUITES_SCOPE if path is not None and self._is_suite(path) else nodeid
            self._scopes[nodeid] = scope
        return scope

    def _file_of(self, relative: str) -> Path | None:
        """The file a node id names. pytest writes it relative to the rootdir, or, for a file outside
        it (the suites of an installed wheel, run by --pyargs from a project of one's own), relative
        to the collection argument it was found under (empty when the argument is the file)."""
        if relative and (self._root / relative).is_file():
            return (self._root / relative).resolve()
        for arg in self._initial:
            path = arg / relative if relative else arg
            if path.is_file():
                return path
        return None


def initial_paths(config: pytest.Config) -> tuple[Path, ...]:
    """The run's collection arguments as paths, as pytest resolves them (``--pyargs`` names too)."""
    paths = []
    for arg in config.args:
        name = arg.split("::", 1)[0]
        path = Path(config.invocation_params.dir, name)
        if config.getoption("pyargs", False) and not path.exists():
            path = _module_path(name) or path
        paths.append(path.resolve())
    return tuple(paths)


def _module_path(name: str) -> Path | None:
    """Where module or package ``name`` lives, without importing it (its parents are imported)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin) if spec.origin else None
