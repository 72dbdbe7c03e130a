"""The recipes layer: set up an authority, issue keys, encrypt and decrypt bytes or files.

>>> abe = CPABE.setup()
>>> alice = abe.keygen(["doctor", "cardiology"])
>>> blob = abe.encrypt(b'{"bp": "120/80"}', "(doctor and cardiology) or emergency")
>>> decrypt(blob, alice)
b'{"bp": "120/80"}'
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .armor import ArmorReader, ArmorWriter, open_maybe_armored
from .derived import check_pair, complete_setup, fingerprint
from .envelope import Header, Progress, decrypt_stream, encrypt_stream, read_header
from .errors import InvalidCiphertext, InvalidKey
from .fileio import atomic_output
from .keys import Key
from .pairing import get_group
from .policy import KeyAttributes, Policy, parse_attributes
from .register import Register, as_register
from .schemes import DEFAULT_SCHEME, Scheme, get_scheme


class ABE:
    """An authority's keys for one scheme: issue user keys and encrypt (needs only the public key).

    With `register` (an issuance register, or its path), every key issued is recorded there and
    carries its issuance id (`iid`); renewal (`abe_health.revocation.renew`) needs it.
    """

    policy_in: str | None = None

    def __init__(self, public_key: Key, master_key: Key | None = None,
                 register: Register | str | os.PathLike[str] | None = None) -> None:
        if public_key.kind != "public":
            raise InvalidKey(f"expected a public key, got a {public_key.kind} key")
        if not isinstance(public_key.scheme, Scheme):
            raise InvalidKey(f"this is a {public_key.scheme.name} (multi-authority) key: use "
                             "--authority NAME.pub to encrypt and `authority keygen` to issue keys")
        if master_key is not None:
            check_pair(public_key, master_key)
        if self.policy_in and public_key.scheme.policy_in != self.policy_in:
            raise InvalidKey(f"{type(self).__name__} cannot use scheme {public_key.scheme.name}")
        self.public_key = public_key
        self.master_key = master_key
        self.register = as_register(register)

    @classmethod
    def setup(cls, scheme: str | None = None, backend: str = "mcl",
              widths: Mapping[str, int] | None = None,
              register: Register | str | os.PathLike[str] | None = None) -> ABE:
        """A fresh authority: scheme `fame` (CP) / `fame-kp` (KP) / `bsw07` / `waters11`
        (recording its keys in `register` when given)."""
        name = scheme or ("fame-kp" if cls.policy_in == "key" else DEFAULT_SCHEME)
        impl = get_scheme(name, get_group(backend))
        pk, msk = impl.setup(widths)
        return cls(*complete_setup(Key(impl, pk), Key(impl, msk)), register=register)

    @property
    def scheme(self) -> str:
        return self.public_key.scheme.name

    @property
    def widths(self) -> dict[str, int]:
        return dict(self.public_key.record.meta.get("widths", {}))

    def attributes(self, attributes: Iterable[str]) -> KeyAttributes:
        return parse_attributes(attributes, self.widths)

    def policy(self, text: str) -> Policy:
        return Policy.parse(text, self.widths)

    def keygen(self, attributes: Iterable[str] | None = None, policy: str | None = None, *,
               renewed_from: str | None = None) -> Key:
        """A user key: attributes for CP schemes, a policy for KP schemes; recorded in the
        register when there is one (`renewed_from`: the issuance id this key renews, as
        `renew` passes it; the register checks in the same transaction that it may)."""
        if self.master_key is None:
            raise InvalidKey("issuing keys needs the master key")
        impl = self.public_key.scheme
        if impl.policy_in == "ciphertext":
            if attributes is None or policy is not None:
                raise InvalidKey(f"{impl.name} keys are issued for attributes (-a), not a policy")
            subject: KeyAttributes | Policy = self.attributes(attributes)
        else:
            if policy is None or attributes is not None:
                raise InvalidKey(f"{impl.name} keys are issued for a policy, not attributes")
            subject = self.policy(policy)
        assert isinstance(impl, Scheme)  # __init__ refuses multi-authority keys
        rec = impl.keygen(self.public_key.record, self.master_key.record, subject)
        rec = dataclasses.replace(rec, meta={**rec.meta, "pk": fingerprint(self.public_key)})
        key = Key(impl, rec)
        if self.register is not None:
            return self.register.record(key, fingerprint(self.public_key), renewed_from)
        if renewed_from is not None:
            raise InvalidKey("a renewal is recorded in the issuance register: give the authority one")
        return key

    def _target(self, policy: str | None, attributes: Iterable[str] | None) -> Policy | KeyAttributes:
        impl = self.public_key.scheme
        if impl.policy_in == "ciphertext":
            if policy is None or attributes is not None:
                raise InvalidKey(f"{impl.name} encrypts under a policy (-p), not attributes")
            return self.policy(policy)
        if attributes is None or policy is not None:
            raise InvalidKey(f"{impl.name} encrypts under attributes (-a), not a policy")
        return self.attributes(attributes)

    def encrypt_stream(self, src: BinaryIO, dst: BinaryIO, policy: str | None = None,
                       attributes: Iterable[str] | None = None, progress: Progress | None = None) -> None:
        """Encrypt a stream into `.abe` format under a policy (CP) or attributes (KP)."""
        target = self._target(policy, attributes)
        encrypt_stream(self.public_key, target, src, dst, progress=progress,
                       meta={"pk": fingerprint(self.public_key)})

    def encrypt(self, data: bytes, policy: str | None = None,
                attributes: Iterable[str] | None = None, armor: bool = False) -> bytes:
        """Encrypt bytes; returns the `.abe` file contents (ASCII-armored when `armor`)."""
        out = io.BytesIO()
        sink = ArmorWriter(out) if armor else out
        self.encrypt_stream(io.BytesIO(data), sink, policy, attributes)  # type: ignore[arg-type]
        if armor:
            sink.close()
        return out.getvalue()

    def encrypt_file(self, src: str | os.PathLike[str], dst: str | os.PathLike[str],
                     policy: str | None = None, attributes: Iterable[str] | None = None,
                     progress: Progress | None = None, armor: bool = False) -> None:
        """Encrypt a file to `dst`, written atomically (ASCII-armored when `armor`)."""
        with open(src, "rb") as fin, atomic_output(dst) as fout:
            sink = ArmorWriter(fout) if armor else fout
            self.encrypt_stream(fin, sink, policy, attributes, progress)  # type: ignore[arg-type]
            if armor:
                sink.close()


class CPABE(ABE):
    """Ciphertext-policy ABE: keys hold attributes, files carry policies (default scheme FAME)."""

    policy_in = "ciphertext"


class KPABE(ABE):
    """Key-policy ABE: keys hold policies, files carry attributes (scheme fame-kp)."""

    policy_in = "key"


def decrypt_stream_to(key: Key | Sequence[Key], src: BinaryIO, dst: BinaryIO,
                      progress: Progress | None = None, *, context: bytes = b"") -> Header:
    """Decrypt src into dst (one user key, or one user's keys from several authorities for a
    multi-authority file); the caller keeps dst only if this returns. `context` must be the one
    the file was written for (see `abe_health.envelope`)."""
    return decrypt_stream(key, open_maybe_armored(src), dst, progress, context=context)


def decrypt(data: bytes, key: Key | Sequence[Key], *, context: bytes = b"") -> bytes:
    """Decrypt `.abe` bytes with a user key (or one user's keys from several authorities),
    written for `context` (empty unless the writer bound the file to one, as `.phr` sections are)."""
    out = io.BytesIO()
    decrypt_stream_to(key, io.BytesIO(data), out, context=context)
    return out.getvalue()


def decrypt_file(key: Key | Sequence[Key], src: str | os.PathLike[str] | None,
                 dst: str | os.PathLike[str] | None,
                 progress: Progress | None = None) -> Header:
    """Decrypt a file (None or '-' = stdin/stdout). Nothing is kept unless every chunk verifies:
    files are written atomically, and stdout is spooled to a temporary file first."""
    fin = sys.stdin.buffer if src in (None, "-") else open(src, "rb")
    try:
        if dst in (None, "-"):
            with tempfile.TemporaryFile() as spool:
                header = decrypt_stream_to(key, fin, spool, progress)
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
                return header
        with atomic_output(dst) as fout:
            return decrypt_stream_to(key, fin, fout, progress)
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()


def inspect_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What a file says about itself (scheme, group, policy, sizes); reads no secrets."""
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
