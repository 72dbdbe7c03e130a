"""Policy-layer properties the threat model needs (the cloud writes headers, users edit keys).

1. Numeric values are dyadic prefixes: the labels of two keys (e.g. an old and a renewed key of
   one user, whose components combine by design) satisfy a comparison only if one key does.
"""

from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health.policy import Policy, parse_attributes

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


@st.composite
def widths_and_values(draw, count: int) -> tuple[int, list[int]]:
    width = draw(st.integers(1, 32))
    top = 2**width - 1
    value = st.one_of(st.integers(0, top), st.sampled_from(sorted({0, 1, top, top - 1, top // 2})))
    return width, [min(draw(value), top) for _ in range(count)]


def _satisfiable(op: str, c: int, top: int) -> bool:
    return not ((op == "<" and c == 0) or (op == ">" and c == top))


def _labels(width: int, value: int, authority: str) -> frozenset[str]:
    return parse_attributes([f"x = {value}{authority}"], {"x": width}).labels


@settings(max_examples=400)
@given(wv=widths_and_values(3), op=st.sampled_from(sorted(OPS)), authority=st.sampled_from(["", "@A"]))
def test_two_keys_satisfy_a_comparison_only_if_one_does(wv, op, authority):
    width, (a, b, c) = wv
    if not _satisfiable(op, c, 2**width - 1):
        return
    policy = Policy.parse(f"x {op} {c}{authority}", {"x": width})
    union = _labels(width, a, authority) | _labels(width, b, authority)
    assert policy.lsss.satisfied_by(union) is (OPS[op](a, c) or OPS[op](b, c)), (width, a, b, op, c)


@settings(max_examples=200)
@given(wv=widths_and_values(4), ops=st.tuples(st.sampled_from(sorted(OPS)), st.sampled_from(sorted(OPS))))
def test_two_keys_satisfy_an_or_of_comparisons_only_if_one_key_satisfies_a_side(wv, ops):
    width, (a, b, c1, c2) = wv
    top = 2**width - 1
    if not (_satisfiable(ops[0], c1, top) and _satisfiable(ops[1], c2, top)):
        return
    policy = Policy.parse(f"x {ops[0]} {c1} or x {ops[1]} {c2}", {"x": width})
    union = _labels(width, a, "") | _labels(width, b, "")
    expected = any(OPS[op](v, c) for v in (a, b) for op, c in zip(ops, (c1, c2), strict=True))
    assert policy.lsss.satisfied_by(union) is expected


@settings(max_examples=300)
@given(wv=widths_and_values(3), ops=st.tuples(st.sampled_from([">", ">="]), st.sampled_from(["<", "<="])))
def test_one_key_satisfies_a_range_iff_its_value_lies_in_it(wv, ops):
    """ANDs of comparisons are checked with ONE key: with two, a may satisfy one side and b the
    other, which is what the policy says (it asks for two facts, not for one value)."""
    width, (a, c1, c2) = wv
    top = 2**width - 1
    if not (_satisfiable(ops[0], c1, top) and _satisfiable(ops[1], c2, top)):
        return
    policy = Policy.parse(f"x {ops[0]} {c1} and x {ops[1]} {c2}", {"x": width})
    expected = OPS[ops[0]](a, c1) and OPS[ops[1]](a, c2)
    assert policy.lsss.satisfied_by(_labels(width, a, "")) is expected


def test_renewed_key_does_not_widen_an_old_one():
    """The attack on bits: 17 = 010001 and 46 = 101110 hold every bit of 63 between them."""
    widths = {"age": 6}
    policy = Policy.parse("age == 63", widths)
    old, new = parse_attributes(["age = 17"], widths), parse_attributes(["age = 46"], widths)
    assert not policy.lsss.satisfied_by(old.labels | new.labels)
    assert not Policy.parse("age > 50", widths).lsss.satisfied_by(old.labels | new.labels)
