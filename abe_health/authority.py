"""Single-authority recipes: set up a CP-ABE or KP-ABE authority and issue user keys.

>>> hospital = CPABE.setup()
>>> alice = hospital.keygen(["doctor", "cardiology"])
>>> alice
UserKey(scheme='fame', fingerprint='...', attributes=['doctor', 'cardiology'])

Encrypt with `abe_health.encrypt` to a `PolicyRecipient(hospital.public_key, ...)` (CP) or an
`AttributesRecipient` (KP).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping

from .derived import check_pair, complete_setup, fingerprint
from .errors import InvalidKey
from .hazmat.pairing import get_group
from .hazmat.schemes import DEFAULT_SCHEME, Scheme, get_scheme
from .keys import Key
from .policy import KeyAttributes, Policy, parse_attributes
from .register import Register, as_register


class ABE:
    """An authority's keys for one scheme: its public key, and (to issue keys) its master key.

    With `register` (an issuance register, or its path), every key issued is recorded there and
    carries its issuance id (`iid`); renewal (`abe_health.revocation.renew`) needs it.
    """

    policy_in: str | None = None

    def __init__(self, public_key: Key, master_key: Key | None = None,
                 register: Register | str | os.PathLike[str] | None = None) -> None:
        if public_key.kind != "public":
            raise InvalidKey(f"expected a public key, got a {public_key.kind} key")
        if not isinstance(public_key.scheme, Scheme):
            raise InvalidKey(f"this is a {public_key.scheme.name} (multi-authority) key: its "
                             "authority is an abe_health.ma.Authority")
        if master_key is not None:
            check_pair(public_key, master_key)
        if self.policy_in and public_key.scheme.policy_in != self.policy_in:
            raise InvalidKey(f"{type(self).__name__} cannot use scheme {public_key.scheme.name}")
        self.public_key = public_key
        self.master_key = master_key
        self.register = as_register(register)

    @classmethod
    def setup(cls, scheme: str | None = None, backend: str = "mcl",
              widths: Mapping[str, int] | None = None,
              register: Register | str | os.PathLike[str] | None = None) -> ABE:
        """A fresh authority: scheme `fame` (CP) / `fame-kp` (KP) / `bsw07` / `waters11`
        (recording its keys in `register` when given)."""
        name = scheme or ("fame-kp" if cls.policy_in == "key" else DEFAULT_SCHEME)
        impl = get_scheme(name, get_group(backend))
        pk, msk = impl.setup(widths)
        return cls(*complete_setup(Key(impl, pk), Key(impl, msk)), register=register)

    @property
    def scheme(self) -> str:
        return self.public_key.scheme.name

    @property
    def widths(self) -> dict[str, int]:
        return dict(self.public_key.record.meta.get("widths", {}))

    def attributes(self, attributes: Iterable[str]) -> KeyAttributes:
        return parse_attributes(attributes, self.widths)

    def policy(self, text: str) -> Policy:
        return Policy.parse(text, self.widths)

    def keygen(self, attributes: Iterable[str] | None = None, policy: str | None = None, *,
               renewed_from: str | None = None) -> Key:
        """A user key: attributes for CP schemes, a policy for KP schemes; recorded in the
        register when there is one (`renewed_from`: the issuance id this key renews, as
        `renew` passes it; the register checks in the same transaction that it may)."""
        if self.master_key is None:
            raise InvalidKey("issuing keys needs the master key")
        impl = self.public_key.scheme
        if impl.policy_in == "ciphertext":
            if attributes is None or policy is not None:
                raise InvalidKey(f"{impl.name} keys are issued for attributes, not a policy")
            subject: KeyAttributes | Policy = self.attributes(attributes)
        else:
            if policy is None or attributes is not None:
                raise InvalidKey(f"{impl.name} keys are issued for a policy, not attributes")
            subject = self.policy(policy)
        assert isinstance(impl, Scheme)  # __init__ refuses multi-authority keys
        rec = impl.keygen(self.public_key.record, self.master_key.record, subject)
        rec = dataclasses.replace(rec, meta={**rec.meta, "pk": fingerprint(self.public_key)})
        key = Key(impl, rec)
        if self.register is not None:
            return self.register.record(key, fingerprint(self.public_key), renewed_from)
        if renewed_from is not None:
            raise InvalidKey("a renewal is recorded in the issuance register: give the authority one")
        return key


class CPABE(ABE):
    """Ciphertext-policy ABE: keys hold attributes, files carry policies (default scheme FAME)."""

    policy_in = "ciphertext"


class KPABE(ABE):
    """Key-policy ABE: keys hold policies, files carry attributes (scheme fame-kp)."""

    policy_in = "key"
