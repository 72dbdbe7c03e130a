"""A pool of precomputed encryption material, sealed at rest, consumed atomically.

Two kinds (docs/formats.md section 11.4):
- `hw14`: HW14 offline material for RW13 (`hazmat/schemes/hw14.py`): *sessions*, one per
  ciphertext, and *pieces*, one per policy row, made before any policy is known;
- `encapsulations`: whole encapsulations of one fixed policy (any CP scheme), for a sensor that
  always writes for the same readers.

Every entry is sealed with AES-256-GCM under a key derived from the pool key and the pool id,
with associated data naming the pool, its public header and the entry's list and absolute index:
entries cannot be read without the pool key, nor moved, duplicated or replayed inside the file.

Never twice: `take` holds an exclusive lock (`POOL.lock`, flock) while it reads the file, opens
the entries it takes, and atomically replaces the file by one without them (fsynced temporary
file renamed over it); only then are the entries returned to the caller. A process killed at any
point loses entries at worst; no two takers, in one process or many, ever get the same entry.
An exhausted pool raises `PoolExhausted`. What a lock cannot stop: a copy of the file restored
from a backup holds entries already used (docs/devices.md, "Limits").
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InvalidKey, PoolExhausted
from ..fileio import write_atomic
from ..locks import exclusive
from .keyfiles import PoolKey

POOL_TYPE = "abe-health/pool"
KINDS = ("hw14", "encapsulations")
ENTRY_LABEL = "abe-health/v1/pool-entry"
KDF_INFO = b"abe-health/v1/pool"
#: the public header fields, all bound into every entry's associated data
HEADER_FIELDS = ("v", "type", "id", "kind", "scheme", "group", "pk", "policy", "widths")
LISTS = ("sessions", "pieces")
#: the largest pool file read
MAX_POOL_BYTES = 1 << 30
#: the most entries of one list
MAX_ENTRIES = 1 << 20

Progress = Callable[[int], None]


@dataclass(frozen=True)
class PoolInfo:
    """A pool's public header and how many entries it still holds (no secret)."""

    path: Path
    header: dict[str, Any]
    sessions: int
    pieces: int

    @property
    def kind(self) -> str:
        return str(self.header["kind"])

    @property
    def policy(self) -> str | None:
        policy = self.header["policy"]
        return policy if isinstance(policy, str) else None


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of a pool: `POOL.lock` beside it."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


def _aead(key: PoolKey, pool_id: bytes) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=pool_id, info=KDF_INFO)
                  .derive(key.secret))


def _aad(header: dict[str, Any], name: str, index: int) -> bytes:
    return cbor2.dumps([ENTRY_LABEL, [header[f] for f in HEADER_FIELDS], name, index], canonical=True)


def _seal(aead: AESGCM, header: dict[str, Any], name: str, index: int, entry: dict[str, Any]) -> bytes:
    nonce = os.urandom(12)
    return nonce + aead.encrypt(nonce, cbor2.dumps(entry), _aad(header, name, index))


def create(path: str | os.PathLike[str], key: PoolKey, header: dict[str, Any],
           sessions: list[dict[str, Any]], pieces: list[dict[str, Any]]) -> PoolInfo:
    """Write a new pool (mode 0600, atomically, under its lock) holding these entries."""
    if set(header) != set(HEADER_FIELDS) - {"v", "type", "id"} or header["kind"] not in KINDS:
        raise ValueError("a pool header names kind, scheme, group, pk, policy and widths")
    full = {"v": 1, "type": POOL_TYPE, "id": secrets.token_bytes(16), **header}
    aead = _aead(key, full["id"])
    data = {**full, "first": [0, 0],
            "sessions": [_seal(aead, full, "sessions", i, e) for i, e in enumerate(sessions)],
            "pieces": [_seal(aead, full, "pieces", i, e) for i, e in enumerate(pieces)]}
    with exclusive(lock_path(path)):
        write_atomic(path, cbor2.dumps(data), secret=True)
    return PoolInfo(Path(path), {f: full[f] for f in HEADER_FIELDS}, len(sessions), len(pieces))


def _load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The pool file's map, its shape checked (entries still sealed)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_POOL_BYTES + 1)
    except OSError as exc:
        raise InvalidKey(f"cannot read pool {path}: {exc.strerror}") from None
    try:
        data: Any = cbor2.loads(raw) if len(raw) <= MAX_POOL_BYTES else None
    except Exception:  # cbor2 raises several error types for garbage
        data = None
    if not isinstance(data, dict) or data.get("type") != POOL_TYPE or data.get("v") != 1:
        raise InvalidKey(f"{path} is not a pool file")
    first = data.get("first")
    shape = [set(data) == {*HEADER_FIELDS, "first", *LISTS}, data.get("kind") in KINDS,
             isinstance(data.get("id"), bytes) and len(data["id"]) == 16,
             isinstance(first, list) and len(first) == 2
             and all(type(i) is int and 0 <= i < 2**40 for i in first),
             all(isinstance(data.get(n), list) and len(data[n]) <= MAX_ENTRIES
                 and all(isinstance(e, bytes) for e in data[n]) for n in LISTS)]
    if not all(shape):
        raise InvalidKey(f"{path}: malformed pool file")
    return data


def info(path: str | os.PathLike[str]) -> PoolInfo:
    """A pool's public header and remaining counts (no key needed; nothing is consumed)."""
    data = _load(path)
    return PoolInfo(Path(path), {f: data[f] for f in HEADER_FIELDS}, len(data["sessions"]),
                    len(data["pieces"]))


def take(path: str | os.PathLike[str], key: PoolKey, sessions: int,
         pieces: int) -> tuple[PoolInfo, list[dict[str, Any]], list[dict[str, Any]]]:
    """Consume `sessions` sessions and `pieces` pieces: opened, removed from the file durably,
    then returned. PoolExhausted when fewer are left (nothing is consumed then); InvalidKey for
    a wrong pool key or an altered pool."""
    with exclusive(lock_path(path)):
        data = _load(path)
        header = {f: data[f] for f in HEADER_FIELDS}
        have = len(data["sessions"]), len(data["pieces"])
        if have[0] < sessions or have[1] < pieces:
            what = (f"{have[0]} ciphertexts and {have[1]} row pieces left, {sessions} and {pieces} "
                    "needed" if header["kind"] == "hw14" else f"{have[0]} encapsulations left")
            raise PoolExhausted(f"pool {path} is exhausted ({what}); precomputed material is never "
                                "reused: precompute a new pool")
        aead = _aead(key, data["id"])
        opened: list[list[dict[str, Any]]] = []
        for slot, (name, count) in enumerate(zip(LISTS, (sessions, pieces), strict=True)):
            items = []
            for k, sealed in enumerate(data[name][:count]):
                aad = _aad(header, name, data["first"][slot] + k)
                try:
                    plain = aead.decrypt(sealed[:12], sealed[12:], aad)
                except (InvalidTag, ValueError):
                    raise InvalidKey(f"{path}: the pool was altered, or the pool key does not match "
                                     "it") from None
                items.append(cbor2.loads(plain))
            opened.append(items)
        rest = {**data, "first": [data["first"][0] + sessions, data["first"][1] + pieces],
                "sessions": data["sessions"][sessions:], "pieces": data["pieces"][pieces:]}
        write_atomic(path, cbor2.dumps(rest), secret=True)
    return PoolInfo(Path(path), header, have[0] - sessions, have[1] - pieces), opened[0], opened[1]
