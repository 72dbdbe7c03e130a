"""Principals, bearer tokens and roles of `abe-health serve`.

A token is `abeh_<id>_<secret>`: a public 16-hex-digit id that finds the principal's row, and a
secret of 32 random bytes (`secrets`, base64url). The server keeps only
`SHA-256("abe-health/v1/cloud-token\\x00" | id | "\\x00" | secret)` and compares it with
`hmac.compare_digest`, so neither the database nor the time a comparison takes gives the secret
away; a token is shown once, when it is created. Tokens may expire and be revoked.

Roles (what each may do is `ALLOWED`, checked by the app before any handler runs):
- `reader`: fetch ciphertext, catalogs, manifests, index files; search;
- `owner`: what a reader may, and write and delete its own objects, vault files and indexes;
- `authority`: what a reader may, create vaults, write manifests, rewrite headers (revocation)
  and re-encrypt files (rotation), publish public keys;
- `admin`: create and revoke tokens (and nothing else).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BadRequest, Unauthorized

ROLES = ("reader", "owner", "authority", "admin")
#: action -> roles allowed to perform it
ALLOWED: dict[str, frozenset[str]] = {
    "read": frozenset({"reader", "owner", "authority"}),
    "write": frozenset({"owner", "authority"}),
    "authority": frozenset({"authority"}),
    "admin": frozenset({"admin"}),
}
TOKEN_DOMAIN = b"abe-health/v1/cloud-token\x00"
TOKEN = re.compile(r"abeh_(?P<id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})\Z")
SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
                                       token_hash BLOB NOT NULL, created REAL NOT NULL,
                                       expires REAL, revoked INTEGER NOT NULL DEFAULT 0);
"""


@dataclass(frozen=True)
class Principal:
    """Who a request comes from. `id` is the token's public id; the secret is never kept."""

    id: str
    name: str
    role: str
    expires: float | None = None

    def label(self) -> str:
        """How the audit log names it."""
        return f"{self.name}#{self.id}"


def _hash(token_id: str, secret: str) -> bytes:
    return hashlib.sha256(TOKEN_DOMAIN + token_id.encode() + b"\x00" + secret.encode()).digest()


def connect(path: Path) -> sqlite3.Connection:
    """The server's SQLite database (WAL: readers never wait for the writer)."""
    db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class Principals:
    """The principals table of the server database; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.db = connect(path)
        self.db.executescript(SCHEMA)
        self._mutex = threading.Lock()

    def create(self, name: str, role: str, expires: float | None = None) -> tuple[Principal, str]:
        """A new principal and its token (returned once, never stored)."""
        if role not in ROLES:
            raise BadRequest(f"unknown role {role[:20]!r} (one of {', '.join(ROLES)})", 400,
                             "malformed-body")
        if not isinstance(name, str) or not 0 < len(name) <= 64 or not name.isprintable():
            raise BadRequest("a principal's name is 1 to 64 printable characters", 400,
                             "malformed-body")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        with self._mutex:
            self.db.execute("INSERT INTO principals VALUES (?, ?, ?, ?, ?, ?, 0)",
                            (token_id, name, role, _hash(token_id, secret), time.time(), expires))
        return Principal(token_id, name, role, expires), f"abeh_{token_id}_{secret}"

    def revoke(self, token_id: str) -> bool:
        with self._mutex:
            cursor = self.db.execute("UPDATE principals SET revoked = 1 WHERE id = ?", (token_id,))
        return cursor.rowcount == 1

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a bearer token, or Unauthorized (the same message for every reason
        but a missing token, so a caller learns nothing about which tokens exist)."""
        if not token:
            raise Unauthorized("no bearer token", 401, "unauthorized")
        match = TOKEN.match(token)
        if match is None:
            raise Unauthorized("invalid token", 401, "unauthorized")
        token_id, secret = match["id"], match["secret"]
        with self._mutex:
            row = self.db.execute("SELECT name, role, token_hash, expires, revoked FROM principals "
                                  "WHERE id = ?", (token_id,)).fetchone()
        stored = row[2] if row is not None else bytes(32)
        valid = hmac.compare_digest(stored, _hash(token_id, secret))
        if row is None or not valid or row[4] or (row[3] is not None and row[3] <= time.time()):
            raise Unauthorized("invalid token", 401, "unauthorized")
        return Principal(token_id, row[0], row[1], row[3])

    def list(self) -> list[dict[str, object]]:
        with self._mutex:
            rows = self.db.execute("SELECT id, name, role, created, expires, revoked FROM principals "
                                   "ORDER BY created").fetchall()
        return [{"id": r[0], "name": r[1], "role": r[2], "created": r[3], "expires": r[4],
                 "revoked": bool(r[5])} for r in rows]

    def close(self) -> None:
        self.db.close()
