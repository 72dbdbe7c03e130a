"""The data owner's Ed25519 signing key, the statements it signs, and owner-signed search keys.

Why: a server that stores an index can replace the ABE-sealed search key (INDEX/search.key.abe)
with a key of its own, since sealing needs only the ABE public key, and plant segments built
with it; a reader that opens that key and searches hands the server trapdoors it can invert by
trying patterns. So the owner signs a statement naming the index and the key, and a reader who
pins the owner's public key accepts a sealed search key only with that signature:

    {"type": "abe-health/search-key", "index": 16-byte index id, "key": SearchKey.fingerprint}

The fingerprint is an HKDF output under its own label, never the secret. A statement for another
index, another key or from another owner is refused before a single trapdoor is made.

Files (CBOR, never pickle; every load checks types and lengths and raises a typed error):

    owner.key       {"v": 1, "type": "abe-health/owner-key", "alg": "ed25519", "seed": 32 bytes}
                    written atomically with mode 0600
    owner.pub       {"v": 1, "type": "abe-health/owner-public-key", "alg": "ed25519", "key": 32 bytes}
    search.key.sig  {"v": 1, "type": "abe-health/owner-signature", "statement": {...},
                     "signature": 64 bytes}

A signature covers STATEMENT_PREFIX + the canonical CBOR of the statement (map keys sorted
length-first, shortest integer forms), so it cannot be confused with an Ed25519 signature made
for any other purpose, and a re-encoding of the same statement still verifies. Statements are
maps with a non-empty "type" string; their values are text, bytes, integers, booleans, null,
lists and maps with text keys (no floats or tags, whose encodings are not unique).

Size: the owner key, its statement encoding and the search-key signature are one protocol; they
stay together so the domain separation and the checks are read in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import cbor2
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from search import SearchIndex, SearchKey
from search.errors import InvalidSearchKey

from .authority import ABE
from .encryption import decrypt, encrypt
from .errors import AbeError, InvalidEncoding, InvalidKey, InvalidSignature
from .fileio import write_atomic
from .keys import Key
from .recipients import PolicyRecipient, Recipient

OWNER_KEY_TYPE = "abe-health/owner-key"
OWNER_PUBLIC_TYPE = "abe-health/owner-public-key"
SIGNATURE_TYPE = "abe-health/owner-signature"
SEARCH_KEY_STATEMENT = "abe-health/search-key"
ALGORITHM = "ed25519"
STATEMENT_PREFIX = b"abe-health/v1/owner-statement\x00"
FINGERPRINT_PREFIX = b"abe-health/v1/owner-fingerprint\x00"
DERIVE_PREFIX = b"abe-health/v1/owner-derive/"
SEALED_KEY = "search.key.abe"
KEY_SIGNATURE = "search.key.sig"
SEED_BYTES = 32
PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64
#: no owner file is near this large; reading stops here so a planted huge file costs nothing
MAX_FILE_BYTES = 64 * 1024
_MAX_DEPTH = 8


# ---------------------------------------------------------------------------------------------
# canonical statements


def _check_value(value: object, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidEncoding("statement nested too deeply")
    if value is None or isinstance(value, (str, bytes, bool, int)):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_value(item, depth + 1)
        return
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str):
                raise InvalidEncoding("statement map keys must be text")
            _check_value(item, depth + 1)
        return
    raise InvalidEncoding(f"statement values may not be of type {type(value).__name__}")


def encode_statement(statement: Mapping[str, Any]) -> bytes:
    """The exact bytes an owner signature covers: STATEMENT_PREFIX + canonical CBOR."""
    if not isinstance(statement, Mapping):
        raise InvalidEncoding("a statement is a map")
    kind = statement.get("type")
    if not isinstance(kind, str) or not kind:
        raise InvalidEncoding('a statement needs a non-empty "type" string')
    _check_value(statement)
    return STATEMENT_PREFIX + cbor2.dumps(dict(statement), canonical=True)


def _fingerprint(raw_public: bytes) -> str:
    digest = hashlib.sha256(FINGERPRINT_PREFIX + raw_public).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))


def _read_small(path: str | os.PathLike[str], what: str, error: type[AbeError]) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise error(f"{path} is too large to be {what}")
    return data


def _decode_map(data: bytes, what: str, error: type[AbeError], where: str = "") -> dict[Any, Any]:
    """A CBOR map, or `error` naming what was expected (and where, when given)."""
    place = f"{where}: " if where else ""
    try:
        decoded = cbor2.loads(data, allow_duplicate_keys=False, max_depth=2 * _MAX_DEPTH)
    except Exception:  # cbor2 raises several error types for garbage
        raise error(f"{place}not {what} (bytes are not CBOR)") from None
    if not isinstance(decoded, dict):
        raise error(f"{place}not {what}")
    return decoded


# ---------------------------------------------------------------------------------------------
# keys


class OwnerPublicKey:
    """The owner's Ed25519 public key: readers pin it (owner.pub) and verify statements with it."""

    __slots__ = ("_key", "raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != PUBLIC_BYTES:
            raise InvalidKey(f"an owner public key has {PUBLIC_BYTES} bytes")
        try:
            self._key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise InvalidKey("not an Ed25519 public key") from None
        self.raw = raw

    @property
    def fingerprint(self) -> str:
        """A short name of the key to compare out of band: 128 bits of a domain-separated SHA-256."""
        return _fingerprint(self.raw)

    def verify(self, statement: Mapping[str, Any], signature: bytes) -> None:
        """Return if `signature` is this owner's over `statement`, else raise InvalidSignature."""
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
            raise InvalidSignature(f"an owner signature has {SIGNATURE_BYTES} bytes")
        try:
            message = encode_statement(statement)
        except InvalidEncoding as exc:
            raise InvalidSignature(f"malformed signed statement: {exc}") from None
        try:
            self._key.verify(signature, message)
        except _CryptoInvalidSignature:
            raise InvalidSignature(
                f"the signature does not verify under the owner key {self.fingerprint}") from None

    def to_bytes(self) -> bytes:
        return cbor2.dumps({"v": 1, "type": OWNER_PUBLIC_TYPE, "alg": ALGORITHM, "key": self.raw})

    @classmethod
    def from_bytes(cls, data: bytes) -> OwnerPublicKey:
        decoded = _decode_map(data, "an owner public key", InvalidKey)
        if decoded.get("type") == OWNER_KEY_TYPE:
            raise InvalidKey("this is a private owner key; give the public owner.pub")
        if decoded.get("type") != OWNER_PUBLIC_TYPE or decoded.get("v") != 1:
            raise InvalidKey("not an abe-health owner public key")
        if decoded.get("alg") != ALGORITHM:
            raise InvalidKey("owner public key of an unknown algorithm")
        if set(decoded) != {"v", "type", "alg", "key"}:
            raise InvalidKey("owner public key with unexpected fields")
        return cls(decoded["key"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (world-readable: it is public)."""
        write_atomic(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OwnerPublicKey:
        return cls.from_bytes(_read_small(path, "an owner public key", InvalidKey))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnerPublicKey) and hmac.compare_digest(self.raw, other.raw)

    def __hash__(self) -> int:
        return hash(self.raw)

    def __repr__(self) -> str:
        return f"OwnerPublicKey(ed25519, fingerprint={self.fingerprint})"


class OwnerKey:
    """The owner's Ed25519 signing key (owner.key, mode 0600). Its repr names only its kind and
    fingerprint; it refuses to be pickled (use `save`, which writes CBOR)."""

    __slots__ = ("_private", "public_key")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_key = OwnerPublicKey(
            private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    @classmethod
    def generate(cls) -> OwnerKey:
        """A new key: a 32-byte Ed25519 seed from `secrets` (the OS CSPRNG)."""
        return cls.from_seed(secrets.token_bytes(SEED_BYTES))

    @classmethod
    def from_seed(cls, seed: bytes) -> OwnerKey:
        if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
            raise InvalidKey(f"an owner key seed has {SEED_BYTES} bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def fingerprint(self) -> str:
        return self.public_key.fingerprint

    def sign(self, statement: Mapping[str, Any]) -> bytes:
        """The 64-byte Ed25519 signature over STATEMENT_PREFIX + canonical CBOR of `statement`."""
        return self._private.sign(encode_statement(statement))

    def derive(self, label: str, context: bytes, length: int = 32) -> bytes:
        """A secret derived from the seed: HKDF-SHA256 under DERIVE_PREFIX + `label`, `context`
        as salt-free info suffix (so an owner keeps one secret for every key it derives, e.g.
        the search keys of its collections' groups). Never equal to, nor revealing, the seed."""
        info = DERIVE_PREFIX + label.encode() + b"\x00" + context
        return HKDF(algorithm=hashes.SHA256(), length=length, salt=None,
                    info=info).derive(self._private.private_bytes_raw())

    def to_bytes(self) -> bytes:
        seed = self._private.private_bytes_raw()
        return cbor2.dumps({"v": 1, "type": OWNER_KEY_TYPE, "alg": ALGORITHM, "seed": seed})

    @classmethod
    def from_bytes(cls, data: bytes) -> OwnerKey:
        decoded = _decode_map(data, "an owner key", InvalidKey)
        if decoded.get("type") == OWNER_PUBLIC_TYPE:
            raise InvalidKey("this is an owner public key; signing needs the private owner.key")
        if decoded.get("type") != OWNER_KEY_TYPE or decoded.get("v") != 1:
            raise InvalidKey("not an abe-health owner key")
        if decoded.get("alg") != ALGORITHM:
            raise InvalidKey("owner key of an unknown algorithm")
        if set(decoded) != {"v", "type", "alg", "seed"}:
            raise InvalidKey("owner key with unexpected fields")
        return cls.from_seed(decoded["seed"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically, created with mode 0600."""
        write_atomic(path, self.to_bytes(), secret=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OwnerKey:
        return cls.from_bytes(_read_small(path, "an owner key", InvalidKey))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OwnerKey) and self.public_key == other.public_key

    def __hash__(self) -> int:
        return hash(self.public_key)

    def __repr__(self) -> str:
        return f"OwnerKey(ed25519, fingerprint={self.fingerprint})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("owner keys are not pickled; use OwnerKey.save (CBOR, mode 0600)")


# ---------------------------------------------------------------------------------------------
# signature files


def encode_signed(statement: Mapping[str, Any], signature: bytes) -> bytes:
    """A signature file: the statement and the owner's signature over it."""
    return cbor2.dumps({"v": 1, "type": SIGNATURE_TYPE, "statement": dict(statement),
                        "signature": signature})


def decode_signed(data: bytes, where: str = "signature file") -> tuple[dict[str, Any], bytes]:
    """(statement, signature) of a signature file, checked for shape (not yet verified)."""
    decoded = _decode_map(data, "an owner signature", InvalidSignature, where)
    if decoded.get("type") != SIGNATURE_TYPE or decoded.get("v") != 1 \
            or set(decoded) != {"v", "type", "statement", "signature"}:
        raise InvalidSignature(f"{where}: not an abe-health owner signature")
    statement, signature = decoded["statement"], decoded["signature"]
    if not isinstance(statement, dict) or not isinstance(signature, bytes) \
            or len(signature) != SIGNATURE_BYTES:
        raise InvalidSignature(f"{where}: malformed owner signature")
    return statement, signature


# ---------------------------------------------------------------------------------------------
# owner-signed search keys


def search_key_statement(index_id: bytes, key: SearchKey) -> dict[str, Any]:
    """What the owner signs for an index's search key: its type, the index id, the key's fingerprint."""
    return {"type": SEARCH_KEY_STATEMENT, "index": bytes(index_id), "key": key.fingerprint}


def seal_search_key(index: SearchIndex, key: SearchKey, authority: ABE, policy: str,
                    owner: OwnerKey) -> None:
    """Seal `key` under an ABE policy (INDEX/search.key.abe) and sign it for this index
    (INDEX/search.key.sig). Refuses a key that did not build the index."""
    seal_search_key_to(index, key, PolicyRecipient(authority.public_key, policy), owner)


def seal_search_key_to(index: SearchIndex, key: SearchKey, recipient: Recipient, owner: OwnerKey
                       ) -> None:
    """`seal_search_key` for any recipient (a CP policy, a multi-authority policy)."""
    if not index.key_matches(key):
        raise InvalidSearchKey(f"{index.path}: this search key did not build the index")
    statement = search_key_statement(index.index_id, key)
    signature = owner.sign(statement)
    sealed_key = encrypt(key.to_bytes(), None, recipient)
    write_atomic(index.path / SEALED_KEY, sealed_key)
    write_atomic(index.path / KEY_SIGNATURE, encode_signed(statement, signature))


def _check_signed_for(index: SearchIndex, owner: OwnerPublicKey) -> bytes:
    """Verify INDEX/search.key.sig under `owner` and for this index; return the signed key
    fingerprint. Needs no secret, so it runs before the sealed key is even opened."""
    path = index.path / KEY_SIGNATURE
    if not path.exists():
        raise InvalidSignature(f"{index.path} has no owner signature ({KEY_SIGNATURE}); "
                               "refusing a search key the owner did not sign")
    statement, signature = decode_signed(_read_small(path, "an owner signature", InvalidSignature),
                                         str(path))
    owner.verify(statement, signature)
    if set(statement) != {"type", "index", "key"} or statement["type"] != SEARCH_KEY_STATEMENT:
        raise InvalidSignature(f"{path}: the owner signed something other than a search key")
    signed_index, signed_key = statement["index"], statement["key"]
    if not isinstance(signed_index, bytes) or not isinstance(signed_key, bytes) \
            or len(signed_key) != 32:
        raise InvalidSignature(f"{path}: malformed search-key statement")
    if not hmac.compare_digest(signed_index, index.index_id):
        raise InvalidSignature(f"{path}: the owner signed this search key for another index")
    return signed_key


def verify_search_key(index: SearchIndex, key: SearchKey, owner: OwnerPublicKey) -> None:
    """Raise InvalidSignature unless INDEX/search.key.sig is `owner`'s signature naming this
    index and this key."""
    signed_key = _check_signed_for(index, owner)
    if not hmac.compare_digest(signed_key, key.fingerprint):
        raise InvalidSignature(f"{index.path}: the sealed search key is not the one the owner "
                               f"signed (owner {owner.fingerprint})")


def open_search_key(index: SearchIndex, identity: Key | Sequence[Key], owner: OwnerPublicKey
                    ) -> SearchKey:
    """Open INDEX/search.key.abe with an ABE user key and return the search key only if the
    pinned owner signed it for this index (no trapdoor can be made before this returns)."""
    signed_key = _check_signed_for(index, owner)
    sealed = index.path / SEALED_KEY
    if not sealed.exists():
        raise InvalidSearchKey(f"{index.path} has no ABE-sealed search key ({SEALED_KEY}); "
                               "search it with the search key itself", case="not-sealed")
    if sealed.stat().st_size > MAX_FILE_BYTES:
        raise InvalidSearchKey(f"{sealed} is too large to be a sealed search key")
    identities = list(identity) if isinstance(identity, Sequence) else [identity]
    key = SearchKey.from_bytes(decrypt(sealed, None, *identities))
    if not hmac.compare_digest(signed_key, key.fingerprint):
        raise InvalidSignature(f"{index.path}: the sealed search key is not the one the owner "
                               f"signed (owner {owner.fingerprint})")
    return key


__all__ = [
    "KEY_SIGNATURE",
    "SEALED_KEY",
    "SEARCH_KEY_STATEMENT",
    "STATEMENT_PREFIX",
    "InvalidSignature",
    "OwnerKey",
    "OwnerPublicKey",
    "decode_signed",
    "encode_signed",
    "encode_statement",
    "open_search_key",
    "seal_search_key",
    "seal_search_key_to",
    "search_key_statement",
    "verify_search_key",
]
