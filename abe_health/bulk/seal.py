"""The worker's side of bulk encryption: one task encrypts one batch of files.

Within a batch, files under one policy share one ABE encapsulation, as FHIR classes do, where the
`.abe` format allows it: the encapsulation is the header's ciphertext record, and every header
still wraps its own fresh data key under its own fresh wrap salt and nonce (independent KEKs,
docs/security.md, break 4), with its own payload salt. What sharing shows is what the policy
already shows: that these files are under that policy. A vault file's header is bound to its
vault, file id and generation (0), its data key escrowed to the authority exactly as
`Vault.add` does. Randomness comes from `os.urandom` only.

Workers write only to temporaries with names of their own (a vault's `files/.ID.0.body.*.tmp`
and `.ID.0.head.*.tmp`, an output directory's `.NAME.abe.*.part`), synced on the worker before
the task returns (once for the whole batch, `sync_batch`: not in the driver's commit), and
return where they are: the driver alone
renames them into place when it commits the batch, so a task run twice (a worker killed, or cut
off and still running) leaves at most an unused temporary, never a body that does not belong to
the committed row. Nothing secret is returned: catalog rows (the escrow is sealed) and temporary names.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from ..errors import AbeError
from ..hazmat.envelope import CHUNK, seal_payload, write_header
from ..hazmat.pairing import Element
from ..hazmat.records import to_map
from ..hazmat.schemes import SchemeBase
from ..policy import Policy
from ..recipients import PolicyRecipient
from ..revocation import escrow
from ..revocation.catalog import Row
from ..revocation.storedir import FilesDir
from ..revocation.vault import escrow_fields, file_context
from ..revocation.versions import apply_versions
from . import keycache

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class VaultTarget:
    """The verified manifest's public values a batch is encrypted against."""

    path: str
    vault: bytes
    escrow: bytes
    versions: dict[str, int]
    seq: int


@dataclass(frozen=True)
class EncryptTask:
    """One batch: items {"name", "path", "policy", and "id" (vault) or "out" (directory)}."""

    public_path: str
    fingerprint: str
    items: list[dict[str, Any]]
    vault: VaultTarget | None = None
    out_dir: str | None = None
    chunk: int = CHUNK


@dataclass(frozen=True)
class Sealed:
    """One item's result: its temporary (in files/ or relative to the output directory), its
    header's temporary and catalog row (vault), or why it failed."""

    name: str
    temp: str = ""
    head: str = ""
    row: Row | None = None
    error: str | None = None


@dataclass
class _Encapsulations:
    """One encapsulation per target policy, for one batch."""

    task: EncryptTask
    made: dict[str, tuple[SchemeBase, dict[str, Any], Element, Policy]] = field(default_factory=dict)

    def of(self, policy: str) -> tuple[SchemeBase, dict[str, Any], Element, Policy]:
        if policy not in self.made:
            authority = keycache.authority(self.task.public_path, self.task.fingerprint)
            base = authority.policy(policy)
            target = apply_versions(base, self.task.vault.versions) if self.task.vault else base
            scheme, ct, gt_key = PolicyRecipient(authority.public_key, target).encapsulate()
            self.made[policy] = (scheme, to_map(scheme, ct), gt_key, base)
        return self.made[policy]


def sync_batch() -> None:
    """Make every temporary this task wrote durable before the task returns (and so before the
    driver renames any into place): one `os.sync` for the batch, as the vault's own batch
    rewrite does (`FilesDir.replace_all`), instead of an fsync per file. Each fsync of a new
    file is a journal commit of its own, and those of two workers on one disk queue behind each
    other: two per file, they were the largest part of an encrypting worker's time after its
    CPU."""
    os.sync()


def encrypt_batch(task: EncryptTask) -> list[Sealed]:
    """Encrypt every item of a batch into temporaries (see the module docstring)."""
    encaps = _Encapsulations(task)
    files = FilesDir(Path(task.vault.path) / "files") if task.vault is not None else None
    out: list[Sealed] = []
    try:
        for item in task.items:
            try:
                if files is not None:
                    out.append(_into_vault(task, encaps, files, item))
                else:
                    out.append(_into_directory(task, encaps, item))
            except (AbeError, OSError) as exc:
                out.append(Sealed(item["name"], error=str(exc)))
        sync_batch()
    finally:
        if files is not None:
            files.close()
    return out


def _into_vault(task: EncryptTask, encaps: _Encapsulations, files: FilesDir, item: dict[str, Any]) -> Sealed:
    assert task.vault is not None
    scheme, ct_map, gt_key, base = encaps.of(item["policy"])
    file_id, dek, salt = item["id"], os.urandom(32), os.urandom(32)
    head = io.BytesIO()
    write_header(head, scheme, ct_map, gt_key, dek, salt, task.chunk,
                 file_context(task.vault.vault, file_id, 0))
    temp, handle = files.create_temp(f"{file_id}.0.body")
    head_temp, head_handle = files.create_temp(f"{file_id}.0.head")
    try:
        with handle, open(item["path"], "rb") as src:
            seal_payload(dek, salt, task.chunk, src, handle)
            size = handle.tell()
        with head_handle:
            head_handle.write(head.getvalue())
    except BaseException:
        files.unlink(temp)
        files.unlink(head_temp)
        raise
    row = Row(file_id, item["name"], str(base), size,
              dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), salt, task.chunk, b"", 0)
    sealed = escrow.seal(X25519PublicKey.from_public_bytes(task.vault.escrow), dek,
                         escrow_fields(task.vault.vault, row))
    return Sealed(item["name"], temp, head_temp, dataclasses.replace(row, escrow=sealed))


def _into_directory(task: EncryptTask, encaps: _Encapsulations, item: dict[str, Any]) -> Sealed:
    assert task.out_dir is not None
    scheme, ct_map, gt_key, _ = encaps.of(item["policy"])
    target = Path(task.out_dir) / item["out"]
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle, open(item["path"], "rb") as src:
            dek, salt = os.urandom(32), os.urandom(32)
            write_header(handle, scheme, ct_map, gt_key, dek, salt, task.chunk)
            seal_payload(dek, salt, task.chunk, src, handle)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return Sealed(item["name"], temp.relative_to(task.out_dir).as_posix())
