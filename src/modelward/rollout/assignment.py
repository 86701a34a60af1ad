"""Salted assignment: which arm a subject is in, as a pure function of salt and subject.

The rule (docs/experiments.md publishes test vectors; any language can reimplement it):

1. key = the first 16 bytes of SHA-256(``b"modelward/assign/v1\\x00"`` + UTF-8 salt);
2. h = SipHash-2-4(key, UTF-8 subject), an unsigned 64-bit integer (little-endian output);
3. uniform = (h >> 11) / 2**53, a double in [0, 1) (exact: 53 bits);
4. with arms in their listed order and weights w1..wk (sum W), bound_i = (w1 + … + wi) / W
   in IEEE double arithmetic (the last bound is 1.0); the arm is the first i with
   uniform < bound_i.

:meth:`Experiment.assign` runs it for one subject (a C SipHash when ``siphashc`` is
installed, else pure Python; the two are bit-identical); :meth:`Experiment.assign_many`
runs it over many subjects with numpy and returns exactly what ``assign`` returns.
Light on purpose: the SDK imports this module; numpy loads only for ``assign_many``.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping

from ..errors import ValidationError
from . import siphash

try:  # the C implementation, ~40x faster per call; verified against ours in tests/rollout
    from siphashc import siphash as _c_siphash
except ImportError:  # pragma: no cover - siphashc is a dependency; keep working without it
    _c_siphash = None

KEY_DOMAIN = b"modelward/assign/v1\x00"
_TWO_53 = 2.0 ** -53
MAX_ARM = 100  # characters of an arm name (exposures.arm)


def key_of(salt: str) -> bytes:
    """The 16-byte SipHash key of a salt."""
    return hashlib.sha256(KEY_DOMAIN + salt.encode("utf-8")).digest()[:16]


def parse_arms(value, *, field: str = "arms") -> tuple[tuple[str, float], ...]:
    """Arms from ``"control=95,treatment=5"``, a mapping or (name, weight) pairs, in order.

    Weights are positive finite numbers; names are unique, non-empty, at most 100 characters
    without ``=``, ``,`` or whitespace at either end."""
    if isinstance(value, str):
        pairs = []
        for part in value.split(","):
            name, eq, weight = part.strip().partition("=")
            if not eq:
                raise ValidationError(f"{part.strip()!r} is not NAME=WEIGHT", field=field,
                                      hint="write e.g. control=95,treatment=5")
            try:
                pairs.append((name.strip(), float(weight)))
            except ValueError:
                raise ValidationError(f"weight of {name.strip()!r} is not a number: "
                                      f"{weight.strip()!r}", field=field) from None
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, Iterable):
        pairs = [tuple(p) for p in value]
    else:
        raise ValidationError("expected NAME=WEIGHT pairs", field=field)
    if len(pairs) < 2:
        raise ValidationError("an experiment needs at least two arms", field=field,
                              hint="write e.g. control=95,treatment=5")
    out, seen = [], set()
    for pair in pairs:
        if len(pair) != 2:
            raise ValidationError(f"{pair!r} is not a (name, weight) pair", field=field)
        name, weight = pair
        if (not isinstance(name, str) or not name or name != name.strip() or len(name) > MAX_ARM
                or "," in name or "=" in name or "\x00" in name):
            raise ValidationError(f"arm name {name!r} must be 1-{MAX_ARM} characters without "
                                  "',', '=' or surrounding spaces", field=field)
        if name in seen:
            raise ValidationError(f"arm {name!r} is listed twice", field=field)
        if (isinstance(weight, bool) or not isinstance(weight, (int, float))
                or not math.isfinite(weight) or weight <= 0):
            raise ValidationError(f"weight of {name!r} must be a positive number, got "
                                  f"{weight!r}", field=field)
        seen.add(name)
        out.append((name, float(weight)))
    return tuple(out)


def subject_text(subject, field: str = "subject") -> str:
    """A subject as the string that is hashed: a str as is, an int in decimal."""
    if type(subject) is str:
        text = subject
    elif isinstance(subject, int) and not isinstance(subject, bool):
        text = str(int(subject))
    else:
        raise ValidationError(f"expected a string (or an integer) subject, got "
                              f"{type(subject).__name__}", field=field)
    if not text:
        raise ValidationError("the subject is empty", field=field)
    return text


class Experiment:
    """An experiment's assignment rule: name, salt and weighted arms (immutable)."""

    __slots__ = ("name", "salt", "arms", "control", "created_at", "balance", "_key", "_state",
                 "_names", "_bounds")

    def __init__(self, name: str, salt: str, arms, *, created_at: int | None = None,
                 balance: dict | None = None) -> None:
        if not isinstance(salt, str) or not salt:
            raise ValidationError("the salt must be a non-empty string", field="salt")
        self.name = name
        self.salt = salt
        self.arms = parse_arms(arms)
        self._names = tuple(n for n, _ in self.arms)
        self.control = "control" if "control" in self._names else self._names[0]
        self.created_at = created_at
        self.balance = balance
        weights = [w for _, w in self.arms]
        total = math.fsum(weights)
        self._bounds = tuple(math.fsum(weights[:i + 1]) / total
                             for i in range(len(weights) - 1)) + (1.0,)
        self._key = key_of(salt)
        self._state = siphash.initial_state(self._key)

    def __repr__(self) -> str:
        arms = ",".join(f"{n}={w:g}" for n, w in self.arms)
        return f"Experiment({self.name!r}, salt={self.salt!r}, arms={arms!r})"

    @property
    def arm_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def shares(self) -> dict[str, float]:
        total = math.fsum(w for _, w in self.arms)
        return {n: w / total for n, w in self.arms}

    @property
    def bounds(self) -> tuple[float, ...]:
        return self._bounds

    # --- one subject ------------------------------------------------------------------
    def hash(self, subject) -> int:
        """SipHash-2-4 of the subject under this experiment's key."""
        text = subject if type(subject) is str and subject else subject_text(subject)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("holds an unpaired surrogate (not UTF-8 text)",
                                  field="subject") from None
        if _c_siphash is not None:
            return _c_siphash(self._key, data)
        return siphash.siphash24(self._state, data)

    def uniform(self, subject) -> float:
        """The subject's uniform draw in [0, 1)."""
        return (self.hash(subject) >> 11) * _TWO_53

    def assign(self, subject) -> str:
        """The arm of one subject."""
        return self._names[bisect_right(self._bounds, (self.hash(subject) >> 11) * _TWO_53)]

    # --- many subjects ----------------------------------------------------------------
    def hashes(self, subjects):
        """SipHash-2-4 of every subject (a list, tuple or numpy array), as uint64."""
        return siphash.siphash24_many(self._state, pack(subjects))

    def arm_indices(self, subjects=None, *, hashes=None):
        """Index into :attr:`arm_names` of every subject (int8 numpy array)."""
        import numpy as np

        h = self.hashes(subjects) if hashes is None else hashes
        u = (h >> np.uint64(11)).astype(np.float64) * _TWO_53
        return np.searchsorted(np.asarray(self._bounds), u, side="right").astype(np.int8)

    def assign_many(self, subjects):
        """The arm of every subject, in order: a numpy object array of the same str objects
        :meth:`assign` returns."""
        import numpy as np

        return np.asarray(self._names, dtype=object)[self.arm_indices(subjects)]


def pack(subjects) -> siphash.Packed:
    """Subjects (str or int; a list, tuple, or numpy array) packed for hashing."""
    import numpy as np

    if isinstance(subjects, siphash.Packed):
        return subjects
    if isinstance(subjects, np.ndarray):
        if subjects.ndim != 1:
            raise ValidationError("expected a one-dimensional array of subjects",
                                  field="subjects")
        if subjects.dtype.kind in "iu":
            subjects = [str(x) for x in subjects.tolist()]
        else:
            subjects = subjects.tolist()
    elif not isinstance(subjects, (list, tuple)):
        subjects = list(subjects)
    try:  # str.join refuses anything but str: no per-subject check on the common path
        packed = siphash.Packed.from_strings(subjects)
    except TypeError:
        subjects = [subject_text(s, field=f"subjects[{i}]") for i, s in enumerate(subjects)]
        packed = None
    except UnicodeEncodeError:
        packed = None
    if packed is None:
        for i, text in enumerate(subjects):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("holds an unpaired surrogate (not UTF-8 text)",
                                      field=f"subjects[{i}]") from None
        packed = siphash.Packed.from_strings(subjects)
    empty = np.flatnonzero(packed.lengths == 0)
    if len(empty):
        raise ValidationError("the subject is empty", field=f"subjects[{empty[0]}]")
    return packed


def assign(experiment: Experiment, subject) -> str:
    """The arm ``subject`` is in: a pure function of the experiment's salt and arms."""
    return experiment.assign(subject)


def assign_many(experiment: Experiment, subjects):
    """:func:`assign` for many subjects at once (numpy); an object array of arm names."""
    return experiment.assign_many(subjects)
