"""Bulk encryption, the driver's side: plan, run batches on the cluster, commit each batch.

Into a vault (a directory holding `catalog.sqlite`), a batch commits under the vault's writer
lock, after checking that the signed manifest is still the one the batch was encrypted against
(else the batch is computed again at the new attribute versions, so no file lands behind a
revocation that happened meanwhile): the bodies and headers (written and synced by the workers)
are renamed into place, the directory synced, and then the batch's rows inserted in one catalog
transaction. Only then is the batch marked done in the journal. A resumed job first marks done
the items whose rows a killed run inserted but did not mark, then computes the rest again (a
file's id is fixed when the job is planned, so a second computation replaces the parts of the
first and never adds a second row). Into a directory, a batch commits by renaming each
`NAME.abe` into place (atomic each), then syncing.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..authority import ABE
from ..derived import fingerprint
from ..errors import BulkError, InvalidKey
from ..keys import read_key
from ..revocation import Vault
from ..revocation.catalog import Row
from ..revocation.store import CATALOG, LocalStore
from .cluster import worker_count
from .journal import Journal, spec_digest
from .runner import BulkReport, run_batches
from .seal import EncryptTask, Sealed, VaultTarget, encrypt_batch
from .sources import PolicyMap, assign, list_sources, output_name

#: files per batch at most, and source bytes per batch at most (a batch is one task). A task
#: costs the driver a scheduler round trip, the result's transfer and a commit (lock, manifest
#: check, directory sync, catalog and journal transactions): on a machine whose cores the
#: driver shares with the workers that comes out of the workers' share, so batches are as large
#: as a job allows while every worker still gets several (BATCHES_PER_WORKER)
BATCH_FILES = 256
BATCH_BYTES = 64 << 20
#: batches per worker thread at least, when there are enough files (keeps workers evenly busy)
BATCHES_PER_WORKER = 4


def default_journal(out: str | os.PathLike[str], kind: str) -> Path:
    """Where a job's journal lives by default: beside its output, never inside it (a vault or
    an index is the untrusted store's; the journal is the driver's own state)."""
    target = Path(out).resolve()
    return target.with_name(f".{target.name}.{kind}.journal")


def batch_size(items: int, workers: int, most: int) -> int:
    """Items per batch: at most `most`, and few enough that every worker gets several batches."""
    return max(1, min(most, math.ceil(items / (BATCHES_PER_WORKER * max(1, workers)))))


def batches(items: list[dict[str, Any]], workers: int, max_files: int = BATCH_FILES,
            max_bytes: int = BATCH_BYTES) -> list[list[dict[str, Any]]]:
    """Consecutive runs of `items` (sorted by policy, so a batch shares encapsulations) of at
    most `max_files` files and `max_bytes` source bytes, and small enough that every worker
    gets several."""
    per = batch_size(len(items), workers, max_files)
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for item in items:
        if current and (len(current) >= per or size + item["bytes"] > max_bytes):
            out.append(current)
            current, size = [], 0
        current.append(item)
        size += item["bytes"]
    if current:
        out.append(current)
    return out


def encrypt_files(client: Any, src: str | os.PathLike[str], public_path: str | os.PathLike[str],
                  policy_map: PolicyMap | str | os.PathLike[str], out: str | os.PathLike[str],
                  journal: str | os.PathLike[str] | None = None,
                  on_commit: Callable[[int], None] | None = None) -> BulkReport:
    """Encrypt every file of `src` (a directory or a manifest, `sources`) under the policy the
    map gives it, into the vault `out` (if it is one) or as `NAME.abe` files under directory
    `out`, on `client`'s cluster; restartable through the journal (default: beside `out`)."""
    public_path = str(Path(public_path).resolve())
    public = read_key(public_path, expect="public")
    if public.scheme.policy_in != "ciphertext":
        raise InvalidKey(f"bulk encryption is under policies (CP-ABE); {public.scheme.name} is KP-ABE")
    authority, pinned = ABE(public), fingerprint(public)
    pmap = policy_map if isinstance(policy_map, PolicyMap) else PolicyMap.load(policy_map)
    target = Path(out).resolve()
    into_vault = (target / CATALOG).is_file()
    spec = {"src": str(Path(src).resolve()), "public": pinned, "out": str(target), "vault": into_vault,
            "map": spec_digest({"rules": [list(r) for r in pmap.rules], "default": pmap.default})}
    report = BulkReport("encrypt")
    with Journal.open(journal or default_journal(target, "encrypt")) as book:
        if not book.check("encrypt", spec):
            if not into_vault:
                target.mkdir(exist_ok=True)
            items = []
            for source, policy in assign(list_sources(src), pmap, authority.policy):
                item: dict[str, Any] = {"name": source.name, "path": source.path, "policy": policy,
                                        "bytes": source.size}
                if into_vault:
                    item["id"] = secrets.token_hex(8)
                else:
                    item["out"] = output_name(source.name).as_posix()
                items.append(item)
            items.sort(key=lambda i: (i["policy"], i["name"]))
            book.plan("encrypt", spec, batches(items, worker_count(client)))
        if into_vault:
            with contextlib.closing(Vault(target)) as vault:
                return _into_vault(client, book, report, vault, public_path, pinned, on_commit)
        return _into_directory(client, book, report, target, public_path, pinned, on_commit)


def _into_vault(client: Any, book: Journal, report: BulkReport, vault: Vault, public_path: str,
                pinned: str, on_commit: Callable[[int], None] | None) -> BulkReport:
    public = read_key(public_path, expect="public")
    current = [_target(vault, public)]
    existing = {r.id for r in vault.catalog.rows() if isinstance(r, Row)}
    for batch, items in book.pending().items():  # committed by a killed run, not yet marked
        found = [i for i in items if i["id"] in existing]
        if found:
            book.mark_done(batch, found)

    def make_task(batch: int, items: list[dict[str, Any]]) -> tuple[Callable[[Any], Any], Any]:
        return encrypt_batch, EncryptTask(public_path, pinned, items, vault=current[0])

    store = local_store(vault)

    def commit(batch: int, items: list[dict[str, Any]], results: list[Sealed]
               ) -> list[tuple[str, str]] | None:
        with store.lock():
            fresh = _target(vault, public)
            if fresh.seq != current[0].seq:  # a revocation signed a new manifest meanwhile
                current[0] = fresh
                _discard(vault, results)
                return None
            failed = [(r.name, r.error) for r in results if r.error is not None]
            rows = []
            for r in results:
                if r.error is not None or r.row is None:
                    continue
                for temp, part in ((r.temp, "body"), (r.head, "head")):
                    if not temp.startswith(f".{r.row.id}.0.{part}."):
                        raise BulkError(f"a worker returned an unexpected temporary name {temp!r}")
                store.dir.replace(r.temp, f"{r.row.id}.0.body")
                store.dir.replace(r.head, f"{r.row.id}.0.head")
                rows.append(r.row)
            os.fsync(store.dir.fd)
            store.catalog.insert_all(rows)
            return failed

    run_batches(client, book, report, make_task, commit, on_commit)
    _sweep_vault(vault, {i["id"] for i in book.items()})
    return report


def _target(vault: Vault, public: Any) -> VaultTarget:
    manifest = vault.manifest(public)
    return VaultTarget(str(vault.path.resolve()), manifest.vault, manifest.escrow,
                       dict(manifest.versions), manifest.seq)


def local_store(vault: Vault) -> LocalStore:
    """The vault's local directory: bulk jobs work on a vault in a file system the workers
    share (not on a vault behind `abe-health serve`)."""
    if not isinstance(vault.store, LocalStore):
        raise BulkError(f"{vault.store.where}: bulk jobs work on a vault directory")
    return vault.store


def _discard(vault: Vault, results: list[Sealed]) -> None:
    for r in results:
        if r.row is not None:
            for temp, part in ((r.temp, "body"), (r.head, "head")):
                if temp.startswith(f".{r.row.id}.0.{part}."):
                    local_store(vault).dir.unlink(temp)


def _sweep_vault(vault: Vault, ids: set[str]) -> None:
    """Remove temporaries that tasks of this job left (a killed worker, a task run twice)."""
    with os.scandir(vault.files) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") and name.endswith(".tmp") and name[1:17] in ids \
                    and name[17:25] in (".0.body.", ".0.head."):
                local_store(vault).dir.unlink(name)


def _into_directory(client: Any, book: Journal, report: BulkReport, target: Path, public_path: str,
                    pinned: str, on_commit: Callable[[int], None] | None) -> BulkReport:
    def make_task(batch: int, items: list[dict[str, Any]]) -> tuple[Callable[[Any], Any], Any]:
        return encrypt_batch, EncryptTask(public_path, pinned, items, out_dir=str(target))

    def commit(batch: int, items: list[dict[str, Any]], results: list[Sealed]) -> list[tuple[str, str]]:
        by_name = {i["name"]: i for i in items}
        failed = [(r.name, r.error) for r in results if r.error is not None]
        parents = set()
        for r in results:
            if r.error is None:
                final = target / by_name[r.name]["out"]
                if Path(r.temp).parent != Path(by_name[r.name]["out"]).parent \
                        or not Path(r.temp).name.startswith(f".{final.name}."):
                    raise BulkError(f"a worker returned an unexpected temporary name {r.temp!r}")
                os.replace(target / r.temp, final)
                parents.add(final.parent)
        for parent in parents:
            _sync_directory(parent)
        return failed

    run_batches(client, book, report, make_task, commit, on_commit)
    for item in book.items():
        final = target / item["out"]
        if final.parent.is_dir():
            for stray in final.parent.glob(f".{final.name}.*.part"):
                stray.unlink(missing_ok=True)
    return report


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
