"""HAZARDOUS MATERIALS: use `abe_health.encrypt` / `abe_health.decrypt` instead.

The payload of an `.abe` file: STREAM (as in age) of AES-256-GCM chunks under a key derived from
the data key (docs/formats.md).

```
key, nonce prefix = HKDF-SHA256(ikm = DEK, salt, info = "abe-health/v2/payload"), 32 + 7 bytes
chunk_i = AES-256-GCM(key, nonce = prefix(7) | i (uint32) | last (1 byte), plaintext_i,
                      aad = SHA-256("ABE2" | salt | uint32 chunk))
```
Every chunk but the last holds exactly `chunk` plaintext bytes; the last holds 0..chunk bytes and
is sealed with last = 1, so truncation, reordering and appended data fail authentication. Both
directions stream in constant memory (two chunks at a time). `seal_stream` and `reencapsulate`
take a caller-chosen data key or KEM output: only recipes that manage keys themselves (the vault)
should call them.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ...errors import InvalidCiphertext
from ..pairing import Element
from ..schemes import Record, SchemeBase
from .header import CHUNK, MAGIC, Header, read_exact, read_header, write_header
from .wrap import DEK_BYTES, TAG

INFO = b"abe-health/v2/payload"

Progress = Callable[[int], None]


def _derive(dek: bytes, salt: bytes) -> tuple[AESGCM, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=39, salt=salt, info=INFO).derive(dek)
    return AESGCM(okm[:32]), okm[32:]


def payload_aad(salt: bytes, chunk: int) -> bytes:
    """What every payload chunk authenticates besides itself: the salt and the chunk size."""
    return hashlib.sha256(MAGIC + salt + struct.pack(">I", chunk)).digest()


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= 2**32:
        raise InvalidCiphertext("payload too long: more than 2^32 chunks")
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def seal_payload(dek: bytes, salt: bytes, chunk: int, src: BinaryIO, dst: Any,
                 progress: Progress | None = None) -> None:
    """Stream src to dst as the payload keyed from `dek` and `salt`."""
    aead, prefix = _derive(dek, salt)
    aad = payload_aad(salt, chunk)
    current = read_exact(src, chunk)
    counter = 0
    while True:
        following = read_exact(src, chunk) if len(current) == chunk else b""
        last = not following
        dst.write(aead.encrypt(_nonce(prefix, counter, last), current, aad))
        if progress:
            progress(len(current))
        if last:
            return
        current, counter = following, counter + 1


def open_payload(header: Header, dek: bytes, src: BinaryIO, dst: Any,
                 progress: Progress | None = None) -> Header:
    """Stream the payload that follows `header` in src, decrypted with `dek`, into dst. Some
    plaintext may reach dst before a later chunk fails: callers keep dst only on success."""
    open_chunks(dek, header.salt, header.chunk, src, dst, progress)
    return header


def open_chunks(dek: bytes, salt: bytes, chunk: int, src: BinaryIO, dst: Any,
                progress: Progress | None = None) -> None:
    """`open_payload` for a header of another form that names the same salt and chunk size (a
    transformed header, `abe_health.devices`)."""
    aead, prefix = _derive(dek, salt)
    aad = payload_aad(salt, chunk)
    size = chunk + TAG
    current = read_exact(src, size)
    counter = 0
    while True:
        following = read_exact(src, size) if len(current) == size else b""
        last = not following
        if len(current) < TAG:
            raise InvalidCiphertext("payload truncated")
        try:
            plain = aead.decrypt(_nonce(prefix, counter, last), current, aad)
        except InvalidTag:
            raise InvalidCiphertext(f"payload chunk {counter} was altered, reordered or truncated") from None
        dst.write(plain)
        if progress:
            progress(len(plain))
        if last:
            return
        current, counter = following, counter + 1


def seal_stream(scheme: SchemeBase, ct: Record, gt_key: Element, src: BinaryIO, dst: Any,
                chunk: int = CHUNK, progress: Progress | None = None,
                dek: bytes | None = None, context: bytes = b"") -> bytes:
    """Write the header holding `ct` (and the DEK, fresh unless given, wrapped under gt_key),
    then src as the payload under a fresh salt; returns that salt."""
    salt, dek = os.urandom(32), dek or os.urandom(DEK_BYTES)
    write_header(dst, scheme, ct, gt_key, dek, salt, chunk, context)
    seal_payload(dek, salt, chunk, src, dst, progress)
    return salt


def reencapsulate(src: BinaryIO, dst: BinaryIO, open_key: Callable[[Header], Element],
                  scheme: SchemeBase, ct: Record, gt_key: Element, context: bytes = b"") -> Header:
    """Replace a file's ABE header by (scheme, ct, gt_key), copying the payload bytes unchanged.

    `open_key(header)` returns the old header's KEM key: only a party able to decrypt the old
    header (the data owner, or an authority holding a key that satisfies its policy) can do
    this. The data key, salt and chunk size are kept, so every payload chunk stays valid; the
    payload is streamed through in constant memory and never decrypted.
    """
    header = read_header(src)
    dek = header.unwrap(open_key(header), context)
    write_header(dst, scheme, ct, gt_key, dek, header.salt, header.chunk, context)
    while block := src.read(1 << 20):
        dst.write(block)
    return header
