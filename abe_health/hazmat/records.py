"""HAZARDOUS MATERIALS: use the typed keys of `abe_health.keys` instead.

Key and ciphertext records as versioned, self-describing CBOR maps (docs/formats.md):
`{"v": 2, "type": "abe-health/<kind>", "scheme", "group", "kind", "parts", "meta"}`. Decoding
checks every field and every group element, so a record of the wrong kind, scheme or group is
refused with a readable message, never half-used.
"""

from __future__ import annotations

from typing import Any

from ..errors import BackendUnavailable, InvalidCiphertext, InvalidKey
from .schemes import Record, SchemeBase, decode_record, get_scheme, group_of

VERSION = 2
PROTECTED = "abe-health/protected-key"
#: what a version-1 record (abe-health 0.1) gets told
V1_MESSAGE = ("this is a version-1 key (abe-health 0.1); version 2 changed numeric attributes, "
              "issuance records and authority keys (see docs/security.md): authorities run setup "
              "again and re-issue user keys")


def to_map(scheme: SchemeBase, rec: Record) -> dict[str, Any]:
    """The versioned CBOR-ready map of a record."""
    return {"v": VERSION, "type": f"abe-health/{rec.kind}", **scheme.encode(rec)}


def from_map(data: Any) -> tuple[SchemeBase, Record]:
    """Validate and decode a record map (any kind)."""
    if not isinstance(data, dict):
        raise InvalidKey("not an abe-health key or ciphertext (expected a CBOR map)")
    if data.get("type") == PROTECTED:
        raise InvalidKey("this key is protected by a passphrase; give the passphrase to load it")
    if data.get("v") == 1:
        raise InvalidKey(V1_MESSAGE)
    if data.get("v") != VERSION:
        raise InvalidKey(f"unsupported format version {data.get('v')!r} (this is version {VERSION})")
    if data.get("type") != f"abe-health/{data.get('kind')}":
        raise InvalidKey("not an abe-health key or ciphertext (type field missing or inconsistent)")
    try:
        group = group_of(data)
    except BackendUnavailable as exc:
        error = InvalidCiphertext if data.get("kind") == "ciphertext" else InvalidKey
        raise error(f"cannot open the record's pairing group: {exc}") from None
    scheme = get_scheme(str(data.get("scheme")), group)
    return scheme, decode_record(scheme, data)
