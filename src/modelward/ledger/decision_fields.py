"""Validating one decision (from the SDK, a JSONL backfill or the API) into the row tuple
the chain hashes: :func:`normalize`.

The recorder calls it on the serving hot path, so a plain ``dict`` of well-formed values
takes a fast path (:func:`_normalize_common`); anything else, and every error message,
comes from the field-by-field reference (:func:`_normalize_checked`).
"""

from __future__ import annotations

import math
import os
import socket
import unicodedata
from collections.abc import Mapping

import orjson

from ..digest import DIGEST_RE, canonical_json, non_finite_path, of_text
from ..errors import ValidationError
from ..ids import is_uuid, uuid7
from ..timefmt import MAX_US, MIN_US, iso, now_us, parse_time

DIGEST_FIELDS = ("model_digest", "prompt_digest", "embedder_digest", "reranker_digest",
                 "config_digest")
# The decision field that names an artifact of each kind (what an alias of that kind
# resolves into).
KIND_FIELD = {"model": "model_digest", "adapter": "model_digest", "prompt": "prompt_digest",
              "embedder": "embedder_digest", "reranker": "reranker_digest",
              "config": "config_digest"}
STRING_FIELDS = {"alias": 200, "vendor_model_id": 300, "vendor_fingerprint": 300,
                 "subject": 300, "process": 300}
FIELDS = frozenset(("id", "at", "alias", *DIGEST_FIELDS, "vendor_model_id",
                    "vendor_fingerprint", "subject", "input_digest", "output_digest",
                    "input_text", "output_text", "segments", "gate", "process", "extra"))
GATE_FIELDS = ("threshold", "candidates", "passed")

_match_digest = DIGEST_RE.match
# Values the database would refuse at insert time must be refused here: a row that passes
# normalize but fails in append poisons the recorder's whole batch (it retries forever).
_INT32_MAX = 2_147_483_647
_isfinite = math.isfinite


def _utf8_ok(text: str) -> bool:
    """False for a str holding an unpaired surrogate (not encodable as UTF-8)."""
    if text.isascii():  # O(1) in CPython
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
_PROCESS = f"{socket.gethostname()}:{os.getpid()}"


def default_process() -> str:
    return _PROCESS


def _digest(value, field: str, line):
    if value is None:
        return None
    if type(value) is not str or len(value) != 71 or _match_digest(value) is None:
        raise ValidationError(
            f"not a sha256:<64 hex> digest: {str(value)[:80]!r}", field=field, line=line,
            hint="record the resolved digest (ledger.resolve(alias).digest), not an alias")
    return value


def _string(value, field: str, line, limit: int):
    if value is None:
        return None
    if type(value) is not str:
        raise ValidationError(f"expected a string, got {type(value).__name__}", field=field,
                              line=line)
    if not _utf8_ok(value):
        raise ValidationError("holds an unpaired surrogate (not UTF-8 text)", field=field,
                              line=line)
    value = nfc(value)
    if len(value) > limit or "\x00" in value:
        raise ValidationError(f"longer than {limit} characters or holds a NUL byte",
                              field=field, line=line)
    return value


def nfc(text: str) -> str:
    """``text`` in Unicode normalisation form C: one spelling of "é", whichever the client
    sent, so equal-looking names are equal and hash alike (ASCII is always NFC)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def canonical_value(value, field: str, line=None):
    """A JSON value with every string in NFC and every number finite (orjson would write
    NaN and ±inf as null: the value recorded would not be the value given). A non-finite
    number is refused naming its path (``segments.score``, ``extra.probs[1]``)."""
    if isinstance(value, str):
        return nfc(value)
    if isinstance(value, float):
        if not _isfinite(value):
            raise ValidationError(f"{value!r} is not a finite number: NaN and infinity are "
                                  "not numbers JSON can hold", field=field, line=line)
        return value + 0.0  # -0.0 + 0.0 == 0.0
    if isinstance(value, Mapping):
        return {nfc(k) if isinstance(k, str) else k: canonical_value(v, f"{field}.{k}", line)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical_value(v, f"{field}[{i}]", line) for i, v in enumerate(value)]
    return value


def _json_object(value, field: str, line):
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"expected an object, got {type(value).__name__}", field=field,
                              line=line)
    for k, v in value.items():
        if not isinstance(k, str):
            raise ValidationError("keys must be strings", field=field, line=line)
        if field == "segments" and not (v is None or isinstance(v, (str, int, float, bool))):
            raise ValidationError(f"segment {k!r} must be a string, number or boolean",
                                  field=f"segments.{k}", line=line)
    value = canonical_value(value, field, line)
    try:
        text = canonical_json(value).decode()
    except TypeError as exc:
        raise ValidationError(f"not JSON-serialisable: {exc}", field=field, line=line) from None
    # orjson writes NaN and infinities as null: only then is a closer look needed
    if "null" in text and (where := non_finite_path(value)) is not None:
        raise ValidationError("NaN and infinity are not numbers JSON can hold",
                              field=f"{field}.{where}", line=line)
    return text


def _int(value, field: str, line):
    if value is None:
        return None
    if type(value) is not int or value < 0 or value > _INT32_MAX:
        raise ValidationError(f"expected an integer from 0 to {_INT32_MAX}, got {value!r}",
                              field=field, line=line)
    return value


DEFAULT_CLOCK_SKEW = 5 * 60 * 1_000_000  # the clock_skew setting's default, in µs


def _span(us: int) -> str:
    s = us // 1_000_000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if s >= size:
            return f"{s / size:.1f}{unit}".replace(".0", "")
    return f"{s}s"


def check_time(at: int, now: int, *, skew: int = DEFAULT_CLOCK_SKEW,
               window: int | None = None, line: int | None = None) -> None:
    """Refuse a decision time that no honest clock gives: more than ``skew`` after ``now``
    (the moment it is recorded), or, with ``window`` set, further back than it. A host
    with a wrong clock would otherwise hide its decisions from every windowed guard."""
    if at > now + skew:
        raise ValidationError(
            f"{iso(at)} is {_span(at - now)} after it was recorded ({iso(now)}), beyond "
            f"clock_skew ({_span(skew)}): the recording host's clock is ahead", field="at",
            line=line, hint="fix the host's clock (NTP); clock_skew sets the tolerance")
    if window is not None and at < now - window:
        raise ValidationError(
            f"{iso(at)} is {_span(now - at)} before it was recorded ({iso(now)}), beyond "
            f"ingest_window ({_span(window)}): the recording host's clock is behind", field="at",
            line=line, hint="fix the host's clock (NTP); to backfill older decisions, unset "
                            "ingest_window for the import")


def normalize(d: Mapping, *, line: int | None = None, now: int | None = None,
              process: str | None = None) -> tuple[tuple, tuple | None]:
    """Validate one decision. Returns (row without recorded_at/block/pos, payload or None).

    The row holds the chained columns up to ``extra``; raises ValidationError naming the
    field (and the input line) on the first problem."""
    fast = _normalize_common(d, now, process)
    if fast is not None:
        return fast
    return _normalize_checked(d, line=line, now=now, process=process)


_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))
_GATE_KEYS = frozenset(GATE_FIELDS)
_known_fields = FIELDS.issuperset
_dumps = orjson.dumps
_SORT_KEYS = orjson.OPT_SORT_KEYS
# Artifact digests already seen well-formed: a serving process names the same few model and
# prompt digests on every call, so a dict lookup replaces the regex (bounded: cleared when full).
_good_digests: dict[str, None] = {}


def _artifact_digest_ok(value) -> bool:
    if type(value) is not str:
        return False
    if value in _good_digests:
        return True
    if len(value) != 71 or _match_digest(value) is None:
        return False
    if len(_good_digests) >= 4096:
        _good_digests.clear()
    _good_digests[value] = None
    return True


_fromhex = bytes.fromhex


def _text_digest_ok(value) -> bool:
    """:data:`DIGEST_RE`'s verdict (``sha256:`` and 64 lowercase hex digits) at about a third
    of its cost: the digits decode as hex (no other character does) and encode back to
    themselves (so no capital, no space; tests compare the two on random and odd input)."""
    if type(value) is not str or len(value) != 71 or not value.startswith("sha256:"):
        return False
    digits = value[7:]
    try:
        return _fromhex(digits).hex() == digits
    except ValueError:
        return False


def _plain_json(text: str) -> bool:
    """True when JSON text needs no canonicalising: ASCII (so NFC), and no ``null`` that
    could have been a NaN or an infinity, nor a ``-0.0`` (the checked path settles those)."""
    return text.isascii() and "null" not in text and "-0.0" not in text


def _normalize_common(d, now, process):
    """:func:`normalize` for the common case, without a call per field (this is the
    recorder's hot path). Returns None for anything unusual — a Mapping that is not a dict,
    an ISO ``at``, a str subclass, any invalid value — and :func:`_normalize_checked` then
    produces the row or the precise error. Accepts nothing the checked path rejects and
    returns exactly what it returns."""
    if type(d) is not dict or not _known_fields(d):
        return None
    get = d.get
    did = get("id")
    if did is not None and (type(did) is not str or not is_uuid(did)):
        return None
    at = get("at")
    if at is not None and (type(at) is not int or not MIN_US <= at <= MAX_US):
        return None
    artifacts = (get("model_digest"), get("prompt_digest"), get("embedder_digest"),
                 get("reranker_digest"), get("config_digest"))  # DIGEST_FIELDS order
    for value in artifacts:
        if value is not None and not _artifact_digest_ok(value):
            return None
    input_digest, output_digest = get("input_digest"), get("output_digest")
    if input_digest is not None and not _text_digest_ok(input_digest):
        return None
    if output_digest is not None and not _text_digest_ok(output_digest):
        return None
    input_text, output_text = get("input_text"), get("output_text")
    if input_text is not None:
        if type(input_text) is not str or "\x00" in input_text:
            return None
        try:
            digest = of_text(input_text)
        except UnicodeEncodeError:
            return None
        if input_digest is None:
            input_digest = digest
        elif input_digest != digest:
            return None
    if output_text is not None:
        if type(output_text) is not str or "\x00" in output_text:
            return None
        try:
            digest = of_text(output_text)
        except UnicodeEncodeError:
            return None
        if output_digest is None:
            output_digest = digest
        elif output_digest != digest:
            return None
    alias, subject, proc = get("alias"), get("subject"), get("process")
    vendor_model_id, vendor_fingerprint = get("vendor_model_id"), get("vendor_fingerprint")
    for value, limit in ((alias, 200), (subject, 300), (proc, 300), (vendor_model_id, 300),
                         (vendor_fingerprint, 300)):
        if value is not None and (type(value) is not str or len(value) > limit
                                  or "\x00" in value or not value.isascii()):
            return None  # non-ASCII: the checked path tests it is UTF-8
    segments = get("segments")
    if segments is not None:
        if type(segments) is not dict:
            return None
        for value in segments.values():
            kind = type(value)
            if kind not in _SCALAR_TYPES or (kind is float and not _isfinite(value)):
                return None
        try:  # orjson refuses non-str keys: the checked path then names the problem
            segments = _dumps(segments, option=_SORT_KEYS).decode()
        except TypeError:
            return None
        if not _plain_json(segments):
            return None
    extra = get("extra")
    if extra is not None:
        if type(extra) is not dict:
            return None
        try:
            extra = _dumps(extra, option=_SORT_KEYS).decode()
        except TypeError:
            return None
        if not _plain_json(extra):
            return None
    gate = get("gate")
    threshold = candidates = passed = None
    if gate is not None:
        if type(gate) is not dict or not _GATE_KEYS.issuperset(gate):
            return None
        get_gate = gate.get
        threshold, candidates, passed = (get_gate("threshold"), get_gate("candidates"),
                                         get_gate("passed"))
        if threshold is not None:
            kind = type(threshold)
            if kind is int:
                threshold = float(threshold)
            elif kind is not float or not _isfinite(threshold):
                return None
            threshold += 0.0  # -0.0 is stored as 0.0 by SQLite: record it so
        for value in (candidates, passed):
            if value is not None and (type(value) is not int or value < 0
                                      or value > _INT32_MAX):
                return None
        if candidates is not None and passed is not None and passed > candidates:
            return None
    # every check passed: only now spend an id and a clock read
    if did is None:
        did = uuid7()
    if at is None:
        at = now if now is not None else now_us()
    row = (did, at, alias, *artifacts, vendor_model_id, vendor_fingerprint, subject,
           input_digest, output_digest, segments, threshold, candidates, passed,
           proc or process or _PROCESS, extra)
    if input_text is None and output_text is None:
        return row, None
    return row, (did, subject, input_text, output_text)


def _normalize_checked(d: Mapping, *, line: int | None, now: int | None,
                       process: str | None) -> tuple[tuple, tuple | None]:
    """:func:`normalize` field by field: the reference behaviour and every error message."""
    if not isinstance(d, Mapping):
        raise ValidationError(f"a decision must be an object, got {type(d).__name__}", line=line)
    unknown = d.keys() - FIELDS
    if unknown:
        raise ValidationError(f"unknown field(s): {', '.join(sorted(unknown))}",
                              field=sorted(unknown)[0], line=line)
    get = d.get
    did = get("id")
    if did is None:
        did = uuid7()
    elif not is_uuid(did):
        raise ValidationError(f"not a lowercase UUID: {str(did)[:60]!r}", field="id", line=line)
    at = get("at")
    if at is None:
        at = now if now is not None else now_us()
    else:
        try:
            at = parse_time(at, field="at")
        except ValidationError as exc:
            raise ValidationError(exc.detail, field="at", line=line, hint=exc.hint) from None
    input_text, output_text = get("input_text"), get("output_text")
    input_digest = _digest(get("input_digest"), "input_digest", line)
    output_digest = _digest(get("output_digest"), "output_digest", line)
    for name, text, dig in (("input", input_text, input_digest),
                            ("output", output_text, output_digest)):
        if text is None:
            continue
        if type(text) is not str or "\x00" in text or not _utf8_ok(text):
            raise ValidationError("expected UTF-8 text without NUL bytes",
                                  field=f"{name}_text", line=line)
        if dig is not None and dig != of_text(text):
            raise ValidationError(f"{name}_digest does not match {name}_text",
                                  field=f"{name}_digest", line=line)
    if input_text is not None and input_digest is None:
        input_digest = of_text(input_text)
    if output_text is not None and output_digest is None:
        output_digest = of_text(output_text)
    gate = get("gate")
    threshold = candidates = passed = None
    if gate is not None:
        if not isinstance(gate, Mapping):
            raise ValidationError("expected an object with threshold, candidates, passed",
                                  field="gate", line=line)
        extra_keys = gate.keys() - set(GATE_FIELDS)
        if extra_keys:
            raise ValidationError(f"unknown field(s): {', '.join(sorted(extra_keys))}",
                                  field="gate", line=line)
        threshold = gate.get("threshold")
        if threshold is not None:
            if type(threshold) not in (int, float) or not _isfinite(threshold):
                raise ValidationError(f"expected a finite number, got {threshold!r}",
                                      field="gate.threshold", line=line)
            threshold = float(threshold) + 0.0  # -0.0 + 0.0 == 0.0, as SQLite stores it
        candidates = _int(gate.get("candidates"), "gate.candidates", line)
        passed = _int(gate.get("passed"), "gate.passed", line)
        if candidates is not None and passed is not None and passed > candidates:
            raise ValidationError(f"passed ({passed}) exceeds candidates ({candidates})",
                                  field="gate.passed", line=line)
    subject = _string(get("subject"), "subject", line, 300)
    row = (
        did, at,
        _string(get("alias"), "alias", line, 200),
        _digest(get("model_digest"), "model_digest", line),
        _digest(get("prompt_digest"), "prompt_digest", line),
        _digest(get("embedder_digest"), "embedder_digest", line),
        _digest(get("reranker_digest"), "reranker_digest", line),
        _digest(get("config_digest"), "config_digest", line),
        _string(get("vendor_model_id"), "vendor_model_id", line, 300),
        _string(get("vendor_fingerprint"), "vendor_fingerprint", line, 300),
        subject, input_digest, output_digest,
        _json_object(get("segments"), "segments", line),
        threshold, candidates, passed,
        _string(get("process"), "process", line, 300) or process or _PROCESS,
        _json_object(get("extra"), "extra", line),
    )
    payload = None
    if input_text is not None or output_text is not None:
        payload = (did, subject, input_text, output_text)
    return row, payload
