"""The vault: stored `.abe` files split into header and body (files/<id>.<gen>.head and .body),
a catalog (catalog.sqlite), a signed manifest (vault.manifest), and revocation by header
re-encapsulation. Every file the vault holds may be edited by the store (the cloud); what each
party trusts and checks:

- Writers (`add`, `put`) pin the authority's public key. They verify the manifest's signature
  under it (abe_health.derived: `vk`) before using its escrow key and attribute versions, seal
  each file's data key (DEK) to that escrow key bound to the file's catalog row (escrow.py), and
  write its header for the context (vault id, file id, generation): a header or body moved to
  another id or generation does not open.
- The authority (`revoke`, `update_pending`, `issue_key`, `get(..., authority=)`) holds the
  master key. Attribute versions come from the signed manifest, never from the catalog, and its
  own `AuthorityState` stops the store from replaying an older manifest. A header is rewritten
  only after its escrow opens for exactly the row's vault, id, generation, base policy, salt and
  chunk size, so the store cannot steer a re-wrap to another policy.
- Readers need nothing but their key: the context binding refuses swapped files.

Revoking attribute `a` bumps its version N in the manifest: every header whose policy mentions
`a` is rewritten under the same policy with `a` replaced by `(a and <epoch N of a>)`, with the
same DEK, so the body is never read (one encapsulation per policy per run; each header still
gets its own wrap salt and nonce). Eagerly (`revoke`) or lazily (`revoke(lazy=True)`: the files
are rewritten at first read through `get(..., authority=)` or by `update_pending`; until then a
revoked key still opens them). A rewrite does not take back a DEK the revoked reader may already
know (from a header it opened before, or an old header the store kept): `revoke(rotate=True)`
also re-encrypts every affected body under a fresh DEK as a new generation. One bad file (an
altered row, a missing header) is reported in `RevocationReport.failed` and does not stop the
others. Crash safety: files and headers are replaced atomically, a generation switch is one
catalog transaction, and `update_pending` finishes an interrupted run.

Size: this module is the orchestration only (one class, whose methods share the vault's lock,
directory descriptor, catalog and per-run encapsulation cache); its parts with a job of their
own are separate: catalog.py, escrow.py, manifest.py, storedir.py, versions.py.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import datetime as dt
import io
import os
import secrets
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import cbor2
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..authority import ABE
from ..derived import escrow_key, fingerprint
from ..encryption import decrypt
from ..errors import AbeError, InvalidKey, VaultError
from ..hazmat.envelope import (
    CHUNK,
    MAGIC,
    MAX_HEADER,
    WRAP,
    Header,
    open_payload,
    read_header,
    seal_stream,
    write_header,
)
from ..hazmat.pairing import Element
from ..hazmat.records import to_map
from ..hazmat.schemes import Scheme
from ..keys import Key
from ..locks import exclusive
from ..policy import Policy
from ..recipients import PolicyRecipient
from . import escrow
from .catalog import Row, check_id
from .manifest import AuthorityState, Manifest, parse
from .store import LocalStore, VaultStore
from .versions import apply_versions, mentioned, versioned_key_attributes

#: headers rewritten per disk sync
BATCH = 256
CONTEXT_LABEL = "abe-health/v2/vault-file"


@dataclass(frozen=True)
class RevocationReport:
    label: str
    version: int
    files_updated: int
    bytes_written: int
    seconds: float
    failed: list[tuple[str, str]] = field(default_factory=list)


class _Chain:
    """A readable stream over a header file and then a body file."""

    def __init__(self, *parts: BinaryIO) -> None:
        self.parts = list(parts)

    def read(self, n: int = -1) -> bytes:
        out = b""
        while self.parts and (n < 0 or len(out) < n):
            block = self.parts[0].read(-1 if n < 0 else n - len(out))
            if not block:
                self.parts.pop(0)
                continue
            out += block
        return out


class _HeadSplitter:
    """Receives an .abe stream: keeps the header bytes, sends the rest (the body) to `body`."""

    def __init__(self, body: BinaryIO) -> None:
        self.body, self.head, self.body_bytes = body, b"", 0
        self._need: int | None = None

    def write(self, data: bytes) -> int:
        if self._need is None or len(self.head) < self._need:
            self.head += bytes(data)
            if self._need is None and len(self.head) >= 8:
                self._need = 8 + int.from_bytes(self.head[4:8], "big") + WRAP
            if self._need is None or len(self.head) < self._need:
                return len(data)
            extra, self.head = self.head[self._need :], self.head[: self._need]
            data = extra
        self.body.write(data)
        self.body_bytes += len(data)
        return len(data)


def file_context(vault: bytes, file_id: str, gen: int) -> bytes:
    """The envelope context of one generation of one vault file."""
    return cbor2.dumps([CONTEXT_LABEL, vault, file_id, gen], canonical=True)


def _escrow_fields(vault: bytes, row: Row) -> dict[str, Any]:
    return {"vault": vault, "file": row.id, "gen": row.gen, "policy": row.policy,
            "salt": row.salt, "chunk": row.chunk}


def escrow_fields(vault: bytes, row: Row) -> dict[str, Any]:
    """What a file's escrow is bound to (the HPKE info fields): public for `abe_health.bulk`,
    whose workers seal and open escrows exactly as the vault does."""
    return _escrow_fields(vault, row)


def _master(authority: ABE, what: str) -> Key:
    if authority.master_key is None:
        raise InvalidKey(f"{what} needs the authority's master key")
    return authority.master_key


class Vault:
    """A vault: files/, catalog.sqlite and vault.manifest in a directory, or the same objects in
    another store (`store.VaultStore`; `abe_health.cloud` keeps them behind HTTP)."""

    def __init__(self, path: str | os.PathLike[str], create_for: ABE | None = None,
                 state: AuthorityState | None = None, name: str | None = None,
                 store: VaultStore | None = None) -> None:
        """Open a vault; `create_for=authority` (with its master key) creates a new one whose
        escrows only that authority can open. `state` is the authority's own record of the
        manifests it signed: the authority acts on a vault only with it (given here, or the
        database of the authority's issuance register). `name` is the vault's name as its
        manifest records it (default: the directory's name): a manifest of another vault is
        refused. `store` keeps the vault's objects elsewhere than the directory `path` (which
        then only names it); every check below is the same for every store."""
        self.path = Path(path)
        self.store = store if store is not None else LocalStore(self.path)
        self.name = name or self.store.default_name()
        self.files = self.path / "files"
        self.state = state
        self._escrow: X25519PrivateKey | None = None
        self._encaps: dict[str, tuple[Element, dict[str, Any]]] = {}
        if create_for is not None:
            master = _master(create_for, "creating a vault")
            if create_for.public_key.scheme.policy_in != "ciphertext":
                raise InvalidKey("the vault stores files under policies (CP-ABE); "
                                 f"{create_for.scheme} is KP-ABE")
            if self.store.exists():
                raise VaultError(f"{self.store.where} is already a vault")
            state = self._state_of(create_for)
            manifest = Manifest(secrets.token_bytes(16), self.name, fingerprint(create_for.public_key),
                                escrow_key(master).public_key().public_bytes_raw())
            self.store.create(manifest.signed(master))
            state.pin(manifest.name, manifest.vault, replace=True)
            state.record(manifest)
        else:
            self.store.open()
        self.catalog, self.dir = self.store.catalog, self.store.dir

    def close(self) -> None:
        self.store.close()

    # -- trusted state -------------------------------------------------------------------------
    def manifest(self, public_key: Key) -> Manifest:
        """The manifest, verified against the pinned authority public key and this vault's name."""
        manifest = parse(self.store.read_manifest(), public_key)
        if manifest.name != self.name:
            raise VaultError(f"the manifest in {self.store.where} is vault {manifest.name!r}'s, not "
                             f"{self.name!r}'s (another vault's manifest, or a renamed vault: give "
                             "its name)")
        return manifest

    def _state_of(self, authority: ABE) -> AuthorityState:
        """The authority's own state: given to the vault, or its register's database."""
        if self.state is None and authority.register is not None:
            self.state = AuthorityState(authority.register.path)
        if self.state is None:
            raise VaultError("the authority acts on a vault only with its own state (an "
                             "AuthorityState, or an authority with an issuance register), which "
                             "refuses replayed or foreign manifests")
        return self.state

    def _current(self, authority: ABE) -> Manifest:
        """The newest manifest: the store's if it verifies, is this vault's, and is not older
        than the authority's own record (an older one is replaced by the record, signed again)."""
        manifest = self.manifest(authority.public_key)
        if authority.master_key is None:
            return manifest
        state = self._state_of(authority)
        state.pin(manifest.name, manifest.vault)
        known = state.latest(manifest.vault)
        if known is not None and known.seq > manifest.seq:
            self.store.write_manifest(known.signed(authority.master_key))
            return known
        state.record(manifest)
        return manifest

    def versions(self, authority: ABE) -> dict[str, int]:
        return dict(self._current(authority).versions)

    def issue_key(self, authority: ABE, attributes: list[str]) -> Key:
        """A user key holding the current epoch of every versioned attribute it has."""
        master = _master(authority, "issuing keys")
        subject = versioned_key_attributes(authority.attributes(attributes), self.versions(authority))
        scheme = authority.public_key.scheme
        assert isinstance(scheme, Scheme)  # ABE holds single-authority schemes only
        rec = scheme.keygen(authority.public_key.record, master.record, subject)
        rec = type(rec)(rec.scheme, rec.group, rec.kind, rec.parts,
                        {**rec.meta, "pk": fingerprint(authority.public_key)})
        key = Key(authority.public_key.scheme, rec)
        if authority.register is not None:
            key = authority.register.record(key, fingerprint(authority.public_key))
        return key

    # -- paths ---------------------------------------------------------------------------------
    @staticmethod
    def _name(file_id: str, gen: int, part: str) -> str:
        """The stored file name of one part ("head" or "body") of one generation."""
        check_id(file_id)
        return f"{file_id}.{int(gen)}.{part}"

    def _head(self, file_id: str, gen: int | None = None) -> Path:
        """Where a file's current header lives (for inspection; the vault itself uses `dir`)."""
        return self.files / self._name(file_id, self.catalog.row(file_id).gen if gen is None else gen, "head")

    def _body(self, file_id: str, gen: int | None = None) -> Path:
        return self.files / self._name(file_id, self.catalog.row(file_id).gen if gen is None else gen, "body")

    # -- files ---------------------------------------------------------------------------------
    def _write(self, manifest: Manifest, authority: ABE, file_id: str, gen: int, src: BinaryIO,
               base: Policy, name: str, dek: bytes | None = None) -> Row:
        """Encrypt src as generation `gen` (fresh DEK and salt unless a DEK is given)."""
        if authority.public_key.scheme.policy_in != "ciphertext":
            raise InvalidKey("the vault stores files under policies (CP-ABE); "
                             f"{authority.public_key.scheme.name} is KP-ABE")
        scheme, ct, gt_key = PolicyRecipient(authority.public_key,
                                             apply_versions(base, manifest.versions)).encapsulate()
        dek = dek or os.urandom(32)
        with self.dir.atomic(self._name(file_id, gen, "body")) as body:
            tee = _HeadSplitter(body)
            salt = seal_stream(scheme, ct, gt_key, src, tee, dek=dek,
                               context=file_context(manifest.vault, file_id, gen))
        with self.dir.atomic(self._name(file_id, gen, "head")) as out:
            out.write(tee.head)
        row = Row(file_id, name, str(base), tee.body_bytes,
                  dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), salt, CHUNK,
                  b"", gen)
        sealed = escrow.seal(X25519PublicKey.from_public_bytes(manifest.escrow), dek,
                             _escrow_fields(manifest.vault, row))
        return dataclasses.replace(row, escrow=sealed)

    def _writer_manifest(self, authority: ABE) -> Manifest:
        return self._current(authority) if authority.master_key is not None \
            else self.manifest(authority.public_key)

    def add(self, src: BinaryIO, policy: str, authority: ABE, name: str = "") -> str:
        """Store a stream encrypted under `policy` (at the current attribute versions); the body
        streams to disk in constant memory. Returns the new file id."""
        base = authority.policy(policy)
        with self._lock():
            manifest = self._writer_manifest(authority)
            file_id = secrets.token_hex(8)
            self.catalog.insert(self._write(manifest, authority, file_id, 0, src, base, name or file_id))
        return file_id

    def put(self, file_id: str, src: BinaryIO, authority: ABE, policy: str) -> None:
        """Replace a file's content under `policy` (given by the writer, never read from the
        catalog) with a fresh data key: the next generation is written beside the current one
        and becomes current in one catalog transaction, so a crash leaves the old content."""
        base = authority.policy(policy)
        with self._lock():
            manifest = self._writer_manifest(authority)
            old = self.catalog.row(file_id)
            self.catalog.replace(self._write(manifest, authority, file_id, old.gen + 1, src, base, old.name))
            self._remove_generation(old)

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        """The vault's writer lock: writers and revocations run one at a time."""
        if isinstance(self.store, LocalStore):
            return exclusive(self.store.path / ".lock")
        return self.store.lock()

    def _remove_generation(self, row: Row) -> None:
        for part in ("head", "body"):
            self.dir.unlink(self._name(row.id, row.gen, part))

    def list(self) -> list[tuple[str, str, str, int]]:
        """(id, name, base policy as the catalog says, body bytes) of every well-formed row."""
        return [(r.id, r.name, r.policy, r.body_bytes) for r in self.catalog.rows() if isinstance(r, Row)]

    def _header_policy(self, row: Row) -> str | None:
        """The policy text a stored header carries (read without decoding group elements)."""
        try:
            with self.dir.open_read(self._name(row.id, row.gen, "head")) as head:
                prefix = head.read(8)
                (length,) = struct.unpack(">I", prefix[4:8]) if len(prefix) == 8 else (0,)
                if prefix[:4] != MAGIC or length > MAX_HEADER:
                    return None
                core = cbor2.loads(head.read(length))
            policy = core["ct"]["meta"]["policy"]
        except (VaultError, OSError, KeyError, TypeError, ValueError, cbor2.CBORDecodeError):
            return None
        return policy if isinstance(policy, str) else None

    def _target(self, authority: ABE, row: Row, versions: dict[str, int]) -> Policy:
        return apply_versions(authority.policy(row.policy), versions)

    def pending(self, authority: ABE, label: str | None = None) -> builtins.list[str]:
        """Files whose stored header is not at the current versions of the attributes it
        mentions (decided from the headers themselves, not from catalog bookkeeping)."""
        versions = self.versions(authority)
        out = []
        for row in self.catalog.rows():
            if not isinstance(row, Row):
                continue
            try:
                base = authority.policy(row.policy)
            except AbeError:
                continue
            if label is not None and label not in mentioned(base):
                continue
            if self._header_policy(row) != str(apply_versions(base, versions)):
                out.append(row.id)
        return out

    def get(self, file_id: str, key: Key | builtins.list[Key], dst: BinaryIO,
            authority: ABE | None = None) -> Header:
        """Decrypt a stored file into dst; with `authority`, a pending header is rewritten first."""
        if authority is not None and authority.master_key is not None and file_id in self.pending(authority):
            with self._lock():
                self._update(authority, [file_id], self._current(authority))
        row = self.catalog.row(file_id)
        with self.dir.open_read(self._name(row.id, row.gen, "head")) as head, \
                self.dir.open_read(self._name(row.id, row.gen, "body")) as body:
            src = _Chain(head, body)
            vault = self._vault_id(row)
            keys = key if isinstance(key, list) else [key]
            return decrypt(cast(BinaryIO, src), dst, *keys, context=file_context(vault, row.id, row.gen))

    def _vault_id(self, row: Row) -> bytes:
        """The vault id a reader binds to (unverified: a wrong one only makes reading fail)."""
        try:
            outer = cbor2.loads(self.store.read_manifest())
            vault = cbor2.loads(outer["statement"])["vault"]
        except Exception:  # any malformed manifest: reading this vault is impossible
            raise VaultError(f"{self.store.where}: unreadable vault.manifest") from None
        if not isinstance(vault, bytes):
            raise VaultError(f"{self.store.where}: unreadable vault.manifest")
        return vault

    # -- revocation ----------------------------------------------------------------------------
    def _dek(self, authority: ABE, manifest: Manifest, row: Row) -> bytes:
        if self._escrow is None:
            self._escrow = escrow_key(_master(authority, "opening escrows"))
        return escrow.open_sealed(self._escrow, row.escrow, _escrow_fields(manifest.vault, row))

    def _new_head(self, authority: ABE, manifest: Manifest, file_id: str) -> bytes:
        """A file's header at the manifest's versions, after its row is authenticated."""
        row = self.catalog.row(file_id)
        dek = self._dek(authority, manifest, row)
        target = self._target(authority, row, dict(manifest.versions))
        scheme = authority.public_key.scheme
        text = str(target)
        if text not in self._encaps:  # one encapsulation per policy and revocation run
            _, ct, gt_key = PolicyRecipient(authority.public_key, target).encapsulate()
            self._encaps[text] = (gt_key, to_map(scheme, ct))
        gt_key, ct_map = self._encaps[text]
        head = io.BytesIO()
        write_header(head, scheme, ct_map, gt_key, dek, row.salt, row.chunk,
                     file_context(manifest.vault, row.id, row.gen))
        return head.getvalue()

    def _update(self, authority: ABE, file_ids: builtins.list[str], manifest: Manifest
                ) -> tuple[int, builtins.list[str], builtins.list[tuple[str, str]]]:
        """Rewrite headers in batches (one sync per batch, then a rename each):
        (bytes written, ids rewritten, [(id, why)] of files that failed)."""
        written, done, failed = 0, [], []
        for start in range(0, len(file_ids), BATCH):
            batch = []
            for file_id in file_ids[start : start + BATCH]:
                try:
                    name = self._name(file_id, self.catalog.row(file_id).gen, "head")
                    batch.append((name, self._new_head(authority, manifest, file_id), file_id))
                except AbeError as exc:
                    failed.append((file_id, str(exc)))
            switched, error = self.dir.replace_all([(name, head) for name, head, _ in batch])
            replaced = set(switched)
            for name, head, file_id in batch:
                if name in replaced:
                    written += len(head)
                    done.append(file_id)
                else:
                    failed.append((file_id, f"cannot write its header: {error or 'not replaced'}"))
        return written, done, failed

    def _rotate(self, authority: ABE, manifest: Manifest, file_id: str) -> int:
        """Re-encrypt a file's body under a fresh DEK as its next generation; returns bytes written."""
        old = self.catalog.row(file_id)
        dek = self._dek(authority, manifest, old)
        with self.dir.open_read(self._name(old.id, old.gen, "head")) as head:
            header = read_header(head)
        read_fd, write_fd = os.pipe()
        failure: list[BaseException] = []

        def decrypt_into_pipe() -> None:
            try:
                with self.dir.open_read(self._name(old.id, old.gen, "body")) as body, \
                        os.fdopen(write_fd, "wb") as sink:
                    open_payload(header, dek, body, sink)
            except BaseException as exc:  # reported to the writer below, never swallowed
                failure.append(exc)

        worker = threading.Thread(target=decrypt_into_pipe, daemon=True)
        worker.start()
        try:
            with os.fdopen(read_fd, "rb") as plain:
                new = self._write(manifest, authority, old.id, old.gen + 1, plain,
                                  authority.policy(old.policy), old.name)
        finally:
            worker.join()
        if failure:
            self._remove_generation(new)
            raise failure[0] if isinstance(failure[0], AbeError) else VaultError(
                f"file {file_id}: cannot re-encrypt: {failure[0]}")
        self.catalog.replace(new)
        self._remove_generation(old)
        return new.body_bytes

    def revoke(self, label: str, authority: ABE, lazy: bool = False, rotate: bool = False
               ) -> RevocationReport:
        """Bump `label`'s version in the signed manifest; rewrite (or, lazily, leave for first
        read) every header that mentions it. With `rotate`, every affected body is also
        re-encrypted now under a fresh data key (what a revoked reader may know stops working)."""
        master = _master(authority, "revocation")
        label = str(authority.attributes([label]).attributes[0].label)
        with self._lock():
            return self._revoke(label, authority, master, lazy, rotate)

    def _revoke(self, label: str, authority: ABE, master: Key, lazy: bool, rotate: bool
                ) -> RevocationReport:
        start = time.perf_counter()
        self._encaps.clear()  # a revocation never reuses an encapsulation from before it
        manifest = self._current(authority).bump(label)
        self.store.write_manifest(manifest.signed(master))
        self._state_of(authority).record(manifest)
        affected, failed = self._mentioning(authority, label)
        written, done = 0, []
        if rotate:
            for file_id in affected:
                try:
                    written += self._rotate(authority, manifest, file_id)
                    done.append(file_id)
                except AbeError as exc:
                    failed.append((file_id, str(exc)))
        elif not lazy:
            written, done, more = self._update(authority, affected, manifest)
            failed += more
        return RevocationReport(label, manifest.versions[label], len(done), written,
                                time.perf_counter() - start, failed)

    def _mentioning(self, authority: ABE, label: str
                    ) -> tuple[builtins.list[str], builtins.list[tuple[str, str]]]:
        """Ids of the files whose base policy mentions `label`, and the rows that could not be
        read (reported, never silently skipped)."""
        out, bad = [], []
        for row in self.catalog.rows():
            if not isinstance(row, Row):
                bad.append(("?", str(row)))
                continue
            try:
                if label in mentioned(authority.policy(row.policy)):
                    out.append(row.id)
            except AbeError as exc:
                bad.append((row.id, str(exc)))
        return out, bad

    def update_pending(self, authority: ABE) -> Iterator[str]:
        """Rewrite every header behind the current versions (resumes an interrupted revocation);
        yields the ids rewritten. Files that fail are in `self.last_failures`."""
        _master(authority, "re-encapsulating headers")
        manifest = self._current(authority)
        pending = self.pending(authority)
        self.last_failures: list[tuple[str, str]] = []
        for start in range(0, len(pending), BATCH):
            with self._lock():
                _, done, failed = self._update(authority, pending[start : start + BATCH], manifest)
            self.last_failures.extend(failed)
            yield from done
