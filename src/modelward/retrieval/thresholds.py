"""Threshold policies: a retrieval gate's cut as a target pass rate, not a magic number.

A cut of 0.4 means one thing on one embedder and reranker and something else on the next.
A policy stores what the team wants, the share of a reference query set's candidates that
pass (``pass_rate``), or the quantile of their scores to cut at (``quantile``), and derives
the absolute cut from the reference scores; recalibrating on the new substrate keeps the
pass rate and moves the cut. A candidate passes when its score is at or above the cut.

Light on purpose: the SDK imports :class:`ThresholdPolicy` (no numpy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..csvfile import read_csv
from ..errors import ValidationError

SCORE_KEYS = ("score", "similarity", "relevance")
QUERY_KEYS = ("query", "query_id", "qid")


@dataclass
class ReferenceScores:
    scores: list[float]
    queries: int  # distinct query ids (0 when the file names none)


def _number(value: object, line: int) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(f"{value!r} is not a score", field="--scores", line=line) from None
    if not math.isfinite(x):
        raise ValidationError(f"{value!r} is not a finite score", field="--scores", line=line)
    return x


def _from_record(rec: dict, line: int, queries: set) -> float:
    key = next((k for k in SCORE_KEYS if k in rec), None)
    if key is None:
        raise ValidationError("a record needs a \"score\" field", field="--scores", line=line)
    q = next((rec[k] for k in QUERY_KEYS if k in rec), None)
    if q is not None:
        queries.add(str(q))
    return _number(rec[key], line)


def parse_scores(text: str, *, suffix: str = "", name: str = "--scores") -> ReferenceScores:
    """Scores from JSONL (``{"query": …, "score": …}`` or a number per line), a JSON list
    (of numbers or records), CSV with a ``score`` column, or one number per line."""
    scores: list[float] = []
    queries: set[str] = set()
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            values = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc}", field="--scores") from None
        for i, v in enumerate(values, start=1):
            scores.append(_from_record(v, i, queries) if isinstance(v, dict) else _number(v, i))
    elif suffix == ".csv" or (not stripped.startswith("{") and "," in stripped.split("\n")[0]):
        table = read_csv(text, name=name, lower_header=True)
        if not any(k in table.header for k in SCORE_KEYS):
            raise ValidationError("the CSV needs a \"score\" column", field="--scores", line=1)
        for i, row in table.rows:
            scores.append(_from_record(row, i, queries))
    else:
        for i, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            if raw.lstrip().startswith("{"):
                try:
                    rec = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise ValidationError(f"not valid JSON: {exc}", field="--scores",
                                          line=i) from None
                scores.append(_from_record(rec, i, queries))
            else:
                scores.append(_number(raw.strip(), i))
    if len(scores) < 2:
        raise ValidationError(f"{len(scores)} scores; calibration needs a reference set with "
                              "at least 2", field="--scores")
    return ReferenceScores(scores, len(queries))


def read_scores(path: str | Path) -> ReferenceScores:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationError(f"{file} does not exist", field="--scores") from None
    except UnicodeDecodeError:
        raise ValidationError(f"{file} is not UTF-8 text", field="--scores") from None
    return parse_scores(text, suffix=file.suffix.lower(), name=str(file))


def check_target(mode: str, target: float) -> float:
    if mode == "pass_rate" and not 0 < target <= 1:
        raise ValidationError(f"{target!r} is not a pass rate in (0, 1]",
                              field="--target-pass-rate")
    if mode == "quantile" and not 0 <= target < 1:
        raise ValidationError(f"{target!r} is not a quantile in [0, 1)", field="--quantile")
    return float(target)


def quantile(scores: list[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default)."""
    s = sorted(scores)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def cut_for(scores: list[float], mode: str, target: float) -> float:
    """The absolute cut: for ``pass_rate`` R the score of the ceil(R·n)-th best candidate
    (so at least R pass, ties included); for ``quantile`` q the q-quantile."""
    check_target(mode, target)
    if mode == "quantile":
        return quantile(scores, target)
    best = sorted(scores, reverse=True)
    k = max(1, math.ceil(target * len(best) - 1e-9))
    return best[k - 1]


def pass_rate(scores: list[float], cut: float) -> float:
    return sum(1 for s in scores if s >= cut) / len(scores) if scores else 0.0


@dataclass(frozen=True)
class ThresholdPolicy:
    """One version of a threshold policy, as serving code uses it."""

    name: str
    version: int
    cut_value: float
    mode: str
    target: float
    substrate: dict

    def passes(self, score: float) -> bool:
        return score >= self.cut_value

    def cut(self, candidates: Iterable, *, key: Callable[[object], float] | None = None) -> list:
        """The candidates that pass, in their order: scores, or any objects with ``key``
        giving the score (``(item, score)`` pairs need no key)."""
        out = []
        for c in candidates:
            if key is not None:
                score = key(c)
            elif isinstance(c, (tuple, list)) and len(c) == 2:
                score = c[1]
            else:
                score = c
            if score >= self.cut_value:
                out.append(c)
        return out

    @classmethod
    def from_version(cls, p) -> ThresholdPolicy:
        return cls(p.name, p.version, p.cut, p.mode, p.target, p.substrate)
