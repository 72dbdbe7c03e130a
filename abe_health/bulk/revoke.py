"""Bulk revocation and update, the driver's side (the authority's process).

`revoke` bumps the attribute's version in the signed manifest exactly as `Vault.revoke` does
(lazily: the manifest first), recording in the journal the version it started from, so a
resumed job never bumps twice; then, like `update`, it brings every affected header to the
manifest's versions on the cluster (`rewrite`). Each batch's new headers are switched under the
vault's writer lock, after checking that the manifest is still the one they were made for
(else the batch is computed again) and that each file is still at the generation its header was
made for (a `vault put` meanwhile wrote a current one): the temporaries the workers wrote and
synced are renamed into place and the directory synced. Until a job finishes, a revoked key still opens the
files not yet rewritten, as after an interrupted `revoke`: run the job again (or `update`, or
`abe-health vault update`) to finish it. Rows that cannot be rewritten (an altered row, a
missing header) are reported by id and do not stop the others.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..authority import ABE
from ..derived import fingerprint
from ..errors import AbeError, BulkError
from ..keys import Key, read_key
from ..policy import Policy
from ..register import register_path_for
from ..revocation import Vault
from ..revocation.catalog import Row
from ..revocation.manifest import AuthorityState
from ..revocation.versions import mentioned
from .cluster import worker_count
from .encrypt import batch_size, default_journal, local_store
from .journal import Journal
from .rewrite import RewriteTask, Rewritten, rewrite_batch
from .runner import BulkReport, run_batches

#: headers per batch at most (fewer when a small job needs them to keep every worker busy): a
#: batch costs the driver a scheduler round trip, one catalog read and a directory sync beside
#: its renames, so batches are as large as the job allows (the vault's writer lock is held for
#: one batch's renames)
BATCH_HEADERS = 1024


def revoke(client: Any, vault_path: str | os.PathLike[str], label: str,
           master_path: str | os.PathLike[str], passphrase_file: str | None = None,
           journal: str | os.PathLike[str] | None = None) -> BulkReport:
    """Revoke attribute `label` in the vault and rewrite every header that mentions it on
    `client`'s cluster (see the module docstring)."""
    return _run(client, vault_path, master_path, passphrase_file, journal, label)


def update(client: Any, vault_path: str | os.PathLike[str], master_path: str | os.PathLike[str],
           passphrase_file: str | None = None, journal: str | os.PathLike[str] | None = None
           ) -> BulkReport:
    """Rewrite every header behind the manifest's current versions (finishes a lazy or
    interrupted revocation) on `client`'s cluster."""
    return _run(client, vault_path, master_path, passphrase_file, journal, None)


class _Authority(ABE):
    """The authority with each distinct policy text parsed once: a vault's rows mostly share a
    few policies, and planning reads every row's (Policy is immutable)."""

    def __init__(self, public_key: Key, master_key: Key, register: Path | None) -> None:
        super().__init__(public_key, master_key, register=register)
        self._policies: dict[str, Policy] = {}

    def policy(self, text: str) -> Policy:
        found = self._policies.get(text)
        if found is None:
            found = self._policies[text] = super().policy(text)
        return found


def _authority(master_path: str, passphrase_file: str | None) -> ABE:
    passphrase = None
    if passphrase_file is not None:
        with open(passphrase_file, encoding="utf-8") as handle:
            passphrase = handle.readline().rstrip("\r\n")
    master = read_key(master_path, passphrase, expect="master")
    register = register_path_for(master_path)
    return _Authority(read_key(Path(master_path).with_name("public.key"), expect="public"), master,
                      register if register.exists() else None)


def _run(client: Any, vault_path: str | os.PathLike[str], master_path: str | os.PathLike[str],
         passphrase_file: str | None, journal: str | os.PathLike[str] | None,
         label: str | None) -> BulkReport:
    master_path = str(Path(master_path).resolve())
    passphrase_file = str(Path(passphrase_file).resolve()) if passphrase_file else None
    authority = _authority(master_path, passphrase_file)
    public_path = str(Path(master_path).with_name("public.key"))
    pinned = fingerprint(authority.public_key)
    target = Path(vault_path).resolve()
    kind = "revoke" if label is not None else "update"
    report = BulkReport(kind)
    with contextlib.closing(Vault(target, state=AuthorityState(register_path_for(master_path)))) as vault, \
            Journal.open(journal or default_journal(target, kind)) as book:
        if label is not None:
            label = str(authority.attributes([label]).attributes[0].label)
            spec: dict[str, Any] = {"vault": str(target), "authority": pinned, "label": label}
            if not book.check(kind, spec):
                book.set("from", vault.versions(authority).get(label, 0))
                book.plan(kind, spec, [])
            if vault.versions(authority).get(label, 0) <= int(book.get("from")):
                vault.revoke(label, authority, lazy=True)
        else:
            spec = {"vault": str(target), "authority": pinned}
            book.check(kind, spec)
        versions = vault.versions(authority)
        if not book.get("planned"):
            rows, bad = _rows(vault, authority, label)
            report.failed += bad
            per = batch_size(len(rows), worker_count(client), BATCH_HEADERS)
            book.plan(kind, spec, [[{"name": r.id, "gen": r.gen} for r in rows[i : i + per]]
                                   for i in range(0, len(rows), per)])
            book.set("planned", True)
        report.extra["versions"] = versions
        _rewrite(client, vault, authority, book, report, public_path, pinned, master_path,
                 passphrase_file)
        if not report.failed:  # finished: the next run of this command is a new job
            book.reset()
        return report


def _rows(vault: Vault, authority: ABE, label: str | None) -> tuple[list[Row], list[tuple[str, str]]]:
    """The rows to bring up to date (those mentioning `label`, or all), and unreadable ones."""
    rows, bad = [], []
    labels: dict[str, set[str]] = {}  # by policy text: rows mostly share a few
    for row in vault.catalog.rows():
        if not isinstance(row, Row):
            bad.append(("?", str(row)))
            continue
        try:
            if label is not None and row.policy not in labels:
                labels[row.policy] = mentioned(authority.policy(row.policy))
            if label is None or label in labels[row.policy]:
                rows.append(row)
        except AbeError as exc:
            bad.append((row.id, str(exc)))
    return rows, bad


def _rewrite(client: Any, vault: Vault, authority: ABE, book: Journal, report: BulkReport,
             public_path: str, pinned: str, master_path: str, passphrase_file: str | None) -> BulkReport:
    manifest = [vault.manifest(authority.public_key)]
    store = local_store(vault)

    def make_task(batch: int, items: list[dict[str, Any]]) -> tuple[Callable[[Any], Any], Any]:
        found = store.catalog.rows_of([item["name"] for item in items])
        # a row gone since planning (or no longer well-formed) is dropped
        rows = [found[item["name"]] for item in items if item["name"] in found]
        m = manifest[0]
        return rewrite_batch, RewriteTask(str(vault.path), m.vault, dict(m.versions), public_path,
                                          pinned, master_path, passphrase_file, rows)

    def commit(batch: int, items: list[dict[str, Any]], result: Rewritten) -> list[tuple[str, str]] | None:
        with vault.store.lock():
            fresh = vault.manifest(authority.public_key)
            if fresh.seq != manifest[0].seq:
                manifest[0] = fresh
                for temp in result.heads.values():
                    if temp.startswith("."):
                        store.dir.unlink(temp)
                return None
            switched, dropped = [], []
            now = store.catalog.rows_of([file_id for file_id, _ in result.heads])
            for (file_id, gen), temp in result.heads.items():
                name = f"{file_id}.{gen}.head"
                if not temp.startswith(f".{name}."):
                    raise BulkError(f"a worker returned an unexpected temporary name {temp!r}")
                # still at the generation the header was made for? else a writer replaced the
                # file meanwhile, and its header is current
                if file_id in now and now[file_id].gen == gen:
                    store.dir.replace(temp, name)
                    switched.append(file_id)
                else:
                    dropped.append(temp)
            os.fsync(store.dir.fd)
            for temp in dropped:
                store.dir.unlink(temp)
        report.extra["rewritten"] = report.extra.get("rewritten", 0) + len(switched)
        return list(result.failed)

    run_batches(client, book, report, make_task, commit)
    heads = {f".{i['name']}.{i['gen']}.head." for i in book.items()}
    with os.scandir(vault.files) as entries:  # temporaries of killed or repeated tasks
        for entry in entries:
            if entry.name.endswith(".tmp") and entry.name[: entry.name.find(".head.") + 6] in heads:
                store.dir.unlink(entry.name)
    return report
