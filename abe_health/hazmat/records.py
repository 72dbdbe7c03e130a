"""HAZARDOUS MATERIALS: use the typed keys of `abe_health.keys` instead.

Key and ciphertext records as versioned, self-describing CBOR maps (docs/formats.md):
`{"v": 2, "type": "abe-health/<kind>", "scheme", "group", "kind", "parts", "meta"}`. Decoding
checks every field and every group element, so a record of the wrong kind, scheme or group is
refused with a readable message, never half-used.

The `meta` map (the record's non-group fields) is checked here against one schema before any
scheme, recipient or message reads it: each known field has its type and size (`widths` a map
of names to 1..64, `pk` a short text, `vk` 32 bytes, `attributes` a list of texts, ...), so a
hostile key or header cannot reach later code with a float where a map is expected or with a
4,000-digit integer that fails when printed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import BackendUnavailable, InvalidCiphertext, InvalidKey
from .schemes import Record, SchemeBase, decode_record, get_scheme, group_of

VERSION = 2
PROTECTED = "abe-health/protected-key"
#: what a version-1 record (abe-health 0.1) gets told
V1_MESSAGE = ("this is a version-1 key (abe-health 0.1); version 2 changed numeric attributes, "
              "issuance records and authority keys (see docs/security.md): authorities run setup "
              "again and re-issue user keys")


#: the longest text a metadata field may hold (policies are bounded again by the parser)
MAX_META_TEXT = 1 << 20
#: the most items of a metadata list (attributes, authorities) or of `widths`
MAX_META_ITEMS = 4096


def _text(limit: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and len(v) <= limit


def _texts(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= MAX_META_ITEMS and all(
        isinstance(x, str) and len(x) <= MAX_META_TEXT for x in v)


def _widths(v: Any) -> bool:
    return isinstance(v, dict) and len(v) <= MAX_META_ITEMS and all(
        isinstance(k, str) and len(k) <= 256 and type(b) is int and 1 <= b <= 64 for k, b in v.items())


#: what each known metadata field must be (unknown fields only need a text name)
META_SCHEMA: dict[str, Callable[[Any], bool]] = {
    "pk": _text(128),
    "authority": _text(1024),
    "gid": _text(MAX_META_TEXT),
    "iid": _text(128),
    "policy": _text(MAX_META_TEXT),
    "attributes": _texts,
    "authorities": _texts,
    "widths": _widths,
    "vk": lambda v: isinstance(v, bytes) and len(v) == 32,
    "public": lambda v: isinstance(v, dict),
}


def check_meta(meta: Any, error: type[InvalidKey] | type[InvalidCiphertext]) -> None:
    """Refuse metadata that is not a map of text names, or whose known fields have the wrong
    type or size (`error` names what kind of record it was)."""
    if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
        raise error("record metadata must be a map of text names")
    for name, valid in META_SCHEMA.items():
        if name in meta and not valid(meta[name]):
            raise error(f"record metadata field {name!r} is malformed")


def to_map(scheme: SchemeBase, rec: Record) -> dict[str, Any]:
    """The versioned CBOR-ready map of a record."""
    return {"v": VERSION, "type": f"abe-health/{rec.kind}", **scheme.encode(rec)}


def _echo(value: Any) -> str:
    """A field's value for an error message: short texts and small integers only (a hostile
    4,000-digit integer cannot even be printed)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int) and -(10**9) < value < 10**9:
        return repr(value)
    if isinstance(value, str) and len(value) <= 64:
        return repr(value)
    return f"<{type(value).__name__}>"


def from_map(data: Any) -> tuple[SchemeBase, Record]:
    """Validate and decode a record map (any kind): the envelope fields, the metadata schema,
    then the scheme's parts (every group element)."""
    if not isinstance(data, dict):
        raise InvalidKey("not an abe-health key or ciphertext (expected a CBOR map)")
    if data.get("type") == PROTECTED:
        raise InvalidKey("this key is protected by a passphrase; give the passphrase to load it")
    if data.get("v") == 1:
        raise InvalidKey(V1_MESSAGE)
    if data.get("v") != VERSION:
        raise InvalidKey(f"unsupported format version {_echo(data.get('v'))} (this is version {VERSION})")
    kind = data.get("kind")
    if not isinstance(kind, str) or data.get("type") != f"abe-health/{kind}":
        raise InvalidKey("not an abe-health key or ciphertext (type field missing or inconsistent)")
    error = InvalidCiphertext if kind == "ciphertext" else InvalidKey
    scheme_name = data.get("scheme")
    if not isinstance(scheme_name, str) or not isinstance(data.get("group"), str):
        raise error("record names no scheme or no pairing group")
    if len(scheme_name) > 64 or len(data["group"]) > 256:
        raise error("record names an unknown scheme or pairing group")
    check_meta(data.get("meta", {}), error)
    try:
        group = group_of(data)
    except BackendUnavailable as exc:
        raise error(f"cannot open the record's pairing group: {exc}") from None
    scheme = get_scheme(scheme_name, group)
    rec = decode_record(scheme, data)
    check_components(rec, error)
    return scheme, rec


def check_components(rec: Record, error: type[InvalidKey] | type[InvalidCiphertext]) -> None:
    """Refuse a record whose label-keyed parts do not cover the same labels (in every scheme,
    the maps of one record, such as RW15's K and K' or BSW07's D_j and D'_j, hold one entry per
    attribute each): a scheme may then index one by the other's labels."""
    maps = [set(part) for part in rec.parts.values() if isinstance(part, dict)]
    if any(labels != maps[0] for labels in maps[1:]):
        raise error(f"malformed {rec.kind}: its component maps name different attributes")
