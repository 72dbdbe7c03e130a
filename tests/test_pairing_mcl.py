"""The mcl backend calls mcl's C API through ctypes; its values must be pymcl's own, bit for bit
(the frozen vectors depend on it), and its multi-pairing must equal the product of pairings."""

from __future__ import annotations

import pymcl
import pytest

from abe_health.hazmat.pairing import get_group

GROUP = get_group("mcl")


def test_generators_hashes_and_pairings_equal_pymcls():
    assert GROUP.generator("G1").to_bytes() == bytes(pymcl.g1.serialize())
    assert GROUP.generator("G2").to_bytes() == bytes(pymcl.g2.serialize())
    assert GROUP.generator("GT").to_bytes() == bytes(pymcl.pairing(pymcl.g1, pymcl.g2).serialize())
    for msg in (b"", b"doctor", b"\x00" * 100):
        assert GROUP._hash_to_point("G1", msg).to_bytes() == bytes(pymcl.G1.hash(msg).serialize())
        assert GROUP._hash_to_point("G2", msg).to_bytes() == bytes(pymcl.G2.hash(msg).serialize())
    a, b = GROUP.random_zr(), GROUP.random_zr()
    fa, fb = (pymcl.Fr.deserialize(x.to_bytes(32, "little")) for x in (a, b))
    ours = GROUP.pair(GROUP.generator("G1") ** a, GROUP.generator("G2") ** b)
    theirs = pymcl.pairing(pymcl.g1 * fa, pymcl.g2 * fb)
    assert ours.to_bytes() == bytes(theirs.serialize())
    assert (ours ** a).to_bytes() == bytes((theirs ** fa).serialize())


@pytest.mark.parametrize("n", [1, 2, 6, 40])
def test_multi_pairing_equals_product_of_pairings(n):
    pairs = [(GROUP.random("G1"), GROUP.random("G2")) for _ in range(n)]
    expected = GROUP.identity("GT")
    for a, b in pairs:
        expected = expected * GROUP.pair(a, b)
    assert GROUP.pair_prod(pairs) == expected
    dropped = GROUP.pair(*pairs[0])
    pairs[0] = (GROUP.identity("G1"), pairs[0][1])  # the identity contributes 1
    assert GROUP.pair_prod(pairs) == expected / dropped


@pytest.mark.parametrize("kind", ["G1", "G2"])
def test_multi_exp_and_product(kind):
    xs = [GROUP.random(kind) for _ in range(5)]
    es = [GROUP.random_zr(), 1, -1, 0, 2**300 + 5]
    expected = GROUP.identity(kind)
    for x, e in zip(xs, es, strict=True):
        expected = expected * x**e
    assert GROUP.multi_exp(xs, es) == expected
    assert GROUP.product(xs) == xs[0] * xs[1] * xs[2] * xs[3] * xs[4]
    with pytest.raises(TypeError):
        GROUP.product([xs[0], GROUP.random("GT")])


def test_shipped_column_table_is_the_hashes():
    """fame_columns.bin holds exactly H(0jlt) of FAME CP and KP: recomputed here, so the table
    can only save time, never change a ciphertext."""
    from abe_health.hazmat.schemes import get_scheme
    from abe_health.hazmat.schemes.fame import TABLE_FILE, column_table

    cp, kp = get_scheme("fame"), get_scheme("fame-kp")
    assert TABLE_FILE.read_bytes() == column_table(cp) + column_table(kp)
    for scheme in (cp, kp):
        scheme._hash_cache.clear()
        for j, row, t in ((0, 0, 0), (5, 2, 1), (63, 1, 0), (64, 0, 1)):
            assert scheme._col(j, row, t) == GROUP.hash_to_g1(scheme.DST + b"C" + bytes([row, t]),
                                                              j.to_bytes(4, "big"))
