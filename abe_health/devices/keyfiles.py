"""The device keys: `TransformationKey` (the cloud's half of a blinded user key), `RetrievalKey`
(z, kept on the device) and `PoolKey` (seals a pool of precomputed encryption material at rest).

Each is versioned CBOR (docs/formats.md section 11), decoded strictly, written atomically with
mode 0600, never pickled; its repr shows kind, scheme and an id, never a secret; equality is
constant-time over the encoding.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from abc import ABC, abstractmethod
from typing import Any, NoReturn

import cbor2

from ..errors import AbeError, BackendUnavailable, InvalidEncoding, InvalidKey
from ..fileio import write_atomic
from ..hazmat.outsource import SUPPORTED, Blinded
from ..hazmat.pairing import PairingGroup, group_from_id
from ..hazmat.records import from_map, to_map
from ..hazmat.schemes import RW15, SchemeBase, get_scheme

TK_TYPE = "abe-health/transformation-key"
RK_TYPE = "abe-health/retrieval-key"
POOL_KEY_TYPE = "abe-health/pool-key"
TK_ID_LABEL = b"abe-health/v1/transformation-key-id\x00"
#: the largest transformation key file read (a key of many labels, as user key files)
MAX_TK_BYTES = 16 * 1024 * 1024
#: the largest retrieval or pool key file read
MAX_SMALL_BYTES = 4096
#: the most user keys one transformation key blinds (one per authority of an RW15 holder)
MAX_KEYS = 64


class _Secret(ABC):
    """What every device key shares: no pickling, no copies, constant-time equality."""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The key file's bytes (CBOR)."""

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, mode 0600."""
        write_atomic(path, self.to_bytes(), secret=True)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Secret)
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self.to_bytes()).digest())

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} objects are not pickled: use to_bytes() / save()")

    def __copy__(self) -> _Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Secret:
        return self


def _load(data: bytes, expected: str, limit: int) -> dict[str, Any]:
    """A CBOR map of type `expected` and version 1, or InvalidKey."""
    if len(data) > limit:
        raise InvalidKey(f"not an {expected} file (over {limit} bytes)")
    try:
        decoded = cbor2.loads(data)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidKey(f"not an {expected} file (bytes are not CBOR)") from None
    if not isinstance(decoded, dict) or decoded.get("type") != expected:
        raise InvalidKey(f"not an {expected} file")
    if decoded.get("v") != 1:
        raise InvalidKey(f"unsupported {expected} version")
    return decoded


def _read(path: str | os.PathLike[str], limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise InvalidKey(f"cannot read key file {path}: {exc.strerror}") from None


def _group(name: Any) -> PairingGroup:
    if not isinstance(name, str) or len(name) > 256:
        raise InvalidKey("the key names no pairing group")
    try:
        return group_from_id(name)
    except BackendUnavailable as exc:
        raise InvalidKey(f"cannot open the key's pairing group: {exc}") from None


class TransformationKey(_Secret):
    """A holder's user key(s) blinded by 1/z: safe to give the cloud, which transforms with it
    the headers the holder's attributes satisfy into short ciphertexts only z opens."""

    def __init__(self, blinded: Blinded) -> None:
        self.blinded = blinded

    @property
    def scheme(self) -> SchemeBase:
        return self.blinded.scheme

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": 1, "type": TK_TYPE, "scheme": self.scheme.name,
                               "group": self.scheme.group.id,
                               "keys": [to_map(self.scheme, rec) for rec in self.blinded.records]}
        if self.blinded.hgid is not None:
            out["hgid"] = self.blinded.hgid.to_bytes()
        return out

    def to_bytes(self) -> bytes:
        return cbor2.dumps(self.to_map())

    @property
    def id(self) -> str:
        """16 hex digits naming this transformation key (what a retrieval key names)."""
        encoded = cbor2.dumps(self.to_map(), canonical=True)
        return hashlib.sha256(TK_ID_LABEL + encoded).hexdigest()[:16]

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes (CP, RW15) the blinded keys hold: the cloud sees them."""
        return tuple(str(a) for rec in self.blinded.records for a in rec.meta.get("attributes", []))

    def describe(self) -> str:
        subject = ", ".join(self.attributes) or str(self.blinded.records[0].meta.get("policy", ""))
        return f"{self.scheme.name} transformation key {self.id} for {subject}"

    def __repr__(self) -> str:
        return f"TransformationKey(scheme={self.scheme.name!r}, id={self.id!r})"

    __str__ = __repr__

    @classmethod
    def from_bytes(cls, data: bytes) -> TransformationKey:
        """Decode and validate every record and element; InvalidKey otherwise."""
        raw = _load(data, TK_TYPE, MAX_TK_BYTES)
        name, group = raw.get("scheme"), _group(raw.get("group"))
        if name not in SUPPORTED:
            raise InvalidKey(f"a transformation key of unknown scheme {str(name)[:32]!r}")
        keys = raw.get("keys")
        if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
            raise InvalidKey(f"a transformation key holds 1..{MAX_KEYS} blinded keys")
        scheme = get_scheme(str(name), group)
        records = []
        for item in keys:
            item_scheme, rec = from_map(item)
            if item_scheme is not scheme or rec.kind != "user":
                raise InvalidKey("a transformation key holds blinded user keys of its own scheme")
            records.append(rec)
        if isinstance(scheme, RW15) != ("hgid" in raw) or (not isinstance(scheme, RW15) and len(keys) != 1):
            raise InvalidKey("malformed transformation key (its parts do not match its scheme)")
        hgid = None
        if "hgid" in raw:
            try:
                hgid = group.deserialize("G1", raw["hgid"])
            except InvalidEncoding as exc:
                raise InvalidKey(f"malformed transformation key: hgid: {exc}") from None
        if set(raw) - {"v", "type", "scheme", "group", "keys", "hgid"}:
            raise InvalidKey("malformed transformation key (unknown fields)")
        return cls(Blinded(scheme, tuple(records), hgid))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> TransformationKey:
        """Load a transformation key file, naming the file in any error."""
        try:
            return cls.from_bytes(_read(path, MAX_TK_BYTES))
        except AbeError as exc:
            raise type(exc)(f"{path}: {exc}") from None


class RetrievalKey(_Secret):
    """z, the device's secret: turns a transformed ciphertext into the KEM key with one GT
    exponentiation. It names the transformation key it belongs to."""

    def __init__(self, scheme: SchemeBase, z: int, transformation_key: str) -> None:
        if not 0 < z < scheme.group.order:
            raise InvalidKey("malformed retrieval key (z out of range)")
        self.scheme = scheme
        self.transformation_key = transformation_key
        self._z = z

    @property
    def z(self) -> int:
        return self._z

    def to_bytes(self) -> bytes:
        return cbor2.dumps({"v": 1, "type": RK_TYPE, "scheme": self.scheme.name,
                            "group": self.scheme.group.id, "tk": self.transformation_key,
                            "z": self.scheme.group.zr_to_bytes(self._z)})

    def __repr__(self) -> str:
        return (f"RetrievalKey(scheme={self.scheme.name!r}, "
                f"transformation_key={self.transformation_key!r})")

    __str__ = __repr__

    @classmethod
    def from_bytes(cls, data: bytes) -> RetrievalKey:
        raw = _load(data, RK_TYPE, MAX_SMALL_BYTES)
        name, group, tk = raw.get("scheme"), _group(raw.get("group")), raw.get("tk")
        if name not in SUPPORTED or set(raw) != {"v", "type", "scheme", "group", "tk", "z"}:
            raise InvalidKey("malformed retrieval key")
        if not isinstance(tk, str) or len(tk) != 16 or any(c not in "0123456789abcdef" for c in tk):
            raise InvalidKey("malformed retrieval key (transformation key id)")
        try:
            z = group.zr_from_bytes(raw["z"])
        except InvalidEncoding:
            raise InvalidKey("malformed retrieval key (z)") from None
        return cls(get_scheme(str(name), group), z, tk)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RetrievalKey:
        try:
            return cls.from_bytes(_read(path, MAX_SMALL_BYTES))
        except AbeError as exc:
            raise type(exc)(f"{path}: {exc}") from None


class PoolKey(_Secret):
    """32 random bytes that seal a pool file at rest (AES-256-GCM under a key derived per pool)."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise InvalidKey("a pool key is 32 bytes")
        self._key = key

    @classmethod
    def generate(cls) -> PoolKey:
        return cls(secrets.token_bytes(32))

    @property
    def secret(self) -> bytes:
        return self._key

    @property
    def id(self) -> str:
        """16 hex digits naming the key (a one-way digest)."""
        return hashlib.sha256(b"abe-health/v1/pool-key-id\x00" + self._key).hexdigest()[:16]

    def to_bytes(self) -> bytes:
        return cbor2.dumps({"v": 1, "type": POOL_KEY_TYPE, "key": self._key})

    def __repr__(self) -> str:
        return f"PoolKey(id={self.id!r})"

    __str__ = __repr__

    @classmethod
    def from_bytes(cls, data: bytes) -> PoolKey:
        raw = _load(data, POOL_KEY_TYPE, MAX_SMALL_BYTES)
        if set(raw) != {"v", "type", "key"}:
            raise InvalidKey("malformed pool key")
        return cls(raw["key"])

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> PoolKey:
        try:
            return cls.from_bytes(_read(path, MAX_SMALL_BYTES))
        except AbeError as exc:
            raise type(exc)(f"{path}: {exc}") from None
