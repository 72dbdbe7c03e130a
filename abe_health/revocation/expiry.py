"""Renewal of expiring keys: the same attributes, a new `valid_until`."""

from __future__ import annotations

import datetime as dt

from ..api import ABE
from ..errors import InvalidKey
from ..keys import Key
from ..ma import Authority
from ..policy import parse_attribute

EXPIRY = "valid_until"


def renewed_attributes(old: Key, until: dt.date, name: str = EXPIRY) -> list[str]:
    """The old key's attributes with `name = until` in place of any previous value."""
    texts = old.record.meta.get("attributes")
    if old.kind != "user" or not isinstance(texts, list):
        raise InvalidKey("only attribute (CP or multi-authority) user keys can be renewed")
    kept = [t for t in texts if parse_attribute(t).name != name]
    authority = old.record.meta.get("authority")
    return [*kept, f"{name} = {until.isoformat()}" + (f"@{authority}" if authority else "")]


def renew(issuer: ABE | Authority, old: Key, until: dt.date, name: str = EXPIRY) -> Key:
    """A fresh key for the holder of `old`, valid until `until` (the issuer needs its master key)."""
    if until < dt.date.today():
        raise InvalidKey(f"renewal date {until} is in the past")
    attributes = renewed_attributes(old, until, name)
    if isinstance(issuer, Authority):
        if old.record.meta.get("authority") != issuer.name:
            raise InvalidKey(f"this key was issued by {old.record.meta.get('authority')}, not {issuer.name}")
        return issuer.keygen(str(old.record.meta["gid"]), attributes)
    if old.scheme.name != issuer.scheme:
        raise InvalidKey(f"this key is for {old.scheme.name}, the authority runs {issuer.scheme}")
    return issuer.keygen(attributes=attributes)
