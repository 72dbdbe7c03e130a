"""The secret search key: 32 random bytes, from which every working key is derived by HKDF.

Derived keys: the four polynomial points and AES key of the substring PRF (trapdoors), the
leaf-payload AEAD key, the keyed leaf order, the trapdoor key of patterns too long to be indexed,
a key-check value that lets a client tell a wrong key from an empty result, and a public
fingerprint that the owner signs (`abe_health.owner`) so that readers can tell the owner's key
from one a server sealed itself. Every derivation is HKDF-SHA256 with its own label, so publishing
the fingerprint or a key check reveals nothing about the other keys. Key files are CBOR, written
atomically with mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import InvalidSearchKey
from .prf import P, SubstringPRF

KEY_TYPE = "abe-health/pass-search-key"


def _derive(master: bytes, label: str, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                info=f"abe-health/pass/v1/{label}".encode()).derive(master)


@dataclass(frozen=True, repr=False)
class SearchKey:
    """A PASS-tree search key (owner and authorized clients hold it; the server never does)."""

    secret: bytes

    @classmethod
    def generate(cls) -> SearchKey:
        return cls(secrets.token_bytes(32))

    @cached_property
    def prf(self) -> SubstringPRF:
        raw = _derive(self.secret, "points", 4 * 8)
        points = [2 + int.from_bytes(raw[i : i + 8], "big") % (P - 2) for i in range(0, 32, 8)]
        return SubstringPRF(points, _derive(self.secret, "prf-aes", 16))

    @cached_property
    def leaf_key(self) -> bytes:
        return _derive(self.secret, "leaf-aead", 32)

    @cached_property
    def aead(self) -> AESGCM:
        return AESGCM(self.leaf_key)

    @cached_property
    def order_key(self) -> bytes:
        return _derive(self.secret, "leaf-order", 32)

    @cached_property
    def order_hash(self) -> Any:
        """BLAKE2b keyed with `order_key`, to be copied per keyword (a copy costs about half
        of setting up the key again)."""
        return hashlib.blake2b(key=self.order_key, digest_size=16)

    @cached_property
    def long_pattern_key(self) -> bytes:
        return _derive(self.secret, "long-pattern", 32)

    @cached_property
    def fingerprint(self) -> bytes:
        """32 public bytes that name this key (HKDF output under its own label, not the secret)."""
        return _derive(self.secret, "key-fingerprint", 32)

    def __repr__(self) -> str:
        return f"SearchKey(fingerprint={self.fingerprint[:8].hex()})"

    def check_value(self, index_id: bytes) -> bytes:
        """A MAC of the index id: equal only for the key the index was built with."""
        return hmac.new(_derive(self.secret, "key-check", 32), index_id, hashlib.sha256).digest()[:16]

    def to_bytes(self) -> bytes:
        return cbor2.dumps({"v": 1, "type": KEY_TYPE, "key": self.secret})

    @classmethod
    def from_bytes(cls, data: bytes) -> SearchKey:
        try:
            decoded = cbor2.loads(data)
        except Exception:  # cbor2 raises several error types for garbage
            raise InvalidSearchKey("not a search key (bytes are not CBOR)") from None
        if not isinstance(decoded, dict) or decoded.get("type") != KEY_TYPE or decoded.get("v") != 1:
            raise InvalidSearchKey("not an abe-health search key")
        secret = decoded.get("key")
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise InvalidSearchKey("search key must hold 32 bytes")
        return cls(secret)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically with mode 0600."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.to_bytes())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SearchKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise InvalidSearchKey(f"cannot read search key {path}: {exc.strerror}") from None
        return cls.from_bytes(data)
