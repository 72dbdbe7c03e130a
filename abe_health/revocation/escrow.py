"""Data-key escrow: writers seal a vault file's data key (DEK) to the authority's escrow key.

HPKE (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM) from
`cryptography`. The HPKE `info` is the canonical CBOR of everything a header rewrite depends on
(vault id, file id, generation, base policy, payload salt and chunk size), so the escrow opens
only for the catalog row it was sealed for: a store that changes any of these in the catalog
(to steer a re-wrap to another policy, for example) makes the escrow fail to open, and the
rewrite of that file is refused. Only a party that knows the DEK (its writer, or a reader who
opened the file) can seal a new escrow for it; such a party could hand out the plaintext anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ..errors import InvalidKey

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
LABEL = "abe-health/v2/vault-escrow"
#: 32-byte encapsulated key + 32-byte DEK + 16-byte tag
SEALED_BYTES = 32 + 32 + 16


def context(fields: Mapping[str, Any]) -> bytes:
    """The HPKE info binding an escrow to its catalog row."""
    return cbor2.dumps({"label": LABEL, **fields}, canonical=True)


def seal(recipient: X25519PublicKey, dek: bytes, fields: Mapping[str, Any]) -> bytes:
    """The DEK sealed to the escrow key, bound to `fields`."""
    return SUITE.encrypt(dek, recipient, info=context(fields))


def open_sealed(private: X25519PrivateKey, sealed: bytes, fields: Mapping[str, Any]) -> bytes:
    """The DEK, if `sealed` was made for exactly these fields; else InvalidKey."""
    try:
        dek = SUITE.decrypt(sealed, private, info=context(fields))
    except Exception:  # cryptography raises InvalidTag or ValueError for altered or foreign input
        dek = b""
    if len(dek) != 32:
        raise InvalidKey(f"file {fields.get('file')}: the data key escrow does not open for this "
                         "catalog row (altered row, or another authority's vault)")
    return dek
