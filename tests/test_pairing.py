"""The pairing interface, run identically against every installed backend."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health.errors import BackendUnavailable, InvalidEncoding
from abe_health.hazmat.pairing import KINDS, available_backends, get_group, group_from_id

exponents = st.integers(min_value=-(2**300), max_value=2**300)


def test_mcl_is_available_and_default():
    assert "mcl" in available_backends()
    assert get_group().id == "mcl:BLS12-381"
    assert group_from_id("mcl:BLS12-381") is get_group("mcl")


def test_unknown_backend_and_curve_are_typed_errors():
    with pytest.raises(BackendUnavailable, match="unknown pairing backend"):
        get_group("nope")
    with pytest.raises(BackendUnavailable):
        get_group("mcl", "BN254")
    with pytest.raises(BackendUnavailable, match="malformed group id"):
        group_from_id("mcl")


def test_missing_charm_reports_how_to_install():
    if "charm" in available_backends():
        pytest.skip("charm is installed here")
    with pytest.raises(BackendUnavailable, match="charm"):
        get_group("charm")


@settings(max_examples=25)
@given(a=exponents, b=exponents)
def test_bilinearity(group, a, b):
    g, h = group.generator("G1"), group.generator("G2")
    assert group.pair(g**a, h**b) == group.pair(g, h) ** (a * b)
    assert group.pair(g**a, h) == group.pair(g, h**a)


def test_pairing_is_non_degenerate(group):
    gt = group.pair(group.generator("G1"), group.generator("G2"))
    assert not gt.is_identity()
    assert gt == group.generator("GT")


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=20)
@given(a=exponents, b=exponents)
def test_group_law_and_exponents(group, kind, a, b):
    g = group.generator(kind)
    assert g**a * g**b == g ** (a + b)
    assert (g**a) ** b == g ** (a * b)
    assert g**a / g**b == g ** (a - b)
    assert ~(g**a) == g ** (-a)
    assert g ** (a + group.order) == g**a
    assert (g**a * ~(g**a)).is_identity()


@pytest.mark.parametrize("kind", KINDS)
def test_identity(group, kind):
    e = group.identity(kind)
    g = group.generator(kind)
    assert e.is_identity() and not g.is_identity()
    assert g * e == g
    assert g**0 == e
    assert g**group.order == e
    assert group.deserialize(kind, e.to_bytes()) == e


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=20)
@given(a=exponents)
def test_serialization_round_trip(group, kind, a):
    x = group.generator(kind) ** a
    data = x.to_bytes()
    assert len(data) == group.sizes[kind]
    y = group.deserialize(kind, data)
    assert y == x and hash(y) == hash(x)


@pytest.mark.parametrize("kind", KINDS)
def test_deserialize_rejects_wrong_length_and_type(group, kind):
    data = group.random(kind).to_bytes()
    for bad in (b"", data[:-1], data + b"\x00", data * 2):
        with pytest.raises(InvalidEncoding):
            group.deserialize(kind, bad)
    with pytest.raises(InvalidEncoding):
        group.deserialize(kind, "not bytes")
    with pytest.raises(InvalidEncoding):
        group.deserialize("G3", data)


@pytest.mark.parametrize("kind", ["G1", "G2"])
def test_point_bit_flips_never_decode_to_the_same_point(group, kind):
    x = group.random(kind)
    data = bytearray(x.to_bytes())
    rejected = 0
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0x01 << (i % 8)
        try:
            y = group.deserialize(kind, bytes(flipped))
        except InvalidEncoding:
            rejected += 1
        else:  # another valid point (BN254's G1 has cofactor 1): distinct and canonical
            assert y != x
            assert y.to_bytes() == bytes(flipped)
    if group.id == "mcl:BLS12-381":
        # a random x is on the curve half the time, and in the subgroup almost never
        assert rejected >= len(data) - 2


def test_gt_bit_flips_are_rejected(group):
    data = group.random("GT").to_bytes()
    for i in range(0, len(data), 7):
        flipped = bytearray(data)
        flipped[i] ^= 0x80 >> (i % 8)
        with pytest.raises(InvalidEncoding):
            group.deserialize("GT", bytes(flipped))


def test_gt_rejects_zero_and_non_subgroup(group):
    with pytest.raises(InvalidEncoding):
        group.deserialize("GT", bytes(group.sizes["GT"]))


def test_mcl_rejects_points_outside_the_subgroup_and_off_the_curve(mcl_group):
    """Known-answer vectors built from the BLS12-381 equation y^2 = x^3 + 4 over Fp."""
    p = int(
        "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab",
        16,
    )

    def sqrt(a: int) -> int | None:
        s = pow(a, (p + 1) // 4, p)
        return s if s * s % p == a % p else None

    def encode(x: int, y_odd: bool) -> bytes:  # mcl: little-endian x, top bit = parity of y
        out = bytearray(x.to_bytes(48, "little"))
        out[47] |= 0x80 if y_odd else 0
        return bytes(out)

    x = 5
    while sqrt((x**3 + 4) % p) is None:
        x += 1
    y = sqrt((x**3 + 4) % p)
    with pytest.raises(InvalidEncoding):  # on the curve, but the cofactor is not cleared
        mcl_group.deserialize("G1", encode(x, bool(y & 1)))
    x_off = x + 1
    while sqrt((x_off**3 + 4) % p) is not None:
        x_off += 1
    with pytest.raises(InvalidEncoding):  # no point has this x
        mcl_group.deserialize("G1", encode(x_off, False))
    g = mcl_group.generator("G1").to_bytes()
    gx = int.from_bytes(g[:47] + bytes([g[47] & 0x7F]), "little")
    with pytest.raises(InvalidEncoding):  # x + p is not a canonical coordinate
        mcl_group.deserialize("G1", encode(gx + p, bool(g[47] & 0x80)))


def test_zr_serialization(group):
    a = group.random_zr()
    assert group.zr_from_bytes(group.zr_to_bytes(a)) == a
    assert group.zr_to_bytes(-1) == group.zr_to_bytes(group.order - 1)
    with pytest.raises(InvalidEncoding):
        group.zr_from_bytes(group.order.to_bytes(group.zr_size, "big"))
    with pytest.raises(InvalidEncoding):
        group.zr_from_bytes(b"\x01")


def test_hashes_are_deterministic_and_domain_separated(group):
    for hash_to in (group.hash_to_g1, group.hash_to_g2, group.hash_to_zr):
        a = hash_to(b"test/A", b"doctor")
        assert a == hash_to(b"test/A", b"doctor")
        assert a != hash_to(b"test/B", b"doctor")
        assert a != hash_to(b"test/A", b"nurse")
        # the tag and message boundary is part of the input: ("ab", "c") != ("a", "bc")
        assert hash_to(b"ab", b"c") != hash_to(b"a", b"bc")
    assert 0 <= group.hash_to_zr(b"t", b"m") < group.order
    assert not group.hash_to_g1(b"t", b"").is_identity()
    with pytest.raises(ValueError):
        group.hash_to_g1(b"", b"m")
    with pytest.raises(TypeError):
        group.hash_to_g1(b"t", "text")


def test_hashed_points_are_valid_subgroup_elements(group):
    for kind, hash_to in (("G1", group.hash_to_g1), ("G2", group.hash_to_g2)):
        x = hash_to(b"test", b"cardiology")
        assert group.deserialize(kind, x.to_bytes()) == x
        assert (x**group.order).is_identity()


def test_pair_prod_and_type_checks(group):
    g, h = group.generator("G1"), group.generator("G2")
    a, b = group.random_zr(), group.random_zr()
    pairs = [(g**a, h), (g, h**b)]
    assert group.pair_prod(pairs) == group.pair(g, h) ** (a + b)
    assert group.pair_prod([]).is_identity()
    with pytest.raises(TypeError):
        group.pair(h, g)
    with pytest.raises(TypeError):
        g * h


def test_random_elements_differ(group):
    assert group.random_zr() != group.random_zr()
    assert 0 < group.random_zr() < group.order
    assert group.random("G1") != group.random("G1")
