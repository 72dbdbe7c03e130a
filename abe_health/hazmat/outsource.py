"""HAZARDOUS MATERIALS: use `abe_health.devices` (`blind`, `transform`, `retrieve`) instead.

Outsourced decryption (Green, Hohenberger and Waters, "Outsourcing the Decryption of ABE
Ciphertexts", USENIX Security 2011: their outsourced CP-ABE built on Waters'; the same key-blinding
idea applied here to FAME CP and KP and to the multi-authority RW15). Specified in docs/devices.md.

- **Blind** (the holder, once): z random in Z_r*; the transformation key TK is the user key with
  every group element raised to 1/z, and the retrieval key is z. For FAME (Agrawal-Chase, CCS
  2017) TK is exactly a FAME key of the same shape under the master key (a, b, d/z) with key
  randomness r/z and sigma/z: sk0^{1/z} = h^{beta/z}, and so on. So FAME's own decryption run
  with TK returns den/num computed with keys scaled by 1/z. Every pairing of FAME decryption takes
  exactly one key element, so the result is K^{1/z}: the transformed ciphertext T.
- For RW15 (Rouselakis-Waters, FC 2015) decryption is
  K = e(H(GID), prod C3_x^{c_x}) * prod (C1_x e(K_x, C2_x) e(C4_x, K'_x))^{c_x}:
  the GT factors C1_x take no key element and H(GID) is public. TK holds K_x^{1/z}, K'_x^{1/z}
  and H(GID)^{1/z}; the transformation returns T1 = prod C1_x^{c_x} and
  T2 = e(H(GID)^{1/z}, prod C3_x^{c_x}) * prod (e(K_x^{1/z}, C2_x) e(C4_x, K'_x^{1/z}))^{c_x}
  = (K / T1)^{1/z}, so K = T1 * T2^z. All keys of one holder (one GID, several authorities) are
  blinded with one z, and keys of different GIDs are refused, as RW15 refuses to combine them.
- **Retrieve** (the device): K = T^z (FAME) or T1 * T2^z (RW15): one exponentiation in GT.
  T^z for T outside the order-r subgroup would leak z modulo small factors of the cyclotomic
  subgroup's order (4513 is one) to a cloud that watches which retrievals succeed (for RW15 it
  also chooses T1, so it could test each residue), so T is decoded with the pairing layer's
  membership test (Scott's, a third of the cost of T^r = 1) and the identity is refused; T1 is
  only multiplied, never raised to z: a wrong T1 only makes K wrong, whatever z is.

Why TK reveals nothing: TK is a key of a system whose KEM keys are K^{1/z}; without z the cloud
holds a value K^{1/z} that is as hard to turn into K as a GT Diffie-Hellman problem (GHW11
prove their blinded scheme as secure as the one it blinds). Verification is not here: the
recipe opens the header's key wrap under a KEK derived from the retrieved K, which fails for any
T other than the true one (docs/devices.md, "Why a wrong transformation is detected").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidCiphertext, InvalidKey
from .pairing import Element, PairingGroup
from .schemes import RW15, Record, Scheme, SchemeBase

#: the schemes whose decryption this module knows how to outsource
SUPPORTED = ("fame", "fame-kp", "rw15")


@dataclass(frozen=True)
class Blinded:
    """A transformation key: the holder's user records with every element raised to 1/z, and
    for RW15 H(GID)^{1/z} (`hgid`)."""

    scheme: SchemeBase
    records: tuple[Record, ...]
    hgid: Element | None = None


def _raise(value: Any, exponent: int) -> Any:
    """Every group element inside a record part (lists and label maps) raised to `exponent`."""
    if isinstance(value, list):
        return [_raise(v, exponent) for v in value]
    if isinstance(value, dict):
        return {label: _raise(v, exponent) for label, v in value.items()}
    return value**exponent


def check_supported(scheme: SchemeBase) -> None:
    """InvalidKey for a scheme whose decryption is not outsourced (BSW07, Waters11)."""
    if scheme.name not in SUPPORTED:
        raise InvalidKey(f"outsourced decryption supports {', '.join(SUPPORTED)}, not {scheme.name}")


def blind(scheme: SchemeBase, keys: Sequence[Record], z: int) -> Blinded:
    """The transformation key of one holder's user records under retrieval exponent z."""
    check_supported(scheme)
    if not keys:
        raise InvalidKey("blinding needs at least one user key")
    for key in keys:
        scheme.check(key, "user")
    grp = scheme.group
    if not 0 < z < grp.order:
        raise InvalidKey("the retrieval exponent must lie in 1..r-1")
    inverse = pow(z, -1, grp.order)
    records = tuple(replace(key, parts={name: _raise(part, inverse) for name, part in key.parts.items()})
                    for key in keys)
    if not isinstance(scheme, RW15):
        if len(keys) != 1:
            raise InvalidKey(f"a {scheme.name} holder blinds one user key, not {len(keys)}")
        return Blinded(scheme, records)
    gid = _one_gid(keys)
    return Blinded(scheme, records, scheme.hash_g1(b"GID", gid.encode()) ** inverse)


def _one_gid(keys: Sequence[Record]) -> str:
    """The one GID of a holder's RW15 keys; InvalidKey when they name several (no pooling)."""
    gids = {key.meta.get("gid") for key in keys}
    if len(gids) != 1 or not isinstance(next(iter(gids)), str):
        raise InvalidKey(f"keys of different users (GIDs {', '.join(sorted(map(str, gids)))}) "
                         "cannot be combined")
    return str(next(iter(gids)))


def transform(tk: Blinded, ct: Record) -> list[Element]:
    """The cloud's work: every pairing of decryption, done with TK. Returns [T] (FAME) or
    [T1, T2] (RW15); PolicyNotSatisfied when TK's attributes do not satisfy the policy."""
    scheme = tk.scheme
    scheme.check(ct, "ciphertext")
    if isinstance(scheme, Scheme):
        return [scheme.decapsulate(tk.records[0], ct)]
    if not isinstance(scheme, RW15) or tk.hgid is None:
        raise InvalidKey("a multi-authority transformation key carries H(GID)^(1/z)")
    _one_gid(tk.records)
    return list(scheme.decapsulate_parts(tk.records, ct, tk.hgid))


def arity(scheme: SchemeBase) -> int:
    """How many GT elements a transformation of `scheme` returns."""
    return 2 if isinstance(scheme, RW15) else 1


def retrieve(group: PairingGroup, parts: Sequence[Element], z: int) -> Element:
    """The device's work: K = T^z, or T1 * T2^z (one GT exponentiation). InvalidCiphertext for
    an identity T (K would not depend on z; an honest T is never the identity)."""
    if len(parts) not in (1, 2) or any(p.kind != "GT" for p in parts):
        raise InvalidCiphertext("a transformed ciphertext holds one or two GT elements")
    blinded = parts[-1]
    if blinded.is_identity():
        raise InvalidCiphertext("the transformed ciphertext is the identity: refused")
    key = blinded**z
    return parts[0] * key if len(parts) == 2 else key

