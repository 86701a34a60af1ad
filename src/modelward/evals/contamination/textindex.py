"""Text to hashes, vectorised over whole batches of documents: the normalisation every
contamination method shares, and word, shingle and whole-text hashes (MinHash is in
:mod:`.sketches`).

Normalisation: Unicode NFKC, casefold, every run of characters that are not letters or
digits (punctuation, symbols, whitespace, ``_``) becomes one space. A *word* is a run of
letters and digits after that. ASCII text (most of any corpus) takes a byte-translation
fast path that gives exactly what the Unicode path gives, and keeps character offsets 1:1
so spans can be cut from the original text.

Hashes are deterministic across processes (no Python ``hash``). A word is hashed from
8-byte chunks of its bytes and its length (words of up to 8 bytes never collide); a
shingle of k words is a keyed combination of its word hashes, finalised and cut to 44 bits
so a document number fits beside it in one sortable ``uint64``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

import numpy as np

U64 = np.uint64
HASH_BITS = 44  # shingle hashes; the 20 bits above hold a document's number in its batch
HASH_MASK = U64((1 << HASH_BITS) - 1)
MAX_BATCH_DOCS = 1 << 20

# ASCII fast path: letters lower-cased, digits kept, everything else a space.
_ASCII = bytes((c | 0x20) if (65 <= c <= 90) else c if (48 <= c <= 57 or 97 <= c <= 122)
               else 32 for c in range(256))
_NON_WORD = re.compile(r"[\W_]+")
_WORD_SPAN = re.compile(r"[^\W_]+")
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [(1 << 64) - 1], dtype=U64)
_K_LEN, _K_WORD = U64(0x9E3779B97F4A7C15), U64(0xFF51AFD7ED558CCD)
_K_CHAIN = U64(0xC4CEB9FE1A85EC53)
_M1, _M2 = U64(0xBF58476D1CE4E5B9), U64(0x94D049BB133111EB)
_PAD = b" " * 16


def normalized_bytes(text: str) -> bytes:
    """The normalised text as bytes, separators not yet folded (one byte per character for
    ASCII input, so offsets still point into the original)."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII)
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).encode("utf-8")


def normalize(text: str) -> str:
    """NFKC, casefold, punctuation and whitespace folded to single spaces."""
    return " ".join(normalized_bytes(text).decode("utf-8").split())


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place: every output bit depends on every input bit."""
    h ^= h >> U64(30)
    h *= _M1
    h ^= h >> U64(27)
    h *= _M2
    h ^= h >> U64(31)
    return h


@functools.lru_cache(maxsize=256)
def _constants(seed: int, n: int) -> np.ndarray:
    """n odd 64-bit constants, the same in every process."""
    rng = np.random.Generator(np.random.PCG64(seed))
    out = rng.integers(0, 1 << 63, n, dtype=np.int64).astype(U64) * U64(2) + U64(1)
    out.flags.writeable = False  # cached and shared
    return out


@dataclass
class Batch:
    """One batch of documents, tokenised: words, their hashes and where they are."""

    texts: list[str]
    buf: np.ndarray  # uint8: " " + normalised docs joined by " " + padding
    doc_byte: np.ndarray  # int64 (n+1,): where each document starts in buf
    words: np.ndarray  # uint64 word hashes, documents in order
    word_start: np.ndarray  # int64 byte offsets in buf
    word_end: np.ndarray
    doc_words: np.ndarray  # int64 (n+1,): document d holds words[doc_words[d]:doc_words[d+1]]

    @property
    def n_docs(self) -> int:
        return len(self.texts)

    def word_counts(self) -> np.ndarray:
        return np.diff(self.doc_words)

    def span(self, doc: int, first_word: int, last_word: int) -> tuple[str, int, int]:
        """The text of words ``first_word..last_word`` (positions in the document) as the
        source has it, with its character offsets; normalised text when the original's
        words cannot be aligned one to one (NFKC split or merged one)."""
        text = self.texts[doc]
        w0 = self.doc_words[doc]
        if text.isascii():
            base = int(self.doc_byte[doc])
            start = int(self.word_start[w0 + first_word]) - base
            end = int(self.word_end[w0 + last_word]) - base
            return text[start:end], start, end
        spans = [m.span() for m in _WORD_SPAN.finditer(text)]
        if len(spans) == int(self.doc_words[doc + 1] - w0):
            start, end = spans[first_word][0], spans[last_word][1]
            return text[start:end], start, end
        lo = int(self.word_start[w0 + first_word])
        hi = int(self.word_end[w0 + last_word])
        return bytes(self.buf[lo:hi]).decode("utf-8", "replace"), -1, -1


def tokenize(texts: list[str]) -> Batch:
    """Normalise and hash the words of every text in one pass over their bytes."""
    if len(texts) > MAX_BATCH_DOCS:
        raise ValueError(f"at most {MAX_BATCH_DOCS} documents per batch")
    joined = " ".join(texts)
    if joined.isascii():  # one translate over the whole batch; lengths are char counts
        raw = b" " + joined.encode("ascii").translate(_ASCII) + _PAD
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    else:
        parts = [t.encode("ascii").translate(_ASCII) if t.isascii() else normalized_bytes(t)
                 for t in texts]
        raw = b" " + b" ".join(parts) + _PAD
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    doc_byte = np.empty(len(texts) + 1, dtype=np.int64)
    doc_byte[0] = 1
    np.cumsum(lengths + 1, out=doc_byte[1:])
    doc_byte[1:] += 1
    buf = np.frombuffer(raw, dtype=np.uint8)
    word = buf > 32
    # buf starts and ends with spaces, so edges alternate: start, end, start, end …
    edges = np.flatnonzero(word[1:] != word[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    doc_words = np.searchsorted(starts, doc_byte)
    doc_words[-1] = len(starts)
    return Batch(texts, buf, doc_byte, _word_hashes(buf, starts, ends), starts, ends,
                 doc_words.astype(np.int64))


def _word_hashes(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hash each word from its first and last 8 bytes (overlapping for 9-16-byte words;
    longer words add every 8 bytes in between) and its length."""
    chunks = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    length = ends - starts
    h = chunks[starts] & _MASKS[np.minimum(length, 8)]
    h *= _K_WORD
    h += length.astype(U64) * _K_LEN
    # the last 8 bytes of every word (zeroed for short ones): a dense gather beats a
    # gather and scatter over the long words only
    last = chunks[np.maximum(ends - 8, starts)]
    last *= length > 8
    last *= _K_CHAIN
    h ^= last
    rest = np.flatnonzero(length > 16)
    j = 1
    while rest.size:  # the middle of long words, 8 bytes at a time
        h[rest] = (h[rest] ^ chunks[starts[rest] + 8 * j]) * _K_CHAIN
        rest = rest[length[rest] > 8 * (j + 2)]
        j += 1
    return _mix(h)


def _keys(k: int, seed: int) -> np.ndarray:
    return _constants(1000 + 31 * k + seed, k)


def _finish(g: np.ndarray) -> np.ndarray:
    """A light finaliser (the inputs are mixed word hashes), cut to HASH_BITS."""
    g ^= g >> U64(29)
    g *= _M1
    return g >> U64(64 - HASH_BITS)


def shingles(batch: Batch, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hashes (44-bit) of every run of ``k`` words inside one document, in document order,
    and the CSR offsets of each document's shingles. Documents shorter than k have none."""
    words, n = batch.words, len(batch.words)
    counts = np.maximum(batch.word_counts() - (k - 1), 0)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if n < k:
        return np.empty(0, dtype=U64), offsets
    keys = _keys(k, seed)
    g = words[:n - k + 1] * keys[0]
    for t in range(1, k):
        g += words[t:n - k + 1 + t] * keys[t]
    # runs that cross into the next document start in a document's last k-1 words
    doc_start, doc_end = batch.doc_words[:-1], batch.doc_words[1:]
    tail_from = np.maximum(doc_end - (k - 1), doc_start)
    crossing = ranges(tail_from, doc_end - tail_from)
    valid = np.ones(n - k + 1, dtype=bool)
    valid[crossing[crossing < n - k + 1]] = False
    return _finish(g[valid]), offsets


def gram_hashes_at(batch: Batch, starts: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """The same hashes as :func:`shingles`, for runs starting at the given word indexes."""
    keys = _keys(k, seed)
    g = batch.words[starts] * keys[0]
    for t in range(1, k):
        g += batch.words[starts + t] * keys[t]
    return _finish(g)


def ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), without a Python loop."""
    lengths = np.asarray(lengths, dtype=np.int64)
    nz = lengths > 0
    s, n = np.asarray(starts, dtype=np.int64)[nz], lengths[nz]
    if not len(n):
        return np.empty(0, dtype=np.int64)
    ends = np.cumsum(n)
    out = np.ones(int(ends[-1]), dtype=np.int64)
    out[0] = s[0]
    out[ends[:-1]] = s[1:] - (s[:-1] + n[:-1] - 1)
    return np.cumsum(out)


def shingle_starts(batch: Batch, offsets: np.ndarray) -> np.ndarray:
    """The word index (in ``batch.words``) where each shingle of :func:`shingles` starts."""
    counts = np.diff(offsets)
    doc = np.repeat(np.arange(batch.n_docs), counts)
    return batch.doc_words[doc] + (np.arange(int(offsets[-1])) - offsets[doc])


def text_hashes(batch: Batch, docs: np.ndarray | None = None) -> np.ndarray:
    """One 44-bit hash per document (of ``docs``, default all) of its whole normalised word
    sequence; 0 for a document without words."""
    keys = _constants(7, 2)
    counts = batch.word_counts()
    starts = batch.doc_words[:-1]
    if docs is not None:
        counts, starts = counts[docs], starts[docs]
    where = ranges(starts, counts)
    pos = where - np.repeat(starts, counts)
    # a position-keyed sum: equal word sequences give equal sums wherever they sit; the
    # trailing zero keeps reduceat's segments right when the last documents are empty
    terms = np.append(_mix(batch.words[where] ^ (pos.astype(U64) * keys[0])), U64(0))
    seg = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=seg[1:])
    out = _mix(np.add.reduceat(terms, seg) + counts.astype(U64) * keys[1])
    out >>= U64(64 - HASH_BITS)
    out[counts == 0] = 0
    return out
