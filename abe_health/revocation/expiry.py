"""Renewal of expiring keys: what the authority's register says it issued, with a new last day.

A key file's metadata is the holder's to edit, so renewal never reads it: the presented key is
found in the authority's issuance register (`abe_health.register`) by the digest of its group
elements, and the register's attributes (and, for multi-authority keys, GID) are issued again.
A key the register does not know, whose issuance was withdrawn, or that was already renewed is
refused (`NotRenewable`), as is a key file whose metadata contradicts the register.

What moves is what the authority recorded as expiring when it issued the key, never a guess
from the values (a guess re-dated `born = 1980-04-02` too, and so widened the key: break F3):

- CP schemes (FAME, BSW07, Waters11): only the key-wide `valid_until = DATE` is replaced (or
  added, which only narrows a key that had none); every other attribute, dated or not, is
  issued as before. A CP key's components share the key's randomness, so they cannot be mixed
  with another key's, and one key-wide last day is sound.
- RW15: attributes of one GID accumulate across issuances, so expiry lives in the attributes
  themselves (`emergency = DATE`, see `abe_health.ma`), and the authority names them at
  issuance (`Authority.keygen(..., expiring=["emergency"])`). Exactly those get the new date;
  the renewal records the same expiring attributes. An issuance with none, or one recorded
  before the register kept them (register schema 1), is refused: nothing says what may move.
"""

from __future__ import annotations

import datetime as dt

from ..authority import ABE
from ..derived import fingerprint
from ..errors import InvalidKey
from ..keys import Key
from ..ma import Authority
from ..policy import Attribute, is_internal, parse_attribute
from ..register import VALID_UNTIL, Issuance, NotRenewable, subject_of

#: the key-wide expiry of CP keys (the only attribute a CP renewal changes)
EXPIRY = VALID_UNTIL


def renewed_attributes(issuance: Issuance, until: dt.date) -> list[str]:
    """The attributes of a renewal of `issuance`, read from the register's row (never from a
    key file): RW15 (an issuance with a GID) gets its recorded expiring attributes set to
    `until` and every other attribute exactly as issued; CP schemes get `valid_until = until`
    in place of any previous value and every other attribute as issued."""
    if issuance.attributes is None:
        raise NotRenewable(f"issuance {issuance.iid} is a key policy (KP-ABE): only attribute "
                           "keys (CP or multi-authority) are renewed")
    day = until.isoformat()
    if any(is_internal(parse_attribute(t, internal=True)) for t in issuance.attributes):
        raise NotRenewable(f"issuance {issuance.iid} holds revocation epochs: it is re-issued by the "
                           "vault whose versions it carries, not renewed")
    if issuance.gid is not None:
        if issuance.expiring is None:
            raise NotRenewable(f"issuance {issuance.iid} was recorded before the register kept "
                               "which attributes expire, so nothing says which may move: issue "
                               "a new key naming its expiring attributes and withdraw this one",
                               case="expiring-unrecorded")
        if not issuance.expiring:
            raise NotRenewable(f"issuance {issuance.iid} has no expiring attribute (the authority "
                               "names them when it issues the key): there is nothing to renew",
                               case="no-expiring")
        moving = set(issuance.expiring)
        out = []
        for text in issuance.attributes:
            attr = parse_attribute(text)
            if subject_of(attr) in moving:
                text = str(Attribute(attr.name, day, attr.authority))
            out.append(text)
        return out
    kept = [t for t in issuance.attributes if parse_attribute(t).name != EXPIRY]
    return [*kept, f"{EXPIRY} = {day}"]


def renewal_moves(before: Issuance, after: Issuance) -> list[tuple[str, str | None, str]]:
    """(subject, old date or None, new date) of each attribute a renewal moved, from the two
    register rows (what the authority recorded, for telling the operator)."""
    return [(subject, before.dates.get(subject), after.dates[subject])
            for subject in after.expiring or () if subject in after.dates]


def renew(issuer: ABE | Authority, old: Key, until: dt.date) -> Key:
    """A fresh key for the holder of `old`, valid until `until`. The issuer needs its master key
    and its issuance register; the new key is appended to the register as renewing the old one,
    which is renewed at most once. Only the expiring attributes recorded at issuance move (see
    the module docstring); NotRenewable when there is nothing the register allows to move."""
    if until < dt.date.today():
        raise InvalidKey(f"renewal date {until} is in the past")
    if issuer.register is None:
        raise InvalidKey("renewal needs the authority's issuance register (it holds what was "
                         "issued; a key file's own metadata is not trusted)")
    if old.kind != "user":
        raise InvalidKey(f"only user keys are renewed, not {old.kind} keys")
    issuance = issuer.register.renewable(old, fingerprint(issuer.public_key))
    attributes = renewed_attributes(issuance, until)
    if isinstance(issuer, Authority):
        if old.record.meta.get("authority", issuer.name) != issuer.name:
            raise NotRenewable(f"the key file was edited: it names another authority than {issuer.name}")
        if issuance.gid is None:
            raise NotRenewable(f"issuance {issuance.iid} is not a multi-authority key")
        return issuer.keygen(issuance.gid, attributes, expiring=issuance.expiring or (),
                             renewed_from=issuance.iid)
    if issuance.gid is not None:
        raise NotRenewable(f"issuance {issuance.iid} is a multi-authority key")
    return issuer.keygen(attributes=attributes, renewed_from=issuance.iid)
