"""The default backend: BLS12-381 through the mcl library (PyPI `pymcl`), about 126-bit security.

The pymcl wheel ships mcl itself, and its extension module exports mcl's documented C API
(`mcl/bn.h`: `mclBnG1_add`, `mclBn_millerLoopVec`, `mclBnG1_isValidOrder`, ...). This backend
calls that C API through `ctypes` instead of pymcl's Python classes, because the classes offer
neither a multi-pairing (Miller loops summed, one final exponentiation) nor a way to decode a
point without its subgroup check; both are what brings decryption near its pairing floor
(docs/speed.md). Nothing is compiled here, and the values are the ones pymcl computes (same
library, same serialization, same hash to the curve: tested).

Validation. mcl checks that a decoded point is canonical and on the curve; the subgroup checks
are made here, explicitly: G1 and G2 by mcl's endomorphism tests (Bowe, eprint 2019/814: about
0.04 ms each), GT by Scott's test (a norm check, a Frobenius map and one 64-bit power,
`fp12`: about a quarter of x^r == 1). `deserialize` always checks membership. GT elements also
have a 288-byte compressed form (`compress_gt`, the torus T2 of `fp12`).
`decode_for_pairing` skips the per-point G1 test for points that only ever enter pairings; the
caller then checks the sum of the batch (`check_pairing_batch`). docs/speed.md proves why a G1
point that passes is harmless: the pairing of any point of E(Fp) equals the pairing of its
component in the order-r subgroup.

mcl's implicit order checks on decoding are process-wide switches; this module turns them off at
import (so that decoding for pairings does not pay for it, and G2 is not tested twice) and
checks explicitly on every path that needs it. Nothing in abe-health uses pymcl's Python classes.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from ...errors import BackendUnavailable, InvalidEncoding
from . import fp12
from .base import Element, GroupKind, PairingGroup

try:
    import pymcl
    from pymcl import _pymcl
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise BackendUnavailable("the mcl backend needs the 'pymcl' package: pip install pymcl") from exc

_ORDER: int = pymcl.r
#: mclBnFp is 6 64-bit limbs (384-bit build); G1 = (x, y, z), G2 over Fp2, GT = Fp12
_G1_WORDS, _G2_WORDS, _GT_WORDS, _FR_WORDS = 18, 36, 72, 4
_SIZES: dict[GroupKind, int] = {"G1": 48, "G2": 96, "GT": 576}
_REQUIRED = (
    "mclBnG1_add", "mclBnG1_sub", "mclBnG1_neg", "mclBnG1_mul", "mclBnG1_isZero", "mclBnG1_isEqual",
    "mclBnG1_getStr", "mclBnG1_setStr",
    "mclBnG1_serialize", "mclBnG1_deserialize", "mclBnG1_isValidOrder", "mclBnG1_hashAndMapTo",
    "mclBnG1_clear", "mclBnG2_add", "mclBnG2_sub", "mclBnG2_neg", "mclBnG2_mul", "mclBnG2_isZero",
    "mclBnG2_isEqual", "mclBnG2_serialize", "mclBnG2_deserialize", "mclBnG2_isValidOrder",
    "mclBnG2_hashAndMapTo", "mclBnG2_clear", "mclBnGT_mul", "mclBnGT_div", "mclBnGT_pow",
    "mclBnGT_invGeneric", "mclBnGT_isOne", "mclBnGT_isEqual", "mclBnGT_serialize",
    "mclBnGT_deserialize", "mclBnGT_setInt32", "mclBnFr_deserialize",
    "mclBnGT_powGeneric",
    "mclBn_pairing", "mclBn_millerLoopVec", "mclBn_finalExp", "mclBn_verifyOrderG1",
    "mclBn_verifyOrderG2",
    "mclBn_getCurveType", "mclBn_getOpUnitSize", "mclBnG1_mulVec", "mclBnG2_mulVec",
)


def _load() -> Any:
    """The mcl C API inside pymcl's extension module, checked for what this backend calls."""
    try:
        lib = ctypes.CDLL(_pymcl.__file__)
        missing = [name for name in _REQUIRED if not hasattr(lib, name)]
    except OSError as exc:  # pragma: no cover - depends on the platform
        raise BackendUnavailable(f"cannot load mcl from pymcl: {exc}") from exc
    if missing:  # pragma: no cover - depends on how pymcl was built
        raise BackendUnavailable(f"this pymcl build does not export mcl's C API ({missing[0]}, ...)")
    # 5 = MCL_BLS12_381; 6 limbs of 64 bits per Fp, as the layouts above assume
    if lib.mclBn_getCurveType() != 5 or lib.mclBn_getOpUnitSize() != 6:  # pragma: no cover
        raise BackendUnavailable("pymcl's mcl is not the BLS12-381 build this backend expects")
    return lib


_LIB = _load()
_LIB.mclBn_verifyOrderG1(0)  # explicit checks below (module docstring)
_LIB.mclBn_verifyOrderG2(0)

_RawG1 = ctypes.c_uint64 * _G1_WORDS
_RawG2 = ctypes.c_uint64 * _G2_WORDS
_RawGT = ctypes.c_uint64 * _GT_WORDS
_RawFr = ctypes.c_uint64 * _FR_WORDS
#: mcl's IoEcAffineSerialize: a point as x | y, each 48 bytes little-endian and < p (all zero:
#: the identity); read back with only the curve equation checked, no square root
_AFFINE, _G1_LONG = 4096, 96
_RAW: dict[GroupKind, Any] = {"G1": _RawG1, "G2": _RawG2, "GT": _RawGT}


def _fr(exponent: int) -> Any:
    """An mcl Fr holding exponent mod r (mcl keeps Montgomery form, so it is decoded, not copied)."""
    value = _RawFr()
    _LIB.mclBnFr_deserialize(value, (exponent % _ORDER).to_bytes(32, "little"), 32)
    return value


def _gt_raw(data: bytes) -> Any:
    """An mcl Fp12 value from canonical bytes made by `fp12` (always decodable)."""
    raw = _RawGT()
    if _LIB.mclBnGT_deserialize(raw, data, fp12.SIZE) != fp12.SIZE:  # pragma: no cover - fp12 invariant
        raise InvalidEncoding("mcl refused an Fp12 value")
    return raw


_U_ABS = _fr(-fp12.U)


def _in_gt(raw: Any) -> bool:
    """Scott's GT membership test (`fp12` docstring): f of norm 1 (f times its conjugate is 1),
    then f^p f^|u| == 1 (u < 0). Every operation is valid for any Fp12 value: mcl's generic
    power, not its GLV one."""
    data = ctypes.create_string_buffer(fp12.SIZE)
    if _LIB.mclBnGT_serialize(data, fp12.SIZE, raw) != fp12.SIZE:  # pragma: no cover - mcl invariant
        return False
    values = fp12.parse(data.raw)
    if values is None:
        return False
    norm = _gt_raw(fp12.serialize(fp12.conjugate(values)))
    _LIB.mclBnGT_mul(norm, norm, raw)
    if not _LIB.mclBnGT_isOne(norm):
        return False
    power = _RawGT()
    _LIB.mclBnGT_powGeneric(power, raw, _U_ABS)
    _LIB.mclBnGT_mul(power, power, _gt_raw(fp12.serialize(fp12.frobenius(values))))
    return bool(_LIB.mclBnGT_isOne(power))


def _torus_in_gt(c: fp12.Coefficients, raw: Any) -> bool:
    """`_in_gt` of f = (c + w) / (c - w), already of norm 1: f^p f^|u| == 1 written as
    (c' + g w) f^|u| == c' - g w with f^p = (c' + g w) / (c' - g w) (`fp12.torus_frobenius`)."""
    frob, g = fp12.torus_frobenius(c)
    power = _RawGT()
    _LIB.mclBnGT_powGeneric(power, raw, _U_ABS)
    _LIB.mclBnGT_mul(power, power, _gt_raw(fp12.embed(frob, g)))
    return bool(_LIB.mclBnGT_isEqual(power, _gt_raw(fp12.embed(frob, (-g[0], -g[1])))))


def _gt_quotient(numerator: bytes, denominator: bytes) -> Any:
    """numerator / denominator of two Fp12 values made by `fp12` (the denominator non-zero)."""
    num, den = _gt_raw(numerator), _gt_raw(denominator)
    _LIB.mclBnGT_invGeneric(den, den)
    _LIB.mclBnGT_mul(num, num, den)
    return num


class _MclElement(Element):
    """A value of the C API held in a ctypes buffer; immutable once made."""

    __slots__ = ("_v",)
    _group: ClassVar[MclGroup]
    _raw: ClassVar[Any]
    _size: ClassVar[int]
    _ser: ClassVar[Any]
    _eq: ClassVar[Any]

    def __init__(self, value: Any) -> None:
        self._v = value

    @property
    def group(self) -> MclGroup:
        return self._group

    def _key(self) -> object:
        return self.to_bytes()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return type(other) is type(self) and bool(self._eq(self._v, other._v))

    def __hash__(self) -> int:
        return hash((self.kind, self.to_bytes()))

    def to_bytes(self) -> bytes:
        out = ctypes.create_string_buffer(self._size)
        if self._ser(out, self._size, self._v) != self._size:  # pragma: no cover - mcl invariant
            raise InvalidEncoding(f"mcl could not serialize a {self.kind} element")
        return out.raw


class _MclPoint(_MclElement):
    """G1 or G2: mcl's additive group written multiplicatively."""

    __slots__ = ()
    _add: ClassVar[Any]
    _sub: ClassVar[Any]
    _neg: ClassVar[Any]
    _mul: ClassVar[Any]
    _is_zero: ClassVar[Any]

    def __mul__(self, other: Element) -> _MclPoint:
        if type(other) is not type(self):
            return NotImplemented
        out = self._raw()
        self._add(out, self._v, other._v)
        return type(self)(out)

    def __truediv__(self, other: Element) -> _MclPoint:
        if type(other) is not type(self):
            return NotImplemented
        out = self._raw()
        self._sub(out, self._v, other._v)
        return type(self)(out)

    def __pow__(self, exponent: int) -> _MclPoint:
        out = self._raw()
        self._mul(out, self._v, _fr(exponent))
        return type(self)(out)

    def __invert__(self) -> _MclPoint:
        out = self._raw()
        self._neg(out, self._v)
        return type(self)(out)

    def is_identity(self) -> bool:
        return bool(self._is_zero(self._v))


class G1(_MclPoint):
    __slots__ = ()
    kind = "G1"
    _raw, _size = _RawG1, 48
    _ser, _eq = _LIB.mclBnG1_serialize, _LIB.mclBnG1_isEqual
    _add, _sub, _neg, _mul = _LIB.mclBnG1_add, _LIB.mclBnG1_sub, _LIB.mclBnG1_neg, _LIB.mclBnG1_mul
    _is_zero = _LIB.mclBnG1_isZero


class G2(_MclPoint):
    __slots__ = ()
    kind = "G2"
    _raw, _size = _RawG2, 96
    _ser, _eq = _LIB.mclBnG2_serialize, _LIB.mclBnG2_isEqual
    _add, _sub, _neg, _mul = _LIB.mclBnG2_add, _LIB.mclBnG2_sub, _LIB.mclBnG2_neg, _LIB.mclBnG2_mul
    _is_zero = _LIB.mclBnG2_isZero


class GT(_MclElement):
    __slots__ = ()
    kind = "GT"
    _raw, _size = _RawGT, 576
    _ser, _eq = _LIB.mclBnGT_serialize, _LIB.mclBnGT_isEqual

    def __mul__(self, other: Element) -> GT:
        if type(other) is not GT:
            return NotImplemented
        out = _RawGT()
        _LIB.mclBnGT_mul(out, self._v, other._v)
        return GT(out)

    def __truediv__(self, other: Element) -> GT:
        if type(other) is not GT:
            return NotImplemented
        out = _RawGT()
        _LIB.mclBnGT_div(out, self._v, other._v)
        return GT(out)

    def __pow__(self, exponent: int) -> GT:
        # mcl's GT pow uses the GLV decomposition, valid for elements of GT: decoding tests
        # membership, and the one exception, decompress_gt(check=False), is never raised
        out = _RawGT()
        _LIB.mclBnGT_pow(out, self._v, _fr(exponent))
        return GT(out)

    def __invert__(self) -> GT:
        out = _RawGT()
        _LIB.mclBnGT_invGeneric(out, self._v)
        return GT(out)

    def is_identity(self) -> bool:
        return bool(_LIB.mclBnGT_isOne(self._v))


_CLASSES: dict[GroupKind, type[_MclElement]] = {"G1": G1, "G2": G2, "GT": GT}


class MclGroup(PairingGroup):
    """BLS12-381 via mcl; a single shared instance (mcl's curve is process-global)."""

    backend = "mcl"

    def __init__(self, curve: str = "BLS12-381") -> None:
        if curve != "BLS12-381":
            raise BackendUnavailable(f"the mcl backend offers BLS12-381 only, not {curve!r}")
        self.curve = curve
        self.order = _ORDER
        self.sizes = dict(_SIZES)
        g1 = self._decode_trusted("G1", bytes(pymcl.g1.serialize()))
        g2 = self._decode_trusted("G2", bytes(pymcl.g2.serialize()))
        gt = _RawGT()
        _LIB.mclBn_pairing(gt, g1._v, g2._v)  # type: ignore[attr-defined]
        one = _RawGT()
        _LIB.mclBnGT_setInt32(one, 1)
        zero1, zero2 = _RawG1(), _RawG2()
        _LIB.mclBnG1_clear(zero1)
        _LIB.mclBnG2_clear(zero2)
        self._generators: dict[GroupKind, Element] = {"G1": g1, "G2": g2, "GT": GT(gt)}
        self._identities: dict[GroupKind, Element] = {"G1": G1(zero1), "G2": G2(zero2),
                                                      "GT": GT(one)}

    @staticmethod
    def _decode_trusted(kind: GroupKind, data: bytes) -> Element:
        """Decode a constant of the library itself (its generators)."""
        raw = _RAW[kind]()
        decode = _LIB.mclBnG1_deserialize if kind == "G1" else _LIB.mclBnG2_deserialize
        if decode(raw, data, len(data)) != len(data):  # pragma: no cover - mcl invariant
            raise BackendUnavailable(f"mcl's own {kind} generator does not decode")
        return _CLASSES[kind](raw)

    def generator(self, kind: GroupKind) -> Element:
        return self._generators[kind]

    def identity(self, kind: GroupKind) -> Element:
        return self._identities[kind]

    def pair(self, a: Element, b: Element) -> Element:
        if type(a) is not G1 or type(b) is not G2:
            raise TypeError("pair() takes an mcl G1 element and an mcl G2 element")
        out = _RawGT()
        _LIB.mclBn_pairing(out, a._v, b._v)
        return GT(out)

    def pair_prod(self, pairs: Iterable[tuple[Element, Element]]) -> Element:
        """prod e(a_i, b_i) as one multi-pairing: the Miller loops multiplied, then a single final
        exponentiation (about 0.17 ms per pair plus 0.24 ms, against 0.42 ms per pairing)."""
        items = list(pairs)
        if not items:
            return self._identities["GT"]
        g1s, g2s = (_RawG1 * len(items))(), (_RawG2 * len(items))()
        for i, (a, b) in enumerate(items):
            if type(a) is not G1 or type(b) is not G2:
                raise TypeError("pair_prod() takes pairs of an mcl G1 and an mcl G2 element")
            ctypes.memmove(ctypes.byref(g1s, i * 8 * _G1_WORDS), a._v, 8 * _G1_WORDS)
            ctypes.memmove(ctypes.byref(g2s, i * 8 * _G2_WORDS), b._v, 8 * _G2_WORDS)
        loop, out = _RawGT(), _RawGT()
        _LIB.mclBn_millerLoopVec(loop, g1s, g2s, len(items))
        _LIB.mclBn_finalExp(out, loop)
        return GT(out)

    def product(self, elements: Sequence[Element]) -> Element:
        """Fold the raw values in one buffer with mcl's group law (decryption adds hundreds of
        G1 points: one allocation instead of one per step)."""
        first = elements[0]
        if not isinstance(first, _MclElement):
            raise TypeError("product() takes mcl elements")
        cls = type(first)
        acc = cls._raw()
        ctypes.memmove(acc, first._v, ctypes.sizeof(acc))
        law = _LIB.mclBnGT_mul if cls is GT else cls._add  # type: ignore[attr-defined]
        for element in elements[1:]:
            if type(element) is not cls:
                raise TypeError("product() takes elements of one group")
            law(acc, acc, element._v)
        return cls(acc)

    def multi_exp(self, elements: Sequence[Element], exponents: Sequence[int]) -> Element:
        """prod elements_i^{exponents_i} in G1 or G2 by mcl's multi-scalar multiplication."""
        first = elements[0]
        if not isinstance(first, _MclPoint) or len(elements) != len(exponents):
            return super().multi_exp(elements, exponents)
        cls = type(first)
        n, words = len(elements), _G1_WORDS if cls is G1 else _G2_WORDS
        points, scalars = (cls._raw * n)(), (_RawFr * n)()
        for i, (element, e) in enumerate(zip(elements, exponents, strict=True)):
            if type(element) is not cls:
                raise TypeError("multi_exp() takes elements of one group")
            ctypes.memmove(ctypes.byref(points, i * 8 * words), element._v, 8 * words)
            _LIB.mclBnFr_deserialize(ctypes.byref(scalars, i * 32), (e % _ORDER).to_bytes(32, "little"), 32)
        out = cls._raw()
        (_LIB.mclBnG1_mulVec if cls is G1 else _LIB.mclBnG2_mulVec)(out, points, scalars, n)
        return cls(out)

    def _hash_to_point(self, kind: GroupKind, data: bytes) -> Element:
        raw = _RAW[kind]()
        (_LIB.mclBnG1_hashAndMapTo if kind == "G1" else _LIB.mclBnG2_hashAndMapTo)(raw, data, len(data))
        return _CLASSES[kind](raw)

    def _decode(self, kind: GroupKind, data: bytes) -> Element:
        """Canonical bytes of a point on the curve (G1, G2) or of an Fp12 value (GT); no
        subgroup check yet."""
        raw = _RAW[kind]()
        decode = {"G1": _LIB.mclBnG1_deserialize, "G2": _LIB.mclBnG2_deserialize,
                  "GT": _LIB.mclBnGT_deserialize}[kind]
        if decode(raw, data, len(data)) != len(data):
            raise InvalidEncoding(f"bytes are not a valid {kind} element of {self.id}")
        element = _CLASSES[kind](raw)
        if element.to_bytes() != data:
            raise InvalidEncoding(f"non-canonical encoding of a {kind} element of {self.id}")
        return element

    def _deserialize(self, kind: GroupKind, data: bytes) -> Element:
        element = self._decode(kind, data)
        if not self._in_subgroup(element):
            raise InvalidEncoding(f"bytes are not in the order-r subgroup {kind} of {self.id}")
        return element

    def _in_subgroup(self, element: Element) -> bool:
        raw = element._v  # type: ignore[attr-defined]
        if element.kind == "G1":
            return bool(_LIB.mclBnG1_isValidOrder(raw))
        if element.kind == "G2":
            return bool(_LIB.mclBnG2_isValidOrder(raw))
        return _in_gt(raw)

    @property
    def compressed_gt_size(self) -> int:
        return fp12.COMPRESSED

    def compress_gt(self, element: Element) -> bytes:
        """c = (1 + a) / b for element = a + b w (the torus T2, `fp12`); 288 zero bytes for the
        identity. InvalidEncoding for a value outside GT that has no such form (-1)."""
        if type(element) is not GT:
            raise InvalidEncoding("compress_gt takes an mcl GT element")
        if element.is_identity():
            return bytes(fp12.COMPRESSED)
        values = fp12.parse(element.to_bytes())
        assert values is not None  # mcl serializes canonically
        a, b = fp12.fp6_parts(values)
        if fp12.is_zero6(b):
            raise InvalidEncoding("this Fp12 value is not an element of GT and has no compressed form")
        c = ctypes.create_string_buffer(fp12.SIZE)
        _LIB.mclBnGT_serialize(c, fp12.SIZE, _gt_quotient(fp12.embed(fp12.plus_one(a)), fp12.embed(b)))
        return c.raw[:fp12.COMPRESSED]

    def decompress_gt(self, data: bytes, *, check: bool = True) -> Element:
        """(c + w) / (c - w) of the 288-byte c (the identity for c = 0), then Scott's membership
        test unless check=False (the value is then only of norm 1: for factors that are only
        multiplied, never raised to any power, since `GT.__pow__` assumes membership)."""
        if not isinstance(data, (bytes, bytearray)) or len(data) != fp12.COMPRESSED:
            raise InvalidEncoding(f"a compressed GT element is {fp12.COMPRESSED} bytes")
        c = fp12.parse(bytes(data), 6)
        if c is None:
            raise InvalidEncoding(f"non-canonical compressed GT element of {self.id}")
        if fp12.is_zero6(c):
            return self._identities["GT"]
        raw = _gt_quotient(fp12.embed(bytes(data), 1), fp12.embed(bytes(data), -1))
        if check and not _torus_in_gt(c, raw):
            raise InvalidEncoding(f"bytes are not in the order-r subgroup GT of {self.id}")
        return GT(raw)

    def encode_for_pairing(self, element: Element) -> bytes:
        """A G1 point as x | y (96 bytes, mcl's affine serialization): decoding it checks the
        curve equation instead of taking a square root (0.5 us against 14 us). Other kinds:
        `to_bytes`."""
        if type(element) is not G1:
            return element.to_bytes()
        # room to spare: mcl's getStr writes a NUL after the bytes, and reports failure when
        # they fill all but one byte of the buffer
        out = ctypes.create_string_buffer(2 * _G1_LONG)
        if _LIB.mclBnG1_getStr(out, 2 * _G1_LONG, element._v, _AFFINE) != _G1_LONG:  # pragma: no cover
            raise InvalidEncoding("mcl could not serialize a G1 element uncompressed")
        return out.raw[:_G1_LONG]

    def decode_for_pairing(self, kind: GroupKind, data: bytes) -> Element:
        """A G1 point that will only enter pairings, compressed (48 bytes) or as x | y (96):
        canonical and on the curve, subgroup left to `check_pairing_batch` (docs/speed.md).
        Other kinds are fully checked."""
        if kind != "G1":
            return self.deserialize(kind, data)
        try:
            return self.decode_many_for_pairing("G1", [data])[0]
        except InvalidEncoding as exc:
            raise InvalidEncoding(str(exc).removeprefix("[0]: ")) from None

    def decode_many_for_pairing(self, kind: GroupKind, items: Sequence[object]) -> list[Element]:
        """`decode_for_pairing` of each item in one tight loop (a FAME header at N = 50 holds 150
        G1 points: the per-point Python work is worth saving beside mcl's own).

        Both forms are canonical by construction, so the re-encoding comparison of `_decode` is
        left out. Compressed: all-zero bytes are the identity, otherwise the top bit is y's parity
        and the remaining 383 bits must be an x < p (refused otherwise) on the curve, so no
        point has two accepted encodings (y = 0 has no point, #E(Fp) being odd; the order-3
        point (0, 2), outside G1, has none: x = 0 with an even y is the identity's form).
        Uncompressed: x and y must each be < p (mcl refuses larger values, so the unused top bits
        too) and satisfy y^2 = x^3 + 4; all-zero bytes are the identity, and (0, 0) is not on the
        curve. tests/test_validation.py plants non-canonical encodings of both at every
        position."""
        if kind != "G1":
            return super().decode_many_for_pairing(kind, items)
        decode, decode_long = _LIB.mclBnG1_deserialize, _LIB.mclBnG1_setStr
        out: list[Element] = []
        for i, data in enumerate(items):
            if type(data) is not bytes:
                if not isinstance(data, bytearray):
                    raise InvalidEncoding(f"[{i}]: G1 element must be bytes, got {type(data).__name__}")
                data = bytes(data)
            raw = _RawG1()
            if len(data) == 48:
                ok = decode(raw, data, 48) == 48
            elif len(data) == _G1_LONG:
                ok = decode_long(raw, data, _G1_LONG, _AFFINE) == 0
            else:
                raise InvalidEncoding(f"[{i}]: G1 element must be 48 or {_G1_LONG} bytes for "
                                      f"{self.id}, got {len(data)}")
            if not ok:
                raise InvalidEncoding(f"[{i}]: bytes are not a valid G1 element of {self.id}")
            out.append(G1(raw))
        return out

    def check_pairing_batch(self, elements: Sequence[Element]) -> bool:
        """True if the sum of the points decoded by `decode_for_pairing` lies in G1: one subgroup
        test for the batch, refusing any batch with exactly one point outside G1."""
        if not elements:
            return True
        total = self.product(elements)
        return self._in_subgroup(total)


GROUP = MclGroup()
for _cls in (G1, G2, GT):
    _cls._group = GROUP
