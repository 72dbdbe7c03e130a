"""The Fp12 arithmetic of `abe_health.hazmat.pairing.fp12` against a plain model of the tower and
against mcl itself: Scott's GT membership test must agree with x^r == 1 on members, on every
kind of non-member (random Fp12, norm 1, cyclotomic, a member times a small-order element), and
the torus compression must be a bijection between GT and its canonical 288-byte strings."""

from __future__ import annotations

import ctypes
import secrets
from math import gcd

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health.errors import InvalidEncoding
from abe_health.hazmat.pairing import fp12, get_group, mcl

GROUP = get_group("mcl")
P, U, R = fp12.P, fp12.U, GROUP.order
LIB = mcl._LIB

# -- a plain model of mcl's tower: Fp2 = Fp[i]/(i^2+1), Fp6 = Fp2[v]/(v^3-(1+i)), Fp12 = Fp6[w]/(w^2-v)


def m2(a, b):
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def add2(a, b):
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P)


def xi(a):
    return ((a[0] - a[1]) % P, (a[0] + a[1]) % P)


def m6(a, b):
    c0 = add2(m2(a[0], b[0]), xi(add2(m2(a[1], b[2]), m2(a[2], b[1]))))
    c1 = add2(add2(m2(a[0], b[1]), m2(a[1], b[0])), xi(m2(a[2], b[2])))
    c2 = add2(add2(m2(a[0], b[2]), m2(a[1], b[1])), m2(a[2], b[0]))
    return (c0, c1, c2)


def add6(a, b):
    return tuple(add2(x, y) for x, y in zip(a, b, strict=True))


def m12(a, b):
    vb = m6(a[1], b[1])
    return (add6(m6(a[0], b[0]), (xi(vb[2]), vb[0], vb[1])), add6(m6(a[0], b[1]), m6(a[1], b[0])))


def to_model(values):
    f2 = [(values[2 * i], values[2 * i + 1]) for i in range(6)]
    return ((f2[0], f2[1], f2[2]), (f2[3], f2[4], f2[5]))


def from_model(f):
    return tuple(x for six in f for two in six for x in two)


def pow12(f, e):
    result = to_model((1,) + (0,) * 11)
    while e:
        if e & 1:
            result = m12(result, f)
        f = m12(f, f)
        e >>= 1
    return result


def raw_of(values):
    return mcl._gt_raw(fp12.serialize(values))


def values_of(raw):
    out = ctypes.create_string_buffer(fp12.SIZE)
    LIB.mclBnGT_serialize(out, fp12.SIZE, raw)
    return fp12.parse(out.raw)


def random_fp12():
    return tuple(secrets.randbelow(P) for _ in range(12))


def member():
    return GROUP.generator("GT") ** GROUP.random_zr()


def by_r(raw):
    """The reference: mcl's own x^r == 1 test."""
    return bool(LIB.mclBnGT_isValid(raw))


# -- the curve facts the membership test rests on


def test_parameters_and_the_gcd_the_membership_test_rests_on():
    assert P == (U - 1) ** 2 * (U**4 - U**2 + 1) // 3 + U
    assert R == U**4 - U**2 + 1
    assert P % 6 == 1
    assert gcd(P**4 - P**2 + 1, P - U) == R
    assert gcd(P**6 + 1, P - U) == R  # the test used: norm 1, then f^p == f^u
    # the cyclotomic cofactor has a small factor: without a membership test T^z would leak z mod 4513
    assert ((P**4 - P**2 + 1) // R) % 4513 == 0


def test_the_tower_is_mcls():
    f, g = member(), member()
    ours = m12(to_model(fp12.parse(f.to_bytes())), to_model(fp12.parse(g.to_bytes())))
    assert from_model(ours) == fp12.parse((f * g).to_bytes())
    x, y = random_fp12(), random_fp12()
    out = mcl._RawGT()
    LIB.mclBnGT_mul(out, raw_of(x), raw_of(y))
    assert values_of(out) == from_model(m12(to_model(x), to_model(y)))


def test_frobenius_is_the_p_th_power():
    x, y = random_fp12(), random_fp12()
    assert fp12.frobenius(x) == from_model(pow12(to_model(x), P))
    assert fp12.frobenius(x, 2) == fp12.frobenius(fp12.frobenius(x))
    assert fp12.conjugate(x) == from_model(pow12(to_model(x), P**6))
    product = from_model(m12(to_model(x), to_model(y)))
    assert fp12.frobenius(product) == from_model(m12(to_model(fp12.frobenius(x)),
                                                     to_model(fp12.frobenius(y))))
    f = member()
    assert fp12.serialize(fp12.frobenius(fp12.parse(f.to_bytes()))) == (f ** (P % R)).to_bytes()


# -- membership


def _cyclotomic(values):
    """x^((p^6 - 1)(p^2 + 1)): an element of the cyclotomic subgroup, almost never of GT."""
    x = to_model(values)
    conj = (x[0], tuple(((-a) % P, (-b) % P) for a, b in x[1]))  # x^(p^6)
    inv = values_of(_inverse(raw_of(values)))
    unitary = m12(conj, to_model(inv))
    return from_model(m12(to_model(fp12.frobenius(from_model(unitary), 2)), unitary)), from_model(unitary)


def _inverse(raw):
    out = mcl._RawGT()
    LIB.mclBnGT_invGeneric(out, raw)
    return out


def test_members_pass():
    for _ in range(5):
        f = member()
        assert mcl._in_gt(f._v) and by_r(f._v)
    assert mcl._in_gt(GROUP.identity("GT")._v)


def test_every_kind_of_non_member_fails_as_with_x_to_the_r():
    cyclotomic, unitary = _cyclotomic(random_fp12())
    small = from_model(pow12(to_model(cyclotomic), (P**4 - P**2 + 1) // 4513))  # order 4513
    assert small != fp12.parse(GROUP.identity("GT").to_bytes())
    tainted = from_model(m12(to_model(fp12.parse(member().to_bytes())), to_model(small)))
    minus_one = (P - 1,) + (0,) * 11
    for values in (random_fp12(), unitary, cyclotomic, small, tainted, minus_one, (0,) * 12):
        raw = raw_of(values)
        assert not mcl._in_gt(raw)
        assert not by_r(raw)
    with pytest.raises(InvalidEncoding, match="order-r subgroup"):
        GROUP.deserialize("GT", fp12.serialize(tainted))


# -- compression


def test_compression_round_trips_and_halves():
    assert GROUP.compressed_gt_size == 288
    for f in [member() for _ in range(5)] + [GROUP.identity("GT"), GROUP.generator("GT")]:
        c = GROUP.compress_gt(f)
        assert len(c) == 288
        assert GROUP.decompress_gt(c) == f
    assert GROUP.compress_gt(GROUP.identity("GT")) == bytes(288)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, P - 1), min_size=6, max_size=6))
def test_every_canonical_string_has_one_meaning(coefficients):
    data = b"".join(x.to_bytes(48, "little") for x in coefficients)
    f = GROUP.decompress_gt(data, check=False)
    if any(coefficients):
        values = fp12.parse(f.to_bytes())
        a, b = to_model(values)
        conj = (a, tuple(((-x) % P, (-y) % P) for x, y in b))
        assert from_model(m12((a, b), conj)) == (1,) + (0,) * 11  # norm 1
        assert GROUP.compress_gt(f) == data  # the one form of this value
        with pytest.raises(InvalidEncoding, match="order-r subgroup"):
            GROUP.decompress_gt(data)  # a random norm-1 value is not in GT
    else:
        assert f.is_identity()


def test_the_frobenius_of_a_compressed_value_is_read_from_c():
    for f in (member(), GROUP.decompress_gt(b"\x05" + bytes(287), check=False)):
        c = fp12.parse(GROUP.compress_gt(f), 6)
        frob, g = fp12.torus_frobenius(c)
        expected = mcl._gt_quotient(fp12.embed(frob, g), fp12.embed(frob, (-g[0], -g[1])))
        assert values_of(expected) == fp12.frobenius(fp12.parse(f.to_bytes()))
        assert mcl._torus_in_gt(c, f._v) == mcl._in_gt(f._v) == by_r(f._v)


def test_malformed_compressed_elements_are_refused():
    good = GROUP.compress_gt(member())
    for i in range(6):
        high = good[:48 * i] + P.to_bytes(48, "little") + good[48 * (i + 1):]
        with pytest.raises(InvalidEncoding, match="non-canonical"):
            GROUP.decompress_gt(high)
    for bad in (good[:-1], good + b"\x00", b"", GROUP.generator("GT").to_bytes()):
        with pytest.raises(InvalidEncoding, match="288 bytes"):
            GROUP.decompress_gt(bad)
    with pytest.raises(InvalidEncoding, match="no compressed form"):
        GROUP.compress_gt(mcl.GT(raw_of((P - 1,) + (0,) * 11)))
    with pytest.raises(InvalidEncoding):
        GROUP.compress_gt(GROUP.generator("G1"))
