"""As a user installs it: the wheel, in a fresh venv, run from a directory that is not the clone.

The README's two ways to run the suites, from an install (``--pyargs pytest_gx10.suites``) and from a
clone (``pytest suites``, test_readme.py), both run here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding the wheel built from this clone (dependencies shared)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"  # built from a copy: the clone gets no build/ or egg-info
    for name in ("pytest_gx10", "suites", "recipes"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    built = _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(src)], base
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (base / "dist").glob("pytest_gx10-*.whl")
    venv = base / "venv"
    made = _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], base)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], base)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_the_wheel_carries_suites_and_recipes(installed: Path, tmp_path: Path) -> None:
    """The package, its suites and its recipes come from the venv, not from this clone."""
    # Every module, walked from the package: one missing from the wheel would otherwise still import
    # through the clone's editable install, which this venv sees (--system-site-packages).
    code = (
        "import importlib, pkgutil, pytest_gx10\n"
        "from pytest_gx10.launch.recipes import load_recipe\n"
        "for m in pkgutil.walk_packages(pytest_gx10.__path__, 'pytest_gx10.'):\n"
        "    print(importlib.import_module(m.name).__file__)\n"
        "print(pytest_gx10.__file__); print(load_recipe('twin-docker').path)\n"
    )
    done = _run([str(installed), "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    venv = installed.parent.parent
    paths = [Path(line) for line in done.stdout.split()]
    names = {
        p.relative_to(venv).as_posix().split("site-packages/", 1)[-1] for p in paths if venv in p.parents
    }
    assert "pytest_gx10/servers/__init__.py" in names, sorted(names)
    assert "pytest_gx10/suites/perf/__init__.py" in names, sorted(names)
    assert all(venv in path.parents for path in paths), [p for p in paths if venv not in p.parents]


def test_suites_run_from_the_install(installed: Path, tmp_path: Path) -> None:
    """``pytest --pyargs pytest_gx10.suites.health`` outside any clone, against the twin."""
    done = _run(
        [str(installed), "-m", "pytest", "--pyargs", "pytest_gx10.suites.health", "-p", "no:cacheprovider"],
        tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "17 passed" in done.stdout.splitlines()[-1]
    assert "gx10 target: embedded twin of profile qwen3.5-397b-fp8-mtp2-gx10x4" in done.stdout
    help_text = _run([str(installed), "-m", "pytest", "--help"], tmp_path)
    assert help_text.returncode == 0, help_text.stderr[-2000:]
    assert "--gx10-write-profile=PATH" in help_text.stdout
