"""SipHash-2-4 (Aumasson & Bernstein, 2012): a 64-bit keyed pseudorandom function.

Two implementations that must agree bit for bit (tests/rollout check both against the
reference vectors and against each other):

* :func:`siphash24` — pure Python for one message (the single ``assign()`` call; no numpy);
* :func:`siphash24_many` — numpy over many messages at once: messages are grouped by their
  number of 8-byte blocks, packed into little-endian ``uint64`` words, and every round runs
  as in-place ufuncs over a chunk of messages that fits in cache.
"""

from __future__ import annotations

_M = 0xFFFFFFFFFFFFFFFF
# "somepseudorandomlygeneratedbytes", the initialisation constants of the specification
_C0, _C1, _C2, _C3 = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261,
                      0x7465646279746573)
_CHUNK = 1 << 15  # messages per numpy pass: 5 uint64 work arrays of 256 KiB stay in L2


def initial_state(key: bytes) -> tuple[int, int, int, int]:
    """v0..v3 after keying with a 16-byte key."""
    if len(key) != 16:
        raise ValueError("SipHash takes a 16-byte key")
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:], "little")
    return k0 ^ _C0, k1 ^ _C1, k0 ^ _C2, k1 ^ _C3


def siphash24(state: tuple[int, int, int, int], data: bytes) -> int:
    """SipHash-2-4 of ``data`` from a keyed :func:`initial_state`, as an unsigned 64-bit int.

    Written out round by round (no helper calls): this is the single-assignment hot path."""
    v0, v1, v2, v3 = state
    n = len(data)
    end = n - n % 8
    M = _M
    words = [int.from_bytes(data[i:i + 8], "little") for i in range(0, end, 8)]
    words.append(int.from_bytes(data[end:], "little") | ((n & 0xFF) << 56))
    for m in words:
        v3 ^= m
        for _ in (0, 1):
            v0 = (v0 + v1) & M
            v1 = ((v1 << 13) | (v1 >> 51)) & M
            v1 ^= v0
            v0 = ((v0 << 32) | (v0 >> 32)) & M
            v2 = (v2 + v3) & M
            v3 = ((v3 << 16) | (v3 >> 48)) & M
            v3 ^= v2
            v0 = (v0 + v3) & M
            v3 = ((v3 << 21) | (v3 >> 43)) & M
            v3 ^= v0
            v2 = (v2 + v1) & M
            v1 = ((v1 << 17) | (v1 >> 47)) & M
            v1 ^= v2
            v2 = ((v2 << 32) | (v2 >> 32)) & M
        v0 ^= m
    v2 ^= 0xFF
    for _ in (0, 1, 2, 3):
        v0 = (v0 + v1) & M
        v1 = ((v1 << 13) | (v1 >> 51)) & M
        v1 ^= v0
        v0 = ((v0 << 32) | (v0 >> 32)) & M
        v2 = (v2 + v3) & M
        v3 = ((v3 << 16) | (v3 >> 48)) & M
        v3 ^= v2
        v0 = (v0 + v3) & M
        v3 = ((v3 << 21) | (v3 >> 43)) & M
        v3 ^= v0
        v2 = (v2 + v1) & M
        v1 = ((v1 << 17) | (v1 >> 47)) & M
        v1 ^= v2
        v2 = ((v2 << 32) | (v2 >> 32)) & M
    return v0 ^ v1 ^ v2 ^ v3


class Packed:
    """Messages packed for :func:`siphash24_many`: for each block count ``b``, the positions
    of the messages with ``b`` 64-bit words (the last one carrying the length byte) and
    those words as a C-contiguous ``(count, b)`` uint64 array. Pack once, hash under many
    keys (the balanced-salt search)."""

    def __init__(self, buf, starts, lengths) -> None:
        """From one flat uint8 buffer and each message's start offset and length in it."""
        import numpy as np

        self.size = len(starts)
        self.lengths = lengths
        self.groups: list[tuple[np.ndarray, np.ndarray]] = []
        if not self.size:
            return
        blocks = lengths // 8 + 1
        widest = 8 * (len(np.bincount(blocks)) - 1)
        padded = np.zeros(len(buf) + widest, dtype=np.uint8)
        padded[:len(buf)] = buf
        for b in np.flatnonzero(np.bincount(blocks)):
            width = 8 * int(b)
            where = np.flatnonzero(blocks == b)
            # every `width`-byte window of the buffer as one opaque item: a row gather is
            # then one memcpy per message
            windows = np.ndarray((len(padded) - width + 1,), dtype=f"V{width}",
                                 buffer=padded, strides=(1,))
            words = windows[starts[where]].view("<u8").reshape(len(where), b)
            n = lengths[where].astype(np.uint64)
            # only the last word runs past the message (into the next one): keep its n % 8
            # bytes, then put the length in its top byte
            keep = (np.uint64(1) << ((n & np.uint64(7)) * np.uint64(8))) - np.uint64(1)
            words[:, -1] &= keep
            words[:, -1] |= (n & np.uint64(0xFF)) << np.uint64(56)
            self.groups.append((where, words))

    @classmethod
    def from_bytes(cls, messages: list[bytes]) -> Packed:
        import numpy as np

        lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
        starts = np.zeros(len(messages), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        return cls(np.frombuffer(b"".join(messages), dtype=np.uint8), starts, lengths)

    @classmethod
    def from_strings(cls, texts: list[str]) -> Packed:
        """UTF-8 of each string. One join and one encode for them all: UTF-8 encodes no
        character but U+0000 as a zero byte, so NULs between them mark where each ends."""
        import numpy as np

        n = len(texts)
        buf = np.frombuffer("\x00".join(texts).encode("utf-8"), dtype=np.uint8)
        ends = np.flatnonzero(buf == 0)
        if len(ends) != max(n - 1, 0):  # a string holds a NUL itself
            return cls.from_bytes([t.encode("utf-8") for t in texts])
        starts = np.zeros(n, dtype=np.int64)
        starts[1:] = ends + 1
        lengths = np.empty(n, dtype=np.int64)
        lengths[:-1] = ends - starts[:-1]
        if n:
            lengths[-1] = len(buf) - starts[-1]
        return cls(buf, starts, lengths)


def _rotl(x, r: int, t) -> None:
    import numpy as np

    np.left_shift(x, r, out=t)
    np.right_shift(x, 64 - r, out=x)
    np.bitwise_or(x, t, out=x)


def _rounds(v0, v1, v2, v3, t, n: int) -> None:
    import numpy as np

    add, xor = np.add, np.bitwise_xor
    for _ in range(n):
        add(v0, v1, out=v0)
        _rotl(v1, 13, t)
        xor(v1, v0, out=v1)
        _rotl(v0, 32, t)
        add(v2, v3, out=v2)
        _rotl(v3, 16, t)
        xor(v3, v2, out=v3)
        add(v0, v3, out=v0)
        _rotl(v3, 21, t)
        xor(v3, v0, out=v3)
        add(v2, v1, out=v2)
        _rotl(v1, 17, t)
        xor(v1, v2, out=v1)
        _rotl(v2, 32, t)


def siphash24_many(state: tuple[int, int, int, int], packed: Packed, out=None):
    """SipHash-2-4 of every packed message under one key: a uint64 array in input order."""
    import numpy as np

    if out is None:
        out = np.empty(packed.size, dtype=np.uint64)
    s0, s1, s2, s3 = (np.uint64(s) for s in state)
    buf = np.empty((5, min(_CHUNK, max(packed.size, 1))), dtype=np.uint64)
    for where, words in packed.groups:
        b = words.shape[1]
        for lo in range(0, len(where), _CHUNK):
            m = words[lo:lo + _CHUNK]
            n = len(m)
            v0, v1, v2, v3, t = buf[0, :n], buf[1, :n], buf[2, :n], buf[3, :n], buf[4, :n]
            v0.fill(s0)
            v1.fill(s1)
            v2.fill(s2)
            v3.fill(s3)
            for j in range(b):
                col = m[:, j]
                np.bitwise_xor(v3, col, out=v3)
                _rounds(v0, v1, v2, v3, t, 2)
                np.bitwise_xor(v0, col, out=v0)
            np.bitwise_xor(v2, np.uint64(0xFF), out=v2)
            _rounds(v0, v1, v2, v3, t, 4)
            np.bitwise_xor(v0, v1, out=v0)
            np.bitwise_xor(v2, v3, out=v2)
            np.bitwise_xor(v0, v2, out=v0)
            out[where[lo:lo + n]] = v0
    return out
