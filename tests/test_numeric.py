"""Numeric and date comparisons through dyadic prefix labels, checked at every boundary."""

from __future__ import annotations

import datetime as dt
import itertools
import operator

import pytest

from abe_health.errors import InvalidKey, PolicySyntaxError
from abe_health.policy import Attribute, Comparison, Or, Policy, comparison_tree, expand, parse_attributes
from abe_health.policy.numeric import dyadic_cover

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}
TOP32 = 2**32 - 1


def _never(op: str, c: int, top: int) -> bool:
    return (op == "<" and c == 0) or (op == ">" and c == top)


def _check(op: str, c: int, x: int, widths: dict[str, int] | None = None) -> None:
    policy = Policy.parse(f"n {op} {c}", widths)
    key = parse_attributes([f"n = {x}"], widths)
    expected = OPS[op](x, c)
    assert policy.lsss.satisfied_by(key.labels) is expected, (op, c, x)
    assert policy.is_satisfied_by(key) is expected
    if expected:
        omega = policy.lsss.coefficients(key.labels, 2**127 - 1)
        assert all(policy.lsss.rho[row] in key.labels for row in omega)


@pytest.mark.parametrize("op", OPS)
def test_exhaustive_at_width_4(op):
    widths = {"n": 4}
    for c in range(16):
        if _never(op, c, 15):
            with pytest.raises(PolicySyntaxError, match="can never be satisfied"):
                Policy.parse(f"n {op} {c}", widths)
            continue
        for x in range(16):
            _check(op, c, x, widths)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("c", [0, 1, 2, 18, 255, 256, 12345678, 2**31 - 1, 2**31, TOP32 - 1, TOP32])
def test_boundaries_at_width_32(op, c):
    if _never(op, c, TOP32):
        pytest.skip("refused at parse time (tested in test_policy_parser)")
    for x in {c - 1, c, c + 1, 0, TOP32}:
        if 0 <= x <= TOP32:
            _check(op, c, x)


def test_comparison_needs_a_value_in_the_key():
    policy = Policy.parse("age >= 0")
    assert policy.lsss.satisfied_by(parse_attributes(["age = 0"]).labels)
    assert not policy.lsss.satisfied_by(parse_attributes(["doctor"]).labels)
    assert not policy.lsss.satisfied_by(parse_attributes(["height = 3"]).labels)


def test_dates():
    policy = Policy.parse("valid_until >= 2026-11-22")
    for day, ok in (("2026-11-21", False), ("2026-11-22", True), ("2026-11-23", True),
                    ("1970-01-01", False), ("2100-01-01", True)):
        key = parse_attributes([f"valid_until = {day}"])
        assert policy.lsss.satisfied_by(key.labels) is ok, day
    before = Policy.parse("born < 2000-01-01")
    assert before.lsss.satisfied_by(parse_attributes(["born = 1999-12-31"]).labels)
    assert not before.lsss.satisfied_by(parse_attributes(["born = 2000-01-01"]).labels)
    expiring = dt.date(2026, 11, 22)
    assert (expiring - dt.date(1970, 1, 1)).days == parse_attributes(
        ["valid_until = 2026-11-22"]).numbers["valid_until"]


def test_authority_scopes_numeric_attributes():
    policy = Policy.parse("valid_until >= 2026-11-22@ER")
    assert policy.lsss.satisfied_by(parse_attributes(["valid_until = 2026-12-01@ER"]).labels)
    assert not policy.lsss.satisfied_by(parse_attributes(["valid_until = 2026-12-01"]).labels)
    assert not policy.lsss.satisfied_by(parse_attributes(["valid_until = 2026-12-01@X"]).labels)


def test_literal_and_numeric_equality_both_work():
    key = parse_attributes(["nurse", "ward = 3"])
    assert Policy.parse("nurse and ward = 3").lsss.satisfied_by(key.labels)
    assert Policy.parse("nurse and ward == 3").lsss.satisfied_by(key.labels)
    assert not Policy.parse("ward = 4 or ward == 4").lsss.satisfied_by(key.labels)


def test_one_value_cannot_satisfy_two_disjoint_ranges():
    policy = Policy.parse("age < 18 and age > 65")
    for x in (0, 17, 18, 40, 65, 66, TOP32):
        assert not policy.lsss.satisfied_by(parse_attributes([f"age = {x}"]).labels)
    # kept as written (one key never satisfies it), but two pooled keys would: RW15 refuses it
    with pytest.raises(PolicySyntaxError, match="can never be satisfied by one value of age"):
        policy.check_pooled()


def test_ranges_exhaustive_at_width_4():
    widths = {"n": 4}
    for lo in range(16):
        for hi in range(lo, 16):
            policy = Policy.parse(f"n in {lo}..{hi}", widths)
            assert policy.lsss.rho == tuple(
                f"n#p{level}={prefix}" for level, prefix in dyadic_cover(lo, hi, 4))
            assert Policy.parse(f"n >= {lo} and n <= {hi}", widths).lsss.rho == policy.lsss.rho
            for x in range(16):
                key = parse_attributes([f"n = {x}"], widths)
                assert policy.lsss.satisfied_by(key.labels) is (lo <= x <= hi), (lo, hi, x)


def test_date_ranges():
    policy = Policy.parse("emergency in 2026-06-01..2026-06-30@ER")
    same = Policy.parse("emergency >= 2026-06-01@ER and emergency <= 2026-06-30@ER")
    assert policy.lsss.rho == same.lsss.rho and len(policy.lsss.rho) == 6
    for day, ok in (("2026-05-31", False), ("2026-06-01", True), ("2026-06-15", True),
                    ("2026-06-30", True), ("2026-07-01", False)):
        assert policy.lsss.satisfied_by(parse_attributes([f"emergency = {day}@ER"]).labels) is ok


def test_parts_of_one_subject_merge_under_an_and():
    """The compiler turns the parts of one subject under an AND into their exact set, wherever
    they stand among other children; ORs are left as written."""
    w = {"ward": 4}
    assert expand(Policy.parse("nurse and ward >= 3 and doctor and ward <= 5", w).tree) == \
        expand(Policy.parse("nurse and ward in 3..5 and doctor", w).tree)
    assert expand(Policy.parse("ward > 2 and ward < 6", w).tree) == \
        expand(Policy.parse("ward in 3..5", w).tree)
    # a threshold over one subject: [3, 5] and {9}
    assert Policy.parse("2 of (ward >= 3, ward <= 5, ward == 9)", w).lsss.rho == \
        ("ward#p0=3", "ward#p1=2", "ward#p0=9")
    # different authorities or widths are different subjects: not merged
    assert Policy.parse("ward >= 3@A and ward <= 5@B", w).lsss.rho == \
        Policy.parse("ward >= 3@A", w).lsss.rho + Policy.parse("ward <= 5@B", w).lsss.rho
    # an OR of parts of one subject keeps its rows (sound as it is; headers keep decrypting)
    assert Policy.parse("ward <= 1 or ward >= 14", w).lsss.rho == ("ward#p1=0", "ward#p1=7")


def test_prefix_labels_of_a_key():
    """A value v of width w gives the labels `n#pL=(v >> L)` for L = 0..w, no more."""
    key = parse_attributes(["age = 42@A"], {"age": 6})
    assert key.labels == {"age=42@A", "age#p0=42@A", "age#p1=21@A", "age#p2=10@A", "age#p3=5@A",
                          "age#p4=2@A", "age#p5=1@A", "age#p6=0@A"}


def test_comparison_compiles_to_the_minimal_dyadic_cover():
    w = {"age": 6}
    assert expand(Policy.parse("age == 42", w).tree) == Attribute("age#p0", "42")
    assert comparison_tree(Comparison("age", ">=", 0, width=6)) == Attribute("age#p6", "0")
    assert comparison_tree(Comparison("age", "<=", 63, width=6)) == Attribute("age#p6", "0")
    # [18, 63] = [18, 19] + [20, 23] + [24, 31] + [32, 63]
    assert expand(Policy.parse("age >= 18", w).tree) == Or((
        Attribute("age#p1", "9"), Attribute("age#p2", "5"), Attribute("age#p3", "3"),
        Attribute("age#p5", "1")))
    assert Policy.parse("age < 18@A", w).lsss.rho == ("age#p4=0@A", "age#p1=8@A")
    assert Policy.parse('"x ray" > 0', {"x ray": 2}).lsss.rho == ('"x ray#p0"=1', '"x ray#p1"=1')


@pytest.mark.parametrize("width", [1, 2, 5, 8])
def test_dyadic_cover_is_a_minimal_partition(width):
    top = 2**width - 1
    for lo in range(top + 1):
        for hi in range(lo, top + 1):
            cover = dyadic_cover(lo, hi, width)
            covered = [x for level, p in cover for x in range(p << level, (p + 1) << level)]
            assert covered == list(range(lo, hi + 1))
            assert len(cover) <= 2 * width
            # minimal: no two neighbours merge into one aligned block
            for (l1, p1), (l2, p2) in itertools.pairwise(cover):
                assert not (l1 == l2 and p1 % 2 == 0 and p2 == p1 + 1)


def test_cover_sizes_at_width_64():
    assert len(Policy.parse("n >= 1", {"n": 64}).lsss.rho) == 64
    assert len(Policy.parse("n < 18446744073709551615", {"n": 64}).lsss.rho) == 64


def test_widths_are_bounded():
    for bad in (0, 65, 10**6, "8", True):
        with pytest.raises(PolicySyntaxError, match=r"must be 1\.\.64 bits"):
            Policy.parse("n > 1", {"n": bad})  # type: ignore[dict-item]
        with pytest.raises(InvalidKey, match=r"must be 1\.\.64 bits"):
            parse_attributes(["n = 1"], {"n": bad})  # type: ignore[dict-item]
