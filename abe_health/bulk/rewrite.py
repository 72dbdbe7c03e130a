"""The worker's side of bulk revocation: one task re-encapsulates the headers of one batch.

Runs in the authority's domain: the task names the master key by path (with its passphrase file,
if protected) and the public fingerprint it must match, and the worker derives the escrow key
from it (`keycache`); the data key of every file it rewrites is in its memory for that moment.
For each catalog row (untrusted, type-checked) the worker reads the stored header's policy text
and skips a file already at the target versions (a resumed or repeated run); else it opens the
escrow, which succeeds only for exactly the row it was sealed for (so the store cannot steer a
re-wrap), and writes a new header around the same data key, payload salt and chunk size, bound
to the same vault, id and generation: one encapsulation per target policy per batch, a fresh
wrap salt and nonce per header, written to a temporary of its own beside the header, all of a
batch synced at once before the task returns (`seal.sync_batch`). It returns the temporaries'
names and the files that failed, with why: the driver switches headers when it commits
(renames), so a task run twice switches nothing twice.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from ..errors import AbeError
from ..hazmat.envelope import MAGIC, MAX_HEADER, write_header
from ..hazmat.pairing import Element
from ..hazmat.records import to_map
from ..hazmat.schemes import SchemeBase
from ..recipients import PolicyRecipient
from ..revocation import escrow
from ..revocation.catalog import Row
from ..revocation.storedir import FilesDir
from ..revocation.vault import escrow_fields, file_context
from ..revocation.versions import apply_versions
from . import keycache
from .seal import sync_batch


@dataclass(frozen=True)
class RewriteTask:
    """One batch of catalog rows to bring to `versions` (the verified manifest's)."""

    vault_path: str
    vault: bytes
    versions: dict[str, int]
    public_path: str
    fingerprint: str
    master_path: str
    passphrase_file: str | None
    rows: list[Row]


@dataclass(frozen=True)
class Rewritten:
    """New headers' temporaries by (file id, generation), ids already current, and (id, why)
    failures."""

    heads: dict[tuple[str, int], str] = field(default_factory=dict)
    current: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def stored_policy(files: FilesDir, name: str) -> str | None:
    """The policy text a stored header carries, read without decoding any group element."""
    try:
        with files.open_read(name) as head:
            prefix = head.read(8)
            if len(prefix) != 8 or prefix[:4] != MAGIC:
                return None
            (length,) = struct.unpack(">I", prefix[4:8])
            if length > MAX_HEADER:
                return None
            policy = cbor2.loads(head.read(length))["ct"]["meta"]["policy"]
    except (AbeError, OSError, KeyError, TypeError, ValueError, cbor2.CBORDecodeError):
        return None
    return policy if isinstance(policy, str) else None


def rewrite_batch(task: RewriteTask) -> Rewritten:
    """New headers for the rows of `task` whose stored header is behind (module docstring)."""
    authority = keycache.authority(task.public_path, task.fingerprint)
    private = keycache.escrow_private(task.master_path, task.passphrase_file, task.public_path,
                                      task.fingerprint)
    made: dict[str, tuple[SchemeBase, dict[str, Any], Element]] = {}
    out = Rewritten()
    files = FilesDir(Path(task.vault_path) / "files")
    try:
        for row in task.rows:
            try:
                target = apply_versions(authority.policy(row.policy), task.versions)
                text = str(target)
                if stored_policy(files, f"{row.id}.{row.gen}.head") == text:
                    out.current.append(row.id)
                    continue
                dek = escrow.open_sealed(private, row.escrow, escrow_fields(task.vault, row))
                if text not in made:
                    scheme, ct, gt_key = PolicyRecipient(authority.public_key, target).encapsulate()
                    made[text] = (scheme, to_map(scheme, ct), gt_key)
                scheme, ct_map, gt_key = made[text]
                head = io.BytesIO()
                write_header(head, scheme, ct_map, gt_key, dek, row.salt, row.chunk,
                             file_context(task.vault, row.id, row.gen))
                temp, handle = files.create_temp(f"{row.id}.{row.gen}.head")
                with handle:
                    handle.write(head.getvalue())
                out.heads[(row.id, row.gen)] = temp
            except AbeError as exc:
                out.failed.append((row.id, str(exc)))
        sync_batch()
    finally:
        files.close()
    return out
