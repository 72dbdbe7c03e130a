"""The `.abe` file (version 2): an ABE header, a wrapped data key, and a STREAM payload of 64 KiB
AES-256-GCM chunks (as in age). The byte layout is specified in docs/formats.md.

```
"ABE2" | uint32 n | core (n bytes of CBOR) | wrap (92 bytes) | chunk_0 | ... | chunk_last
core    = {"v": 2, "ct": ABE ciphertext record map, "chunk": 65536, "salt": 32 random bytes}
wrap    = wsalt (32 random bytes) | nonce (12 random bytes) | AES-256-GCM(KEK, nonce, DEK, aad)
KEK     = HKDF-SHA256(ikm = GT key bytes, salt = wsalt, info = "abe-health/v2/kek" | lp(context))
aad     = SHA-256("ABE2" | n | core)
key, nonce prefix = HKDF-SHA256(ikm = DEK, salt, info = "abe-health/v2/payload"), 32 + 7 bytes
chunk_i = AES-256-GCM(key, nonce = prefix(7) | i (uint32) | last (1 byte), plaintext_i,
                      aad = SHA-256("ABE2" | salt | uint32 chunk))
```
The ABE key encapsulates a random 32-byte data key (DEK) rather than keying the payload itself,
so that revocation can replace the ABE header (new policy, new GT key, new wrap) while the
payload bytes stay as they are. Each wrap has its own random salt and nonce, so a GT key shared
by many headers (one encapsulation per policy in a revocation run) still gives every header an
independent KEK; `context` (lp = uint32 length prefix) binds the header to where it belongs (a
vault file id and generation, a PHR record and section): a header moved elsewhere does not open.
The wrap authenticates every header byte; the payload is bound to its DEK, salt and chunk size.
Every chunk but the last holds exactly `chunk` plaintext bytes; the last holds 0..chunk bytes and
is sealed with last = 1. Truncation, reordering, appended data, a changed header or a header
from another file all fail authentication and raise `InvalidCiphertext`. Both directions stream
in constant memory (two chunks at a time). Version 1 files ("ABE1": zero nonce, KEK without
salt or context) are refused with a message that says how to migrate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import InvalidCiphertext, InvalidKey
from .keys import Key, from_map, to_map
from .pairing import Element
from .policy import KeyAttributes, Policy
from .schemes import Record, Scheme, SchemeBase

MAGIC = b"ABE2"
VERSION = 2
CHUNK = 64 * 1024
TAG = 16
MAX_HEADER = 16 * 1024 * 1024
INFO = b"abe-health/v2/payload"
KEK_INFO = b"abe-health/v2/kek"
WSALT = 32
NONCE = 12
WRAP = WSALT + NONCE + 32 + TAG
#: what an `.abe` file of version 1 gets told
V1_MESSAGE = ("this is a version-1 .abe file (abe-health 0.1), whose key wrap is no longer accepted "
              "(see docs/security.md); decrypt it with abe-health 0.1 and encrypt it again")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Header:
    """The parsed header of an `.abe` file: the ABE ciphertext and the payload parameters."""

    scheme: SchemeBase
    ciphertext: Record
    chunk: int
    salt: bytes
    aad: bytes  # of every payload chunk
    core_digest: bytes  # the wrap's associated data
    wrap: bytes
    size: int  # bytes of magic, length, core and wrap: where the payload starts

    @property
    def target(self) -> str:
        """The policy (CP) or the attribute list (KP) the file is encrypted under."""
        meta = self.ciphertext.meta
        return meta.get("policy") or ", ".join(meta.get("attributes", []))


def _derive(dek: bytes, salt: bytes) -> tuple[AESGCM, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=39, salt=salt, info=INFO).derive(dek)
    return AESGCM(okm[:32]), okm[32:]


def _kek(gt_key: Element, wsalt: bytes, context: bytes) -> AESGCM:
    info = KEK_INFO + struct.pack(">I", len(context)) + context
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=wsalt, info=info)
                  .derive(gt_key.to_bytes()))


def payload_aad(salt: bytes, chunk: int) -> bytes:
    """What every payload chunk authenticates besides itself: the salt and the chunk size."""
    return hashlib.sha256(MAGIC + salt + struct.pack(">I", chunk)).digest()


def unwrap_dek(header: Header, gt_key: Element, context: bytes = b"") -> bytes:
    """The data key, if `gt_key` is the header's KEM key, the header is intact and it was written
    for `context`."""
    wsalt, nonce, sealed = header.wrap[:WSALT], header.wrap[WSALT:WSALT + NONCE], header.wrap[WSALT + NONCE:]
    try:
        return _kek(gt_key, wsalt, context).decrypt(nonce, sealed, header.core_digest)
    except InvalidTag:
        raise InvalidCiphertext(
            "cannot decrypt: the header was altered, belongs to another file, "
            "or the key does not match this file"
        ) from None


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise InvalidCiphertext("payload too long: more than 2^32 chunks")
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def write_header(dst: BinaryIO, scheme: SchemeBase, ct: Record | dict[str, Any], gt_key: Element,
                 dek: bytes, salt: bytes, chunk: int = CHUNK, context: bytes = b"") -> None:
    """Write magic, length, core and the DEK wrapped under the KEM key `gt_key` with a fresh wrap
    salt and nonce (`ct` may be given already encoded by `keys.to_map`, to share one
    encapsulation between many headers: each header still gets its own KEK)."""
    ct_map = ct if isinstance(ct, dict) else to_map(scheme, ct)
    core = cbor2.dumps({"v": VERSION, "ct": ct_map, "chunk": chunk, "salt": salt})
    prefix = MAGIC + struct.pack(">I", len(core))
    wsalt, nonce = os.urandom(WSALT), os.urandom(NONCE)
    sealed = _kek(gt_key, wsalt, context).encrypt(nonce, dek, hashlib.sha256(prefix + core).digest())
    dst.write(prefix + core + wsalt + nonce + sealed)


def read_header(src: BinaryIO) -> Header:
    """Parse and validate the header; the payload is left unread."""
    prefix = _read_exact(src, 8)
    if len(prefix) < 8 or prefix[:4] != MAGIC:
        if prefix[:4] == b"ABE1":
            raise InvalidCiphertext(V1_MESSAGE)
        if prefix[:3] == MAGIC[:3]:
            raise InvalidCiphertext(f"unsupported .abe version {prefix[3:4]!r}")
        raise InvalidCiphertext("not an .abe file (bad magic)")
    (length,) = struct.unpack(">I", prefix[4:])
    if length > MAX_HEADER:
        raise InvalidCiphertext(f"header of {length} bytes exceeds the {MAX_HEADER} byte limit")
    raw = _read_exact(src, length)
    wrap = _read_exact(src, WRAP)
    if len(raw) != length or len(wrap) != WRAP:
        raise InvalidCiphertext("file truncated inside the header")
    try:
        data: Any = cbor2.loads(raw)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("header is not valid CBOR") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidCiphertext("unsupported or malformed header")
    chunk, salt = data.get("chunk"), data.get("salt")
    if not isinstance(chunk, int) or not 1024 <= chunk <= 16 * 1024 * 1024:
        raise InvalidCiphertext("header has an invalid chunk size")
    if not isinstance(salt, bytes) or len(salt) != 32:
        raise InvalidCiphertext("header has an invalid salt")
    try:
        scheme, ct = from_map(data.get("ct"))
    except InvalidKey as exc:
        raise InvalidCiphertext(f"header: {exc}") from None
    if ct.kind != "ciphertext":
        raise InvalidCiphertext("header does not hold an ABE ciphertext")
    return Header(scheme, ct, chunk, salt, payload_aad(salt, chunk),
                  hashlib.sha256(prefix + raw).digest(), wrap, 8 + length + WRAP)


def _read_exact(src: BinaryIO, n: int) -> bytes:
    """Read up to n bytes, looping over short reads (pipes); fewer only at end of file."""
    parts, got = [], 0
    while got < n:
        block = src.read(n - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def encrypt_stream(key: Key, target: Policy | KeyAttributes, src: BinaryIO, dst: BinaryIO,
                   chunk: int = CHUNK, progress: Progress | None = None,
                   meta: Mapping[str, Any] | None = None, context: bytes = b"") -> None:
    """Encapsulate under `target` with public key `key` and stream src -> dst as an `.abe` file;
    `meta` adds fields to the header's ciphertext record (e.g. the public-key fingerprint);
    `context` binds the header to where it belongs (decryption must give the same)."""
    if key.kind != "public":
        raise InvalidKey(f"encryption needs a public key, got a {key.kind} key")
    gt_key, ct = key.scheme.encapsulate(key.record, target)
    if meta:
        ct = dataclasses.replace(ct, meta={**ct.meta, **meta})
    seal_stream(key.scheme, ct, gt_key, src, dst, chunk, progress, context=context)


def seal_stream(scheme: SchemeBase, ct: Record, gt_key: Element, src: BinaryIO, dst: BinaryIO,
                chunk: int = CHUNK, progress: Progress | None = None,
                dek: bytes | None = None, salt: bytes | None = None, context: bytes = b"") -> None:
    """Write the header holding `ct` (and the DEK, fresh unless given, wrapped under gt_key),
    then src as the payload."""
    salt, dek = salt or os.urandom(32), dek or os.urandom(32)
    write_header(dst, scheme, ct, gt_key, dek, salt, chunk, context)
    aead, prefix = _derive(dek, salt)
    aad = payload_aad(salt, chunk)
    current = _read_exact(src, chunk)
    counter = 0
    while True:
        following = _read_exact(src, chunk) if len(current) == chunk else b""
        last = not following
        dst.write(aead.encrypt(_nonce(prefix, counter, last), current, aad))
        if progress:
            progress(len(current))
        if last:
            return
        current, counter = following, counter + 1


def _check_key(user_key: Key, header: Header) -> None:
    if user_key.kind != "user":
        raise InvalidKey(f"decryption needs a user key, got a {user_key.kind} key")
    if user_key.scheme.name != header.scheme.name:
        raise InvalidKey(f"this file is encrypted with {header.scheme.name}, "
                         f"the key is for {user_key.scheme.name}")
    if user_key.scheme.group.id != header.scheme.group.id:
        raise InvalidKey(f"this file uses group {header.scheme.group.id}, "
                         f"the key is over {user_key.scheme.group.id}")
    file_pk, key_pk = header.ciphertext.meta.get("pk"), user_key.record.meta.get("pk")
    if file_pk and key_pk and file_pk != key_pk:
        raise InvalidKey(f"this file was encrypted for authority {file_pk}; the key is from {key_pk}")


def decrypt_stream(user_keys: Key | Sequence[Key], src: BinaryIO, dst: BinaryIO,
                   progress: Progress | None = None, header: Header | None = None,
                   context: bytes = b"") -> Header:
    """Decapsulate with the user key (or, for multi-authority files, one user's keys from several
    authorities) and stream the plaintext to dst; return the header.

    On any error some plaintext may already be in `dst`: callers write to a temporary file and
    keep it only on success (see `abe_health.api`), so no unauthenticated byte is ever kept.
    """
    header = header or read_header(src)
    keys = [user_keys] if isinstance(user_keys, Key) else list(user_keys)
    if not keys:
        raise InvalidKey("decryption needs a user key")
    for key in keys:
        _check_key(key, header)
    if isinstance(header.scheme, Scheme):
        if len(keys) != 1:
            raise InvalidKey(f"{header.scheme.name} files are decrypted with one user key")
        gt_key = header.scheme.decapsulate(keys[0].record, header.ciphertext)
    else:
        gt_key = header.scheme.decapsulate([k.record for k in keys], header.ciphertext)
    return open_payload(header, unwrap_dek(header, gt_key, context), src, dst, progress)


def open_payload(header: Header, dek: bytes, src: BinaryIO, dst: BinaryIO,
                 progress: Progress | None = None) -> Header:
    """Stream the payload that follows `header` in src, decrypted with `dek`, into dst."""
    aead, prefix = _derive(dek, header.salt)
    size = header.chunk + TAG
    current = _read_exact(src, size)
    counter = 0
    while True:
        following = _read_exact(src, size) if len(current) == size else b""
        last = not following
        if len(current) < TAG:
            raise InvalidCiphertext("payload truncated")
        try:
            plain = aead.decrypt(_nonce(prefix, counter, last), current, header.aad)
        except InvalidTag:
            raise InvalidCiphertext(f"payload chunk {counter} was altered, reordered or truncated") from None
        dst.write(plain)
        if progress:
            progress(len(plain))
        if last:
            return header
        current, counter = following, counter + 1


def reencapsulate(src: BinaryIO, dst: BinaryIO, open_key: Callable[[Header], Element],
                  scheme: SchemeBase, ct: Record, gt_key: Element, context: bytes = b"") -> Header:
    """Replace a file's ABE header by (scheme, ct, gt_key), copying the payload bytes unchanged.

    `open_key(header)` returns the old header's KEM key: only a party able to decrypt the old
    header (the data owner, or an authority holding a key that satisfies its policy) can do
    this. The data key, salt and chunk size are kept, so every payload chunk stays valid; the
    payload is streamed through in constant memory and never decrypted.
    """
    header = read_header(src)
    dek = unwrap_dek(header, open_key(header), context)
    write_header(dst, scheme, ct, gt_key, dek, header.salt, header.chunk, context)
    while block := src.read(1 << 20):
        dst.write(block)
    return header
