"""Redaction: the one function every writer (JSON, Markdown, HTML, baseline) passes its text through.

Secrets that could reach an output: the API key (a model may echo a prompt, an error body may quote
a header) and environment values whose names look like tokens, keys, secrets or passwords (a crash
line or a launcher's command line may print them). Each is replaced by ``[REDACTED]`` wherever it
appears, inside longer strings too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MASK", "Redactor", "secret_env_values"]

MASK = "[REDACTED]"

# Names of environment variables whose values are secrets: API_KEY, HF_TOKEN, AWS_SECRET_ACCESS_KEY,
# DB_PASSWORD, GITHUB_PAT, ... (matched as words of the name, so KEYBOARD or MONKEY do not count; PWD
# is the working directory, not a password).
_SECRET_NAME = re.compile(
    r"(?:^|_)(?:KEY|KEYS|TOKEN|TOKENS|SECRET|SECRETS|PASSWORD|PASSWD|PASS|CREDENTIALS?|PAT|APIKEY)(?:_|$)",
    re.IGNORECASE,
)
# Shorter values are not redacted: "1" or "yes" in a variable named *_TOKEN would blank every digit.
_MIN_SECRET_CHARS = 6


def secret_env_values(environ: Mapping[str, str]) -> list[str]:
    """Values of the environment variables whose names look like tokens, keys, secrets or passwords."""
    return [
        value
        for name, value in environ.items()
        if _SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET_CHARS
    ]


class Redactor:
    """Replaces known secret strings by :data:`MASK` in text and in JSON-like values."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Every secret given is masked, however short (an API key is one on purpose); the length floor
        # applies only to environment values guessed to be secrets by their names.
        found = {s.strip() for s in secrets if s and s.strip()}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(found, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    @classmethod
    def for_run(cls, api_key: str | None, environ: Mapping[str, str]) -> Redactor:
        """The run's redactor: the API key and every secret-looking environment value."""
        return cls([api_key, *secret_env_values(environ)])

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every secret masked."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (dicts, lists, strings, numbers) with every string masked."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
