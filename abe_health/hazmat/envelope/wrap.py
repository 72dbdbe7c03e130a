"""HAZARDOUS MATERIALS: use `abe_health.encrypt` / `abe_health.decrypt` instead.

The key wrap of an `.abe` header (docs/formats.md): the KEM's GT key keys a KEK that wraps the
file's random data key (DEK).

```
wrap = wsalt (32 random bytes) | nonce (12 random bytes) | AES-256-GCM(KEK, nonce, DEK, aad)
KEK  = HKDF-SHA256(ikm = GT key bytes, salt = wsalt, info = "abe-health/v2/kek" | uint32 len | context)
```
A fresh wrap salt and nonce per header make the KEKs of headers that share one GT key (one
encapsulation per policy in a revocation run) independent; `context` binds a header to where it
belongs (vault file id and generation, PHR record and section).
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ...errors import InvalidCiphertext
from ..pairing import Element

KEK_INFO = b"abe-health/v2/kek"
WSALT = 32
NONCE = 12
TAG = 16
DEK_BYTES = 32
WRAP = WSALT + NONCE + DEK_BYTES + TAG


def _kek(gt_key: Element, wsalt: bytes, context: bytes) -> AESGCM:
    info = KEK_INFO + struct.pack(">I", len(context)) + context
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=wsalt, info=info)
                  .derive(gt_key.to_bytes()))


def wrap_dek(gt_key: Element, dek: bytes, aad: bytes, context: bytes = b"") -> bytes:
    """The DEK wrapped under the GT key, with a fresh wrap salt and nonce."""
    wsalt, nonce = os.urandom(WSALT), os.urandom(NONCE)
    return wsalt + nonce + _kek(gt_key, wsalt, context).encrypt(nonce, dek, aad)


def unwrap_dek(wrap: bytes, gt_key: Element, aad: bytes, context: bytes = b"") -> bytes:
    """The DEK, if `gt_key` is the header's KEM key, the header is intact and it was written for
    `context`; else InvalidCiphertext."""
    wsalt, nonce, sealed = wrap[:WSALT], wrap[WSALT : WSALT + NONCE], wrap[WSALT + NONCE :]
    try:
        return _kek(gt_key, wsalt, context).decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise InvalidCiphertext(
            "cannot decrypt: the header was altered, belongs to another file, "
            "or the key does not match this file"
        ) from None
