"""Atomic file output: an unnamed temporary file beside the target, linked into place only when
complete, then renamed over the target; the directory is synced after the rename.

An interrupted or failed run never leaves a half-written file under the target name, and on Linux
(`O_TMPFILE`) a run killed with SIGKILL leaves no file at all: the data has no name until it is
complete, so a killed `decrypt` leaves no plaintext behind. The file gets its name through
/proc/self/fd or, where that is refused (some sandboxes), linkat(AT_EMPTY_PATH). Elsewhere (or
where neither links) a named `.NAME.XXXX.tmp` is used and removed on any error. Secret files are created
with mode 0600 from the start (never chmod-ed after being readable).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_TMPFILE = getattr(os, "O_TMPFILE", 0)
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_file(path: str | os.PathLike[str]) -> None:
    """fsync a written file (before a rename or a manifest makes it visible)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """Make a rename in `directory` durable (best effort where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_LINKABLE: dict[int, bool] = {}


def _link(fd: int, name: str) -> None:
    """Give the unnamed file `fd` the name `name`: through /proc (any user), else with
    linkat(AT_EMPTY_PATH) (needs CAP_DAC_READ_SEARCH; some sandboxes allow only this one)."""
    try:
        os.link(f"/proc/self/fd/{fd}", name, follow_symlinks=True)
        return
    except OSError as exc:
        first = exc
    linkat = _libc_linkat()
    if linkat is None or linkat(fd, b"", _AT_FDCWD, os.fsencode(name), _AT_EMPTY_PATH) != 0:
        raise first


def _libc_linkat() -> Any:
    """libc's linkat through ctypes, or None where there is none."""
    try:
        return ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None


def _tmpfile_links(directory: Path) -> bool:
    """Whether an O_TMPFILE file in `directory` can later be given a name (some kernels and
    sandboxes refuse the link); probed once per file system with an empty file."""
    try:
        device = os.stat(directory).st_dev
    except OSError:
        return False
    if device not in _LINKABLE:
        works = False
        with contextlib.suppress(OSError):
            fd = os.open(directory, _TMPFILE | os.O_WRONLY, 0o600)
            try:
                probe = str(directory / f".abe-health-probe.{secrets.token_hex(6)}")
                _link(fd, probe)
                os.unlink(probe)
                works = True
            finally:
                os.close(fd)
        _LINKABLE[device] = works
    return _LINKABLE[device]


def _unnamed_available(directory: Path) -> bool:
    """Whether files written in `directory` start unnamed (O_TMPFILE that can be linked)."""
    return bool(_TMPFILE) and _tmpfile_links(directory)


def _unnamed(directory: Path, mode: int) -> int | None:
    """An unnamed file in `directory` (Linux O_TMPFILE), or None where there is none."""
    if not _unnamed_available(directory):
        return None
    try:
        return os.open(directory, _TMPFILE | os.O_WRONLY, mode)
    except OSError:
        return None


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], secret: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block completes without error."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    mode = 0o600 if secret else 0o644 & ~_umask()
    fd = _unnamed(directory, mode)
    tmp_name: str | None = None
    if fd is None:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if tmp_name is None:  # give the complete file a name, then move it into place
                tmp_name = str(directory / f".{target.name}.{secrets.token_hex(6)}.tmp")
                _link(handle.fileno(), tmp_name)
        os.replace(tmp_name, target)
        sync_directory(directory)
    except BaseException:
        if tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes, secret: bool = False) -> None:
    """Write bytes to `path` atomically (mode 0600 when `secret`)."""
    with atomic_output(path, secret=secret) as handle:
        handle.write(data)
