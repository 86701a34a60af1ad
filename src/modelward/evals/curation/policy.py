"""Curation policies: which feedback events may become training data.

A policy is a small TOML file (see docs/feedback.md)::

    name = "sft-default"
    surfaces = ["production"]
    author_kinds = ["customer"]
    intents = ["incorrect", "unsafe"]
    require_correction = true
    dedupe = "input"

Its digest is the sha256 of the file's bytes; ``modelward curate`` registers it as a
``policy`` artifact and names it as the parent of every dataset it builds. The judge is
time-independent on purpose: the same feedback under the same policy gets the same
verdict whenever MW304 re-checks a dataset.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ...digest import of_bytes
from ...errors import ValidationError
from ...ledger.feedback import AUTHOR_KINDS, INTENTS, SURFACES

BUILTIN_DIR = Path(__file__).parent.parent / "policies"
DEFAULT_POLICY = "sft-default"
DEDUPE = ("none", "input", "input+correction")
KEYS = ("name", "description", "surfaces", "author_kinds", "intents", "exclude_authors",
        "require_correction", "min_correction_chars", "min_comment_chars", "rating_min",
        "rating_max", "dedupe")

# Reasons without a value; "surface:X", "author_kind:X" and "intent:X" carry the value.
LABELS = {
    "unknown_feedback": "feedback not in the ledger",
    "unknown_decision": "decision not in the ledger",
    "excluded_author": "excluded author",
    "no_rating": "no rating",
    "rating_out_of_range": "rating out of range",
    "no_correction": "no correction",
    "correction_too_short": "correction too short",
    "comment_too_short": "comment too short",
    "decision_text_erased": "decision text erased",
    "no_decision_text": "no decision text stored",
    "duplicate": "duplicate input",
}


def reason_label(reason: str) -> str:
    """``author_kind:employee`` -> ``employee author``; ``intent:style`` -> ``intent style``."""
    kind, _, value = reason.partition(":")
    if kind == "surface":
        return f"surface {value}"
    if kind == "author_kind":
        return f"{value} author"
    if kind == "intent":
        return f"intent {value}"
    return LABELS.get(reason, reason)


@dataclass(frozen=True)
class Policy:
    name: str
    digest: str  # sha256 of the file's bytes
    source: str  # the file, or builtin:NAME
    raw: bytes
    description: str | None = None
    surfaces: tuple[str, ...] = SURFACES
    author_kinds: tuple[str, ...] = AUTHOR_KINDS
    intents: tuple[str, ...] = INTENTS
    exclude_authors: tuple[str, ...] = ()
    require_correction: bool = False
    min_correction_chars: int = 0
    min_comment_chars: int = 0
    rating_min: float | None = None
    rating_max: float | None = None
    dedupe: str = "input"

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if k != "raw"}


def _bad(key: str, detail: str, source: str) -> ValidationError:
    return ValidationError(f"{detail} (policy {source})", field=key,
                           hint="see docs/feedback.md for the policy format")


def _choices(doc, key, allowed, source) -> tuple[str, ...]:
    value = doc[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(key, "must be a list of strings", source)
    for v in value:
        if v not in allowed:
            raise _bad(key, f"{v!r} is not one of {', '.join(allowed)}", source)
    return tuple(dict.fromkeys(value))


def _count(doc, key, source) -> int:
    value = doc[key]
    if type(value) is not int or value < 0:
        raise _bad(key, f"must be a whole number of characters >= 0, got {value!r}", source)
    return value


def parse_policy(data: bytes, *, source: str, default_name: str | None = None) -> Policy:
    """Validate a policy file; unknown keys and bad values are errors naming the key."""
    try:
        doc = tomllib.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"policy {source} is not valid TOML: {exc}",
                              field="policy") from None
    for key in doc:
        if key not in KEYS:
            raise _bad(key, "unknown key; known keys: " + ", ".join(KEYS), source)
    kw: dict = {}
    for key in ("name", "description"):
        if key in doc:
            if not isinstance(doc[key], str) or not doc[key].strip():
                raise _bad(key, "must be a non-empty string", source)
            kw[key] = doc[key].strip()
    kw.setdefault("name", default_name)
    if not kw["name"]:
        raise _bad("name", "a policy needs a name", source)
    for key, allowed in (("surfaces", SURFACES), ("author_kinds", AUTHOR_KINDS),
                         ("intents", INTENTS)):
        if key in doc:
            kw[key] = _choices(doc, key, allowed, source)
    if "exclude_authors" in doc:
        value = doc["exclude_authors"]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _bad("exclude_authors", "must be a list of strings", source)
        kw["exclude_authors"] = tuple(value)
    if "require_correction" in doc:
        if not isinstance(doc["require_correction"], bool):
            raise _bad("require_correction", "must be true or false", source)
        kw["require_correction"] = doc["require_correction"]
    for key in ("min_correction_chars", "min_comment_chars"):
        if key in doc:
            kw[key] = _count(doc, key, source)
    for key in ("rating_min", "rating_max"):
        if key in doc:
            if type(doc[key]) not in (int, float) or not math.isfinite(doc[key]):
                raise _bad(key, f"must be a number, got {doc[key]!r}", source)
            kw[key] = float(doc[key])
    if kw.get("rating_min") is not None and kw.get("rating_max") is not None \
            and kw["rating_min"] > kw["rating_max"]:
        raise _bad("rating_min", "is greater than rating_max", source)
    if "dedupe" in doc:
        if doc["dedupe"] not in DEDUPE:
            raise _bad("dedupe", f"{doc['dedupe']!r} is not one of {', '.join(DEDUPE)}", source)
        kw["dedupe"] = doc["dedupe"]
    return Policy(digest=of_bytes(data), source=source, raw=data, **kw)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_policy(ref: str | Path) -> Policy:
    """A policy file, or the name of a shipped policy (``sft-default``)."""
    path = Path(ref)
    if path.is_file():
        return parse_policy(path.read_bytes(), source=str(path), default_name=path.stem)
    builtin = BUILTIN_DIR / f"{ref}.toml"
    if str(ref) in builtin_names():
        return parse_policy(builtin.read_bytes(), source=f"builtin:{ref}", default_name=str(ref))
    raise ValidationError(f"{ref} is neither a policy file nor a shipped policy", field="--policy",
                          hint="shipped policies: " + ", ".join(builtin_names()))


def default_policy() -> Policy:
    return load_policy(DEFAULT_POLICY)


def normalized(text: str) -> str:
    """What dedupe compares: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


class Judge:
    """Applies one policy to feedback rows in order; remembers inputs for dedupe.

    A row is a mapping with the feedback columns plus ``found_decision`` (the decision's id
    when it exists), ``input_text`` and ``erased_at`` of its payload. Each row gets the
    first reason that excludes it (in the order below), or None when admitted."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._seen: set[bytes] = set()

    def __call__(self, row: Mapping) -> str | None:
        p = self.policy
        if row["id"] is None:
            return "unknown_feedback"
        if row["found_decision"] is None:
            return "unknown_decision"
        if row["surface"] not in p.surfaces:
            return f"surface:{row['surface']}"
        if row["author_kind"] not in p.author_kinds:
            return f"author_kind:{row['author_kind']}"
        if p.exclude_authors and row["author"] in p.exclude_authors:
            return "excluded_author"
        if row["intent"] not in p.intents:
            return f"intent:{row['intent']}"
        rating = row["rating"]
        if p.rating_min is not None or p.rating_max is not None:
            if rating is None:
                return "no_rating"
            if (p.rating_min is not None and rating < p.rating_min) or \
                    (p.rating_max is not None and rating > p.rating_max):
                return "rating_out_of_range"
        correction = (row["correction"] or "").strip()
        if p.require_correction and not correction:
            return "no_correction"
        if correction and len(correction) < p.min_correction_chars:
            return "correction_too_short"
        if p.min_comment_chars and len((row["comment"] or "").strip()) < p.min_comment_chars:
            return "comment_too_short"
        if row["erased_at"] is not None:
            return "decision_text_erased"
        if row["input_text"] is None:
            return "no_decision_text"
        if p.dedupe != "none":
            key = normalized(row["input_text"])
            if p.dedupe == "input+correction":
                key += "\x00" + normalized(correction)
            h = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
            if h in self._seen:
                return "duplicate"
            self._seen.add(h)
        return None
