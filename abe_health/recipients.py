"""Recipients: whom a file is encrypted for (age's `Recipient`). A recipient encapsulates a fresh
KEM key for one header; `abe_health.encrypt` wraps the file's data key under it.

- `PolicyRecipient(public_key, "(doctor and cardiology) or nurse")`: CP-ABE under one authority.
- `AttributesRecipient(public_key, ["doctor", "age = 70"])`: KP-ABE (scheme fame-kp).
- `MultiAuthorityRecipient("doctor@hospitalA and researcher@university", [pk_a, pk_u])`: RW15.

Each checks its public keys' kind and scheme when it is made, so a mistake surfaces at once with
a typed error, not at the first encryption.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable

from .derived import fingerprint
from .errors import InvalidKey
from .hazmat.pairing import Element
from .hazmat.schemes import Record, Scheme, SchemeBase
from .keys import Key, PublicKey
from .policy import KeyAttributes, Policy, parse_attributes

__all__ = ["AttributesRecipient", "MultiAuthorityRecipient", "PolicyRecipient", "Recipient"]


class Recipient(ABC):
    """Someone (a policy, an attribute set) a file can be encrypted for."""

    @abstractmethod
    def encapsulate(self) -> tuple[SchemeBase, Record, Element]:
        """(scheme, ciphertext record, fresh KEM key in GT) for one header."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the recipient, for messages."""


def _public(key: Key, what: str) -> PublicKey:
    if not isinstance(key, PublicKey):
        raise InvalidKey(f"{what} needs an authority public key, got a {key.kind} key")
    return key


def _single(key: Key, policy_in: str) -> Scheme:
    public = _public(key, "encryption")
    scheme = public.scheme
    if not isinstance(scheme, Scheme):
        raise InvalidKey(f"this is a {scheme.name} (multi-authority) public key: encrypt to a "
                         "MultiAuthorityRecipient")
    if scheme.policy_in != policy_in:
        kind = "a policy (PolicyRecipient)" if scheme.policy_in == "ciphertext" else \
            "attributes (AttributesRecipient)"
        raise InvalidKey(f"{scheme.name} encrypts under {kind}")
    return scheme


def _widths(public_key: Key) -> dict[str, int]:
    """The public key's numeric widths (records.py checked their type when the key loaded)."""
    widths = public_key.record.meta.get("widths", {})
    if not isinstance(widths, dict):
        raise InvalidKey("the public key carries malformed numeric widths")
    return dict(widths)


def _stamp(ct: Record, public_key: Key) -> Record:
    """The ciphertext with the authority's fingerprint, so a mismatch names the authority."""
    return dataclasses.replace(ct, meta={**ct.meta, "pk": fingerprint(public_key)})


class PolicyRecipient(Recipient):
    """CP-ABE: whoever holds attributes that satisfy `policy`, under `public_key`'s authority."""

    def __init__(self, public_key: Key, policy: str | Policy) -> None:
        self.scheme = _single(public_key, "ciphertext")
        self.public_key = public_key
        widths = _widths(public_key)
        self.policy = policy if isinstance(policy, Policy) else Policy.parse(policy, widths)

    def encapsulate(self) -> tuple[SchemeBase, Record, Element]:
        gt_key, ct = self.scheme.encapsulate(self.public_key.record, self.policy)
        return self.scheme, _stamp(ct, self.public_key), gt_key

    def describe(self) -> str:
        return f'policy "{self.policy}" of authority {fingerprint(self.public_key)}'


class AttributesRecipient(Recipient):
    """KP-ABE: whoever holds a key whose policy these attributes satisfy."""

    def __init__(self, public_key: Key, attributes: Iterable[str]) -> None:
        self.scheme = _single(public_key, "key")
        self.public_key = public_key
        widths = _widths(public_key)
        self.attributes: KeyAttributes = parse_attributes(attributes, widths)

    def encapsulate(self) -> tuple[SchemeBase, Record, Element]:
        gt_key, ct = self.scheme.encapsulate(self.public_key.record, self.attributes)
        return self.scheme, _stamp(ct, self.public_key), gt_key

    def describe(self) -> str:
        return f"attributes {self.attributes} of authority {fingerprint(self.public_key)}"


class MultiAuthorityRecipient(Recipient):
    """RW15: whoever holds, under one GID, attributes from several authorities that satisfy a
    policy of `name@authority` attributes; `public_keys` are those authorities' public keys."""

    def __init__(self, policy: str | Policy, public_keys: Iterable[Key]) -> None:
        keys: dict[str, PublicKey] = {}
        for key in public_keys:
            public = _public(key, "multi-authority encryption")
            if public.scheme.name != "rw15":
                raise InvalidKey(f"expected an authority public key (rw15), got a {public.scheme.name} "
                                 "key: encrypt to a PolicyRecipient")
            name = str(public.record.meta.get("authority"))
            if name in keys:
                raise InvalidKey(f"two public keys for authority {name}")
            keys[name] = public
        if not keys:
            raise InvalidKey("multi-authority encryption needs at least one authority public key")
        if len({k.scheme.group.id for k in keys.values()}) != 1:
            raise InvalidKey("the authorities' public keys are over different groups")
        self.public_keys = keys
        self.scheme = next(iter(keys.values())).scheme
        self.policy = policy if isinstance(policy, Policy) else Policy.parse(policy)

    def encapsulate(self) -> tuple[SchemeBase, Record, Element]:
        records = {name: key.record for name, key in self.public_keys.items()}
        gt_key, ct = self.scheme.encapsulate(records, self.policy)  # type: ignore[attr-defined]
        return self.scheme, ct, gt_key

    def describe(self) -> str:
        return f'policy "{self.policy}" over authorities {", ".join(sorted(self.public_keys))}'
