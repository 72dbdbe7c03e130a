"""The vault's `files/` directory, used only through a directory descriptor.

The store (the cloud) can plant symbolic links in the directory, or swap the directory itself for
a link, between any two calls. Every operation therefore goes through one descriptor opened with
`O_DIRECTORY | O_NOFOLLOW`, names are checked to be plain file names, files are opened with
`O_NOFOLLOW`, and temporary files are created with `O_CREAT | O_EXCL | O_NOFOLLOW` under random
names, so no write ever follows a link out of the vault.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import VaultError

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


def _plain(name: str) -> str:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise VaultError(f"not a plain file name: {name!r}")
    return name


class FilesDir:
    """A directory opened once; every file operation is relative to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)
        except OSError as exc:
            raise VaultError(f"{path} is not a directory of the vault ({exc.strerror})") from None

    def close(self) -> None:
        os.close(self.fd)

    def open_read(self, name: str) -> BinaryIO:
        """Open a stored file for reading, refusing links."""
        try:
            fd = os.open(_plain(name), os.O_RDONLY | _NOFOLLOW, dir_fd=self.fd)
        except OSError as exc:
            raise VaultError(f"cannot read {name} in {self.path}: {exc.strerror}") from None
        return os.fdopen(fd, "rb")

    def create_temp(self, name: str) -> tuple[str, BinaryIO]:
        """A new temporary file beside `name` (never an existing file, never a link)."""
        temp = f".{_plain(name)}.{secrets.token_hex(6)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644, dir_fd=self.fd)
        return temp, os.fdopen(fd, "wb")

    def replace(self, temp: str, name: str) -> None:
        os.replace(_plain(temp), _plain(name), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(_plain(name), dir_fd=self.fd)

    @contextlib.contextmanager
    def atomic(self, name: str) -> Iterator[BinaryIO]:
        """A file that replaces `name` (synced) only if the block completes."""
        temp, handle = self.create_temp(name)
        try:
            with handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
            self.replace(temp, name)
        except BaseException:
            self.unlink(temp)
            raise

    def replace_all(self, parts: Sequence[tuple[str, bytes]]) -> tuple[list[str], str | None]:
        """Replace each named file by its bytes: all are written to temporaries and synced once,
        then each is renamed into place (each switch atomic). Returns the names replaced and,
        if writing failed, why (the others keep their old content)."""
        done: list[str] = []
        temps: list[str] = []
        try:
            for name, data in parts:
                temp, handle = self.create_temp(name)
                temps.append(temp)
                with handle:
                    handle.write(data)
            os.sync()
            for (name, _), temp in zip(parts, temps, strict=True):
                self.replace(temp, name)
                done.append(name)
        except OSError as exc:
            return done, str(exc.strerror or exc)
        finally:
            for temp in temps:
                self.unlink(temp)
        return done, None
