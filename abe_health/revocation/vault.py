"""The vault: stored `.abe` files split into header and body (files/<id>.<generation>.head and
.body), a SQLite catalog of which header mentions which attribute at which version, and
revocation by header re-encapsulation. One writer at a time (the authority's service).

Revoking attribute `a` bumps its version N (see versions.py): every header whose policy mentions
`a` is rewritten under the same policy with `a` replaced by `(a and a.vN)`, with the same data
key, so the body (payload) is never read, decrypted or written. Eagerly (`revoke`) or lazily
(`revoke(lazy=True)`, then each file is rewritten the first time it is read through
`get(..., authority=...)`, or by `update_pending`).

Who may do it, and trust: rewriting a header needs its data key (DEK). At `add`, the DEK is also
escrowed in the catalog, sealed to the vault's escrow public key (X25519 + HKDF + AES-256-GCM,
bound to the file id). The escrow private key is derived from the authority's master key, so
anyone may add files, but only the authority (or the data owner it hands the master key to)
can rewrite headers; the untrusted cloud stores files, catalog and escrows and opens none of
them (the catalog reveals which attributes each file's policy mentions, as the headers do).
Files under the same policy share one new encapsulation per revocation (each keeps its own
salt, so each header's wrapping key differs): a rewrite costs an X25519 exchange, symmetric work
and a header write, not pairings, hence a cost independent of file size and small per file.
Holders who keep `a` need keys issued after the bump (`issue_key`); the revoked user is simply
not given one. A revoked key still opens
files whose headers were not rewritten yet (lazy mode) until they are read or updated.

Crash safety: each header is replaced atomically (temporary file, then rename) and its catalog
rows are updated after the rename; a run killed between two files leaves every file readable at
its old or new version, and re-running `update_pending` finishes the job (rewriting a header that
was renamed but not yet recorded is harmless: its opener comes from the header itself).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..api import ABE, decrypt_stream_to
from ..envelope import CHUNK, WRAP, Header, seal_stream, write_header
from ..errors import InvalidCiphertext, InvalidKey
from ..fileio import atomic_output, write_atomic
from ..keys import Key, to_map
from ..pairing import Element
from ..policy import Policy
from .versions import apply_versions, mentioned, versioned_key_attributes

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL,
                                  body_bytes INTEGER NOT NULL, added TEXT NOT NULL,
                                  salt BLOB NOT NULL, chunk INTEGER NOT NULL, escrow BLOB NOT NULL,
                                  gen INTEGER NOT NULL DEFAULT 0, rotate INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS mentions (file_id TEXT NOT NULL, label TEXT NOT NULL,
                                     version INTEGER NOT NULL, PRIMARY KEY (file_id, label));
CREATE INDEX IF NOT EXISTS mentions_by_label ON mentions (label, version);
CREATE TABLE IF NOT EXISTS versions (label TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""
#: headers rewritten per disk sync
BATCH = 256
_PENDING = ("SELECT DISTINCT m.file_id FROM mentions m JOIN versions v ON m.label = v.label "
            "WHERE m.version < v.version")


@dataclass(frozen=True)
class RevocationReport:
    label: str
    version: int
    files_updated: int
    bytes_written: int
    seconds: float


class _Chain:
    """A readable stream over a header file and then a body file."""

    def __init__(self, *parts: BinaryIO) -> None:
        self.parts = list(parts)

    def read(self, n: int = -1) -> bytes:
        out = b""
        while self.parts and (n < 0 or len(out) < n):
            block = self.parts[0].read(-1 if n < 0 else n - len(out))
            if not block:
                self.parts.pop(0)
                continue
            out += block
        return out


def escrow_private_key(authority: ABE) -> X25519PrivateKey:
    """The escrow key pair, derived from the master key: only the authority can open escrows."""
    if authority.master_key is None:
        raise InvalidKey("this operation needs the authority's master key")
    secret = cbor2.dumps(to_map(authority.master_key.scheme, authority.master_key.record)["parts"])
    return X25519PrivateKey.from_private_bytes(
        HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
             info=b"abe-health/v1/vault-escrow").derive(secret))


def _escrow_aead(shared: bytes, eph: bytes, recipient: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=eph + recipient,
                       info=b"abe-health/v1/vault-escrow-seal").derive(shared))


def seal_escrow(recipient: X25519PublicKey, dek: bytes, file_id: str) -> bytes:
    """ephemeral public key | nonce | AES-256-GCM(DEK), bound to the file id."""
    eph = X25519PrivateKey.generate()
    eph_pub, rcpt = eph.public_key().public_bytes_raw(), recipient.public_bytes_raw()
    nonce = os.urandom(12)
    aead = _escrow_aead(eph.exchange(recipient), eph_pub, rcpt)
    return eph_pub + nonce + aead.encrypt(nonce, dek, file_id.encode())


def open_escrow(private: X25519PrivateKey, sealed: bytes, file_id: str) -> bytes:
    eph_pub, nonce, body = sealed[:32], sealed[32:44], sealed[44:]
    rcpt = private.public_key().public_bytes_raw()
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        return _escrow_aead(shared, eph_pub, rcpt).decrypt(nonce, body, file_id.encode())
    except (InvalidTag, ValueError):
        raise InvalidKey(f"file {file_id}: the data key escrow does not open with this "
                         "authority's master key") from None


class _HeadSplitter:
    """Receives an .abe stream: keeps the header bytes, sends the rest (the body) to `body`."""

    def __init__(self, body: BinaryIO) -> None:
        self.body, self.head, self.body_bytes = body, b"", 0
        self._need: int | None = None

    def write(self, data: bytes) -> int:
        if self._need is None or len(self.head) < self._need:
            self.head += bytes(data)
            if self._need is None and len(self.head) >= 8:
                self._need = 8 + int.from_bytes(self.head[4:8], "big") + WRAP
            if self._need is None or len(self.head) < self._need:
                return len(data)
            extra, self.head = self.head[self._need :], self.head[: self._need]
            data = extra
        self.body.write(data)
        self.body_bytes += len(data)
        return len(data)


class Vault:
    """A vault directory: files/<id>.head, files/<id>.body and catalog.sqlite."""

    def __init__(self, path: str | os.PathLike[str], create_for: ABE | None = None) -> None:
        """Open a vault; `create_for=authority` (with its master key) creates a new one whose
        data key escrows only that authority can open."""
        self.path = Path(path)
        self._escrow: X25519PrivateKey | None = None
        if create_for is not None:
            if (self.path / "catalog.sqlite").exists():
                raise InvalidCiphertext(f"{self.path} is already a vault")
            (self.path / "files").mkdir(parents=True, exist_ok=True)
            public = escrow_private_key(create_for).public_key().public_bytes_raw()
            write_atomic(self.path / "escrow.pub", public)
        elif not (self.path / "catalog.sqlite").exists():
            raise InvalidCiphertext(f"{self.path} is not a vault (no catalog.sqlite)")
        self.db = sqlite3.connect(self.path / "catalog.sqlite")
        self.db.executescript(SCHEMA)
        self._encaps: dict[str, tuple[Element, dict]] = {}

    def escrow_public_key(self) -> X25519PublicKey:
        try:
            return X25519PublicKey.from_public_bytes((self.path / "escrow.pub").read_bytes())
        except (OSError, ValueError):
            raise InvalidCiphertext(f"{self.path}: missing or malformed escrow.pub") from None

    def close(self) -> None:
        self.db.close()

    # -- versions and keys ---------------------------------------------------------------------
    def versions(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT label, version FROM versions"))

    def issue_key(self, authority: ABE, attributes: list[str]) -> Key:
        """A user key holding the current epoch of every versioned attribute it has."""
        if authority.master_key is None:
            raise InvalidKey("issuing keys needs the master key")
        subject = versioned_key_attributes(authority.attributes(attributes), self.versions())
        rec = authority.public_key.scheme.keygen(authority.public_key.record,
                                                 authority.master_key.record, subject)
        return Key(authority.public_key.scheme, rec)

    # -- files ---------------------------------------------------------------------------------
    def _gen(self, file_id: str) -> int:
        row = self.db.execute("SELECT gen FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}")
        return int(row[0])

    def _head(self, file_id: str, gen: int | None = None) -> Path:
        gen = self._gen(file_id) if gen is None else gen
        return self.path / "files" / f"{file_id}.{gen}.head"

    def _body(self, file_id: str, gen: int | None = None) -> Path:
        gen = self._gen(file_id) if gen is None else gen
        return self.path / "files" / f"{file_id}.{gen}.body"

    def _write(self, file_id: str, gen: int, src: BinaryIO, policy: Policy, authority: ABE
               ) -> tuple[int, bytes, bytes]:
        """Encrypt src as generation `gen` of a file (fresh DEK and salt): (body bytes, salt, escrow)."""
        scheme = authority.public_key.scheme
        if scheme.policy_in != "ciphertext":
            raise InvalidKey(f"the vault stores files under policies (CP-ABE); {scheme.name} is KP-ABE")
        gt_key, ct = scheme.encapsulate(authority.public_key.record, policy)
        dek, salt = os.urandom(32), os.urandom(32)
        with atomic_output(self._body(file_id, gen)) as body:
            tee = _HeadSplitter(body)
            seal_stream(scheme, ct, gt_key, src, tee, dek=dek, salt=salt)
        with atomic_output(self._head(file_id, gen)) as out:
            out.write(tee.head)
        return tee.body_bytes, salt, seal_escrow(self.escrow_public_key(), dek, file_id)

    def add(self, src: BinaryIO, policy: str, authority: ABE, name: str = "") -> str:
        """Store a stream encrypted under `policy` (at the current attribute versions); the body
        streams to disk in constant memory."""
        base = authority.policy(policy)
        versions = self.versions()
        file_id = secrets.token_hex(8)
        size, salt, sealed = self._write(file_id, 0, src, apply_versions(base, versions), authority)
        with self.db:
            self.db.execute("INSERT INTO files (id, name, policy, body_bytes, added, salt, chunk, escrow)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (file_id, name or file_id, str(base), size,
                             dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                             salt, CHUNK, sealed))
            self.db.executemany("INSERT INTO mentions VALUES (?, ?, ?)",
                                [(file_id, label, versions.get(label, 0)) for label in mentioned(base)])
        return file_id

    def put(self, file_id: str, src: BinaryIO, authority: ABE) -> None:
        """Replace a file's content (same policy) with a fresh data key: the next generation is
        written beside the current one and becomes current in one catalog transaction, so a crash
        leaves the old content in place. This is when `revoke(rotate=True)` takes effect."""
        row = self.db.execute("SELECT policy, gen FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}")
        base, gen = authority.policy(row[0]), int(row[1])
        versions = self.versions()
        size, salt, sealed = self._write(file_id, gen + 1, src, apply_versions(base, versions), authority)
        with self.db:
            self.db.execute("UPDATE files SET gen = ?, body_bytes = ?, salt = ?, chunk = ?, escrow = ?, "
                            "rotate = 0 WHERE id = ?", (gen + 1, size, salt, CHUNK, sealed, file_id))
            self.db.executemany("UPDATE mentions SET version = ? WHERE file_id = ? AND label = ?",
                                [(versions.get(label, 0), file_id, label) for label in mentioned(base)])
        self._head(file_id, gen).unlink(missing_ok=True)
        self._body(file_id, gen).unlink(missing_ok=True)

    def rotations(self) -> list[str]:
        """Files whose data key is to be replaced at their next write (`revoke(rotate=True)`)."""
        return [r[0] for r in self.db.execute("SELECT id FROM files WHERE rotate = 1 ORDER BY id")]

    def list(self) -> list[tuple[str, str, str, int]]:
        """(id, name, policy as written, body bytes) of every file."""
        return list(self.db.execute("SELECT id, name, policy, body_bytes FROM files ORDER BY added, id"))

    def pending(self, label: str | None = None) -> list[str]:
        """Files whose header predates the current version of an attribute it mentions."""
        if label is None:
            rows = self.db.execute(_PENDING + " ORDER BY 1")
        else:
            rows = self.db.execute(_PENDING + " AND m.label = ? ORDER BY 1", (label,))
        return [row[0] for row in rows]

    def get(self, file_id: str, key: Key | list[Key], dst: BinaryIO,
            authority: ABE | None = None) -> Header:
        """Decrypt a stored file into dst; with `authority`, a pending header is rewritten first."""
        if authority is not None and file_id in self.pending():
            self.update_file(file_id, authority)
        gen = self._gen(file_id)
        try:
            with open(self._head(file_id, gen), "rb") as head, open(self._body(file_id, gen), "rb") as body:
                return decrypt_stream_to(key, _Chain(head, body), dst)
        except FileNotFoundError:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}") from None

    # -- revocation ----------------------------------------------------------------------------
    def update_file(self, file_id: str, authority: ABE) -> int:
        """Rewrite one header at the current versions; returns the bytes written."""
        return self._update(authority, [file_id])

    def _update(self, authority: ABE, file_ids: list[str]) -> int:
        """Rewrite headers in batches: write every temporary file of a batch, flush them to disk
        with one sync, then rename each over its header and record the batch in one transaction.
        (One sync per batch instead of one fsync per header: the per-file cost that dominated.)"""
        written = 0
        for start in range(0, len(file_ids), BATCH):
            batch = [(f, *self._new_head(f, authority)) for f in file_ids[start : start + BATCH]]
            temps = []
            try:
                targets = [self._head(file_id) for file_id, _, _ in batch]
                for target, (_, head, _) in zip(targets, batch, strict=True):
                    tmp = target.with_name(f".{target.name}.tmp")
                    tmp.write_bytes(head)
                    temps.append(tmp)
                os.sync()
                for target, (_, head, _), tmp in zip(targets, batch, temps, strict=True):
                    os.replace(tmp, target)
                    written += len(head)
            finally:
                for tmp in temps:
                    tmp.unlink(missing_ok=True)
            with self.db:
                self.db.executemany("UPDATE mentions SET version = ? WHERE file_id = ? AND label = ?",
                                    [row for _, _, rows in batch for row in rows])
        return written

    def _new_head(self, file_id: str, authority: ABE) -> tuple[bytes, list[tuple[int, str, str]]]:
        """A file's header at the current versions, and its catalog rows to record."""
        if authority.master_key is None:
            raise InvalidKey("re-encapsulating headers needs the authority's master key")
        row = self.db.execute("SELECT policy, salt, chunk, escrow FROM files WHERE id = ?",
                              (file_id,)).fetchone()
        if row is None:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}")
        text, salt, chunk, sealed = row
        versions = self.versions()
        base = authority.policy(text)
        target = str(apply_versions(base, versions))
        scheme = authority.public_key.scheme
        if target not in self._encaps:  # one encapsulation per policy and revocation run
            policy = Policy.parse(target, authority.widths)
            gt_key, ct = scheme.encapsulate(authority.public_key.record, policy)
            self._encaps[target] = (gt_key, to_map(scheme, ct))
        gt_key, ct_map = self._encaps[target]
        if self._escrow is None:
            self._escrow = escrow_private_key(authority)
        dek = open_escrow(self._escrow, sealed, file_id)
        head = io.BytesIO()
        write_header(head, scheme, ct_map, gt_key, dek, salt, chunk)
        return head.getvalue(), [(versions.get(label, 0), file_id, label) for label in mentioned(base)]

    def revoke(self, label: str, authority: ABE, lazy: bool = False, rotate: bool = False
               ) -> RevocationReport:
        """Bump `label`'s version; rewrite (or, lazily, mark) every header that mentions it.
        With `rotate`, the affected files also get a fresh data key at their next `put`."""
        if authority.master_key is None:
            raise InvalidKey("revocation needs the authority's master key")
        label = str(authority.attributes([label]).attributes[0].label)
        start = time.perf_counter()
        self._encaps.clear()  # a revocation never reuses an encapsulation from before it
        with self.db:
            current = self.versions().get(label, 0)
            self.db.execute("INSERT OR REPLACE INTO versions VALUES (?, ?)", (label, current + 1))
        if rotate:
            with self.db:
                self.db.executemany("UPDATE files SET rotate = 1 WHERE id = ?",
                                    [(f,) for f in self.pending(label)])
        files = [] if lazy else self.pending(label)
        written = self._update(authority, files)
        return RevocationReport(label, current + 1, len(files), written, time.perf_counter() - start)

    def update_pending(self, authority: ABE) -> Iterator[str]:
        """Rewrite every header behind the current versions (resumes an interrupted revocation)."""
        pending = self.pending()
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            self._update(authority, batch)
            yield from batch
