"""The vault: stored `.abe` files split into header and body, a SQLite catalog of which header
mentions which attribute at which version, and revocation by header re-encapsulation.

Revoking attribute `a` bumps its version N (see versions.py): every header whose policy mentions
`a` is rewritten under the same policy with `a` replaced by `(a and a.vN)`, with the same data
key, so the body (payload) is never read, decrypted or written. Eagerly (`revoke`) or lazily
(`revoke(lazy=True)`, then each file is rewritten the first time it is read through
`get(..., authority=...)`, or by `update_pending`).

Who may do it, and trust: rewriting a header needs its data key, which only a key satisfying the
header's policy opens. The authority (holding the master key) derives such a key for each
policy, so revocation is run by the authority or by the data owner it delegates to, never by the
untrusted cloud, which only stores the files and the catalog (a catalog reveals which attributes
each file's policy mentions, as the headers already do). Holders who keep `a` need keys issued
after the bump (`issue_key`); the revoked user is simply not given one. A revoked key still opens
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

from ..api import ABE, decrypt_stream_to
from ..envelope import Header, read_header, reencapsulate
from ..errors import InvalidCiphertext, InvalidKey
from ..fileio import atomic_output
from ..keys import Key
from ..pairing import Element
from ..policy import KeyAttributes, Policy
from .versions import apply_versions, mentioned, versioned_key_attributes

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL,
                                  body_bytes INTEGER NOT NULL, added TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mentions (file_id TEXT NOT NULL, label TEXT NOT NULL,
                                     version INTEGER NOT NULL, PRIMARY KEY (file_id, label));
CREATE INDEX IF NOT EXISTS mentions_by_label ON mentions (label, version);
CREATE TABLE IF NOT EXISTS versions (label TEXT PRIMARY KEY, version INTEGER NOT NULL);
"""
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


class Vault:
    """A vault directory: files/<id>.head, files/<id>.body and catalog.sqlite."""

    def __init__(self, path: str | os.PathLike[str], create: bool = False) -> None:
        self.path = Path(path)
        if create:
            (self.path / "files").mkdir(parents=True, exist_ok=True)
        elif not (self.path / "catalog.sqlite").exists():
            raise InvalidCiphertext(f"{self.path} is not a vault (no catalog.sqlite)")
        self.db = sqlite3.connect(self.path / "catalog.sqlite")
        self.db.executescript(SCHEMA)
        self._openers: dict[str, Key] = {}

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
    def _head(self, file_id: str) -> Path:
        return self.path / "files" / f"{file_id}.head"

    def _body(self, file_id: str) -> Path:
        return self.path / "files" / f"{file_id}.body"

    def add(self, src: BinaryIO, policy: str, authority: ABE, name: str = "") -> str:
        """Store a stream encrypted under `policy` (at the current attribute versions)."""
        base = authority.policy(policy)
        versions = self.versions()
        file_id = secrets.token_hex(8)
        blob = io.BytesIO()
        authority.encrypt_stream(src, blob, policy=str(apply_versions(base, versions)))
        data = blob.getbuffer()
        head_size = read_header(io.BytesIO(data)).size
        with atomic_output(self._body(file_id)) as out:
            out.write(data[head_size:])
        with atomic_output(self._head(file_id)) as out:
            out.write(data[:head_size])
        with self.db:
            self.db.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                            (file_id, name or file_id, str(base), len(data) - head_size,
                             dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")))
            self.db.executemany("INSERT INTO mentions VALUES (?, ?, ?)",
                                [(file_id, label, versions.get(label, 0)) for label in mentioned(base)])
        return file_id

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
        try:
            with open(self._head(file_id), "rb") as head, open(self._body(file_id), "rb") as body:
                return decrypt_stream_to(key, _Chain(head, body), dst)
        except FileNotFoundError:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}") from None

    # -- revocation ----------------------------------------------------------------------------
    def _opener(self, authority: ABE, header: Header) -> Key:
        """A key for exactly the labels of the header's policy (cached per policy text)."""
        text = str(header.ciphertext.meta.get("policy"))
        if text not in self._openers:
            labels = Policy.parse(text, authority.widths).attributes
            rec = authority.public_key.scheme.keygen(
                authority.public_key.record, authority.master_key.record,
                KeyAttributes.of_labels(labels))
            self._openers[text] = Key(authority.public_key.scheme, rec)
        return self._openers[text]

    def update_file(self, file_id: str, authority: ABE) -> int:
        """Rewrite one header at the current versions; returns the bytes written."""
        if authority.master_key is None:
            raise InvalidKey("re-encapsulating headers needs the authority's master key")
        row = self.db.execute("SELECT policy FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None:
            raise InvalidCiphertext(f"no file {file_id!r} in {self.path}")
        versions = self.versions()
        base = authority.policy(row[0])
        scheme = authority.public_key.scheme
        gt_key, ct = scheme.encapsulate(authority.public_key.record, apply_versions(base, versions))

        def open_key(header: Header) -> Element:
            opener = self._opener(authority, header)
            return opener.scheme.decapsulate(opener.record, header.ciphertext)

        with open(self._head(file_id), "rb") as old, atomic_output(self._head(file_id)) as new:
            reencapsulate(old, new, open_key, scheme, ct, gt_key)
            written = new.tell()
        with self.db:
            self.db.executemany("UPDATE mentions SET version = ? WHERE file_id = ? AND label = ?",
                                [(versions.get(label, 0), file_id, label) for label in mentioned(base)])
        return written

    def revoke(self, label: str, authority: ABE, lazy: bool = False) -> RevocationReport:
        """Bump `label`'s version; rewrite (or, lazily, mark) every header that mentions it."""
        if authority.master_key is None:
            raise InvalidKey("revocation needs the authority's master key")
        label = str(authority.attributes([label]).attributes[0].label)
        start = time.perf_counter()
        with self.db:
            current = self.versions().get(label, 0)
            self.db.execute("INSERT OR REPLACE INTO versions VALUES (?, ?)", (label, current + 1))
        files = [] if lazy else self.pending(label)
        written = sum(self.update_file(f, authority) for f in files)
        return RevocationReport(label, current + 1, len(files), written, time.perf_counter() - start)

    def update_pending(self, authority: ABE) -> Iterator[str]:
        """Rewrite every header behind the current versions (resumes an interrupted revocation)."""
        for file_id in self.pending():
            self.update_file(file_id, authority)
            yield file_id
