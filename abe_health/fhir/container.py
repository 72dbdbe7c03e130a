"""The encrypted FHIR bundle container (`abe-health/fhir-bundle`, version 1): its layout, the
derivation of every key and context, padding, and strict, bounded parsing.

    {"v": 1, "type": "abe-health/fhir-bundle", "id": BUNDLE_ID, "nonce": 16 random bytes,
     "classes": [{"abe": .abe bytes, "entries": [sealed entry, ...], "seal": 32 bytes}, ...]}

One class per distinct policy: its `.abe` file (one ABE encapsulation, context `class_context`)
holds the class table, CBOR {"key": 32 random bytes K, "shell": the Bundle without its entries,
"toc": [[position, resourceType, id or null], ...]} padded to a bucket; each sealed entry is
`nonce (12 random bytes) | AES-256-GCM(entry_key, nonce, padded [position, entry JSON, refs],
aad = entry_info)` under a key derived from K and every context value; `seal` is
HMAC-SHA256(seal_key(K), manifest digest over every stored byte but the seals). The byte layout
is specified in docs/fhir.md; encryption and decryption live in `encrypt.py` and `decrypt.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InvalidCiphertext

TYPE = "abe-health/fhir-bundle"
VERSION = 1
NONCE = 16
AEAD_NONCE = 12
KEY = 32
SEAL = 32
CLASS_LABEL = b"abe-health/v2/fhir-class\x00"
ENTRY_LABEL = b"abe-health/v2/fhir-entry\x00"
SEAL_LABEL = b"abe-health/v2/fhir-seal\x00"
MANIFEST_LABEL = b"abe-health/v2/fhir-manifest\x00"
#: the longest bundle id (printed, so printable characters only)
MAX_ID = 256
#: the most policy classes per bundle (each costs one header to parse when read)
MAX_CLASSES = 256
#: the most entries per bundle
MAX_ENTRIES = 100_000
#: the largest sealed entry, and the largest class `.abe`
MAX_ENTRY = 16 * 1024 * 1024
MAX_CLASS_FILE = 64 * 1024 * 1024
#: the largest container accepted (read before parsing)
MAX_CONTAINER = 1024 * 1024 * 1024
#: padded plaintexts are at least this long
MIN_BUCKET = 256


def lp(data: str | bytes) -> bytes:
    """u32 length (big-endian) then the bytes (UTF-8 for text)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return struct.pack(">I", len(raw)) + raw


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def bucket(n: int) -> int:
    """The padded length of n bytes: the smallest ⌈2^(k/4)⌉ >= n, at least MIN_BUCKET (so a
    length is known only to within 19 %)."""
    if n <= MIN_BUCKET:
        return MIN_BUCKET
    k = math.ceil(4 * math.log2(n))
    while math.ceil(2 ** (k / 4)) < n:
        k += 1
    while k > 0 and math.ceil(2 ** ((k - 1) / 4)) >= n:
        k -= 1
    return math.ceil(2 ** (k / 4))


def pad(body: bytes) -> bytes:
    """u32(len) | body | zero bytes up to its bucket."""
    framed = u32(len(body)) + body
    return framed + bytes(bucket(len(framed)) - len(framed))


def unpad(padded: bytes) -> bytes:
    """The body of `pad`; InvalidCiphertext if the framing is wrong (after authentication, so
    only a writer's bug or a forger holding the class key gets here)."""
    if len(padded) < 4:
        raise InvalidCiphertext("malformed padded plaintext")
    (n,) = struct.unpack(">I", padded[:4])
    if n > len(padded) - 4 or any(padded[4 + n:]):
        raise InvalidCiphertext("malformed padded plaintext")
    return padded[4 : 4 + n]


def class_context(bundle_id: str, nonce: bytes, index: int, n_classes: int) -> bytes:
    """The `.abe` context of class `index`: binds its header to this bundle, this encryption,
    its place and the number of classes."""
    return hashlib.sha256(CLASS_LABEL + lp(bundle_id) + nonce + u32(index) + u32(n_classes)).digest()


def entry_info(bundle_id: str, nonce: bytes, index: int, slot: int, position: int,
               resource_key: str) -> bytes:
    """What an entry's key and AEAD bind: bundle, encryption, class, slot in the class,
    position in the bundle and the resource's `Type/id`."""
    return (ENTRY_LABEL + lp(bundle_id) + nonce + u32(index) + u32(slot) + u32(position)
            + lp(resource_key))


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY, salt=salt, info=info).derive(ikm)


def entry_key(class_key: bytes, nonce: bytes, info: bytes) -> bytes:
    """The AES-256-GCM key of one entry, from its class key and `entry_info`."""
    return _hkdf(class_key, nonce, info)


def seal_key(class_key: bytes, bundle_id: str, nonce: bytes, index: int) -> bytes:
    """The HMAC key of class `index`'s seal."""
    return _hkdf(class_key, nonce, SEAL_LABEL + lp(bundle_id) + u32(index))


def manifest_digest(bundle_id: str, nonce: bytes, classes: list[tuple[bytes, list[bytes]]]) -> bytes:
    """SHA-256 over every stored byte but the seals: id, nonce, and per class its `.abe` and
    its sealed entries, each length-prefixed, in stored order."""
    h = hashlib.sha256(MANIFEST_LABEL + lp(bundle_id) + nonce + u32(len(classes)))
    for abe, entries in classes:
        h.update(lp(abe) + u32(len(entries)))
        for sealed in entries:
            h.update(lp(sealed))
    return h.digest()


def seal_entry(class_key: bytes, nonce: bytes, info: bytes, body: bytes) -> bytes:
    """`nonce (12 fresh random bytes) | AES-256-GCM(entry key, nonce, pad(body), aad = info)`."""
    aead_nonce = os.urandom(AEAD_NONCE)
    return aead_nonce + AESGCM(entry_key(class_key, nonce, info)).encrypt(aead_nonce, pad(body), info)


def open_entry(class_key: bytes, nonce: bytes, info: bytes, sealed: bytes) -> bytes:
    """The body `seal_entry` sealed for `info`; InvalidCiphertext if it was not."""
    try:
        padded = AESGCM(entry_key(class_key, nonce, info)).decrypt(
            sealed[:AEAD_NONCE], sealed[AEAD_NONCE:], info)
    except InvalidTag:
        raise InvalidCiphertext("an entry was not written for its place in this bundle") from None
    return unpad(padded)


def seal(key: bytes, digest: bytes) -> bytes:
    return hmac.new(key, digest, hashlib.sha256).digest()


def seal_ok(key: bytes, digest: bytes, tag: bytes) -> bool:
    """Constant-time comparison of a stored seal with the one `key` gives."""
    return hmac.compare_digest(seal(key, digest), tag)


def resource_key(rtype: str, rid: str | None) -> str:
    """`Type/id`, or `Type` for a resource without id."""
    return f"{rtype}/{rid}" if rid is not None else rtype


@dataclass(frozen=True)
class StoredClass:
    abe: bytes
    entries: list[bytes]
    seal: bytes


@dataclass(frozen=True)
class Container:
    """A parsed container: nothing in it is authenticated yet."""

    bundle_id: str
    nonce: bytes
    classes: list[StoredClass]

    @property
    def n_entries(self) -> int:
        return sum(len(c.entries) for c in self.classes)

    def digest(self) -> bytes:
        return manifest_digest(self.bundle_id, self.nonce, [(c.abe, c.entries) for c in self.classes])

    def to_bytes(self) -> bytes:
        return cbor2.dumps({"v": VERSION, "type": TYPE, "id": self.bundle_id, "nonce": self.nonce,
                            "classes": [{"abe": c.abe, "entries": c.entries, "seal": c.seal}
                                        for c in self.classes]})


def check_id(value: Any, error: type[Exception]) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_ID \
            or any(not ch.isprintable() for ch in value):
        raise error(f"a bundle id is 1..{MAX_ID} printable characters")
    return value


def parse(blob: bytes) -> Container:
    """Parse and bound-check a container (InvalidCiphertext for anything malformed); no key
    is needed and nothing is authenticated here."""
    if len(blob) > MAX_CONTAINER:
        raise InvalidCiphertext(f"an encrypted bundle is at most {MAX_CONTAINER} bytes")
    stream = io.BytesIO(blob)
    try:
        data = cbor2.CBORDecoder(stream).decode()
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("not an encrypted FHIR bundle (bytes are not CBOR)") from None
    if stream.tell() != len(blob):
        raise InvalidCiphertext("malformed encrypted FHIR bundle (bytes after its end)")
    if not isinstance(data, dict) or data.get("type") != TYPE:
        raise InvalidCiphertext("not an encrypted FHIR bundle")
    if data.get("v") != VERSION:
        version = data.get("v")
        shown = repr(version) if type(version) is int and 0 <= version < 1000 else "unknown"
        raise InvalidCiphertext(f"unsupported encrypted FHIR bundle version {shown} "
                                f"(this is version {VERSION})")
    if set(data) != {"v", "type", "id", "nonce", "classes"}:
        raise InvalidCiphertext("malformed encrypted FHIR bundle (fields)")
    bundle_id = check_id(data["id"], InvalidCiphertext)
    nonce, classes = data["nonce"], data["classes"]
    if not isinstance(nonce, bytes) or len(nonce) != NONCE:
        raise InvalidCiphertext("malformed encrypted FHIR bundle (nonce)")
    if not isinstance(classes, list) or not 0 < len(classes) <= MAX_CLASSES:
        raise InvalidCiphertext(f"malformed encrypted FHIR bundle (1..{MAX_CLASSES} classes)")
    out, total = [], 0
    for item in classes:
        if not isinstance(item, dict) or set(item) != {"abe", "entries", "seal"}:
            raise InvalidCiphertext("malformed encrypted FHIR bundle (class)")
        abe, entries, tag = item["abe"], item["entries"], item["seal"]
        if not isinstance(abe, bytes) or len(abe) > MAX_CLASS_FILE:
            raise InvalidCiphertext("malformed encrypted FHIR bundle (class header)")
        if not isinstance(tag, bytes) or len(tag) != SEAL:
            raise InvalidCiphertext("malformed encrypted FHIR bundle (seal)")
        if not isinstance(entries, list) or not entries:
            raise InvalidCiphertext("malformed encrypted FHIR bundle (a class without entries)")
        total += len(entries)
        if total > MAX_ENTRIES:
            raise InvalidCiphertext(f"malformed encrypted FHIR bundle (over {MAX_ENTRIES} entries)")
        for sealed in entries:
            if not isinstance(sealed, bytes) or not AEAD_NONCE + 16 <= len(sealed) <= MAX_ENTRY:
                raise InvalidCiphertext("malformed encrypted FHIR bundle (entry)")
        out.append(StoredClass(abe, entries, tag))
    return Container(bundle_id, nonce, out)
