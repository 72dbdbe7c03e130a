"""The server's data directory: where `abe-health serve` keeps what it is given.

```
DATA/server.sqlite        principals (hashed tokens) and who owns what (WAL)
DATA/audit.log            the hash-chained request log; DATA/audit.key (0600), DATA/audit.pub
DATA/vaults/NAME/         a vault directory as `abe-health vault` makes it: files/ (headers and
                          bodies apart: ID.GEN.head, ID.GEN.body), catalog.sqlite (WAL),
                          vault.manifest
DATA/objects/KIND/NAME    .phr records, whole .abe files, public keys and parameters
DATA/indexes/NAME/        a PASS index directory (manifest.cbor, seg-N/, search.key.abe/.sig)
```
Every write lands in a temporary file (an unnamed O_TMPFILE where Linux allows, else a
`.NAME.RANDOM.tmp`), is synced, then renamed over its name; temporaries left by a killed server
are removed at start (`sweep`). So a killed upload leaves nothing visible, and a reader sees the
old bytes or the new, never a mix. Names are checked by `ids` before they reach this module.
The server holds no key: it stores and returns bytes, walks index trees with the trapdoors it
is sent, and records who owns which object.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from search.engine import BATCH_BYTES
from search.format import Manifest, Segment, load_segment, parse_manifest
from search.server import Forest

from ..fileio import atomic_output
from ..revocation.store import LocalStore
from .auth import Principals, connect
from .errors import Conflict, Forbidden, NotFound

OWNERS = """CREATE TABLE IF NOT EXISTS owners (kind TEXT NOT NULL, ns TEXT NOT NULL, id TEXT NOT NULL,
                                               owner TEXT NOT NULL, PRIMARY KEY (kind, ns, id))"""
LEASE_SECONDS = 30.0


@dataclass
class Lease:
    token: str
    holder: str
    expires: float


class DataDir:
    """The data directory, opened once by the server (thread-safe where it is shared)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("vaults", "objects", "indexes"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.principals = Principals(root / "server.sqlite")
        self.db = connect(root / "server.sqlite")
        self.db.execute(OWNERS)
        self._mutex = threading.Lock()
        self._leases: dict[str, Lease] = {}
        self._segments: dict[Path, tuple[tuple[int, int], Segment]] = {}
        self._stores: dict[str, LocalStore] = {}
        self._manifests: dict[str, tuple[tuple[int, int, int], bytes, Manifest]] = {}
        #: per index: (manifest stamp, write epoch), its manifest bytes and segments
        self._views: dict[str, tuple[tuple[int, int, int, int], bytes, list[Segment]]] = {}
        #: per index: bumped by every write into it, so a file replaced under an unchanged
        #: manifest is loaded again
        self._epochs: dict[str, int] = {}
        self._indexes = os.path.join(root, "indexes")
        self._walks: dict[str, tuple[list[Segment], list[tuple[Forest, list[int]]]]] = {}

    # -- ownership --------------------------------------------------------------------------------
    def claim(self, kind: str, ns: str, obj: str, principal: str) -> str:
        """Record `principal` as the owner of (kind, ns, obj) unless someone is; return the owner."""
        with self._mutex:
            self.db.execute("INSERT OR IGNORE INTO owners VALUES (?, ?, ?, ?)", (kind, ns, obj, principal))
            row = self.db.execute("SELECT owner FROM owners WHERE kind = ? AND ns = ? AND id = ?",
                                  (kind, ns, obj)).fetchone()
        return str(row[0])

    def owner_of(self, kind: str, ns: str, obj: str) -> str | None:
        with self._mutex:
            row = self.db.execute("SELECT owner FROM owners WHERE kind = ? AND ns = ? AND id = ?",
                                  (kind, ns, obj)).fetchone()
        return None if row is None else str(row[0])

    def require_owner(self, kind: str, ns: str, obj: str, principal: str, claim: bool = True) -> None:
        """Forbidden unless `principal` owns (or, with `claim`, may now claim) the object."""
        owner = self.claim(kind, ns, obj, principal) if claim else self.owner_of(kind, ns, obj)
        if owner != principal:
            raise Forbidden(f"{kind} {obj} belongs to another principal", 403, "forbidden")

    def disown(self, kind: str, ns: str, obj: str | None = None) -> None:
        with self._mutex:
            if obj is None:
                self.db.execute("DELETE FROM owners WHERE kind = ? AND ns = ?", (kind, ns))
            else:
                self.db.execute("DELETE FROM owners WHERE kind = ? AND ns = ? AND id = ?", (kind, ns, obj))

    # -- vaults -----------------------------------------------------------------------------------
    def vault_path(self, name: str) -> Path:
        return self.root / "vaults" / name

    @contextlib.contextmanager
    def vault(self, name: str) -> Iterator[LocalStore]:
        """An existing vault's store. Opened once and kept (opening a catalog, a connection and
        its schema checks, took most of a small request's time); used only by the event loop's
        thread, as its SQLite connection requires."""
        path = self.vault_path(name)
        if not (path / "catalog.sqlite").is_file():
            raise NotFound(f"no vault {name}", 404, "not-found")
        store = self._stores.get(name)
        if store is None:
            store = LocalStore(path)
            store.open()
            self._stores[name] = store
        yield store

    def create_vault(self, name: str, manifest: bytes) -> None:
        store = LocalStore(self.vault_path(name))
        with self._mutex:
            if store.exists():
                raise Conflict(f"vault {name} exists", 409, "conflict")
            store.create(manifest)
        store.close()

    def vaults(self) -> list[str]:
        return sorted(p.name for p in (self.root / "vaults").iterdir()
                      if (p / "catalog.sqlite").is_file())

    def lease(self, vault: str, holder: str, token: str | None = None) -> Lease:
        """Take (or renew, with its token) the vault's writer lease; Conflict-free Busy if held."""
        from ..locks import Busy

        with self._mutex:
            now = time.monotonic()
            held = self._leases.get(vault)
            if held is not None and held.expires > now and held.token != token:
                raise Busy(f"vault {vault} is busy: another writer holds its lock")
            lease = Lease(token or secrets.token_hex(16), holder, now + LEASE_SECONDS)
            self._leases[vault] = lease
            return lease

    def release(self, vault: str, token: str) -> None:
        with self._mutex:
            held = self._leases.get(vault)
            if held is not None and held.token == token:
                del self._leases[vault]

    def check_lease(self, vault: str, token: str | None) -> None:
        """Busy if another writer holds the vault's lease (renews the caller's own)."""
        from ..locks import Busy

        with self._mutex:
            held = self._leases.get(vault)
            if held is None or held.expires <= time.monotonic():
                return
            if held.token != token:
                raise Busy(f"vault {vault} is busy: another writer holds its lock")
            held.expires = time.monotonic() + LEASE_SECONDS

    # -- objects and index files ------------------------------------------------------------------
    def object_path(self, kind: str, name: str) -> Path:
        return self.root / "objects" / kind / name

    def index_path(self, name: str) -> Path:
        return self.root / "indexes" / name

    @contextlib.contextmanager
    def write(self, path: Path) -> Iterator[BinaryIO]:
        """A file that replaces `path` (synced) only if the block completes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_output(path) as out:
                yield out
        finally:
            self._touched(path)

    def _touched(self, path: Path) -> None:
        """Note a write under indexes/NAME/ (its cached segments are checked again)."""
        rel = os.path.relpath(path, self._indexes)
        if not rel.startswith(".."):
            name = rel.split(os.sep, 1)[0]
            with self._mutex:
                self._epochs[name] = self._epochs.get(name, 0) + 1

    def remove_index(self, name: str) -> None:
        shutil.rmtree(self.index_path(name), ignore_errors=True)
        with self._mutex:
            self._segments = {p: s for p, s in self._segments.items()
                              if not p.is_relative_to(self.index_path(name))}
            self._walks.pop(name, None)
            self._manifests.pop(name, None)
            self._views.pop(name, None)
            self._epochs[name] = self._epochs.get(name, 0) + 1

    def walks(self, name: str) -> tuple[bytes, list[Segment], list[tuple[Forest, list[int]]]]:
        """The index's manifest bytes, its segments, and the batched walks over them as the
        local `search.engine.Searcher` keeps them (small segments in one `Forest`, larger ones
        each in place), with each forest's segment positions. Kept while the segments are the
        same objects: building a Forest reshapes every node's salt, which cost a 100k-keyword
        search about as much as the walk itself."""
        raw, segments = self.segments(name)
        with self._mutex:
            cached = self._walks.get(name)
        if cached is not None and len(cached[0]) == len(segments) \
                and all(a is b for a, b in zip(cached[0], segments, strict=True)):
            return raw, segments, cached[1]
        small = [i for i, s in enumerate(segments) if len(s.filters) <= BATCH_BYTES]
        groups = ([small] if small else []) + [[i] for i, s in enumerate(segments)
                                               if len(s.filters) > BATCH_BYTES]
        forests = [(Forest([segments[i] for i in group]), group) for group in groups]
        with self._mutex:
            self._walks[name] = (segments, forests)
        return raw, segments, forests

    def segment_count(self, name: str) -> int | None:
        """How many segments the index had when it was last walked (None before its first)."""
        with self._mutex:
            cached = self._walks.get(name)
        return len(cached[0]) if cached is not None else None

    def segments(self, name: str) -> tuple[bytes, list[Segment]]:
        """The index's manifest bytes and its memory-mapped segments (cached while unchanged).
        A search costs one stat: the manifest's stamp and the index's write epoch decide whether
        the segments are looked at again (the server writes every file of an index itself)."""
        try:
            st = os.stat(os.path.join(self._indexes, name, "manifest.cbor"))
        except OSError:
            raise NotFound(f"no index {name}", 404, "not-found") from None
        version = (st.st_ino, st.st_mtime_ns, st.st_size)  # replaced by a rename: a new inode
        with self._mutex:
            view = self._views.get(name)
            epoch = self._epochs.get(name, 0)
        if view is not None and view[0] == (*version, epoch):
            return view[1], view[2]
        index = self.index_path(name)
        with self._mutex:
            known = self._manifests.get(name)
        if known is not None and known[0] == version:
            raw, manifest = known[1], known[2]
        else:
            raw = (index / "manifest.cbor").read_bytes()
            manifest = parse_manifest(raw, index)
            with self._mutex:
                self._manifests[name] = (version, raw, manifest)
        out = []
        for seg in manifest.segments:
            path = index / seg
            try:
                st = os.stat(path / "meta.cbor")
            except OSError:
                raise NotFound(f"index {name}: segment {seg} was not uploaded", 404,
                               "not-found") from None
            stamp = (st.st_ino, st.st_mtime_ns)
            with self._mutex:
                cached = self._segments.get(path)
            if cached is None or cached[0] != stamp:
                cached = (stamp, load_segment(path))
                with self._mutex:
                    self._segments[path] = cached
            out.append(cached[1])
        with self._mutex:
            self._views[name] = ((*version, epoch), raw, out)
        return raw, out

    # -- start ------------------------------------------------------------------------------------
    def sweep(self) -> int:
        """Remove the temporary files a killed server or client left; return how many."""
        removed = 0
        for pattern in ("vaults/*/files/.*.tmp", "vaults/*/.*.tmp", "objects/*/.*.tmp",
                        "indexes/*/.*.tmp", "indexes/*/*/.*.tmp", "indexes/*/*.tmp"):
            for leftover in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    if leftover.is_dir():
                        shutil.rmtree(leftover)
                    else:
                        leftover.unlink()
                    removed += 1
        return removed

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self.principals.close()
        self.db.close()
