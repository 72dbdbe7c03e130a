"""Bulk key issuance: user keys for many holders (after a revocation, say), in parallel, each
recorded in the authority's issuance register by one writer.

Workers run in the authority's domain: each loads the master key from its path (checked against
the pinned public key), issues the keys of its batch (with the vault's current epochs when a
vault is given, as `Vault.issue_key` does), builds each key's register row beside it
(`register.issuance_row`: the digest of its group elements, its attributes, a fresh issuance id
that the key's metadata also carries), and writes the key file to a temporary of its own in the
output directory (mode 0600; a batch's files synced at once before the task returns). It returns
the rows and the temporaries' names: no key crosses the wire. The driver, the register's single
writer, renames a batch's key files into place (`HOLDER.key`), syncs the directory, and then
appends the batch's rows in one register transaction. A killed run leaves key files renamed but
not recorded at most; when the job is run again, a key file whose digest the register holds
counts as issued, any other is issued again, so every delivered key is in the register and no
row names a key that was not delivered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..authority import ABE
from ..derived import fingerprint
from ..errors import AbeError, BulkError, InvalidKey
from ..hazmat.schemes import Scheme
from ..keys import Key, read_key
from ..register import Register, issuance_row, register_path_for
from ..revocation import Vault
from ..revocation.manifest import AuthorityState
from ..revocation.versions import versioned_key_attributes
from . import keycache
from .cluster import worker_count
from .encrypt import batch_size, default_journal
from .journal import Journal
from .runner import BulkReport, run_batches
from .seal import sync_batch

HOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}\Z")
#: keys per batch at most (fewer when a small job needs them to keep every worker busy). A key
#: is about 2-3.5 ms of a worker's CPU (issue, register row, a synced file); a batch costs the
#: driver about 5-10 ms of CPU (the scheduler's round trip, renames, a directory sync, a register
#: and a journal transaction), which on a cluster sharing cores with the driver comes out of the
#: workers' share: at 16 keys a batch that was a quarter of the job, at 256 a few per cent.
BATCH_KEYS = 256
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class KeygenTask:
    """One batch of holders ({"name", "attributes"}) to issue keys to."""

    master_path: str
    passphrase_file: str | None
    public_path: str
    fingerprint: str
    out_dir: str
    versions: dict[str, int]
    holders: list[dict[str, Any]]


@dataclass(frozen=True)
class Issued:
    """One holder's result: the key file's temporary name and its register row, or why not."""

    name: str
    temp: str = ""
    row: tuple[Any, ...] = ()
    error: str | None = None


def issue_batch(task: KeygenTask) -> list[Issued]:
    """Issue the keys of one batch into temporaries (see the module docstring)."""
    master = keycache.master_key(task.master_path, task.passphrase_file, task.public_path, task.fingerprint)
    authority = ABE(keycache.public_key(task.public_path, task.fingerprint), master)
    scheme = authority.public_key.scheme
    assert isinstance(scheme, Scheme)  # ABE holds single-authority schemes only
    out = []
    for holder in task.holders:
        try:
            subject = versioned_key_attributes(authority.attributes(holder["attributes"]), task.versions)
            rec = scheme.keygen(authority.public_key.record, master.record, subject)
            rec = dataclasses.replace(rec, meta={**rec.meta, "pk": task.fingerprint})
            iid, row = issuance_row(Key(scheme, rec), task.fingerprint)
            key = Key(scheme, dataclasses.replace(rec, meta={**rec.meta, "iid": iid}))
            temp = Path(task.out_dir) / f".{holder['name']}.key.{secrets.token_hex(6)}.part"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key.to_bytes())
            out.append(Issued(holder["name"], temp.name, row))
        except (AbeError, OSError) as exc:
            out.append(Issued(holder["name"], error=str(exc)))
    sync_batch()
    return out


def read_holders(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Holders from a JSON-lines file: `{"holder": NAME, "attributes": [ATTR, ...]}` a line
    (NAME names the key file NAME.key: letters, digits, `. _ @ -`)."""
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BulkError(f"{path}, line {number}: not JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                data = {}
            name, attrs = data.get("holder"), data.get("attributes")
            if not isinstance(name, str) or not HOLDER.match(name) or not isinstance(attrs, list) \
                    or not attrs or not all(isinstance(a, str) for a in attrs):
                raise BulkError(f"{path}, line {number}: expected {{\"holder\": NAME, \"attributes\": "
                                "[ATTR, ...]}} with NAME of letters, digits, '. _ @ -'")
            out.append({"name": name, "attributes": attrs})
    names = [h["name"] for h in out]
    if len(set(names)) != len(names):
        raise BulkError(f"{path}: a holder is listed twice")
    return out


def issue_keys(client: Any, master_path: str | os.PathLike[str],
               holders: list[dict[str, Any]] | str | os.PathLike[str], out_dir: str | os.PathLike[str],
               vault: str | os.PathLike[str] | None = None, passphrase_file: str | None = None,
               journal: str | os.PathLike[str] | None = None) -> BulkReport:
    """Issue a key to every holder into `out_dir/NAME.key` on `client`'s cluster, recorded in the
    register beside the master key (which must exist); with `vault`, keys hold its current
    attribute epochs (after a revocation)."""
    master_path = str(Path(master_path).resolve())
    passphrase_file = str(Path(passphrase_file).resolve()) if passphrase_file else None
    public_path = str(Path(master_path).with_name("public.key"))
    public = read_key(public_path, expect="public")
    passphrase = None
    if passphrase_file:
        with open(passphrase_file, encoding="utf-8") as handle:
            passphrase = handle.readline().rstrip("\r\n")
    authority = ABE(public, read_key(master_path, passphrase, expect="master"))
    if public.scheme.policy_in != "ciphertext":
        raise InvalidKey(f"bulk keygen issues attribute keys (CP-ABE); {public.scheme.name} is KP-ABE")
    register = Register(register_path_for(master_path))
    pinned = fingerprint(public)
    versions: dict[str, int] = {}
    if vault is not None:
        with contextlib.closing(Vault(vault, state=AuthorityState(register.path))) as opened:
            versions = opened.versions(authority)
    people = holders if isinstance(holders, list) else read_holders(holders)
    # every attribute list parses before any key is issued; holders mostly share a few lists
    for attributes in {tuple(holder["attributes"]) for holder in people}:
        authority.attributes(list(attributes))
    target = Path(out_dir).resolve()
    target.mkdir(exist_ok=True)
    report = BulkReport("keygen")
    with Journal.open(journal or default_journal(target, "keygen")) as book:
        spec = {"authority": pinned, "out": str(target), "versions": versions,
                "holders": [[h["name"], h["attributes"]] for h in people]}
        resumed = book.check("keygen", spec)
        if not resumed:
            per = batch_size(len(people), worker_count(client), BATCH_KEYS)
            book.plan("keygen", spec, [people[i : i + per] for i in range(0, len(people), per)])
        else:
            _recognize_issued(book, register, target)

        def make_task(batch: int, items: list[dict[str, Any]]) -> tuple[Callable[[Any], Any], Any]:
            return issue_batch, KeygenTask(master_path, passphrase_file, public_path, pinned, str(target),
                                           versions, items)

        def commit(batch: int, items: list[dict[str, Any]], results: list[Issued]) -> list[tuple[str, str]]:
            good = [r for r in results if r.error is None]
            for r in good:
                if not r.temp.startswith(f".{r.name}.key.") or "/" in r.temp:
                    raise BulkError(f"a worker returned an unexpected temporary name {r.temp!r}")
                os.replace(target / r.temp, target / f"{r.name}.key")
            fd = os.open(target, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            register.append([r.row for r in good])
            return [(r.name, str(r.error)) for r in results if r.error is not None]

        # a connection held open for the run: otherwise each append's own connection, closing
        # as the last one, checkpoints the register's WAL and deletes it, every batch
        with contextlib.closing(register.connect()):
            run_batches(client, book, report, make_task, commit)
        for stray in target.glob(".*.key.*.part"):
            stray.unlink(missing_ok=True)
        return report


def _recognize_issued(book: Journal, register: Register, target: Path) -> None:
    """Mark done the holders whose key file a killed run delivered and recorded."""
    for batch, items in book.pending().items():
        found = []
        for item in items:
            path = target / f"{item['name']}.key"
            if path.is_file():
                with contextlib.suppress(AbeError):
                    register.lookup(read_key(path, expect="user"))
                    found.append(item)
        if found:
            book.mark_done(batch, found)
