"""The vault manifest: the state an authority keeps at the cloud, signed so the cloud cannot edit it.

```
vault.manifest = CBOR {"statement": bytes, "sig": 64 bytes}
statement      = canonical CBOR {"type": "abe-health/vault-manifest", "v": 2, "vault": 16 bytes,
                                 "name": the vault's name, "authority": public-key fingerprint,
                                 "escrow": 32 bytes (X25519), "versions": {label: int >= 1},
                                 "seq": int >= 0}
sig            = Ed25519(authority signing key, "abe-health/v2/vault-manifest\\x00" | statement)
```
Writers verify it against the authority public key they pin (its `vk`, see `abe_health.derived`)
before they trust the escrow key or the attribute versions (a swapped `escrow.pub` or a blanked
version row are refused). A signed manifest can still be replayed: the cloud may serve an older
one, or the manifest of another vault of the same authority. So the manifest names its vault
(the directory name at creation), which writers and the authority check against the vault they
opened; and the authority records every manifest it signs in its own local state
(`AuthorityState`, beside its master key), pins each vault name to its id there, and, when the
cloud serves an older sequence number, uses its own record and signs it again: versions only
move forward.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..derived import fingerprint, signing_key
from ..errors import VaultError
from ..fileio import write_atomic
from ..keys import Key

TYPE = "abe-health/vault-manifest"
DOMAIN = b"abe-health/v2/vault-manifest\x00"
MAX_BYTES = 1 << 20
MAX_VERSION = 1 << 31


@dataclass(frozen=True)
class Manifest:
    """What the authority signed: vault id, its own fingerprint, escrow key, versions, sequence."""

    vault: bytes
    name: str
    authority: str
    escrow: bytes
    versions: Mapping[str, int] = field(default_factory=dict)
    seq: int = 0

    def statement(self) -> bytes:
        return cbor2.dumps({"type": TYPE, "v": 2, "vault": self.vault, "name": self.name,
                            "authority": self.authority, "escrow": self.escrow,
                            "versions": dict(self.versions), "seq": self.seq}, canonical=True)

    def signed(self, master_key: Key) -> bytes:
        """The manifest file's bytes, signed with the authority's key derived from `master_key`."""
        statement = self.statement()
        return cbor2.dumps({"statement": statement,
                            "sig": signing_key(master_key).sign(DOMAIN + statement)})

    def bump(self, label: str) -> Manifest:
        """The next manifest, with `label` one version further."""
        versions = {**self.versions, label: self.versions.get(label, 0) + 1}
        return Manifest(self.vault, self.name, self.authority, self.escrow, versions, self.seq + 1)


def _statement(data: Any) -> Manifest:
    """Decode a statement's fields, refusing any wrong type or range."""
    if not isinstance(data, dict) or data.get("type") != TYPE or data.get("v") != 2:
        raise VaultError("vault manifest: not a version-2 manifest statement")
    vault, authority, escrow = data.get("vault"), data.get("authority"), data.get("escrow")
    versions, seq, name = data.get("versions"), data.get("seq"), data.get("name")
    if not (isinstance(vault, bytes) and len(vault) == 16 and isinstance(authority, str)
            and isinstance(name, str) and 0 < len(name) <= 255
            and isinstance(escrow, bytes) and len(escrow) == 32 and isinstance(seq, int)
            and 0 <= seq < MAX_VERSION and isinstance(versions, dict)
            and all(isinstance(k, str) and isinstance(v, int) and 1 <= v < MAX_VERSION
                    for k, v in versions.items())):
        raise VaultError("vault manifest: malformed fields")
    return Manifest(vault, name, authority, escrow, dict(versions), seq)


def parse(raw: bytes, public_key: Key) -> Manifest:
    """Verify a manifest file against the pinned authority public key and decode it."""
    if len(raw) > MAX_BYTES:
        raise VaultError("vault manifest is too large")
    try:
        outer = cbor2.loads(raw)
    except Exception:  # cbor2 raises several error types for garbage
        raise VaultError("vault manifest is not CBOR") from None
    if not isinstance(outer, dict) or not isinstance(outer.get("statement"), bytes) \
            or not isinstance(outer.get("sig"), bytes):
        raise VaultError("vault manifest: expected a signed statement")
    vk = public_key.record.meta.get("vk")
    if not isinstance(vk, bytes) or len(vk) != 32:
        raise VaultError("the authority public key carries no verify key (vk)")
    try:
        Ed25519PublicKey.from_public_bytes(vk).verify(outer["sig"], DOMAIN + outer["statement"])
    except (InvalidSignature, ValueError):
        raise VaultError("vault manifest: the signature does not verify under the pinned "
                         "authority key (the stored manifest was altered or replaced)") from None
    try:
        manifest = _statement(cbor2.loads(outer["statement"]))
    except VaultError:
        raise
    except Exception:  # cbor2 decoding errors
        raise VaultError("vault manifest: malformed statement") from None
    if manifest.authority != fingerprint(public_key):
        raise VaultError(f"vault manifest belongs to authority {manifest.authority}, "
                         f"not {fingerprint(public_key)}")
    return manifest


def write(path: Path, manifest: Manifest, master_key: Key) -> None:
    write_atomic(path, manifest.signed(master_key))


class AuthorityState:
    """The authority's own record of the newest manifest it signed per vault (local, trusted).

    A table `vault_versions` in a SQLite file the authority keeps beside its master key (its
    issuance register's database); only ever moved forward.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("CREATE TABLE IF NOT EXISTS vault_versions (vault BLOB PRIMARY KEY, "
                            "seq INTEGER NOT NULL, statement BLOB NOT NULL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS vault_names (name TEXT PRIMARY KEY, "
                            "vault BLOB NOT NULL)")
        except sqlite3.Error as exc:
            raise VaultError(f"{self.path}: cannot open the authority state: {exc}") from None

    def latest(self, vault: bytes) -> Manifest | None:
        try:
            row = self.db.execute("SELECT statement FROM vault_versions WHERE vault = ?",
                                  (vault,)).fetchone()
        except sqlite3.Error as exc:
            raise VaultError(f"{self.path}: {exc}") from None
        if row is None:
            return None
        try:
            return _statement(cbor2.loads(row[0]))
        except Exception:
            raise VaultError(f"{self.path}: malformed vault record") from None

    def record(self, manifest: Manifest) -> None:
        """Remember `manifest` unless a newer one is already recorded."""
        try:
            with self.db:
                self.db.execute(
                    "INSERT INTO vault_versions VALUES (?, ?, ?) ON CONFLICT(vault) DO UPDATE SET "
                    "seq = excluded.seq, statement = excluded.statement WHERE excluded.seq > seq",
                    (manifest.vault, manifest.seq, manifest.statement()))
        except sqlite3.Error as exc:
            raise VaultError(f"{self.path}: {exc}") from None

    def pin(self, name: str, vault: bytes, replace: bool = False) -> None:
        """Refuse unless `name` is the vault `vault` (pinning it the first time it is seen, or
        always when the authority itself creates the vault: `replace`)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        try:
            with self.db:
                self.db.execute(f"{verb} INTO vault_names VALUES (?, ?)", (name, vault))
                row = self.db.execute("SELECT vault FROM vault_names WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as exc:
            raise VaultError(f"{self.path}: {exc}") from None
        if row[0] != vault:
            raise VaultError(f"the manifest served for vault {name!r} is another vault's (id "
                             f"{vault.hex()}, this authority created {name!r} as {row[0].hex()})")

    def close(self) -> None:
        self.db.close()
