"""Atomic file output: write to a temporary file beside the target, then rename over it.

An interrupted or failed run never leaves a half-written file under the target name; secret
files are created with mode 0600 from the start (never chmod-ed after being readable).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], secret: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces `path` only if the block completes without error."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o600 if secret else 0o644 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike[str], data: bytes, secret: bool = False) -> None:
    """Write bytes to `path` atomically (mode 0600 when `secret`)."""
    with atomic_output(path, secret=secret) as handle:
        handle.write(data)
