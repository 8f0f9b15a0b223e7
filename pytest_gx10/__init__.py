"""pytest-gx10: a pytest plugin that treats a served LLM deployment (vLLM) as a test target."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

__all__ = ["__version__", "bundled_dir", "suites_dirs"]

__version__ = "0.1.0"

_CLONE = Path(__file__).resolve().parent.parent  # the repository, when this is a clone


def bundled_dir(name: str) -> Path | None:
    """Where ``pytest_gx10.<name>`` (``suites``, ``recipes``) lives: in the install, else the clone.

    Both ship inside the package from the repository's top-level folders of the same name (one copy),
    so an editable install and a wheel find them here alike; a clone that is only on ``sys.path``
    finds them beside the package.
    """
    try:
        spec = importlib.util.find_spec(f"pytest_gx10.{name}")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    beside = _CLONE / name
    return beside if (beside / "__init__.py").exists() else None


@functools.cache
def suites_dirs() -> tuple[Path, ...]:
    """The shipped suites' folder(s): the installed one and, in a clone, the repository's.

    Asked once per process: collection asks it for every test item.
    """
    found = [d for d in (bundled_dir("suites"), (_CLONE / "suites").resolve()) if d is not None]
    return tuple(d for i, d in enumerate(found) if d.exists() and d not in found[:i])
