"""The wheel ships every package of the source tree: pyproject lists them by hand (the suites and
recipes are mapped into the package), so a new package missing from the list would install broken."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_is_listed_in_pyproject() -> None:
    """Each folder with an __init__.py under pytest_gx10/, suites/ and recipes/ is a listed package."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {name: ROOT / path for name, path in config["package-dir"].items()}
    found = set()
    for name, top in {"pytest_gx10": ROOT / "pytest_gx10", **mapped}.items():
        for init in top.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(top).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), (
        f"packages missing from pyproject's [tool.setuptools] packages: {sorted(found - listed)}"
    )
    assert listed - found == set(), f"listed packages that do not exist: {sorted(listed - found)}"
