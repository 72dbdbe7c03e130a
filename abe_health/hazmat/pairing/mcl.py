"""The default backend: BLS12-381 through the mcl library (PyPI `pymcl`), about 126-bit security.

mcl writes G1/G2 additively; here they are wrapped in the multiplicative notation of the
interface. mcl's own deserialization checks that points lie on the curve and in the order-r
subgroup; GT is checked here (x != 0 and x^r == 1), since mcl accepts any Fp12 value.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, ClassVar, cast

from ...errors import BackendUnavailable, InvalidEncoding
from .base import Element, GroupKind, PairingGroup

try:
    import pymcl
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise BackendUnavailable("the mcl backend needs the 'pymcl' package: pip install pymcl") from exc

_ORDER: int = pymcl.r
_R_BITS = bin(_ORDER)[3:]


def _fr(exponent: int) -> pymcl.Fr:
    """Convert an int exponent to mcl's Fr (little-endian canonical bytes)."""
    return pymcl.Fr.deserialize((exponent % _ORDER).to_bytes(32, "little"))


class _MclElement(Element):
    __slots__ = ("_v",)
    _group: ClassVar[MclGroup]
    _v: Any  # the pymcl value (pymcl ships no type information)

    def __init__(self, value: Any) -> None:
        self._v = value

    @property
    def group(self) -> MclGroup:
        return self._group

    def _key(self) -> Any:
        return self._v

    def to_bytes(self) -> bytes:
        return bytes(self._v.serialize())


class _MclPoint(_MclElement):
    """G1 or G2: mcl's additive group written multiplicatively."""

    __slots__ = ()

    def __mul__(self, other: Element) -> _MclPoint:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(self._v + other._v)

    def __truediv__(self, other: Element) -> _MclPoint:
        if type(other) is not type(self):
            return NotImplemented
        return type(self)(self._v - other._v)

    def __pow__(self, exponent: int) -> _MclPoint:
        return type(self)(self._v * _fr(exponent))

    def __invert__(self) -> _MclPoint:
        return type(self)(-self._v)

    def is_identity(self) -> bool:
        return bool(self._v.is_zero())


class G1(_MclPoint):
    __slots__ = ()
    kind = "G1"


class G2(_MclPoint):
    __slots__ = ()
    kind = "G2"


class GT(_MclElement):
    __slots__ = ()
    kind = "GT"

    def __mul__(self, other: Element) -> GT:
        if type(other) is not GT:
            return NotImplemented
        return GT(self._v * other._v)

    def __truediv__(self, other: Element) -> GT:
        if type(other) is not GT:
            return NotImplemented
        return GT(self._v / other._v)

    def __pow__(self, exponent: int) -> GT:
        return GT(self._v ** _fr(exponent))

    def __invert__(self) -> GT:
        return GT(~self._v)

    def is_identity(self) -> bool:
        return bool(self._v.is_one())


def _in_gt(value: pymcl.GT) -> bool:
    """x^r == 1 by plain square-and-multiply, which (unlike GLV-style pow) is valid for any Fp12 x."""
    if value.is_zero():
        return False
    acc = value
    for bit in _R_BITS:
        acc = acc * acc
        if bit == "1":
            acc = acc * value
    return acc.is_one()


class MclGroup(PairingGroup):
    """BLS12-381 via mcl; a single shared instance (mcl's curve is process-global)."""

    backend = "mcl"

    def __init__(self, curve: str = "BLS12-381") -> None:
        if curve != "BLS12-381":
            raise BackendUnavailable(f"the mcl backend offers BLS12-381 only, not {curve!r}")
        self.curve = curve
        self.order = _ORDER
        self.sizes = {"G1": 48, "G2": 96, "GT": 576}
        self._classes: dict[GroupKind, type[_MclElement]] = {"G1": G1, "G2": G2, "GT": GT}
        self._generators = {
            "G1": G1(pymcl.g1),
            "G2": G2(pymcl.g2),
            "GT": GT(pymcl.pairing(pymcl.g1, pymcl.g2)),
        }
        self._identities = {"G1": G1(pymcl.G1()), "G2": G2(pymcl.G2()), "GT": GT(pymcl.GT())}

    def generator(self, kind: GroupKind) -> Element:
        return self._generators[kind]

    def identity(self, kind: GroupKind) -> Element:
        return self._identities[kind]

    def pair(self, a: Element, b: Element) -> Element:
        if type(a) is not G1 or type(b) is not G2:
            raise TypeError("pair() takes an mcl G1 element and an mcl G2 element")
        return GT(pymcl.pairing(a._v, b._v))

    def product(self, elements: Sequence[Element]) -> Element:
        """Fold the raw mcl values with mcl's own operator and wrap once (about 2x cheaper than
        chaining wrapped products; decryption adds hundreds of G1 points)."""
        first = cast(_MclElement, elements[0])
        raw_type = type(first._v)
        law = raw_type.__mul__ if type(first) is GT else raw_type.__add__
        return type(first)(functools.reduce(law, [cast(_MclElement, e)._v for e in elements]))

    def _hash_to_point(self, kind: GroupKind, data: bytes) -> Element:
        if kind == "G1":
            return G1(pymcl.G1.hash(data))
        return G2(pymcl.G2.hash(data))

    def _deserialize(self, kind: GroupKind, data: bytes) -> Element:
        raw_type: Any = {"G1": pymcl.G1, "G2": pymcl.G2, "GT": pymcl.GT}[kind]
        try:
            value = raw_type.deserialize(data)
        except (ValueError, RuntimeError) as exc:
            raise InvalidEncoding(f"bytes are not a valid {kind} element of {self.id}") from exc
        if kind == "GT" and not _in_gt(value):
            raise InvalidEncoding(f"bytes are not in the order-r subgroup GT of {self.id}")
        if value.serialize() != data:
            raise InvalidEncoding(f"non-canonical encoding of a {kind} element of {self.id}")
        return self._classes[kind](value)


GROUP = MclGroup()
for _cls in (G1, G2, GT):
    _cls._group = GROUP
