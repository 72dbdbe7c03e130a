"""Typed keys: `PublicKey`, `MasterKey`, `UserKey`, as versioned, self-describing CBOR with
optional ASCII armor and passphrase protection (scrypt + AES-256-GCM). Never pickled.

Records are specified in docs/formats.md (`abe_health.hazmat.records`). Loading checks every
field and every group element, so a key of the wrong kind, scheme or group is refused with
`InvalidKey` and a readable message. Secret keys (master, user) print only their kind, scheme,
fingerprint and attributes, refuse pickling, and compare in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import AbeError, InvalidKey
from .fileio import write_atomic
from .hazmat.records import PROTECTED, V1_MESSAGE, VERSION, from_map, to_map
from .hazmat.schemes import Record, SchemeBase

__all__ = ["V1_MESSAGE", "VERSION", "Key", "MasterKey", "PublicKey", "UserKey", "armor_bytes",
           "dearmor", "load_key", "protect", "read_key", "unprotect"]

KIND_LABELS = {"public": "PUBLIC KEY", "master": "MASTER KEY", "user": "USER KEY",
               "ciphertext": "CIPHERTEXT"}
_BEGIN_LINE = re.compile(rb"-----BEGIN ABE ([A-Z][A-Z ]{0,30})-----")
#: scrypt cost: 2^17 x 8 x 128 bytes = 128 MiB, about 0.3 s here
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
#: the most memory a protected key file may ask scrypt for (128 * n * r bytes)
SCRYPT_MAX_MEMORY = 1 << 30
#: the largest key file read
MAX_KEY_BYTES = 16 * 1024 * 1024
KeyKind = Literal["public", "master", "user"]


@dataclass(frozen=True, eq=False)
class Key:
    """A public, master or user key: its scheme (which knows its group) and its record.

    `Key(scheme, record)` returns the typed subclass for the record's kind (`PublicKey`,
    `MasterKey`, `UserKey`).
    """

    scheme: SchemeBase
    record: Record

    def __new__(cls, scheme: SchemeBase, record: Record) -> Key:
        if cls is Key:
            cls = _KINDS.get(record.kind, Key)
        return object.__new__(cls)

    @property
    def kind(self) -> str:
        return self.record.kind

    @property
    def is_secret(self) -> bool:
        return self.kind in ("master", "user")

    def to_bytes(self, armor: bool = False) -> bytes:
        """CBOR bytes, or ASCII armor (`-----BEGIN ABE USER KEY-----`) when `armor`."""
        data = cbor2.dumps(to_map(self.scheme, self.record))
        return armor_bytes(data, KIND_LABELS[self.kind]) if armor else data

    def save(self, path: str | os.PathLike[str], armor: bool = False,
             passphrase: str | bytes | None = None) -> None:
        """Write atomically; master and user keys get mode 0600; a passphrase encrypts the key."""
        data = self.to_bytes()
        if passphrase is not None:
            data = protect(data, passphrase)
        if armor:
            data = armor_bytes(data, KIND_LABELS[self.kind])
        write_atomic(path, data, secret=self.is_secret)

    @property
    def fingerprint(self) -> str:
        """16 hex digits naming this key (for a public key, what users pin; for a secret key, a
        one-way digest of its record that reveals nothing usable)."""
        from .derived import fingerprint

        if self.kind == "public":
            return fingerprint(self)
        encoded = cbor2.dumps(to_map(self.scheme, self.record), canonical=True)
        return hashlib.sha256(b"abe-health/v2/secret-key-id\x00" + encoded).hexdigest()[:16]

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attributes a CP or multi-authority user key holds (empty for other keys)."""
        attrs = self.record.meta.get("attributes")
        return tuple(str(a) for a in attrs) if isinstance(attrs, list) else ()

    def describe(self) -> str:
        meta = self.record.meta
        subject = ", ".join(self.attributes) if self.attributes else str(meta.get("policy", ""))
        text = f"{self.scheme.name} {self.kind} key over {self.scheme.group.id}"
        return f"{text} for {subject}" if subject else text

    def __repr__(self) -> str:
        extra = f", attributes={list(self.attributes)!r}" if self.attributes else ""
        if self.kind == "user" and isinstance(self.record.meta.get("policy"), str):
            extra = f", policy={self.record.meta['policy']!r}"
        return f"{type(self).__name__}(scheme={self.scheme.name!r}, fingerprint={self.fingerprint!r}{extra})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return hmac.compare_digest(self.to_bytes(), other.to_bytes())

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} objects are not pickled: use to_bytes() / save()")

    def __copy__(self) -> Key:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Key:
        return self


class PublicKey(Key):
    """An authority's public key: what writers pin (by `fingerprint`) and encrypt to."""


class MasterKey(Key):
    """An authority's master key (secret): issues user keys; carries its public key."""

    def public_key(self) -> PublicKey:
        """The public key this master key was made with (checked to be its pair)."""
        from .derived import public_of

        return public_of(self)  # type: ignore[return-value]


class UserKey(Key):
    """A user's secret key for attributes (CP, multi-authority) or a policy (KP): an identity."""

    @property
    def gid(self) -> str | None:
        """The global identifier of a multi-authority key's holder."""
        gid = self.record.meta.get("gid")
        return gid if isinstance(gid, str) else None


_KINDS: dict[str, type[Key]] = {"public": PublicKey, "master": MasterKey, "user": UserKey}


def armor_bytes(data: bytes, label: str) -> bytes:
    """PEM-like ASCII armor with 64-column base64."""
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN ABE {label}-----", *lines, f"-----END ABE {label}-----"]) + "\n").encode()


def dearmor(data: bytes) -> bytes:
    """Binary from armored text; binary input passes through unchanged.

    A linear, line-by-line reader (a regular expression with a lazy body and a back-reference
    took quadratic time on text of many BEGIN lines): the first line is `-----BEGIN ABE LABEL-----`,
    the body runs to the first line that starts with `-----`, which must be the END line of the
    same label, and only whitespace may follow it. The body is base64 (whitespace ignored);
    anything else, characters outside ASCII included, raises InvalidKey."""
    text = data.lstrip()
    if not text.startswith(b"-----BEGIN ABE "):
        return data
    lines = text.split(b"\n")
    begin = _BEGIN_LINE.fullmatch(lines[0].rstrip(b"\r\t "))
    if begin is None:
        raise InvalidKey("malformed ASCII armor (BEGIN line)")
    end_line = b"-----END ABE " + begin.group(1) + b"-----"
    for i, line in enumerate(lines[1:], 1):
        if line.lstrip().startswith(b"-----"):
            if line.strip() != end_line:
                raise InvalidKey("malformed ASCII armor (BEGIN/END lines do not match)")
            if any(rest.strip() for rest in lines[i + 1 :]):
                raise InvalidKey("malformed ASCII armor (text after the END line)")
            body = b"".join(lines[1:i])
            break
    else:
        raise InvalidKey("malformed ASCII armor (BEGIN/END lines do not match)")
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
        raise InvalidKey("malformed base64 inside ASCII armor") from None


def _secret(passphrase: str | bytes) -> bytes:
    return passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)


def protect(data: bytes, passphrase: str | bytes) -> bytes:
    """Encrypt key bytes under a passphrase: scrypt -> AES-256-GCM, parameters in the envelope."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(_secret(passphrase))
    sealed = AESGCM(key).encrypt(nonce, data, PROTECTED.encode())
    return cbor2.dumps({"v": VERSION, "type": PROTECTED, "kdf": "scrypt", "n": SCRYPT_N,
                        "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt, "nonce": nonce, "ct": sealed})


def unprotect(envelope: dict[str, Any], passphrase: str | bytes) -> bytes:
    """Inverse of `protect`; a wrong passphrase or altered file raises InvalidKey. The scrypt
    parameters are checked (power-of-two n, bounded memory and work) before anything runs."""
    n, r, p = envelope.get("n"), envelope.get("r"), envelope.get("p")
    salt, nonce, sealed = envelope.get("salt"), envelope.get("nonce"), envelope.get("ct")
    if envelope.get("kdf") != "scrypt" or not all(isinstance(x, int) and not isinstance(x, bool)
                                                    for x in (n, r, p)):
        raise InvalidKey("unsupported key protection parameters")
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    if not (2**10 <= n <= 2**22 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16
            and 128 * n * r <= SCRYPT_MAX_MEMORY):
        raise InvalidKey("unsupported key protection parameters")
    if not (isinstance(salt, bytes) and 8 <= len(salt) <= 64 and isinstance(nonce, bytes)
            and len(nonce) == 12 and isinstance(sealed, bytes) and len(sealed) <= MAX_KEY_BYTES):
        raise InvalidKey("malformed protected key")
    try:
        key = Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(_secret(passphrase))
        return AESGCM(key).decrypt(nonce, sealed, PROTECTED.encode())
    except InvalidTag:
        raise InvalidKey("wrong passphrase, or the protected key file was altered") from None
    except (ValueError, MemoryError):  # parameters OpenSSL refuses
        raise InvalidKey("unsupported key protection parameters") from None


def load_key(data: bytes, passphrase: str | bytes | None = None, expect: str | None = None) -> Key:
    """Parse key bytes (binary or armored, protected or not); `expect` checks the kind."""
    if len(data) > MAX_KEY_BYTES:
        raise InvalidKey(f"not an abe-health key (over {MAX_KEY_BYTES} bytes)")
    raw = dearmor(data)
    try:
        decoded = cbor2.loads(raw)
    except Exception:  # cbor2 raises several error types for garbage input
        raise InvalidKey("not an abe-health key (bytes are not CBOR)") from None
    if isinstance(decoded, dict) and decoded.get("type") == PROTECTED:
        if passphrase is None:
            raise InvalidKey("this key is protected by a passphrase; give the passphrase to load it")
        return load_key(unprotect(decoded, passphrase), expect=expect)
    scheme, rec = from_map(decoded)
    if rec.kind == "ciphertext":
        raise InvalidKey("this is a ciphertext, not a key")
    if expect is not None and rec.kind != expect:
        raise InvalidKey(f"expected a {expect} key, got a {rec.kind} key ({scheme.name})")
    return Key(scheme, rec)


def read_key(path: str | os.PathLike[str], passphrase: str | bytes | None = None,
             expect: str | None = None) -> Key:
    """Load a key file, naming the file in any error."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise InvalidKey(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return load_key(data, passphrase, expect)
    except AbeError as exc:
        raise type(exc)(f"{path}: {exc}") from None
