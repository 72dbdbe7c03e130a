"""`RemoteStore`: a vault kept by `abe-health serve`, behind the vault's store interface.

The `Vault` class runs unchanged on the client over this store, so every check it makes of a
local vault directory it makes of the server's answers: the manifest is verified against the
pinned authority key, each catalog row is type-checked here (`Row.of`) whatever the server
claims, escrows open only for their row, headers and bodies open only for their file id and
generation. Revocation re-encapsulates headers on the authority's machine (the escrowed data
key never leaves it) and posts only the new headers, which the server switches one by one; no
body is read or sent unless the authority rotates data keys.

The writer lock is a lease on the server (`POST .../lock`), taken and renewed as the local lock
file is; it lapses 30 s after its holder's last request, so a killed writer blocks nobody for
long. While it is held, the catalog rows read under it are cached (no other writer may change
them), so a revocation of N files costs one catalog read, not N.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from ..errors import VaultError
from ..locks import Busy, _timeout
from ..revocation.catalog import Row, check_id
from ..revocation.manifest import MAX_BYTES as MAX_MANIFEST
from ..revocation.store import VaultStore
from . import ids
from .errors import NotFound, ProtocolError

if TYPE_CHECKING:
    from .client import Client


class RemoteCatalog:
    """The vault's catalog on the server; every row type-checked here."""

    def __init__(self, store: RemoteStore) -> None:
        self.store = store
        self._cached: dict[str, Row] | None = None

    def _path(self, suffix: str = "") -> str:
        return f"{self.store.base}/catalog{suffix}"

    def row(self, file_id: str) -> Row:
        check_id(file_id)
        if self._cached is not None and self.store.lease is not None and file_id in self._cached:
            return self._cached[file_id]
        try:
            value = self.store.client.cbor("GET", self._path(f"/{file_id}"), limit=1 << 20)
        except NotFound:
            raise VaultError(f"no file {file_id} in {self.store.where}") from None
        if not isinstance(value, list) or len(value) != 9:
            raise VaultError(f"file {file_id}: malformed catalog row")
        row = Row.of(tuple(value))
        if row.id != file_id:
            raise VaultError(f"file {file_id}: the server answered the row of another file")
        return row

    def rows(self) -> list[Row | VaultError]:
        value = self.store.client.cbor("GET", self._path())
        if not isinstance(value, list):
            raise ProtocolError(f"{self.store.where}: the catalog is not a list")
        out: list[Row | VaultError] = []
        for item in value:
            try:
                if isinstance(item, dict):
                    out.append(VaultError(f"malformed catalog row: {str(item.get('error'))[:200]}"))
                elif isinstance(item, list) and len(item) == 9:
                    out.append(Row.of(tuple(item)))
                else:
                    out.append(VaultError("malformed catalog row"))
            except VaultError as exc:
                out.append(exc)
        self._cached = {r.id: r for r in out if isinstance(r, Row)} if self.store.lease else None
        return out

    def insert(self, row: Row) -> None:
        self._cached = None
        self.store.client.cbor("POST", self._path(), list(row.values()), self.store.headers())

    def replace(self, row: Row) -> None:
        self._cached = None
        self.store.client.cbor("PUT", self._path(f"/{row.id}"), list(row.values()), self.store.headers())

    def close(self) -> None:
        self._cached = None


class RemoteParts:
    """The vault's headers and bodies on the server, streamed."""

    def __init__(self, store: RemoteStore) -> None:
        self.store = store

    def _path(self, name: str) -> str:
        return f"{self.store.base}/parts/{ids.part(name)}"

    def open_read(self, name: str) -> BinaryIO:
        try:
            return cast(BinaryIO, self.store.client.download(self._path(name)))
        except NotFound:
            raise VaultError(f"cannot read {name} in {self.store.where}: not stored") from None

    def atomic(self, name: str) -> contextlib.AbstractContextManager[BinaryIO]:
        return self.store.client.uploading(self._path(name), self.store.headers())

    def unlink(self, name: str) -> None:
        self.store.client.request("DELETE", self._path(name), headers=self.store.headers())

    def replace_all(self, parts: Sequence[tuple[str, bytes]]) -> tuple[list[str], str | None]:
        """Post the new headers; the server switches each atomically after one sync."""
        answer = self.store.client.cbor("POST", f"{self.store.base}/headers",
                                        [[name, data] for name, data in parts], self.store.headers())
        asked = {name for name, _ in parts}
        if not isinstance(answer, dict) or not isinstance(answer.get("done"), list) \
                or not all(isinstance(n, str) and n in asked for n in answer["done"]):
            raise ProtocolError(f"{self.store.where}: a malformed answer to a header switch")
        error = answer.get("error")
        return list(answer["done"]), error[:200] if isinstance(error, str) else None

    def close(self) -> None:
        pass


class RemoteStore(VaultStore):
    """Vault `name` on the server of `client`."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.vault = ids.name(name, "vault name")
        self.base = f"/v1/vaults/{self.vault}"
        self.where = f"{client.url}{self.base}"
        self.lease: str | None = None
        self.catalog = RemoteCatalog(self)
        self.dir = RemoteParts(self)

    def headers(self) -> dict[str, str]:
        return {"abe-lease": self.lease} if self.lease else {}

    def default_name(self) -> str:
        return self.vault

    def exists(self) -> bool:
        try:
            self.read_manifest()
        except VaultError:
            return False
        return True

    def create(self, signed_manifest: bytes) -> None:
        self.client.request("PUT", self.base, signed_manifest)

    def open(self) -> None:
        self.read_manifest()

    def read_manifest(self) -> bytes:
        try:
            return self.client.request("GET", f"{self.base}/manifest", limit=MAX_MANIFEST)
        except NotFound:
            raise VaultError(f"{self.where}: no such vault") from None

    def write_manifest(self, data: bytes) -> None:
        self.client.request("PUT", f"{self.base}/manifest", data, self.headers())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """The server's writer lease, waited for as long as the local lock would be."""
        if self.lease is not None:  # held already (re-entrant, as the vault never nests)
            yield
            return
        deadline = time.monotonic() + _timeout()
        while True:
            try:
                answer: Any = self.client.json("POST", f"{self.base}/lock")
                break
            except Busy:
                if time.monotonic() >= deadline:
                    raise Busy(f"{self.where} is busy: another writer holds its lock") from None
                time.sleep(0.1)
        if not isinstance(answer, dict) or not isinstance(answer.get("lease"), str):
            raise ProtocolError(f"{self.where}: a malformed lease")
        self.lease = answer["lease"][:64]
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.client.request("DELETE", f"{self.base}/lock", headers=self.headers())
            self.lease = None
            self.catalog.close()
