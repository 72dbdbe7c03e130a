"""Numeric and date comparisons through bag-of-bits attributes, checked at every boundary."""

from __future__ import annotations

import datetime as dt
import operator

import pytest

from abe_health.errors import PolicySyntaxError
from abe_health.policy import Policy, parse_attributes

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
