"""Outsourced decryption, the recipe: a holder `blind`s its user key(s) once; the cloud
`transform`s `.abe` headers with the transformation key (every pairing); the device `retrieve`s
with the retrieval key z: one GT exponentiation, then the key wrap and the payload's AEAD.

>>> from abe_health import CPABE, PolicyRecipient, encrypt
>>> hospital = CPABE.setup()
>>> tk, rk = blind(hospital.keygen(["doctor"]))
>>> blob = encrypt(b"ECG", None, PolicyRecipient(hospital.public_key, "doctor"))
>>> short = transform(tk, blob)                      # the cloud: header in, < 1 KiB out
>>> retrieve(short + blob[header_size(blob):], None, rk)
b'ECG'

Verification: the device derives the wrap's KEK from the K it retrieved and opens the header's
own wrap, whose associated data is the digest of the whole original header. A transformation
other than the true one gives another K, so a KEK unrelated to the wrap's (HKDF), and is refused:
the device gets an error, never a wrong data key (docs/devices.md states the argument).
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
from collections.abc import Iterable
from typing import Any, BinaryIO

from ..armor import open_maybe_armored
from ..errors import InvalidCiphertext, InvalidKey
from ..hazmat import outsource
from ..hazmat.envelope import Header, Progress, open_chunks, read_header, unwrap_dek
from ..identities import Holder
from ..keys import Key, UserKey
from . import transformed
from .keyfiles import RetrievalKey, TransformationKey
from .streams import Sink, Source, deliver, opened

__all__ = ["blind", "header_digest", "header_size", "retrieve", "transform", "transform_file"]


def _user_keys(items: Iterable[Key | Holder]) -> list[UserKey]:
    keys: list[UserKey] = []
    for item in items:
        if isinstance(item, Holder):
            keys.extend(item.keys)
        elif isinstance(item, UserKey):
            keys.append(item)
        else:
            raise InvalidKey(f"blinding needs user keys, not {type(item).__name__}")
    return keys


def blind(*keys: Key | Holder) -> tuple[TransformationKey, RetrievalKey]:
    """A fresh (transformation key, retrieval key) pair for one holder's user key, or for one
    holder's multi-authority keys (one GID: keys of several GIDs are refused), all blinded with
    one random z. Give the first to the cloud; keep the second on the device."""
    users = _user_keys(keys)
    if not users:
        raise InvalidKey("blinding needs at least one user key")
    scheme = users[0].scheme
    if any(k.scheme is not scheme for k in users):
        raise InvalidKey("keys of different schemes or groups are blinded separately")
    outsource.check_supported(scheme)
    z = scheme.group.random_zr()
    tk = TransformationKey(outsource.blind(scheme, [k.record for k in users], z))
    return tk, RetrievalKey(scheme, z, tk.id)


def _check(tk: TransformationKey, header: Header) -> None:
    """The header is of the transformation key's scheme, group and (when both name one)
    authority, as `abe_health.identities` checks a user key."""
    if header.scheme is not tk.scheme:
        raise InvalidKey(f"this file is encrypted with {header.scheme.name} over "
                         f"{header.scheme.group.id}; the transformation key is for {tk.scheme.name} "
                         f"over {tk.scheme.group.id}")
    file_pk, key_pk = header.ciphertext.meta.get("pk"), tk.blinded.records[0].meta.get("pk")
    if file_pk and key_pk and file_pk != key_pk:
        raise InvalidKey(f"this file was encrypted for authority {str(file_pk)[:32]}; "
                         f"the transformation key is from {str(key_pk)[:32]}")


def _transform_header(tk: TransformationKey, fin: BinaryIO) -> bytes:
    header = read_header(fin)
    _check(tk, header)
    return transformed.encode(header, tk.id, outsource.transform(tk.blinded, header.ciphertext))


def transform(tk: TransformationKey, src: Source) -> bytes:
    """The cloud's operation: the transformed header (under 1 KiB for FAME) of the `.abe` header
    in `src` (a path, stream or bytes; armor is read; only the header is read).
    PolicyNotSatisfied when the key's attributes do not satisfy the header."""
    with opened(src) as raw:
        return _transform_header(tk, open_maybe_armored(raw))


def transform_file(tk: TransformationKey, src: Source, dst: Sink) -> bytes | None:
    """A whole transformed file: the transformed header, then the payload bytes of `src`
    unchanged (streamed, never decrypted)."""

    def run(sink: Any) -> None:
        with opened(src) as raw:
            fin = open_maybe_armored(raw)
            sink.write(_transform_header(tk, fin))
            shutil.copyfileobj(fin, sink, 1 << 20)

    return deliver(dst, run)[1]


def header_size(src: bytes) -> int:
    """Bytes of the `.abe` header at the start of `src` (where its payload starts)."""
    with opened(src) as fin:
        return read_header(fin).size


def _data_key(th: transformed.Transformed, rk: RetrievalKey, context: bytes,
              expect_header: bytes | None) -> bytes:
    if th.scheme is not rk.scheme:
        raise InvalidKey(f"this file was transformed for {th.scheme.name} over {th.scheme.group.id}; "
                         f"the retrieval key is for {rk.scheme.name} over {rk.scheme.group.id}")
    if not hmac.compare_digest(th.tk.encode(), rk.transformation_key.encode()):
        raise InvalidKey(f"this file was transformed with transformation key {th.tk[:16]}; the "
                         f"retrieval key belongs to {rk.transformation_key}")
    if expect_header is not None and not hmac.compare_digest(_pin(th.header, th.wrap), expect_header):
        raise InvalidCiphertext("this transformation is of another header than the one expected")
    kem_key = outsource.retrieve(rk.scheme.group, th.elements(), rk.z)
    try:
        return unwrap_dek(th.wrap, kem_key, th.header, context)
    except InvalidCiphertext:
        raise InvalidCiphertext("cannot decrypt: the transformation is wrong, or the header was "
                                "altered, belongs to another file or context, or the key does not "
                                "match this file") from None


def retrieve(src: Source, dst: Sink, rk: RetrievalKey, *, context: bytes = b"",
             expect_header: bytes | None = None, progress: Progress | None = None) -> bytes | None:
    """The device's operation: decrypt a transformed file (transformed header, then payload)
    with the retrieval key into `dst` (None: return the plaintext; a path appears only if
    every chunk verified). `expect_header` pins the original header the device asked about
    (`header_digest`): without it the device gets some file encrypted to its attributes, which
    anyone can make (ABE encryption is public), so only a pin says it is the file it asked for."""

    def run(sink: Any) -> None:
        with opened(src) as fin:
            th = transformed.read(fin)
            open_chunks(_data_key(th, rk, context, expect_header), th.salt, th.chunk, fin, sink,
                        progress)

    return deliver(dst, run)[1]


_PIN = b"abe-health/v1/header-pin"


def _pin(core_digest: bytes, wrap: bytes) -> bytes:
    """The value that pins a whole `.abe` header: its core's digest (magic, length, core) and its
    key wrap, which the core's digest does not cover. A pin of the core alone would let the cloud
    keep it and serve a wrap of its own under a K it knows (a transformation of a file it
    encrypted itself gives it T with T^z = K)."""
    return hashlib.sha256(_PIN + core_digest + wrap).digest()


def header_digest(src: Source) -> bytes:
    """The SHA-256 value that pins an `.abe` header for `retrieve(expect_header=...)`: over the
    digest of its core and its key wrap (the whole header)."""
    with opened(src) as raw:
        header = read_header(open_maybe_armored(raw))
        return _pin(header.core_digest, header.wrap)
