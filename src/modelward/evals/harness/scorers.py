"""Scorers: how an eval item's output is judged against its ``expected`` value.

A scorer is named on the command line (``--scorer exact``, ``--scorer numeric:0.01``,
``--scorer json_field:answer.total``, ``--scorer mypkg.scoring:bleu@0.3``) and parsed once,
before a run starts, so a typo fails fast. Each returns a value in ``[0, 1]`` (a bool counts
as 1 or 0) and whether the item passed:

========================  ===============================================================
``exact``                 the output equals ``expected`` after stripping whitespace
``contains``              ``expected`` (a string, or a list: every string) is in the output
``regex``                 ``expected`` is a pattern ``re.search`` finds in the output
``numeric[:TOL]``         the number in the output is within TOL (absolute; default 1e-9)
``json_field:PATH``       the output is JSON and the value at PATH (``a.b.0.c``) equals
                          ``expected``
``MODULE:FUNC[@MIN]``     ``FUNC(output, item) -> float | bool``; a number passes at MIN
                          or above (0 < MIN <= 1, default 0.5)
========================  ===============================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from ...endpoints import CALLABLE_RE, import_callable
from ...errors import ValidationError

BUILTINS = ("exact", "contains", "regex", "numeric", "json_field")
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.S)


class ScoreError(Exception):
    """The output could not be judged (no number in it, not JSON, no expected value)."""


@dataclass(frozen=True)
class Scorer:
    name: str  # the spec as given, and the key of its score in every result
    fn: Callable[[str, dict], object]
    minimum: float = 1.0  # a numeric value passes at this or above

    def passes(self, value: float) -> bool:
        return value >= self.minimum

    def score(self, output: str, item: dict) -> tuple[float, bool]:
        """(value, passed); ScoreError when the output cannot be judged."""
        value = self.fn(output, item)
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value), self.passes(float(value))
        raise ScoreError(f"returned {value!r}; a scorer returns a number or a bool")


def _expected(item: dict):
    if item.get("expected") is None:
        raise ScoreError("the item has no expected value")
    return item["expected"]


def exact(output: str, item: dict) -> bool:
    return output.strip() == str(_expected(item)).strip()


def contains(output: str, item: dict) -> bool:
    expected = _expected(item)
    wanted = expected if isinstance(expected, list) else [expected]
    return all(str(w) in output for w in wanted)


def regex(output: str, item: dict) -> bool:
    pattern = str(_expected(item))
    try:
        return re.search(pattern, output) is not None
    except re.error as exc:
        raise ScoreError(f"expected is not a valid regular expression: {exc}") from None


def number_in(text: str) -> float:
    """The output as a number: all of it when it parses, else the last number in it."""
    stripped = text.strip()
    try:
        return float(stripped.replace(",", ""))
    except ValueError:
        pass
    found = _NUMBER.findall(stripped)
    if not found:
        raise ScoreError("the output holds no number")
    return float(found[-1].replace(",", ""))


def numeric(tolerance: float) -> Callable[[str, dict], bool]:
    def score(output: str, item: dict) -> bool:
        expected = _expected(item)
        try:
            want = float(str(expected).replace(",", ""))
        except ValueError:
            raise ScoreError(f"expected {expected!r} is not a number") from None
        return abs(number_in(output) - want) <= tolerance
    return score


def json_field(path: str) -> Callable[[str, dict], bool]:
    steps = path.split(".")

    def score(output: str, item: dict) -> bool:
        expected = _expected(item)
        text = output.strip()
        fenced = _FENCE.match(text)  # models like to wrap JSON in ```json fences
        try:
            value = orjson.loads(fenced.group(1) if fenced else text)
        except orjson.JSONDecodeError:
            raise ScoreError("the output is not JSON") from None
        for step in steps:
            if isinstance(value, dict) and step in value:
                value = value[step]
            elif isinstance(value, list) and step.lstrip("-").isdigit() \
                    and -len(value) <= int(step) < len(value):
                value = value[int(step)]
            else:
                raise ScoreError(f"the output has no field {path}")
        return value == expected
    return score


def parse_scorer(spec: str) -> Scorer:
    """One ``--scorer`` value; ValidationError(field='--scorer') when it names nothing."""
    text = spec.strip()
    name, _, arg = text.partition(":")
    if name == "exact" and not arg:
        return Scorer(text, exact)
    if name == "contains" and not arg:
        return Scorer(text, contains)
    if name == "regex" and not arg:
        return Scorer(text, regex)
    if name == "numeric":
        try:
            tolerance = float(arg) if arg else 1e-9
        except ValueError:
            tolerance = -1.0
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValidationError(f"numeric tolerance must be a number >= 0, got {arg!r}",
                                  field="--scorer", hint="e.g. --scorer numeric:0.01")
        return Scorer(text, numeric(tolerance))
    if name == "json_field":
        if not arg or any(not step for step in arg.split(".")):
            raise ValidationError(f"json_field needs a field path, got {text!r}",
                                  field="--scorer", hint="e.g. --scorer json_field:answer.total")
        return Scorer(text, json_field(arg))
    target, _, minimum = text.partition("@")
    if CALLABLE_RE.match(target):
        try:
            floor = float(minimum) if minimum else 0.5
        except ValueError:
            floor = -1.0
        if not (math.isfinite(floor) and 0 < floor <= 1):
            raise ValidationError(f"{text}: the pass mark after @ must be a number in (0, 1]",
                                  field="--scorer", hint="e.g. --scorer mypkg.scoring:bleu@0.3")
        return Scorer(text, import_callable(target, "--scorer"), floor)
    raise ValidationError(f"unknown scorer {text!r}", field="--scorer",
                          hint="built-in: exact, contains, regex, numeric[:TOL], "
                               "json_field:PATH; or MODULE:FUNC for your own")


def parse_scorers(specs: list[str] | None) -> list[Scorer]:
    """Every ``--scorer``; ``exact`` when none is given. Repeats are refused."""
    scorers = [parse_scorer(s) for s in (specs or ["exact"])]
    names = [s.name for s in scorers]
    for name in names:
        if names.count(name) > 1:
            raise ValidationError(f"scorer {name!r} is given twice", field="--scorer")
    return scorers
