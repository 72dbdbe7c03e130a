"""Keys as a worker loads them: from paths, once per worker process, never from a task's bytes.

Dask pickles every task's arguments and sends them to a worker (in clear over TCP unless the
cluster is configured for TLS). So no task argument holds a secret: tasks name key files by path
and the public fingerprint they must have, and each worker reads the file itself (a shared file
system inside the authority's domain) and keeps what it derived in this process's memory,
keyed by path and file identity (a replaced file is read again). A master key is used only to
derive what the task needs (the escrow key that opens data keys, or the key itself to issue
user keys); the secret never leaves the worker process, in a result or in a log line.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from search.errors import InvalidSearchKey
from search.keys import SearchKey

from ..authority import ABE
from ..derived import check_pair, escrow_key, fingerprint
from ..errors import InvalidKey
from ..keys import Key, read_key

T = TypeVar("T")
_lock = threading.RLock()
_cache: dict[tuple[str, ...], Any] = {}


def _identity(path: str) -> str:
    """What changes when a file is replaced: device, inode, size, modification time."""
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}"


def _cached(key: tuple[str, ...], load: Callable[[], T]) -> T:
    with _lock:
        if key not in _cache:
            _cache[key] = load()
        value: T = _cache[key]
        return value


def _passphrase(passphrase_file: str | None) -> str | None:
    if passphrase_file is None:
        return None
    with open(passphrase_file, encoding="utf-8") as handle:
        return handle.readline().rstrip("\r\n")


def public_key(path: str, expected: str) -> Key:
    """The public key at `path`, which must have fingerprint `expected` (what the driver pinned)."""
    def load() -> Key:
        key = read_key(path, expect="public")
        if fingerprint(key) != expected:
            raise InvalidKey(f"{path}: the public key changed since the job began (fingerprint "
                             f"{fingerprint(key)}, the job pinned {expected})")
        return key

    return _cached(("public", path, expected, _identity(path)), load)


def authority(public_path: str, expected: str) -> ABE:
    """An `ABE` over the pinned public key (no master key): for encapsulating."""
    return _cached(("abe", public_path, expected, _identity(public_path)),
                   lambda: ABE(public_key(public_path, expected)))


def master_key(master_path: str, passphrase_file: str | None, public_path: str, expected: str) -> Key:
    """The master key at `master_path`, checked against the pinned public key."""
    def load() -> Key:
        master = read_key(master_path, _passphrase(passphrase_file), expect="master")
        check_pair(public_key(public_path, expected), master)
        return master

    return _cached(("master", master_path, expected, _identity(master_path)), load)


def escrow_private(master_path: str, passphrase_file: str | None, public_path: str,
                   expected: str) -> X25519PrivateKey:
    """The authority's escrow key, derived from its master key on this worker."""
    return _cached(("escrow", master_path, expected, _identity(master_path)),
                   lambda: escrow_key(master_key(master_path, passphrase_file, public_path, expected)))


def search_key(path: str, index_id: bytes, check: bytes) -> SearchKey:
    """The search key at `path`, which must give the job's key check for its index."""
    def load() -> SearchKey:
        key = SearchKey.load(path)
        if not hmac.compare_digest(key.check_value(index_id), check):
            raise InvalidSearchKey(f"{path}: not the search key this index job began with")
        return key

    return _cached(("search", path, index_id.hex(), _identity(path)), load)


def clear() -> None:
    """Forget every key this process loaded (tests; a worker ending a job)."""
    with _lock:
        _cache.clear()
