"""The one way to encrypt and decrypt: `encrypt(src, dst, *recipients)` and
`decrypt(src, dst, *identities)`, for files, streams and bytes (age's `Encrypt`/`Decrypt`).

>>> from abe_health import CPABE, PolicyRecipient
>>> hospital = CPABE.setup()
>>> alice = hospital.keygen(["doctor", "cardiology"])
>>> blob = encrypt(b'{"bp": "120/80"}', None, PolicyRecipient(hospital.public_key, "doctor"))
>>> decrypt(blob, None, alice)
b'{"bp": "120/80"}'

`src` is a path, a binary stream or bytes; `dst` a path (written atomically: nothing appears
unless the whole file verified), a binary stream, or None to get bytes back. A file has one
recipient (the `.abe` header holds one ABE ciphertext). `decrypt` tries its identities in turn
and, when none opens the file, says why for each (`NoIdentityMatched`). The data key, salts and
nonces are always fresh and never chosen by the caller; the format is in docs/formats.md.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, overload

from .armor import ArmorReader, ArmorWriter, open_maybe_armored
from .errors import InvalidCiphertext, InvalidKey, NoIdentityMatched, PolicyNotSatisfied
from .fileio import atomic_output
from .hazmat.envelope import CHUNK, Header, Progress, open_payload, read_header, seal_stream
from .hazmat.envelope.header import MAX_CHUNK, MIN_CHUNK
from .identities import Identity, identities_of
from .keys import Key
from .recipients import Recipient

__all__ = ["decrypt", "encrypt", "inspect"]

Source = str | os.PathLike[str] | bytes | BinaryIO
Sink = str | os.PathLike[str] | BinaryIO | None
IdentityLike = Key | Identity | list[Key] | tuple[Key, ...]


def _recipient(recipients: tuple[Recipient, ...]) -> Recipient:
    if len(recipients) != 1:
        raise InvalidKey(f"a file is encrypted for exactly one recipient, got {len(recipients)} "
                         "(express alternatives with 'or' in the policy)")
    if not isinstance(recipients[0], Recipient):
        raise InvalidKey(f"not a recipient: {type(recipients[0]).__name__} (use PolicyRecipient, "
                         "AttributesRecipient or MultiAuthorityRecipient)")
    return recipients[0]


class _Source:
    """Open `src` (path, stream or bytes) for reading; closes only what it opened."""

    def __init__(self, src: Source) -> None:
        self.src = src
        self.opened: BinaryIO | None = None

    def __enter__(self) -> BinaryIO:
        if isinstance(self.src, (bytes, bytearray, memoryview)):
            return io.BytesIO(bytes(self.src))
        if isinstance(self.src, (str, os.PathLike)):
            self.opened = open(self.src, "rb")
            return self.opened
        return self.src

    def __exit__(self, *exc: object) -> None:
        if self.opened is not None:
            self.opened.close()


T = TypeVar("T")


def _deliver(dst: Sink, run: Callable[[Any], T]) -> tuple[T, bytes | None]:
    """Run the writer `run` into `dst`: bytes (None: returned as the second item), a path
    (atomically: it appears only if `run` returns), or a caller's stream."""
    if dst is None:
        buffer = io.BytesIO()
        result = run(buffer)
        return result, buffer.getvalue()
    if isinstance(dst, (str, os.PathLike)):
        with atomic_output(dst) as fout:
            return run(fout), None
    return run(dst), None


@overload
def encrypt(src: Source, dst: None, *recipients: Recipient, armor: bool = ..., context: bytes = ...,
            chunk: int = ..., progress: Progress | None = ...) -> bytes: ...
@overload
def encrypt(src: Source, dst: str | os.PathLike[str] | BinaryIO, *recipients: Recipient,
            armor: bool = ..., context: bytes = ..., chunk: int = ...,
            progress: Progress | None = ...) -> None: ...
def encrypt(src: Source, dst: Sink, *recipients: Recipient, armor: bool = False, context: bytes = b"",
            chunk: int = CHUNK, progress: Progress | None = None) -> bytes | None:
    """Encrypt `src` for one recipient into `dst` (None: return the `.abe` bytes); `armor`
    writes ASCII armor; `context` binds the file to where it belongs (decrypt must give it)."""
    recipient = _recipient(recipients)
    if not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise ValueError(f"chunk size must be {MIN_CHUNK}..{MAX_CHUNK} bytes")
    scheme, ct, gt_key = recipient.encapsulate()

    def run(sink: Any) -> None:
        out = ArmorWriter(sink) if armor else sink
        with _Source(src) as fin:
            seal_stream(scheme, ct, gt_key, fin, out, chunk, progress, context=context)
        if armor:
            out.close()

    _, data = _deliver(dst, run)
    return data


def open_header(header: Header, identities: list[Identity], context: bytes = b"") -> bytes:
    """The data key from the first identity that opens `header`; else a typed error naming
    each identity's reason."""
    if not identities:
        raise InvalidKey("decryption needs at least one identity (a user key)")
    failures: list[tuple[str, Exception]] = []
    for identity in identities:
        try:
            return identity.unwrap(header, context)
        except (PolicyNotSatisfied, InvalidKey, InvalidCiphertext) as exc:
            failures.append((identity.describe(), exc))
    if len(failures) == 1:
        raise failures[0][1]
    reasons = [(who, str(exc)) for who, exc in failures]
    text = "no identity opened this file: " + "; ".join(f"{who}: {why}" for who, why in reasons)
    if all(isinstance(exc, PolicyNotSatisfied) for _, exc in failures):
        raise NoIdentityMatched(text, reasons)
    if any(isinstance(exc, InvalidCiphertext) for _, exc in failures):
        raise InvalidCiphertext(text)
    raise InvalidKey(text)


@overload
def decrypt(src: Source, dst: None, *identities: IdentityLike, context: bytes = ...,
            progress: Progress | None = ...) -> bytes: ...
@overload
def decrypt(src: Source, dst: str | os.PathLike[str] | BinaryIO, *identities: IdentityLike,
            context: bytes = ..., progress: Progress | None = ...) -> Header: ...
def decrypt(src: Source, dst: Sink, *identities: IdentityLike, context: bytes = b"",
            progress: Progress | None = None) -> bytes | Header:
    """Decrypt `src` (armored or not) with the first identity that opens it into `dst` (None:
    return the plaintext). A path `dst` appears only if every chunk verified; a stream `dst`
    may have received some plaintext before a failure, so keep it only if this returns."""
    idents = identities_of(identities)

    def run(sink: Any) -> Header:
        with _Source(src) as raw:
            fin = open_maybe_armored(raw)
            header = read_header(fin)
            return open_payload(header, open_header(header, idents, context), fin, sink, progress)

    header, data = _deliver(dst, run)
    return header if data is None else data


def inspect(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an `.abe` file says about itself (scheme, group, policy, sizes); reads no secrets."""
    with open(path, "rb") as fin:
        src = open_maybe_armored(fin)
        header = read_header(src)
        if isinstance(src, ArmorReader):
            payload = 0
            while block := src.read(1 << 20):
                payload += len(block)
        else:
            payload = Path(path).stat().st_size - header.size
    chunks = max(1, -(-payload // (header.chunk + 16)))
    plaintext = payload - 16 * chunks
    if plaintext < 0:
        raise InvalidCiphertext("payload shorter than its authentication tags")
    meta = header.ciphertext.meta
    return {
        "scheme": header.scheme.name,
        "group": header.scheme.group.id,
        "policy" if "policy" in meta else "attributes": meta.get("policy", meta.get("attributes")),
        "authority": meta.get("pk"),
        "header_bytes": header.size,
        "payload_bytes": payload,
        "plaintext_bytes": plaintext,
        "chunks": chunks,
        "chunk_size": header.chunk,
    }
