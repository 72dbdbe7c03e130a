"""The client's side: trapdoors, and the finish: open payloads, drop false positives, rank.

A trapdoor is the PRF value of the pattern's code points (with its ^/$ markers), the same value
the owner inserted for that substring of every keyword containing it. The Bloom filters may let
false positives through; the client decrypts each leaf's keyword and keeps it only if it really
matches, so results equal a plaintext substring scan exactly.
"""

from __future__ import annotations

import hashlib
import hmac

import cbor2
from cryptography.exceptions import InvalidTag

from .errors import IndexCorrupt
from .format import Segment
from .keys import SearchKey
from .prf import encode
from .text import parse_pattern

#: postings are pairs of integers in [0, 2^63)
_LIMIT = 2**63


def trapdoor(key: SearchKey, pattern: str) -> bytes:
    """The 16-byte trapdoor of a pattern such as `card`, `^card`, `itis$`, `^heart$`."""
    body, start, end = parse_pattern(pattern)
    codes = encode(body, start, end)
    if len(codes) > key.prf.max_len:
        # longer than any indexed keyword, so it matches nothing; a keyed value (not a constant)
        # keeps the server from telling such patterns apart from others
        return hmac.new(key.long_pattern_key, codes.astype("<u4").tobytes(), hashlib.sha256).digest()[:16]
    return key.prf.one(codes)


def key_matches(key: SearchKey, segment: Segment) -> bool:
    """Whether `key` built this segment (constant-time comparison of the key-check value)."""
    return hmac.compare_digest(key.check_value(segment.id), segment.meta["key_check"])


def open_payload(key: SearchKey, sealed: bytes, aad: bytes, where: str) -> object:
    """Decrypt and decode one sealed payload (see build.seal)."""
    try:
        body = key.aead.decrypt(sealed[:12], sealed[12:], aad)
        length = int.from_bytes(body[:4], "big")
        return cbor2.loads(body[4 : 4 + length])
    except (InvalidTag, ValueError, IndexError):
        raise IndexCorrupt(f"{where}: a sealed payload does not open (altered or misplaced)") from None


def documents(key: SearchKey, segment: Segment) -> list[str]:
    """The segment's document id table."""
    table = open_payload(key, segment.meta["documents"], segment.id + b"documents", str(segment.path))
    if not isinstance(table, list) or not all(isinstance(d, str) for d in table):
        raise IndexCorrupt(f"{segment.path}: malformed document table")
    return table


def open_leaf(key: SearchKey, segment: Segment, leaf: int, sealed: bytes
              ) -> tuple[str, list[list[int]]]:
    """(keyword, [[segment-local document index, tf], ...]) of a leaf (as `open_payload`,
    inlined: a query opens thousands). The postings are the decoded lists themselves, checked
    in one pass (each a list of two integers in [0, 2^63)), not copied."""
    try:
        body = key.aead.decrypt(sealed[:12], sealed[12:], segment.meta["id"] + leaf.to_bytes(8, "big"))
        item = cbor2.loads(body[4 : 4 + int.from_bytes(body[:4], "big")])
    except (InvalidTag, ValueError, IndexError):
        item = None
    if type(item) is not list or len(item) != 2 or type(item[0]) is not str or type(item[1]) is not list:
        if item is None:
            raise IndexCorrupt(f"{segment.path}: a sealed payload does not open (altered or misplaced)")
        raise IndexCorrupt(f"{segment.path}: malformed leaf {leaf}")
    postings = item[1]
    if not all(type(p) is list and len(p) == 2 and type(p[0]) is int and type(p[1]) is int
               and 0 <= p[0] < _LIMIT and 0 <= p[1] < _LIMIT for p in postings):
        raise IndexCorrupt(f"{segment.path}: malformed leaf {leaf}")
    return item[0], postings
