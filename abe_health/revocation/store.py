"""Where a vault's bytes live: the interface the vault works through, and the local directory.

The vault (vault.py) trusts no byte its store returns: it verifies the manifest's signature,
type-checks every catalog row, opens escrows only for the row they were sealed for and binds
headers and bodies to their file id and generation. So the same `Vault` code, with all those
checks, runs over any store that can keep these objects:

- the signed manifest (`read_manifest`, `write_manifest`), bytes the store cannot forge;
- the catalog (`catalog`: `row`, `rows`, `insert`, `replace`), one row per file;
- the stored parts (`dir`: `open_read`, `atomic`, `unlink`, `replace_all`), named
  `<file id>.<generation>.head|body`, each replaced atomically;
- a writer lock (`lock`), so writers and revocations run one at a time.

`LocalStore` is a vault directory on this machine (files/, catalog.sqlite, vault.manifest,
.lock); `abe_health.cloud.remote.RemoteStore` is the same over HTTP to `abe-health serve`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

from ..errors import VaultError
from ..fileio import write_atomic
from ..locks import exclusive
from .catalog import Catalog, Row
from .storedir import FilesDir

MANIFEST = "vault.manifest"
CATALOG = "catalog.sqlite"


class CatalogStore(Protocol):
    """The catalog operations the vault uses (`catalog.Catalog` is the local one)."""

    def row(self, file_id: str) -> Row: ...

    def rows(self) -> list[Row | VaultError]: ...

    def insert(self, row: Row) -> None: ...

    def replace(self, row: Row) -> None: ...

    def close(self) -> None: ...


class PartStore(Protocol):
    """The stored header and body files (`storedir.FilesDir` is the local one)."""

    def open_read(self, name: str) -> BinaryIO: ...

    def atomic(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]: ...

    def unlink(self, name: str) -> None: ...

    def replace_all(self, parts: Sequence[tuple[str, bytes]]) -> tuple[list[str], str | None]: ...

    def close(self) -> None: ...


class VaultStore(ABC):
    """A vault's storage: manifest, catalog, parts and lock. `where` names it in messages."""

    where: str
    catalog: CatalogStore
    dir: PartStore

    @abstractmethod
    def default_name(self) -> str:
        """The vault's name when the caller gives none (the manifest must carry it)."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether a vault is already stored here."""

    @abstractmethod
    def create(self, signed_manifest: bytes) -> None:
        """Store a new, empty vault with this manifest, and open it."""

    @abstractmethod
    def open(self) -> None:
        """Open an existing vault (VaultError if there is none)."""

    @abstractmethod
    def read_manifest(self) -> bytes:
        """The stored manifest's bytes (unverified)."""

    @abstractmethod
    def write_manifest(self, data: bytes) -> None:
        """Replace the manifest atomically."""

    @abstractmethod
    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the vault's writer lock for the block (`locks.Busy` past the wait)."""

    def close(self) -> None:
        for part in (getattr(self, "catalog", None), getattr(self, "dir", None)):
            if part is not None:
                part.close()


class LocalStore(VaultStore):
    """A vault directory: files/ (opened once as a directory descriptor), catalog.sqlite (WAL),
    vault.manifest and the lock file .lock."""

    catalog: Catalog
    dir: FilesDir

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def default_name(self) -> str:
        return self.path.resolve().name

    def exists(self) -> bool:
        return (self.path / CATALOG).exists()

    def create(self, signed_manifest: bytes) -> None:
        (self.path / "files").mkdir(parents=True, exist_ok=True)
        self.write_manifest(signed_manifest)
        self.catalog = Catalog(self.path / CATALOG, create=True)
        self.dir = FilesDir(self.path / "files")

    def open(self) -> None:
        self.catalog = Catalog(self.path / CATALOG)
        try:
            self.dir = FilesDir(self.path / "files")
        except VaultError:
            self.catalog.close()
            raise

    def read_manifest(self) -> bytes:
        try:
            return (self.path / MANIFEST).read_bytes()
        except OSError as exc:
            raise VaultError(f"{self.path}: cannot read {MANIFEST}: {exc.strerror}") from None

    def write_manifest(self, data: bytes) -> None:
        write_atomic(self.path / MANIFEST, data)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        return exclusive(self.path / ".lock")
