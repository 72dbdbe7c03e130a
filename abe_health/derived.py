"""Keys an authority derives from its master key, and the fingerprint that pins a public key.

An authority holds one secret, its master key; everything else it needs is derived from it with
HKDF under a versioned label, so nothing more must be stored or backed up:
- an Ed25519 signing key, whose public half (`vk`) is part of the authority's public key and so
  pinned with it: the authority signs the state the cloud keeps for it (vault manifests);
- an X25519 escrow key, to which writers seal the data keys of vault files (revocation).
The fingerprint of a public key hashes its whole canonical record (group elements and metadata,
`vk` and numeric widths included), so pinning the fingerprint pins everything in the key.
"""

from __future__ import annotations

import dataclasses
import hashlib

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import InvalidKey
from .hazmat.records import from_map, to_map
from .keys import Key

LABEL = "abe-health/v2/derived/"


def fingerprint(public_key: Key) -> str:
    """A short id of a public key (16 hex digits of SHA-256 over its canonical record)."""
    if public_key.kind != "public":
        raise InvalidKey(f"fingerprints are of public keys, not {public_key.kind} keys")
    encoded = cbor2.dumps(to_map(public_key.scheme, public_key.record), canonical=True)
    return hashlib.sha256(b"abe-health/v2/fingerprint\x00" + encoded).hexdigest()[:16]


def master_secret(master_key: Key, label: str) -> bytes:
    """32 bytes derived from the master key's secret parts for one purpose `label`."""
    if master_key.kind != "master":
        raise InvalidKey(f"this needs the authority's master key, not a {master_key.kind} key")
    parts = cbor2.dumps(to_map(master_key.scheme, master_key.record)["parts"], canonical=True)
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=(LABEL + label).encode()).derive(parts)


def signing_key(master_key: Key) -> Ed25519PrivateKey:
    """The authority's Ed25519 signing key (its public half is `vk` in the public key)."""
    return Ed25519PrivateKey.from_private_bytes(master_secret(master_key, "signing"))


def escrow_key(master_key: Key) -> X25519PrivateKey:
    """The authority's X25519 escrow key: writers seal vault data keys to its public half."""
    return X25519PrivateKey.from_private_bytes(master_secret(master_key, "escrow"))


def verify_key_bytes(master_key: Key) -> bytes:
    """The raw public half of `signing_key`: what setup puts into the public key as `vk`."""
    return signing_key(master_key).public_key().public_bytes_raw()


def complete_setup(public: Key, master: Key) -> tuple[Key, Key]:
    """A fresh (public, master) pair made whole: `vk` into the public key, and the public key
    (its whole record, and its fingerprint) into the master key, so that the master key alone
    gives its public key (`public_of`) and a mismatched pair is refused (`check_pair`)."""
    pk = dataclasses.replace(public.record, meta={**public.record.meta, "vk": verify_key_bytes(master)})
    public = Key(public.scheme, pk)
    msk = dataclasses.replace(master.record, meta={**master.record.meta, "pk": fingerprint(public),
                                                   "public": to_map(public.scheme, public.record)})
    return public, Key(master.scheme, msk)


def public_of(master: Key) -> Key:
    """The public key a master key carries, checked to be its own."""
    embedded = master.record.meta.get("public")
    if master.kind != "master" or not isinstance(embedded, dict):
        raise InvalidKey("this master key does not carry its public key")
    scheme, rec = from_map(embedded)
    if rec.kind != "public":
        raise InvalidKey("this master key carries a malformed public key")
    public = Key(scheme, rec)
    check_pair(public, master)
    return public


def check_pair(public: Key, master: Key) -> None:
    """Refuse a master key that does not belong to `public` (InvalidKey naming both)."""
    if master.kind != "master" or master.scheme.name != public.scheme.name \
            or master.scheme.group.id != public.scheme.group.id:
        raise InvalidKey("the master key does not belong to this public key's scheme")
    mine = fingerprint(public)
    if master.record.meta.get("pk") != mine or public.record.meta.get("vk") != verify_key_bytes(master):
        raise InvalidKey(f"the master key does not belong to public key {mine} "
                         f"(it was made with public key {master.record.meta.get('pk')})")
