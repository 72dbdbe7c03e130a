"""Renewal of expiring keys: what the authority's register says it issued, with a new last day.

A key file's metadata is the holder's to edit, so renewal never reads it: the presented key is
found in the authority's issuance register (`abe_health.register`) by the digest of its group
elements, and the register's attributes (and, for multi-authority keys, GID) are issued again.
A key the register does not know, whose issuance was withdrawn, or that was already renewed is
refused (`NotRenewable`), as is a key file whose metadata contradicts the register.

- CP schemes (FAME, BSW07, Waters11): the key-wide `valid_until = DATE` is replaced (or added).
  A CP key's components share the key's randomness, so they cannot be mixed with another key's.
- RW15: attributes of one GID accumulate across issuances, so expiry lives in the attributes
  themselves (`emergency = DATE`, see `abe_health.ma`); every date-valued attribute of the
  issuance gets the new date. An issuance without one has nothing to renew.
"""

from __future__ import annotations

import datetime as dt

from ..authority import ABE
from ..derived import fingerprint
from ..errors import InvalidKey
from ..keys import Key
from ..ma import Authority
from ..policy import Attribute, is_internal, parse_attribute
from ..register import Issuance, NotRenewable, dated_attributes

EXPIRY = "valid_until"


def renewed_attributes(issuance: Issuance, until: dt.date, name: str = EXPIRY) -> list[str]:
    """The attributes of a renewal of `issuance`: RW15 (an issuance with a GID) gets every
    date-valued attribute set to `until`; CP schemes get `name = until` in place of any
    previous value. Read from the register's row, never from a key file."""
    if issuance.attributes is None:
        raise NotRenewable(f"issuance {issuance.iid} is a key policy (KP-ABE): only attribute "
                           "keys (CP or multi-authority) are renewed")
    day = until.isoformat()
    if any(is_internal(parse_attribute(t, internal=True)) for t in issuance.attributes):
        raise NotRenewable(f"issuance {issuance.iid} holds revocation epochs: it is re-issued by the "
                           "vault whose versions it carries, not renewed")
    if issuance.gid is not None:
        if not dated_attributes(issuance.attributes):
            raise NotRenewable(f"issuance {issuance.iid} holds no dated attribute (such as "
                               "'emergency = DATE'): there is nothing to renew")
        out = []
        for text in issuance.attributes:
            if dated_attributes([text]):
                attr = parse_attribute(text)
                text = str(Attribute(attr.name, day, attr.authority))
            out.append(text)
        return out
    kept = [t for t in issuance.attributes if parse_attribute(t).name != name]
    return [*kept, f"{name} = {day}"]


def renew(issuer: ABE | Authority, old: Key, until: dt.date, name: str = EXPIRY) -> Key:
    """A fresh key for the holder of `old`, valid until `until`. The issuer needs its master key
    and its issuance register; the new key is appended to the register as renewing the old one,
    which is renewed at most once."""
    if until < dt.date.today():
        raise InvalidKey(f"renewal date {until} is in the past")
    if issuer.register is None:
        raise InvalidKey("renewal needs the authority's issuance register (it holds what was "
                         "issued; a key file's own metadata is not trusted)")
    if old.kind != "user":
        raise InvalidKey(f"only user keys are renewed, not {old.kind} keys")
    issuance = issuer.register.renewable(old, fingerprint(issuer.public_key))
    attributes = renewed_attributes(issuance, until, name)
    if isinstance(issuer, Authority):
        if old.record.meta.get("authority", issuer.name) != issuer.name:
            raise NotRenewable(f"the key file was edited: it names another authority than {issuer.name}")
        if issuance.gid is None:
            raise NotRenewable(f"issuance {issuance.iid} is not a multi-authority key")
        return issuer.keygen(issuance.gid, attributes, renewed_from=issuance.iid)
    if issuance.gid is not None:
        raise NotRenewable(f"issuance {issuance.iid} is a multi-authority key")
    return issuer.keygen(attributes=attributes, renewed_from=issuance.iid)
