"""The robustness findings as docs/robustness-findings.md lists them, and the failing cases of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

FINDINGS = Path(__file__).resolve().parents[2] / "docs" / "robustness-findings.md"


def documented_findings(engine: str = "vLLM") -> set[str]:
    """Case ids in the engine's findings table (its ``case`` or ``cases`` column, one row per finding)."""
    text = FINDINGS.read_text()
    table = text.split(f"\n## {engine}\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].split("|")]
    column = header.index("cases") if "cases" in header else header.index("case")
    cases: set[str] = set()
    for row in lines[2:]:  # after the header and the separator
        cell = row.split("|")[column].strip()
        if not cell.startswith("("):  # "(the fuzz)": a finding only the fuzz meets, no case of its own
            cases.update(c.strip().strip("`") for c in cell.split(","))
    return cases


def failing(rows: dict[str, dict[str, Any]]) -> set[str]:
    """Cases whose answer was a 5xx, nothing or a 200 the suite could not judge well-formed, or after
    which the engine was not as before."""
    bad = set()
    for case, row in rows.items():
        if case == "fuzz":
            if row.get("failure"):
                bad.add(case)
        elif (
            row.get("problem") or row["status"] is None or row["status"] >= 500 or row["engine_after"] != "ok"
        ):
            bad.add(case)
    return bad
