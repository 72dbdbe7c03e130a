"""Multi-authority recipes (RW15): authorities and their user keys (encrypt across them with a
`MultiAuthorityRecipient`).

Expiry in RW15. The attributes one authority issues to one GID accumulate: RW15 ties a key's
components together only through H(GID) (each attribute has its own fresh randomness), so
components from two issuances to the same GID combine, by design, like facts about the GID. A
key-wide `valid_until` attribute therefore cannot limit the other attributes of its issuance (an
expired `emergency` key plus any fresh key of the same GID holding a later `valid_until` would
satisfy `emergency and valid_until >= TODAY`). So an attribute that must expire carries its own
last day as its value: the emergency authority issues `emergency = 2026-12-31`, and policies test
it with one comparison on that one attribute, `emergency >= 2026-12-01@ER`. Numeric attributes
are prefix labels (`abe_health.policy.numeric`): each certifies an interval that contains the
key's value, so the values of an old and a renewed issuance never combine into a later date than
either holds. Keygen refuses a bare `valid_until` attribute; `renew` re-issues the register's
attributes with exactly those named `expiring` at keygen set to the new last day, and every
other attribute, dated or not, as issued.

>>> hospital, university = Authority.setup("hospitalA"), Authority.setup("university")
>>> keys = [hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"])]
>>> from abe_health import MultiAuthorityRecipient, decrypt, encrypt
>>> cohort = MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
...                                  [hospital.public_key, university.public_key])
>>> blob = encrypt(b"cohort", None, cohort)
>>> decrypt(blob, None, *keys)
b'cohort'
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

import cbor2

from .derived import check_pair, complete_setup, fingerprint
from .errors import InvalidKey
from .fileio import write_atomic
from .hazmat.pairing import get_group, group_from_id
from .hazmat.schemes import RW15, get_scheme
from .keys import Key
from .policy import parse_attributes
from .register import Register, as_register, expiring_subjects

GLOBAL_TYPE = "abe-health/rw15-global"

__all__ = ["Authority", "read_global", "write_global"]


@dataclass(frozen=True)
class Authority:
    """One authority (a hospital, university, insurer, the patient, the emergency service).

    With `register` (an issuance register, or its path), every key issued is recorded there and
    carries its issuance id (`iid`); renewal needs it.
    """

    public_key: Key
    secret_key: Key | None = None
    register: Register | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return str(self.public_key.record.meta["authority"])

    @classmethod
    def setup(cls, name: str, backend: str = "mcl", group_id: str | None = None,
              register: Register | str | os.PathLike[str] | None = None) -> Authority:
        """A new authority; needs no coordination with any other."""
        group = group_from_id(group_id) if group_id else get_group(backend)
        scheme = get_scheme("rw15", group)
        pk, sk = scheme.authority_setup(name)
        return cls(*complete_setup(Key(scheme, pk), Key(scheme, sk)), register=as_register(register))

    def __post_init__(self) -> None:
        if self.secret_key is not None:
            check_pair(self.public_key, self.secret_key)
        if self.register is not None and not isinstance(self.register, Register):
            object.__setattr__(self, "register", as_register(self.register))

    def keygen(self, gid: str, attributes: Iterable[str], *, expiring: Iterable[str] = (),
               renewed_from: str | None = None) -> Key:
        """User `gid`'s key for attributes of this authority (`doctor` or `doctor@<name>`),
        recorded in the register when there is one (`renewed_from`: the issuance this key
        renews).

        `expiring` names the attributes that expire (`["emergency"]` with the attribute
        `emergency = 2026-12-31`): each must be issued with a date value, its last day, and
        renewal moves exactly these to the new day. The authority decides this here because a
        date value alone does not say it: `born = 1980-04-02` is a fact that renewal must keep.
        A name that is not an attribute of the key, or whose attribute has no date value, is
        refused (InvalidKey) and nothing is issued."""
        if self.secret_key is None:
            raise InvalidKey(f"issuing keys needs authority {self.name}'s secret key")
        scheme = self.public_key.scheme
        if not isinstance(scheme, RW15):
            raise InvalidKey(f"an authority runs rw15, not {scheme.name}")
        rec = scheme.keygen(self.public_key.record, self.secret_key.record, gid,
                            parse_attributes(attributes))
        # checked against the canonical attributes the scheme issued, before anything is recorded
        names = expiring_subjects(rec.meta["attributes"], expiring, self.name)
        key = Key(scheme, rec)
        if self.register is not None:
            return self.register.record(key, fingerprint(self.public_key), renewed_from,
                                        expiring=names)
        if renewed_from is not None:
            raise InvalidKey("a renewal is recorded in the issuance register: give the authority one")
        return key


def write_global(path: str | os.PathLike[str], group_id: str) -> None:
    """The global parameters every authority of a deployment shares: just the group (no secret)."""
    write_atomic(path, cbor2.dumps({"v": 1, "type": GLOBAL_TYPE, "scheme": "rw15", "group": group_id}))


def read_global(path: str | os.PathLike[str]) -> str:
    """The group id recorded in a global parameters file."""
    try:
        data = cbor2.loads(open(path, "rb").read())
    except OSError as exc:
        raise InvalidKey(f"cannot read global parameters {path}: {exc.strerror}") from None
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidKey(f"{path} is not a global parameters file") from None
    if not isinstance(data, dict) or data.get("type") != GLOBAL_TYPE \
            or not isinstance(data.get("group"), str):
        raise InvalidKey(f"{path} is not a global parameters file")
    return str(data["group"])
