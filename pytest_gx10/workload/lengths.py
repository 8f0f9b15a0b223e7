"""Token-length distributions for prompts and outputs, written as short strings.

Real traffic is not one fixed length: chat turns are short and spread wide, document questions are long.
A length is written as one of::

    1000                       every request 1000 tokens
    uniform:500:1500           an integer between 500 and 1500, both included, equally likely
    normal:MEAN:SD             round(gauss(MEAN, SD))
    lognormal:MEDIAN:SIGMA     round(MEDIAN * exp(SIGMA * gauss(0, 1))): a long right tail, as chat lengths have

optionally followed by bounds, ``:min=A``, ``:max=B`` or ``:min=A,max=B`` (for example
``lognormal:800:0.6:min=100,max=4000``). Every drawn length is clipped to the bounds and to at least 1.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

__all__ = ["KINDS", "LengthSpec", "parse_length"]

KINDS = ("fixed", "uniform", "normal", "lognormal")

SYNTAX = (
    "N, uniform:LOW:HIGH, normal:MEAN:SD or lognormal:MEDIAN:SIGMA, "
    "optionally followed by :min=A,max=B (for example lognormal:800:0.6:min=100,max=4000)"
)


def _num(x: float) -> str:
    """A number as written back: ``1000`` rather than ``1000.0``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class LengthSpec:
    """A length distribution: ``kind`` and its two parameters (``a``, ``b``), and the clip bounds.

    fixed: ``a`` is the length; uniform: ``a``..``b``; normal: mean ``a``, sd ``b``; lognormal: median
    ``a``, sigma ``b``.
    """

    kind: str
    a: float
    b: float = 0.0
    min: int | None = None
    max: int | None = None

    @property
    def text(self) -> str:
        """The spec written as :func:`parse_length` reads it (``parse_length(s.text) == s``)."""
        head = _num(self.a) if self.kind == "fixed" else f"{self.kind}:{_num(self.a)}:{_num(self.b)}"
        bounds = [f"{name}={v}" for name, v in (("min", self.min), ("max", self.max)) if v is not None]
        return f"{head}:{','.join(bounds)}" if bounds else head

    @property
    def fixed(self) -> bool:
        """True when every draw gives the same length."""
        return self.kind == "fixed"

    def clip(self, n: float) -> int:
        """``n`` rounded and held within the bounds, and at least 1."""
        value = round(n)
        if self.min is not None:
            value = max(value, self.min)
        if self.max is not None:
            value = min(value, self.max)
        return max(value, 1)

    def draw(self, n: int, seed: int | str = 0) -> list[int]:
        """``n`` lengths drawn with ``random.Random(seed)``: the same seed gives the same list.

        Draws are sequential, so ``draw(n, s)`` is the start of ``draw(m, s)`` for ``m > n``.
        """
        if n < 0:
            raise ValueError(f"cannot draw {n} lengths")
        rng = random.Random(seed)
        if self.kind == "fixed":
            return [self.clip(self.a)] * n
        if self.kind == "uniform":
            return [self.clip(rng.randint(int(self.a), int(self.b))) for _ in range(n)]
        if self.kind == "normal":
            return [self.clip(rng.gauss(self.a, self.b)) for _ in range(n)]
        return [self.clip(rng.lognormvariate(math.log(self.a), self.b)) for _ in range(n)]

    def as_dict(self) -> dict[str, Any]:
        """What a result records: the text and its parts."""
        return {
            "text": self.text,
            "kind": self.kind,
            "a": self.a,
            "b": self.b,
            "min": self.min,
            "max": self.max,
        }


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"length {text!r}: {why}; write {SYNTAX}")


def _number(text: str, part: str, what: str) -> float:
    try:
        value = float(part)
    except ValueError:
        raise _fail(text, f"{what} {part!r} is not a number") from None
    if not math.isfinite(value):
        raise _fail(text, f"{what} {part!r} is not a finite number")
    return value


def _whole(text: str, part: str, what: str) -> int:
    value = _number(text, part, what)
    if not value.is_integer() or value < 1:
        raise _fail(text, f"{what} {part!r} is not a whole number of at least 1")
    return int(value)


def _bounds(text: str, part: str) -> tuple[int | None, int | None]:
    found: dict[str, int] = {}
    for item in part.split(","):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or name not in ("min", "max"):
            raise _fail(text, f"{item!r} is not a bound (min=A or max=B)")
        if name in found:
            raise _fail(text, f"{name} given twice")
        found[name] = _whole(text, value.strip(), name)
    low, high = found.get("min"), found.get("max")
    if low is not None and high is not None and low > high:
        raise _fail(text, f"min={low} is above max={high}")
    return low, high


def parse_length(text: str | int) -> LengthSpec:
    """Read a length distribution (see the module docstring); ValueError naming the syntax otherwise."""
    raw = str(text).strip()
    parts = [p.strip() for p in raw.split(":")]
    low: int | None = None
    high: int | None = None
    if len(parts) > 1 and "=" in parts[-1]:
        low, high = _bounds(raw, parts.pop())
    if not parts or not parts[0]:
        raise _fail(raw, "empty")
    kind = parts[0].lower()
    if len(parts) == 1:
        if kind in KINDS:
            raise _fail(raw, f"{kind} needs its parameters")
        return LengthSpec("fixed", _whole(raw, parts[0], "length"), min=low, max=high)
    if kind not in KINDS or kind == "fixed":
        raise _fail(raw, f"unknown distribution {parts[0]!r}")
    if len(parts) != 3:
        raise _fail(raw, f"{kind} takes two parameters, got {len(parts) - 1}")
    if kind == "uniform":
        lo, hi = _whole(raw, parts[1], "low"), _whole(raw, parts[2], "high")
        if lo > hi:
            raise _fail(raw, f"low {lo} is above high {hi}")
        return LengthSpec(kind, lo, hi, low, high)
    if kind == "normal":
        mean, sd = _number(raw, parts[1], "mean"), _number(raw, parts[2], "sd")
        if mean <= 0 or sd < 0:
            raise _fail(raw, "the mean must be above 0 and the sd at least 0")
        return LengthSpec(kind, mean, sd, low, high)
    median, sigma = _number(raw, parts[1], "median"), _number(raw, parts[2], "sigma")
    if median <= 0 or sigma < 0:
        raise _fail(raw, "the median must be above 0 and sigma at least 0")
    return LengthSpec(kind, median, sigma, low, high)
