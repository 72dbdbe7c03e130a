"""Keys and ciphertext headers as versioned, self-describing CBOR, with optional ASCII armor
and passphrase protection (scrypt + AES-256-GCM) for master keys. Never pickle.

A serialized record is the CBOR map {"v": 1, "type": "abe-health/<kind>", "scheme", "group",
"kind", "parts", "meta"}; loading checks every field and every group element, so a key of the
wrong kind, scheme or group is refused with `InvalidKey` and a readable message.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import AbeError, BackendUnavailable, InvalidCiphertext, InvalidKey
from .fileio import write_atomic
from .schemes import Record, SchemeBase, decode_record, get_scheme, group_of

VERSION = 2
#: what a version-1 key (abe-health 0.1) gets told
V1_MESSAGE = ("this is a version-1 key (abe-health 0.1); version 2 changed numeric attributes, "
              "issuance records and authority keys (see docs/security.md): authorities run setup "
              "again and re-issue user keys")
PROTECTED = "abe-health/protected-key"
KIND_LABELS = {"public": "PUBLIC KEY", "master": "MASTER KEY", "user": "USER KEY",
               "ciphertext": "CIPHERTEXT"}
_ARMOR = re.compile(r"-----BEGIN ABE ([A-Z ]+)-----\s*(.*?)\s*-----END ABE \1-----", re.S)
#: scrypt cost: 2^17 x 8 x 128 bytes = 128 MiB, about 0.3 s here
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1


@dataclass(frozen=True)
class Key:
    """A public, master or user key: its scheme (which knows its group) and its record."""

    scheme: SchemeBase
    record: Record

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
             passphrase: str | None = None) -> None:
        """Write atomically; master and user keys get mode 0600; a passphrase encrypts the key."""
        data = self.to_bytes()
        if passphrase is not None:
            data = protect(data, passphrase)
        if armor:
            data = armor_bytes(data, KIND_LABELS[self.kind])
        write_atomic(path, data, secret=self.is_secret)

    def describe(self) -> str:
        meta = self.record.meta
        subject = ", ".join(meta["attributes"]) if meta.get("attributes") else meta.get("policy", "")
        text = f"{self.scheme.name} {self.kind} key over {self.scheme.group.id}"
        return f"{text} for {subject}" if subject else text


def to_map(scheme: SchemeBase, rec: Record) -> dict[str, Any]:
    """The versioned CBOR-ready map of a record."""
    return {"v": VERSION, "type": f"abe-health/{rec.kind}", **scheme.encode(rec)}


def from_map(data: Any) -> tuple[SchemeBase, Record]:
    """Validate and decode a record map (any kind)."""
    if not isinstance(data, dict):
        raise InvalidKey("not an abe-health key or ciphertext (expected a CBOR map)")
    if data.get("type") == PROTECTED:
        raise InvalidKey("this key is protected by a passphrase; give the passphrase to load it")
    if data.get("v") == 1 and data.get("type") != PROTECTED:
        raise InvalidKey(V1_MESSAGE)
    if data.get("v") != VERSION:
        raise InvalidKey(f"unsupported format version {data.get('v')!r} (this is version {VERSION})")
    if data.get("type") != f"abe-health/{data.get('kind')}":
        raise InvalidKey("not an abe-health key or ciphertext (type field missing or inconsistent)")
    try:
        group = group_of(data)
    except BackendUnavailable as exc:
        error = InvalidCiphertext if data.get("kind") == "ciphertext" else InvalidKey
        raise error(f"cannot open the record's pairing group: {exc}") from None
    scheme = get_scheme(str(data.get("scheme")), group)
    return scheme, decode_record(scheme, data)


def armor_bytes(data: bytes, label: str) -> bytes:
    """PEM-like ASCII armor with 64-column base64."""
    body = base64.b64encode(data).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN ABE {label}-----", *lines, f"-----END ABE {label}-----"]) + "\n").encode()


def dearmor(data: bytes) -> bytes:
    """Binary from armored text; binary input passes through unchanged."""
    if not data.lstrip().startswith(b"-----BEGIN ABE "):
        return data
    match = _ARMOR.search(data.decode("ascii", errors="replace"))
    if not match:
        raise InvalidKey("malformed ASCII armor (BEGIN/END lines do not match)")
    try:
        return base64.b64decode("".join(match.group(2).split()), validate=True)
    except binascii.Error:
        raise InvalidKey("malformed base64 inside ASCII armor") from None


def protect(data: bytes, passphrase: str) -> bytes:
    """Encrypt key bytes under a passphrase: scrypt -> AES-256-GCM, parameters in the envelope."""
    salt, nonce = os.urandom(16), os.urandom(12)
    key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())
    sealed = AESGCM(key).encrypt(nonce, data, PROTECTED.encode())
    return cbor2.dumps({"v": VERSION, "type": PROTECTED, "kdf": "scrypt", "n": SCRYPT_N,
                        "r": SCRYPT_R, "p": SCRYPT_P, "salt": salt, "nonce": nonce, "ct": sealed})


def unprotect(envelope: dict[str, Any], passphrase: str) -> bytes:
    """Inverse of `protect`; a wrong passphrase or altered file raises InvalidKey."""
    try:
        n, r, p = int(envelope["n"]), int(envelope["r"]), int(envelope["p"])
        if envelope.get("kdf") != "scrypt" or not (2**10 <= n <= 2**22 and r <= 32 and p <= 16):
            raise InvalidKey("unsupported key protection parameters")
        key = Scrypt(salt=envelope["salt"], length=32, n=n, r=r, p=p).derive(passphrase.encode())
        return AESGCM(key).decrypt(envelope["nonce"], envelope["ct"], PROTECTED.encode())
    except InvalidTag:
        raise InvalidKey("wrong passphrase, or the protected key file was altered") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidKey(f"malformed protected key: {exc}") from None


def load_key(data: bytes, passphrase: str | None = None, expect: str | None = None) -> Key:
    """Parse key bytes (binary or armored, protected or not); `expect` checks the kind."""
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


def read_key(path: str | os.PathLike[str], passphrase: str | None = None,
             expect: str | None = None) -> Key:
    """Load a key file, naming the file in any error."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidKey(f"cannot read key file {path}: {exc.strerror}") from None
    try:
        return load_key(data, passphrase, expect)
    except AbeError as exc:
        raise type(exc)(f"{path}: {exc}") from None
