"""The vault catalog: one SQLite row per stored file, kept by the untrusted store.

Nothing in it is trusted: every row is type- and range-checked when read, file ids must be 16
lowercase hex digits (so no id can name a path outside the vault), and what a header rewrite
depends on (policy, salt, chunk size, generation) is authenticated by the row's escrow (see
escrow.py) before it is used. Every database error becomes a `VaultError` naming the file.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import VaultError
from .escrow import SEALED_BYTES

SCHEMA_VERSION = 2
FILE_ID = re.compile(r"[0-9a-f]{16}\Z")
MAX_GENERATION = 1 << 31
MAX_TEXT = 64 * 1024
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL,
                                  body_bytes INTEGER NOT NULL, added TEXT NOT NULL,
                                  salt BLOB NOT NULL, chunk INTEGER NOT NULL, escrow BLOB NOT NULL,
                                  gen INTEGER NOT NULL);
"""
#: what the sqlite3 module raises for a damaged or hostile database file: its own errors, and
#: UnicodeDecodeError when the message or schema text it decodes is not UTF-8
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)
_COLUMNS = "id, name, policy, body_bytes, added, salt, chunk, escrow, gen"


class _NotUtf8:
    """What a TEXT value that is not UTF-8 reads as: not a `str`, so every type check of
    `Row.of` refuses it (as a malformed row) instead of the whole query failing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<text that is not UTF-8>"


_NOT_UTF8 = _NotUtf8()


def _text(raw: bytes) -> str | _NotUtf8:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return _NOT_UTF8


def _reason(exc: Exception) -> str:
    """A database error's message, or its type when the message itself is not text."""
    return "text that is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)[:200]


def check_id(file_id: Any) -> str:
    """A valid file id, or VaultError: ids are 16 lowercase hex digits, never a path."""
    if not isinstance(file_id, str) or not FILE_ID.match(file_id):
        raise VaultError(f"invalid file id {str(file_id)[:40]!r}: ids are 16 lowercase hex digits")
    return file_id


@dataclass(frozen=True)
class Row:
    """One stored file as the catalog describes it (checked for type and range, not trusted)."""

    id: str
    name: str
    policy: str
    body_bytes: int
    added: str
    salt: bytes
    chunk: int
    escrow: bytes
    gen: int

    @classmethod
    def of(cls, values: tuple[Any, ...]) -> Row:
        file_id, name, policy, size, added, salt, chunk, sealed, gen = values
        check_id(file_id)
        ok = (isinstance(name, str) and len(name) <= MAX_TEXT and isinstance(policy, str)
              and len(policy) <= MAX_TEXT and isinstance(size, int) and size >= 0
              and isinstance(added, str) and len(added) <= 64 and isinstance(salt, bytes)
              and len(salt) == 32 and isinstance(chunk, int) and 1024 <= chunk <= 16 * 1024 * 1024
              and isinstance(sealed, bytes) and len(sealed) == SEALED_BYTES
              and isinstance(gen, int) and 0 <= gen < MAX_GENERATION)
        if not ok:
            raise VaultError(f"file {file_id}: malformed catalog row")
        return cls(file_id, name, policy, size, added, salt, chunk, sealed, gen)

    def values(self) -> tuple[Any, ...]:
        return (self.id, self.name, self.policy, self.body_bytes, self.added, self.salt, self.chunk,
                self.escrow, self.gen)


class Catalog:
    """catalog.sqlite of a vault directory."""

    def __init__(self, path: Path, create: bool = False) -> None:
        self.path = path
        if not create and not path.is_file():
            raise VaultError(f"{path.parent} is not a vault (no catalog.sqlite)")
        try:
            self.db = sqlite3.connect(path, timeout=30)
            self.db.text_factory = _text
            if create:
                self.db.execute("PRAGMA journal_mode=WAL")
                with self.db:
                    self.db.executescript(SCHEMA)
                    self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            columns = [r[1] for r in self.db.execute("PRAGMA table_info(files)").fetchall()]
        except DB_ERRORS as exc:
            self.db.close()
            raise VaultError(f"{path}: not a usable vault catalog ({_reason(exc)})") from None
        if row is None or row[0] != str(SCHEMA_VERSION):
            self.db.close()
            shown = row[0][:16] if row and isinstance(row[0], str) else "unknown"
            raise VaultError(f"{path}: catalog schema {shown!r}, this is "
                             f"version {SCHEMA_VERSION}; vaults of abe-health 0.1 must be re-created "
                             "(get every file with 0.1, then `vault add` it to a new vault)")
        if columns != _COLUMNS.split(", "):
            self.db.close()
            raise VaultError(f"{path}: the catalog's files table does not have the vault's columns")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except DB_ERRORS as exc:
            raise VaultError(f"{self.path}: {_reason(exc)}") from None

    def row(self, file_id: str) -> Row:
        check_id(file_id)
        with self._errors():
            found = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()  # noqa: S608
        if found is None:
            raise VaultError(f"no file {file_id} in {self.path.parent}")
        return Row.of(found)

    def rows_of(self, file_ids: list[str]) -> dict[str, Row]:
        """The well-formed rows of these ids that exist, by id (an invalid id has none), read in
        one query per 500 ids (a bulk job's batch: one statement instead of one per row)."""
        out: dict[str, Row] = {}
        valid = [i for i in file_ids if isinstance(i, str) and FILE_ID.match(i)]
        for start in range(0, len(valid), 500):
            part = valid[start : start + 500]
            with self._errors():
                found = self.db.execute(f"SELECT {_COLUMNS} FROM files WHERE id IN "  # noqa: S608
                                        f"({', '.join('?' * len(part))})", part).fetchall()
            for values in found:
                try:
                    row = Row.of(values)
                except (VaultError, ValueError, TypeError):
                    continue
                out[row.id] = row
        return out

    def rows(self) -> list[Row | VaultError]:
        """Every row in the order added; a malformed row is returned as its error, not raised,
        so that one bad row cannot stop work on the others."""
        with self._errors():
            found = self.db.execute(f"SELECT {_COLUMNS} FROM files ORDER BY added, id").fetchall()  # noqa: S608
        out: list[Row | VaultError] = []
        for values in found:
            try:
                out.append(Row.of(values))
            except VaultError as exc:
                out.append(exc)
            except (ValueError, TypeError) as exc:
                out.append(VaultError(f"malformed catalog row: {exc}"))
        return out

    def insert(self, row: Row) -> None:
        with self._errors(), self.db:
            self.db.execute(f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                            row.values())

    def insert_all(self, rows: list[Row]) -> None:
        """Insert many rows in one transaction (all or none): a bulk job's batch commit."""
        with self._errors(), self.db:
            self.db.executemany(f"INSERT INTO files ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                                [row.values() for row in rows])

    def replace(self, row: Row) -> None:
        """Switch a file to a new generation (one transaction)."""
        with self._errors(), self.db:
            self.db.execute("UPDATE files SET name = ?, policy = ?, body_bytes = ?, salt = ?, "
                            "chunk = ?, escrow = ?, gen = ? WHERE id = ?",
                            (row.name, row.policy, row.body_bytes, row.salt, row.chunk, row.escrow,
                             row.gen, row.id))

    def delete(self, file_id: str) -> bool:
        """Remove a file's row (its owner deleting it); whether there was one."""
        check_id(file_id)
        with self._errors(), self.db:
            cursor = self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        return cursor.rowcount == 1

    def close(self) -> None:
        self.db.close()
