"""Keyed substring values and per-node Bloom positions, vectorized with numpy.

1. Every substring s of a marked keyword "^w$" gets a 128-bit PRF value
   t(s) = AES_k(H_1(s) | H_2(s) | H_3(s) | H_4(s)): four polynomial hashes modulo p = 2^31 - 1
   at secret points (an almost-universal hash, collision probability <= (len/p)^4 for a pair),
   then a keyed permutation: hash-then-PRP is a PRF up to those collisions. All substrings of all
   keywords of one length are hashed at once from prefix sums, so no Python loop runs per substring.
2. A node with salt sigma maps t to Bloom positions with a tweakable hash from fixed-key AES
   (Guo-Katz-Wang-Yu, S&P 2020): u = pi(t xor sigma) xor t xor sigma, pi = AES under a public
   fixed key; h1, h2 = the first two 32-bit words of u (h2 made odd); position i < k is
   ((h1 + i h2) mod 2^32) * m >> 32.
   Without t (a trapdoor) the positions are unpredictable; with it, each node's are independent.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

P = 2**31 - 1
N_HASHES = 4
MARK_START, MARK_END = 1, 2  # code points of "^" and "$"; characters are ord(c) + 3
FIXED_KEY = hashlib.sha256(b"abe-health PASS-tree fixed-key AES, public by design").digest()[:16]


def _ecb(key: bytes) -> Any:
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - a PRP on single blocks


class SubstringPRF:
    """t(s) for substrings, from secret polynomial points and an AES key."""

    def __init__(self, points: list[int], aes_key: bytes, max_len: int = 64) -> None:
        if len(points) != N_HASHES or not all(2 <= r < P for r in points):
            raise ValueError("need four polynomial points in [2, p)")
        self._aes_key = aes_key
        self._local = threading.local()
        r = np.array(points, dtype=np.uint64)
        rinv = np.array([pow(x, P - 2, P) for x in points], dtype=np.uint64)
        self.pow = np.ones((N_HASHES, max_len + 1), dtype=np.uint64)
        self.inv = np.ones((N_HASHES, max_len + 1), dtype=np.uint64)
        for t in range(1, max_len + 1):
            self.pow[:, t] = self.pow[:, t - 1] * r % P
            self.inv[:, t] = self.inv[:, t - 1] * rinv % P
        self.max_len = max_len

    def _finish(self, hashes: np.ndarray) -> np.ndarray:
        """(n, 4) hashes -> (n, 16) uint8 PRF values."""
        blocks = np.ascontiguousarray(hashes, dtype="<u4").view(np.uint8)
        ctx = getattr(self._local, "aes", None)
        if ctx is None:  # one AES context per thread: contexts must not be shared
            ctx = self._local.aes = _ecb(self._aes_key)
        out = ctx.update(blocks.data)
        return np.frombuffer(out, dtype=np.uint8).reshape(-1, 16)

    def all_substrings(self, codes: np.ndarray, drop_lone_markers: bool = True
                       ) -> tuple[np.ndarray, np.ndarray]:
        """PRF values of every substring of each row of `codes` (n words of equal marked length M).

        Returns (word index per value, values (q, 16) uint8), substrings ordered word-major.
        """
        n, m = codes.shape
        if m > self.max_len:
            raise ValueError(f"keywords longer than {self.max_len - 2} characters are not indexed")
        i_idx, j_idx = np.triu_indices(m + 1, k=1)  # all 0 <= i < j <= m
        if drop_lone_markers:  # "^" alone and "$" alone are not patterns
            keep = ~(((i_idx == 0) & (j_idx == 1)) | ((i_idx == m - 1) & (j_idx == m)))
            i_idx, j_idx = i_idx[keep], j_idx[keep]
        hashes = np.empty((n, len(i_idx), N_HASHES), dtype="<u4")  # each value is below P < 2^31
        c = codes.astype(np.uint64)
        for h in range(N_HASHES):
            prefix = np.zeros((n, m + 1), dtype=np.uint64)
            for t in range(m):
                prefix[:, t + 1] = _mod_p(prefix[:, t] + c[:, t] * self.pow[h, t])
            diff = prefix[:, j_idx] + P - prefix[:, i_idx]  # in [1, 2P): one conditional subtraction
            diff -= np.uint64(P) * (diff >= P)
            diff *= self.inv[h, i_idx]
            hashes[:, :, h] = _mod_p(diff)
        words = np.repeat(np.arange(n, dtype=np.int64), len(i_idx))
        return words, self._finish(hashes.reshape(-1, N_HASHES))

    def one(self, codes: np.ndarray) -> bytes:
        """The PRF value of one whole code sequence (a trapdoor)."""
        if len(codes) > self.max_len:
            raise ValueError("pattern longer than any indexed keyword")
        hashes = np.zeros((1, N_HASHES), dtype=np.uint64)
        for h in range(N_HASHES):
            acc = 0
            for t, code in enumerate(codes):
                acc = (acc + int(code) * int(self.pow[h, t])) % P
            hashes[0, h] = acc
        return bytes(self._finish(hashes)[0].tobytes())


def _mod_p(x: np.ndarray) -> np.ndarray:
    """x mod (2^31 - 1) for uint64 x < 2^63, by folding (2^31 = 1 mod p): exactly `x % P`, without
    numpy's 64-bit division. Two folds leave a value below P + 3, then one subtraction."""
    y = x & np.uint64(P)
    y += x >> np.uint64(31)
    z = y & np.uint64(P)
    z += y >> np.uint64(31)
    z -= np.uint64(P) * (z >= P)
    out: np.ndarray = z
    return out


_local = threading.local()


def _fixed() -> Any:
    """A per-thread fixed-key AES-ECB context (contexts must not be shared between threads)."""
    ctx = getattr(_local, "fixed", None)
    if ctx is None:
        ctx = _local.fixed = _ecb(FIXED_KEY)
    return ctx


def as_rows(blocks: np.ndarray) -> np.ndarray:
    """(n, 16) uint8 blocks as n 16-byte scalars (a view): gathering rows of this view is about
    30x faster in numpy than fancy-indexing the 2-D array."""
    out: np.ndarray = np.ascontiguousarray(blocks, dtype=np.uint8).view("V16").reshape(-1)
    return out


def _words(blocks: np.ndarray) -> np.ndarray:
    """16-byte blocks ((n, 16) uint8 or n V16 scalars) as (n, 2) little-endian uint64 (a view)."""
    out: np.ndarray = np.ascontiguousarray(blocks).view("<u8").reshape(-1, 2)
    return out


def tweak(values: np.ndarray, salts: np.ndarray) -> np.ndarray:
    """u = pi(x) xor x for x = value xor salt, as (n, 4) uint32 words (values and salts as (n, 16)
    uint8 or as `as_rows` scalars)."""
    x = np.bitwise_xor(_words(values), _words(salts))
    y = np.frombuffer(_fixed().update(x.view(np.uint8).reshape(-1).data), dtype="<u8").reshape(-1, 2)
    out: np.ndarray = np.bitwise_xor(x, y).view("<u4")
    return out


def positions(values: np.ndarray, salts: np.ndarray, sizes: np.ndarray, k: int) -> np.ndarray:
    """(n, k) Bloom bit positions of values under node salts in filters of `sizes` (< 2^32) bits
    (values and salts as (n, 16) uint8 or as `as_rows` scalars).

    Double hashing on 32-bit words, g_i = h1 + i h2 mod 2^32 (h2 odd), reduced to [0, m) by
    multiply-shift, (g_i m) >> 32 (Lemire), which avoids a 64-bit division per position. The
    result is the transpose of a (k, n) array, so that every step works on contiguous rows.
    """
    u = tweak(values, salts)
    h1 = np.ascontiguousarray(u[:, 0])
    h2 = u[:, 1] | np.uint32(1)
    g = np.empty((k, len(h1)), dtype=np.uint32)
    g[0] = h1
    for i in range(1, k):  # uint32 arithmetic wraps mod 2^32
        np.add(g[i - 1], h2, out=g[i])
    out = g.astype(np.uint64)
    out *= sizes.astype(np.uint64, copy=False)
    out >>= np.uint64(32)
    transposed: np.ndarray = out.T
    return transposed


def encode_many(words: list[str]) -> np.ndarray:
    """(n, L + 2) codes of n marked keywords "^w$" of equal length L (as `encode`), at once."""
    width = len(words[0]) if words else 0
    body = np.frombuffer("".join(words).encode("utf-32-le"), dtype="<u4").reshape(len(words), width)
    out = np.empty((len(words), width + 2), dtype=np.uint32)
    out[:, 0], out[:, -1] = MARK_START, MARK_END
    out[:, 1:-1] = body + np.uint32(3)
    return out


def encode(text: str, start: bool, end: bool) -> np.ndarray:
    """Code points of a (marked) string: '^' -> 1, '$' -> 2, character c -> ord(c) + 3."""
    body = [ord(ch) + 3 for ch in text]
    return np.array(([MARK_START] if start else []) + body + ([MARK_END] if end else []), dtype=np.uint32)
