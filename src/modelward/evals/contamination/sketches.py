"""MinHash signatures and LSH band keys over 44-bit shingle hashes, and fast membership of
such hashes in a sorted set: the sketches behind the near-duplicate method and every
index lookup of :mod:`.matching`."""

from __future__ import annotations

import sys

import numpy as np

from .textindex import HASH_BITS, U64, _constants, _mix

_HIGH = 1 if sys.byteorder == "little" else 0  # which uint32 half of a uint64 is the high one


class MinHasher:
    """``num_perm`` hash functions ``(a*x + b) >> 32`` over 44-bit shingle hashes, and LSH
    band keys of ``bands`` x ``rows`` signature values."""

    def __init__(self, num_perm: int, bands: int, rows: int, *, seed: int = 1) -> None:
        if bands * rows > num_perm:
            raise ValueError("bands * rows exceeds num_perm")
        self.num_perm, self.bands, self.rows = num_perm, bands, rows
        self.a = _constants(seed, num_perm)
        self.b = _constants(seed + 1, num_perm)
        self.band_keys = _constants(seed + 2, rows)
        self.band_salt = _constants(seed + 3, bands)

    def signatures(self, values: np.ndarray, offsets: np.ndarray, rows: int = 8192) -> np.ndarray:
        """(n, num_perm) uint32: the minimum of each hash function over each segment
        ``values[offsets[i]:offsets[i+1]]`` (every segment non-empty), in blocks of about
        ``rows`` values so memory stays bounded."""
        n = len(offsets) - 1
        out = np.empty((n, self.num_perm), dtype=np.uint32)
        i = 0
        while i < n:
            j = int(np.searchsorted(offsets, offsets[i] + rows, side="right")) - 1
            j = max(j, i + 1)
            lo, hi = int(offsets[i]), int(offsets[j])
            block = np.multiply.outer(values[lo:hi], self.a)
            block += self.b
            # the high 32 bits of each value, read in place as the uint32 halves
            out[i:j] = np.minimum.reduceat(block.view(np.uint32)[:, _HIGH::2],
                                           offsets[i:j] - lo, axis=0)
            i = j
        return out

    def bands_of(self, sigs: np.ndarray) -> np.ndarray:
        """(n, bands) 44-bit band keys; a band key equal in two signatures means the band's
        ``rows`` values are (almost surely) all equal."""
        n = len(sigs)
        cut = sigs[:, :self.bands * self.rows].reshape(n, self.bands, self.rows).astype(U64)
        keys = (cut * self.band_keys).sum(axis=2, dtype=U64)
        keys += self.band_salt
        return _mix(keys) >> U64(64 - HASH_BITS)


def lsh_params(threshold: float, num_perm: int, recall: float = 0.995) -> tuple[int, int]:
    """(bands, rows): the most rows per band (fewest chance candidates) that still make a
    pair at exactly ``threshold`` a candidate with probability ``recall``. Candidates are
    confirmed exactly afterwards, so recall is what the banding must not lose."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold ** rows) ** bands >= recall:
            best = (bands, rows)
    return best


class SortedSet:
    """Membership of 44-bit values in a sorted array, with a bit-packed direct-address
    table in front (2 MiB, so it stays in cache) that answers most misses alone."""

    def __init__(self, values: np.ndarray, bits: int = 24) -> None:
        self.values = np.asarray(values, dtype=U64)
        self.shift = HASH_BITS - bits
        self.table = np.zeros(1 << (bits - 3), dtype=np.uint8)
        slot = (self.values >> U64(self.shift)).view(np.int64)
        np.bitwise_or.at(self.table, slot >> 3, np.left_shift(1, slot & 7).astype(np.uint8))

    def __len__(self) -> int:
        return len(self.values)

    def find(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``queries`` found, their index in ``values``)."""
        if not len(self.values) or not len(queries):
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        slot = (queries >> U64(self.shift)).view(np.int64)
        bit = np.right_shift(self.table[slot >> 3], (slot & 7).astype(np.uint8))
        maybe = np.flatnonzero(bit & 1)
        where = np.searchsorted(self.values, queries[maybe])
        where[where == len(self.values)] = 0
        hit = self.values[where] == queries[maybe]
        return maybe[hit], where[hit]
