"""The README never lies: its quick start is two commands, CI runs the second, the first works; it
stays short, and the reference it points to under docs/ exists and states the facts right."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.readme import quick_start

ROOT = Path(__file__).resolve().parents[1]


def test_quick_start_is_two_commands() -> None:
    """Main job (the suites against the twin), then our tests."""
    main, tests = quick_start()
    assert main.endswith("pytest suites"), main
    assert tests.endswith("python -m pytest"), tests


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run executes exactly the quick start's test command."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "tests/helpers/readme.py test-command" in ci
    assert 'bash -c "$test_command"' in ci


@pytest.mark.twin  # the rest of this file is unit (tests/conftest.py)
def test_main_job_passes_against_the_twin() -> None:
    """The quick start's main job (already installed here) passes, offline, against the twin."""
    main, _ = quick_start()
    command = main.split("&&", 1)[1].strip()
    assert command.startswith("python -m pytest")
    argv = [sys.executable, *command.split()[1:], "-p", "no:cacheprovider", "-q"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.splitlines()[-1]


# --- the README is short and points at docs/ that exist ------------------------------------------

DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def test_readme_stays_short() -> None:
    """What it is, the quick start, the suites table and pointers: reference lives in docs/."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move reference material to docs/"


@pytest.mark.parametrize("page", _markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    """Every relative link of the README and of docs/ names a file of this repository."""
    targets = [t for t in LINK.findall(page.read_text()) if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_every_doc_is_linked_from_the_readme() -> None:
    """A page under docs/ that the README does not link is a page nobody finds."""
    linked = {(ROOT / t).resolve() for t in LINK.findall((ROOT / "README.md").read_text())}
    unlinked = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert not unlinked, unlinked


def test_suites_table_names_every_suite() -> None:
    """The README's table and docs/suites.md have a row for each suite under suites/, and no other."""
    shipped = {p.parent.name for p in (ROOT / "suites").glob("*/__init__.py")}
    readme = set(re.findall(r"^\| `suites/(\w+)` \|", (ROOT / "README.md").read_text(), re.M))
    detailed = set(re.findall(r"^\*\*`suites/(\w+)`\*\*", (DOCS / "suites.md").read_text(), re.M))
    assert readme == shipped, (readme, shipped)
    assert detailed == shipped, (detailed, shipped)


def test_robustness_case_count_is_stated_right(monkeypatch: pytest.MonkeyPatch) -> None:
    """The number of bad inputs the README and docs/suites.md state is the suite's own count."""
    monkeypatch.syspath_prepend(str(ROOT))  # the suite imports its figures relatively: load it as a package
    suite = importlib.import_module("suites.robustness.test_robustness")
    count = len(suite.CASES)
    for page in (ROOT / "README.md", DOCS / "suites.md"):
        stated = re.findall(r"(\d+) bad inputs", page.read_text())
        assert stated == [str(count)], (page.name, stated, count)
