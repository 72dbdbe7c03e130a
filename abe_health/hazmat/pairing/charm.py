"""Optional backend over Charm-Crypto's `PairingGroup` (PBC underneath); BN254 by default.

It exists for interoperability and for measuring against Charm's own schemes on the same curve.
Charm writes all groups multiplicatively already; elements are wrapped so that exponents are
plain ints and serialization is bytes (Charm's uncompressed base64 form, decoded) with a
subgroup-membership check on every decode. Uncompressed, because PBC's compressed G2 decoding
maps several encodings to one point (found by the bit-flip test), so it cannot be canonical.
Tested against Charm 0.62 built on PBC 1.0 (the tests skip this backend where it is absent).
"""

from __future__ import annotations

import base64
from typing import Any

from ...errors import BackendUnavailable, InvalidEncoding
from .base import Element, GroupKind, PairingGroup

try:
    from charm.toolbox.pairinggroup import G1 as _CG1
    from charm.toolbox.pairinggroup import G2 as _CG2
    from charm.toolbox.pairinggroup import GT as _CGT
    from charm.toolbox.pairinggroup import ZR as _CZR
    from charm.toolbox.pairinggroup import PairingGroup as _CharmPairingGroup
    from charm.toolbox.pairinggroup import pair as _charm_pair
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise BackendUnavailable(
        "the charm backend needs Charm-Crypto (and the PBC library): pip install 'abe-health[charm]'"
    ) from exc

_CHARM_TYPES = {"G1": _CG1, "G2": _CG2, "GT": _CGT}
_TYPE_CODES = {"G1": 1, "G2": 2, "GT": 3}
#: curves with distinct G1 and G2 (Type III); symmetric curves would silently change the schemes
ASYMMETRIC_CURVES = ("BN254", "MNT159", "MNT201", "MNT224")
#: curves whose E(Fp) has prime order r, so G1 is every point on y^2 = x^3 + b: (q, b) of PBC's
#: parameters (Charm's BN254 is PBC's type f curve)
PRIME_ORDER_G1 = {
    "BN254": (16283262548997601220198008118239886027035269286659395419233331082106632227801,
              7068387321767010428383604447141585855811153344588123938605766847051945009302),
}


class CharmElement(Element):
    """A Charm element of one kind, tied to its CharmGroup."""

    __slots__ = ("_g", "_v", "kind")

    def __init__(self, group: CharmGroup, kind: GroupKind, value: Any) -> None:
        self._g = group
        self.kind = kind  # type: ignore[misc]
        self._v: Any = value

    @property
    def group(self) -> CharmGroup:
        return self._g

    def _key(self) -> object:
        return self._v  # Charm's == compares points, whatever coordinates the infinity carries

    def _check(self, other: Element) -> CharmElement:
        if not isinstance(other, CharmElement) or other.kind != self.kind or other._g is not self._g:
            raise TypeError(f"cannot combine {self.kind} of {self._g.id} with {other!r}")
        return other

    def __mul__(self, other: Element) -> CharmElement:
        return CharmElement(self._g, self.kind, self._v * self._check(other)._v)

    def __pow__(self, exponent: int) -> CharmElement:
        return CharmElement(self._g, self.kind, self._v ** self._g._zr(exponent))

    def __invert__(self) -> CharmElement:
        return CharmElement(self._g, self.kind, ~self._v)  # element_invert: a negation for points

    def is_identity(self) -> bool:
        return bool(self._v == self._g._identities[self.kind]._v)

    def to_bytes(self) -> bytes:
        # PBC's compressed form of a point at infinity reached by arithmetic keeps stale
        # coordinates; the identity is always written as the canonical one instead
        value = self._g._identities[self.kind]._v if self.is_identity() else self._v
        return base64.b64decode(self._g._charm.serialize(value, False).split(b":", 1)[1])


class CharmGroup(PairingGroup):
    """A Type-III Charm pairing group selected by curve name."""

    backend = "charm"

    def __init__(self, curve: str = "BN254") -> None:
        if curve not in ASYMMETRIC_CURVES:
            raise BackendUnavailable(
                f"charm backend curve must be one of {', '.join(ASYMMETRIC_CURVES)}, not {curve!r}"
            )
        self.curve = curve
        self._charm = _CharmPairingGroup(curve)
        self.order = int(self._charm.order())
        g1 = self._charm.hash(b"abe-health/charm/generator/G1", _CG1)
        g2 = self._charm.hash(b"abe-health/charm/generator/G2", _CG2)
        self._generators: dict[GroupKind, CharmElement] = {
            "G1": CharmElement(self, "G1", g1),
            "G2": CharmElement(self, "G2", g2),
            "GT": CharmElement(self, "GT", _charm_pair(g1, g2)),
        }
        self._identities: dict[GroupKind, CharmElement] = {
            kind: gen ** 0 for kind, gen in self._generators.items()}
        self.sizes = {kind: len(gen.to_bytes()) for kind, gen in self._generators.items()}

    def _in_subgroup(self, kind: GroupKind, value: Any, data: bytes) -> bool:
        """Membership of a decoded element (`data`: its bytes).

        G1 of a prime-order curve (BN254: E(Fp) has order r) is every point on the curve, so the
        test is the curve equation on the encoded coordinates (PBC's decoder does not check it).
        Otherwise value^r == 1, computed by PBC (`element_pow_mpz` with the int r, which Charm
        does not reduce modulo r, unlike a ZR exponent); Charm's own `ismember` answers False for
        every G2 element of BN254 (PBC's G2 order field is not the subgroup order there)."""
        if kind == "G1" and self.curve in PRIME_ORDER_G1:
            q, b = PRIME_ORDER_G1[self.curve]
            half = len(data) // 2
            x, y = int.from_bytes(data[:half], "big"), int.from_bytes(data[half:], "big")
            return x < q and y < q and (y * y - x * x * x - b) % q == 0
        return bool(value ** self.order == self._identities[kind]._v)

    def _zr(self, exponent: int) -> object:
        return self._charm.init(_CZR, exponent % self.order)

    def generator(self, kind: GroupKind) -> Element:
        return self._generators[kind]

    def identity(self, kind: GroupKind) -> Element:
        return self._identities[kind]

    def pair(self, a: Element, b: Element) -> Element:
        if not (isinstance(a, CharmElement) and a.kind == "G1" and a._g is self):
            raise TypeError("pair() takes a G1 element of this group first")
        if not (isinstance(b, CharmElement) and b.kind == "G2" and b._g is self):
            raise TypeError("pair() takes a G2 element of this group second")
        return CharmElement(self, "GT", _charm_pair(a._v, b._v))

    def _hash_to_point(self, kind: GroupKind, data: bytes) -> Element:
        return CharmElement(self, kind, self._charm.hash(data, _CHARM_TYPES[kind]))

    def _deserialize(self, kind: GroupKind, data: bytes) -> Element:
        if data == self._identities[kind].to_bytes():
            return self._identities[kind]  # PBC has no encoding of infinity: ours is all zeros
        text = b"%d:%s" % (_TYPE_CODES[kind], base64.b64encode(data))
        try:
            value = self._charm.deserialize(text, False)
        except Exception as exc:  # Charm signals bad input with several untyped errors
            raise InvalidEncoding(f"bytes are not a valid {kind} element of {self.id}") from exc
        if value is None or not self._in_subgroup(kind, value, data):
            raise InvalidEncoding(f"bytes are not in the order-r subgroup {kind} of {self.id}")
        element = CharmElement(self, kind, value)
        if element.to_bytes() != data:
            raise InvalidEncoding(f"non-canonical encoding of a {kind} element of {self.id}")
        return element
