"""Advisory file locks for mutable stores (vaults, registers): writers queue, never interleave.

`fcntl.flock` on a lock file beside the store: the kernel drops the lock when the process dies
(kill -9 included), so a crashed writer never leaves a stale lock, which a lock-file-exists
scheme (or PyPI `filelock`'s soft locks) would. A writer that cannot get the lock within
`timeout` seconds gets `Busy`, a typed error the CLI prints as one line.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from .errors import AbeError

#: the lock file of a key directory (`setup -o DIR`, `authority setup NAME -o DIR`)
KEY_DIR_LOCK = ".lock"
#: how long a writer waits for another by default (ABE_HEALTH_LOCK_TIMEOUT overrides, in seconds)
TIMEOUT = 60.0


def _timeout() -> float:
    try:
        return float(os.environ.get("ABE_HEALTH_LOCK_TIMEOUT", TIMEOUT))
    except ValueError:
        return TIMEOUT


class Busy(AbeError):
    """Another writer holds the store's lock for longer than we were willing to wait."""


def _acquire(fd: int, path: str | os.PathLike[str], timeout: float | None) -> None:
    """flock `fd` exclusively, waiting at most `timeout` seconds (then Busy)."""
    timeout = _timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Busy(f"{Path(path).parent} is busy: another writer holds {Path(path).name} "
                           f"(waited {timeout:.0f} s)") from None
            time.sleep(0.05)


def _open(path: str | os.PathLike[str]) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block."""
    fd = _open(path)
    try:
        _acquire(fd, path, timeout)
        yield
    finally:
        os.close(fd)


class LockFile:
    """A lock file kept open by a long-lived writer (the server's audit log), locked and
    unlocked per write: the same lock as `exclusive`, without opening the file each time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._fd = _open(path)
        self._closed = weakref.finalize(self, os.close, self._fd)

    @contextlib.contextmanager
    def held(self, timeout: float | None = None) -> Iterator[None]:
        _acquire(self._fd, self.path, timeout)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._closed()
