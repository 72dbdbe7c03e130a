"""Multi-authority recipes (RW15): authorities, their user keys, and encryption across them.

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
attributes with every date-valued attribute set to the new last day.

>>> hospital, university = Authority.setup("hospitalA"), Authority.setup("university")
>>> keys = [hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"])]
>>> blob = ma_encrypt(b"cohort", "doctor@hospitalA and researcher@university",
...                   [hospital.public_key, university.public_key])
>>> decrypt(blob, keys)
b'cohort'
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

import cbor2

from .api import decrypt
from .derived import check_pair, complete_setup, fingerprint
from .envelope import Progress, seal_stream
from .errors import InvalidKey
from .fileio import write_atomic
from .keys import Key
from .pairing import get_group, group_from_id
from .policy import Policy, parse_attributes
from .register import Register, as_register
from .schemes import RW15, get_scheme

GLOBAL_TYPE = "abe-health/rw15-global"

__all__ = ["Authority", "decrypt", "ma_encrypt", "ma_encrypt_stream", "read_global", "write_global"]


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

    def keygen(self, gid: str, attributes: Iterable[str], *, renewed_from: str | None = None) -> Key:
        """User `gid`'s key for attributes of this authority (`doctor` or `doctor@<name>`;
        an attribute that must expire carries its last day: `emergency = 2026-12-31`), recorded
        in the register when there is one (`renewed_from`: the issuance this key renews)."""
        if self.secret_key is None:
            raise InvalidKey(f"issuing keys needs authority {self.name}'s secret key")
        scheme = self.public_key.scheme
        if not isinstance(scheme, RW15):
            raise InvalidKey(f"an authority runs rw15, not {scheme.name}")
        rec = scheme.keygen(self.public_key.record, self.secret_key.record, gid,
                            parse_attributes(attributes))
        key = Key(scheme, rec)
        if self.register is not None:
            return self.register.record(key, fingerprint(self.public_key), renewed_from)
        if renewed_from is not None:
            raise InvalidKey("a renewal is recorded in the issuance register: give the authority one")
        return key


def _public_keys(authorities: Iterable[Key]) -> dict[str, Key]:
    pks: dict[str, Key] = {}
    for key in authorities:
        if key.kind != "public" or key.scheme.name != "rw15":
            raise InvalidKey(f"expected an authority public key (rw15), got a {key.scheme.name} "
                             f"{key.kind} key")
        name = str(key.record.meta.get("authority"))
        if name in pks:
            raise InvalidKey(f"two public keys for authority {name}")
        pks[name] = key
    if not pks:
        raise InvalidKey("multi-authority encryption needs at least one authority public key")
    if len({k.scheme.group.id for k in pks.values()}) != 1:
        raise InvalidKey("the authorities' public keys are over different groups")
    return pks


def ma_encrypt_stream(src: BinaryIO, dst: BinaryIO, policy: str, authorities: Iterable[Key],
                      progress: Progress | None = None, *, context: bytes = b"") -> None:
    """Encrypt a stream under a policy of `name@authority` attributes (bound to `context`, which
    decryption must repeat: see `abe_health.envelope`)."""
    pks = _public_keys(authorities)
    scheme = next(iter(pks.values())).scheme
    assert isinstance(scheme, RW15)  # _public_keys admits rw15 keys only
    gt_key, ct = scheme.encapsulate({n: k.record for n, k in pks.items()}, Policy.parse(policy))
    seal_stream(scheme, ct, gt_key, src, dst, progress=progress, context=context)


def ma_encrypt(data: bytes, policy: str, authorities: Iterable[Key], *, context: bytes = b"") -> bytes:
    """Encrypt bytes under a multi-authority policy (bound to `context` when given)."""
    out = io.BytesIO()
    ma_encrypt_stream(io.BytesIO(data), out, policy, authorities, context=context)
    return out.getvalue()


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
    return data["group"]
