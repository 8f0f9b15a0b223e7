"""docs/options.md is generated from the settings declaration and lists every --gx10-* option."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_gx10.settings import SETTINGS, main, options_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "options.md"
REGENERATE = "python3 -m pytest_gx10.settings --markdown > docs/options.md"


def test_options_doc_is_generated_from_the_declaration() -> None:
    """The committed reference is exactly what the declaration generates."""
    assert DOC.read_text(encoding="utf-8") == options_markdown(), (
        f"docs/options.md is out of date with pytest_gx10/options.py; regenerate it with: {REGENERATE}"
    )


def _doc_options(text: str) -> list[str]:
    return re.findall(r"^\| `(--gx10-[a-z-]+)", text, flags=re.MULTILINE)


def test_every_option_has_one_row_with_its_names_and_default() -> None:
    """One row per setting, in declaration order, with its variable, ini key and default."""
    text = options_markdown()
    assert _doc_options(text) == [spec.option for spec in SETTINGS]
    rows = {
        row.split(" | ")[0].strip("| `").split("=")[0]: row for row in text.splitlines() if "--gx10-" in row
    }
    timeout = rows["--gx10-timeout"]
    assert "`GX10_TIMEOUT`, `gx10_timeout`" in timeout
    assert "`settings.timeout`" in timeout
    assert "`10.0`" in timeout
    assert "| off |" in rows["--gx10-fake"]
    assert "`10%`" in rows["--gx10-write-margin"]
    assert "(may be given several times)" in rows["--gx10-tolerance"]


def test_the_doc_lists_what_the_plugin_registers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest --help shows exactly the options the reference lists."""
    # Help lines unwrapped: argparse breaks long lines at hyphens, inside an option named in a help text.
    monkeypatch.setenv("COLUMNS", "1000")
    result = pytester.runpytest("--help")
    registered = sorted(set(re.findall(r"(--gx10-[a-z-]+)", result.stdout.str())))
    assert registered == sorted(_doc_options(options_markdown()))


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """--markdown prints the reference; anything else is a usage error naming the command."""
    assert main(["--markdown"]) == 0
    assert capsys.readouterr().out == options_markdown()
    assert main([]) == 2
    assert REGENERATE in capsys.readouterr().err
