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

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from xdist.scheduler import LoadScopeScheduling

__all__ = ["SUITES_SCOPE", "SuitesScheduling", "files_named"]

SUITES_SCOPE = "gx10-suites"


class SuitesScheduling(LoadScopeScheduling):
    """``--dist load`` for everything but the shipped suites, which run together on one worker."""

    def __init__(
        self,
        config: pytest.Config,
        log: object = None,
        *,
        is_suite: Callable[[Path], bool],
        arguments: Sequence[Path] = (),
    ) -> None:
        super().__init__(config, log)
        self._root = Path(config.rootpath)
        self._arguments = tuple(arguments)
        self._is_suite = is_suite
        self._scopes: dict[str, str] = {}

    def _split_scope(self, nodeid: str) -> str:
        scope = self._scopes.get(nodeid)
        if scope is None:
            named = nodeid.split("::", 1)[0].split("@", 1)[0]
            suite = any(self._is_suite(path) for path in files_named(named, self._root, self._arguments))
            scope = SUITES_SCOPE if suite else nodeid
            self._scopes[nodeid] = scope
        return scope


def files_named(relative: str, root: Path, arguments: Sequence[Path]) -> list[Path]:
    """The files a node id's path may name. pytest writes it relative to the rootdir, or, for a file
    outside it (the suites of an installed wheel, run by ``--pyargs`` from a project of one's own),
    relative to the collection argument it was found under: empty when the argument is the file.
    Every argument it could be under counts: taking the suites for a file of one's own would only run
    that file in order with them."""
    found = [(root / relative).resolve()] if relative else []
    for arg in arguments:
        path = arg / relative if relative else arg
        if path.is_file():
            found.append(path)
    return found
