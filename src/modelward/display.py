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
