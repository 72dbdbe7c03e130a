"""Hypothesis strategies shared by the policy, LSSS and scheme tests."""

from __future__ import annotations

import operator

from hypothesis import strategies as st

from abe_health.policy import And, Attribute, Comparison, KeyAttributes, Or, Threshold, parse_attributes
from abe_health.policy.ast import days_to_date, leaves

WIDTHS = {"age": 6, "day": 16, "score": 32}
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}

literal_leaves = st.builds(
    Attribute,
    name=st.sampled_from(["a", "b", "c", "d", "nurse"]),
    value=st.sampled_from([None, None, "1", "x"]),
    authority=st.sampled_from([None, None, "A", "B"]),
)


@st.composite
def comparison_leaves(draw):
    name = draw(st.sampled_from(sorted(WIDTHS)))
    top = 2 ** WIDTHS[name] - 1
    op = draw(st.sampled_from(sorted(OPS)))
    low = 1 if op == "<" else 0
    high = top - 1 if op == ">" else top
    value = draw(st.one_of(st.sampled_from([low, high]), st.integers(low, high)))
    authority = draw(st.sampled_from([None, "A"]))
    return Comparison(name, op, value, name == "day", authority, WIDTHS[name])


leaves_st = st.one_of(literal_leaves, literal_leaves, comparison_leaves())


def flat(gate, children):
    flat = []
    for child in children:
        flat.extend(child.children if type(child) is gate else (child,))
    return gate(tuple(flat))


def trees(depth: int):
    if depth == 0:
        return leaves_st
    sub = trees(depth - 1)
    kids = st.lists(sub, min_size=2, max_size=3)
    wide = st.lists(sub, min_size=2, max_size=5)  # k of n with n > 3 exercises degree >= 2
    return st.one_of(
        leaves_st,
        kids.map(lambda cs: flat(And, cs)),
        kids.map(lambda cs: flat(Or, cs)),
        wide.flatmap(lambda cs: st.integers(1, len(cs)).map(lambda k: Threshold(k, tuple(cs)))),
    )


@st.composite
def keys(draw, tree=None):
    """Key attributes; given a tree, mostly its own leaves and values near its constants."""
    literals = draw(st.lists(literal_leaves, max_size=4))
    near: dict[tuple[str, str | None], list[int]] = {}
    if tree is not None:
        for leaf in leaves(tree):
            if isinstance(leaf, Attribute):
                if draw(st.integers(0, 9)) < 8:
                    literals.append(leaf)
            else:
                near.setdefault((leaf.name, leaf.authority), []).extend(
                    v for v in (leaf.value - 1, leaf.value, leaf.value + 1) if v >= 0
                )
    numeric = []
    for name in sorted(WIDTHS):
        top = 2 ** WIDTHS[name] - 1
        for authority in (None, "A"):
            candidates = [v for v in near.get((name, authority), []) if v <= top]
            if not draw(st.booleans()) and not candidates:
                continue
            if candidates and draw(st.booleans()):
                x = draw(st.sampled_from(candidates))
            else:
                x = draw(st.integers(0, top))
            value = days_to_date(x) if name == "day" else str(x)
            numeric.append(Attribute(name, value, authority))
    return parse_attributes(literals + numeric, WIDTHS)


def oracle(node, key: KeyAttributes) -> bool:
    """Plain evaluation: attributes by label, comparisons on the integers themselves."""
    if isinstance(node, Attribute):
        return node.label in key.labels
    if isinstance(node, Comparison):
        subject = node.name + (f"@{node.authority}" if node.authority else "")
        return subject in key.numbers and OPS[node.op](key.numbers[subject], node.value)
    hits = sum(oracle(child, key) for child in node.children)
    need = {And: len(node.children), Or: 1}.get(type(node)) or node.k
    return hits >= need
