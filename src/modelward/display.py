"""How modelward shows values to people: one vocabulary for every surface (CLI, pages,
guard messages). A foundation module: it imports nothing from the package.

``inert`` makes a string from the ledger safe to print on a terminal: names, reasons and
notes are written by whoever could write to the ledger, and a terminal obeys control
sequences (cursor moves, colours, OSC 8 hyperlinks, window titles) and Unicode bidi
overrides, which can make a line say something its bytes do not."""

from __future__ import annotations

# Unicode bidi controls: embeddings and overrides (U+202A-202E), isolates (U+2066-2069),
# and the marks (ALM, LRM, RLM); line and paragraph separators, which some terminals break on.
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SEPARATORS = "\u2028\u2029"
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_CONTROLS = [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]


def _visible(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_ONE_LINE = {ord(ch): _visible(ch) for ch in (*_CONTROLS, *_BIDI, *_SEPARATORS)}
_LINES = {k: v for k, v in _ONE_LINE.items() if chr(k) not in "\n\t"}
# JSON encoders escape C0 controls in strings; DEL, C1 and the rest are legal there raw
_JSON = {ord(ch): f"\\u{ord(ch):04x}" for ch in (*_CONTROLS[0x20:], *_BIDI, *_SEPARATORS)}


def inert(value: object, *, lines: bool = False) -> str:
    """``value`` as text a terminal shows and does not obey.

    C0 and C1 control characters (ESC, CSI U+009B, OSC U+009D, BEL, CR ...), DEL, the
    Unicode bidi controls and line separators are shown as visible escapes (``\\x1b``,
    ``\\u202e``). A field is one line: its newlines and tabs are escaped too, so a name
    cannot start a line of its own; ``lines=True`` keeps newlines and tabs, for text the
    program laid out itself."""
    return str(value).translate(_LINES if lines else _ONE_LINE)


def inert_json(text: str) -> str:
    """JSON text with the C1 controls, bidi controls and line separators inside its strings
    written as ``\\uXXXX`` escapes: the same JSON value, inert on a terminal."""
    return text.translate(_JSON)


# -- the vocabulary: how a digest, a count, a duration, a share and a size read ------------

MISSING = "-"
"""What every surface prints for a value that is not there (a digest never recorded)."""

_SHORT = 19  # "sha256:" and 12 hex digits


def short_digest(digest: str | None, *, missing: str = MISSING) -> str:
    """``sha256:1a2b3c4d5e6f…`` for messages and tables (evidence and JSON always carry
    the full digest); anything that is not a sha256 digest (a vendor id) as it is, and
    ``missing`` for no digest at all."""
    if not digest:
        return missing
    if digest.startswith("sha256:") and len(digest) > _SHORT:
        return digest[:_SHORT] + "…"
    return digest


def number(n: int) -> str:
    """``1,204``."""
    return f"{n:,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 decision``, ``1,204 decisions``; ``words`` for an irregular plural
    (``plural(n, "policy", "policies")``)."""
    return f"{n:,} " + (word if n == 1 else (words or word + "s"))


def percent(share: float | None, *, missing: str = MISSING) -> str:
    """A share in [0, 1] as ``37.5%``."""
    return missing if share is None else f"{share:.1%}"


_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000),
          ("ms", 1_000))


def duration(us: int) -> str:
    """A span of microseconds as ``30d``, ``5m``, ``90s``: the largest unit that divides it
    exactly, so it reads back through ``timefmt.parse_duration`` unchanged."""
    if us == 0:
        return "0s"
    for unit, size in _UNITS:
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"


def size(n: int | None) -> str:
    """A byte count as ``512 B``, ``1.5 MiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
