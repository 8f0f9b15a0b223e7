"""The README's quick start, read from the README itself: CI and our tests run what it says.

``python tests/helpers/readme.py test-command`` prints the second quick-start command (our tests);
``main-command`` prints the first (the suites against the twin).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def quick_start() -> list[str]:
    """The commands of the README's quick-start code block, in order."""
    text = README.read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README.md: no ```bash block under '## Quick start'")
    return [line.strip() for line in block.group(1).splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    commands = quick_start()
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    if which == "main-command":
        print(commands[0])
    elif which == "test-command":
        print(commands[1])
    else:
        raise SystemExit("usage: python tests/helpers/readme.py main-command|test-command")
