"""Identities: what opens a file (age's `Identity`). An identity turns a header into the file's
data key, or says why it cannot.

- a `UserKey` (any single-authority scheme, or one authority's multi-authority key);
- a `Holder(key_a, key_b, ...)`: one holder's multi-authority keys across authorities (one GID).

`abe_health.decrypt` tries its identities in turn; multi-authority user keys given one by one are
grouped into one `Holder` per GID first, so `decrypt(src, dst, key_a, key_b)` just works.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence

from .errors import InvalidKey
from .hazmat.envelope import Header
from .hazmat.schemes import Scheme
from .keys import Key, UserKey

__all__ = ["Holder", "Identity", "KeyIdentity", "identities_of"]


class Identity(ABC):
    """Something that may open a header."""

    @abstractmethod
    def unwrap(self, header: Header, context: bytes = b"") -> bytes:
        """The header's data key, or a typed error saying why not."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the identity, for messages."""


def _check(key: Key, header: Header) -> UserKey:
    if not isinstance(key, UserKey):
        raise InvalidKey(f"decryption needs a user key, got a {key.kind} key")
    if key.scheme.name != header.scheme.name:
        raise InvalidKey(f"this file is encrypted with {header.scheme.name}, "
                         f"the key is for {key.scheme.name}")
    if key.scheme.group.id != header.scheme.group.id:
        raise InvalidKey(f"this file uses group {header.scheme.group.id}, "
                         f"the key is over {key.scheme.group.id}")
    file_pk, key_pk = header.ciphertext.meta.get("pk"), key.record.meta.get("pk")
    if file_pk and key_pk and file_pk != key_pk:
        raise InvalidKey(f"this file was encrypted for authority {str(file_pk)[:32]}; "
                         f"the key is from {str(key_pk)[:32]}")
    return key


class KeyIdentity(Identity):
    """One user key."""

    def __init__(self, key: Key) -> None:
        if not isinstance(key, UserKey):
            raise InvalidKey(f"an identity is a user key, not a {key.kind} key")
        self.key = key

    def unwrap(self, header: Header, context: bytes = b"") -> bytes:
        key = _check(self.key, header)
        if isinstance(header.scheme, Scheme):
            gt_key = header.scheme.decapsulate(key.record, header.ciphertext)
        else:
            gt_key = header.scheme.decapsulate([key.record], header.ciphertext)  # type: ignore[attr-defined]
        return header.unwrap(gt_key, context)

    def describe(self) -> str:
        return self.key.describe()


class Holder(Identity):
    """One holder's multi-authority (RW15) keys from several authorities, used together."""

    def __init__(self, *keys: Key) -> None:
        if not keys:
            raise InvalidKey("a holder needs at least one user key")
        for key in keys:
            if not isinstance(key, UserKey) or key.scheme.name != "rw15":
                raise InvalidKey("a holder combines multi-authority (rw15) user keys only")
        self.keys: tuple[UserKey, ...] = keys  # type: ignore[assignment]

    def unwrap(self, header: Header, context: bytes = b"") -> bytes:
        keys = [_check(key, header) for key in self.keys]
        if isinstance(header.scheme, Scheme):
            raise InvalidKey(f"this file is encrypted with {header.scheme.name}; "
                             "multi-authority keys do not open it")
        gt_key = header.scheme.decapsulate([k.record for k in keys], header.ciphertext)  # type: ignore[attr-defined]
        return header.unwrap(gt_key, context)

    def describe(self) -> str:
        gids = sorted({str(k.gid) for k in self.keys})
        return f"holder {', '.join(gids)} ({len(self.keys)} keys)"


def identities_of(items: Iterable[Key | Identity | Sequence[Key]]) -> list[Identity]:
    """Normalize what callers pass: user keys, identities, or lists of one holder's keys;
    multi-authority keys given one by one are grouped into one Holder per GID."""
    out: list[Identity] = []
    holders: dict[str, list[Key]] = {}
    for item in items:
        if isinstance(item, Identity):
            out.append(item)
        elif isinstance(item, Key):
            if isinstance(item, UserKey) and item.scheme.name == "rw15":
                group = holders.setdefault(str(item.gid), [])
                if not group:
                    out.append(_Pending(str(item.gid)))
                group.append(item)
            else:
                out.append(KeyIdentity(item))
        elif isinstance(item, (list, tuple)):
            out.append(Holder(*item))
        else:
            raise InvalidKey(f"not an identity: {type(item).__name__}")
    return [Holder(*holders[i.gid]) if isinstance(i, _Pending) else i for i in out]


class _Pending(Identity):
    """A placeholder keeping the position of a GID's Holder while its keys are gathered."""

    def __init__(self, gid: str) -> None:
        self.gid = gid

    def unwrap(self, header: Header, context: bytes = b"") -> bytes:
        raise AssertionError("placeholder")

    def describe(self) -> str:
        return self.gid
