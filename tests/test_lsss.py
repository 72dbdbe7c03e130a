"""LSSS properties over random policies (depth <= 5, thresholds, comparisons, repeated attributes).

The oracle is a plain boolean evaluation written here, independent of the bit expansion; the
matrix is checked with linear algebra over Zr of each backend, independent of the tree plan.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import WIDTHS, flat, keys, literal_leaves, oracle, trees

from abe_health.errors import PolicyNotSatisfied
from abe_health.policy import (
    And,
    Attribute,
    Comparison,
    Or,
    Policy,
    compile_lsss,
    parse,
)


def in_row_span(rows: list[list[int]], target: list[int], p: int) -> bool:
    """Whether target is a linear combination of rows over Z_p (Gaussian elimination)."""

    def rank(vectors):
        m = [[x % p for x in v] for v in vectors]
        r = 0
        for col in range(len(target)):
            pivot = next((i for i in range(r, len(m)) if m[i][col]), None)
            if pivot is None:
                continue
            m[r], m[pivot] = m[pivot], m[r]
            inv = pow(m[r][col], -1, p)
            m[r] = [x * inv % p for x in m[r]]
            for i in range(len(m)):
                if i != r and m[i][col]:
                    f = m[i][col]
                    m[i] = [(x - f * y) % p for x, y in zip(m[i], m[r], strict=True)]
            r += 1
        return r

    return rank(rows) == rank([*rows, target])


def combination(lsss, omega, p):
    total = [0] * lsss.n_cols
    dense = lsss.dense()
    for row, w in omega.items():
        total = [(t + w * m) % p for t, m in zip(total, dense[row], strict=True)]
    return total


@settings(max_examples=300)
@given(tree=trees(5), data=st.data())
def test_reconstruction_iff_policy_satisfied(group, tree, data):
    key = data.draw(keys(tree))
    p = group.order
    policy = Policy(tree)
    assert parse(str(policy), WIDTHS) == tree  # canonical text round-trips
    lsss = policy.lsss
    expected = oracle(tree, key)
    event("satisfied" if expected else "not satisfied")
    event(f"rows {'<= 20' if lsss.n_rows <= 20 else '<= 80' if lsss.n_rows <= 80 else '> 80'}")
    assert lsss.satisfied_by(key.labels) is expected
    assert policy.is_satisfied_by(key) is expected
    held = [i for i, label in enumerate(lsss.rho) if label in key.labels]
    if not expected:
        with pytest.raises(PolicyNotSatisfied):
            lsss.coefficients(key.labels, p)
        if lsss.n_rows <= 80:  # the matrix itself must not leak the secret to these rows
            e1 = [1] + [0] * (lsss.n_cols - 1)
            assert not in_row_span([lsss.dense()[i] for i in held], e1, p)
        return
    omega = lsss.coefficients(key.labels, p)
    assert set(omega) <= set(held)
    assert combination(lsss, omega, p) == [1] + [0] * (lsss.n_cols - 1)
    secret = group.random_zr()
    shares = lsss.shares(secret, p)
    assert sum(w * shares[row] for row, w in omega.items()) % p == secret


@settings(max_examples=40)
@given(tree=trees(3), data=st.data())
def test_reconstruction_in_the_exponent(group, tree, data):
    """What decryption does: rebuild g^s from g^lambda_i of the rows the key covers."""
    key = data.draw(keys(tree))
    lsss = Policy(tree).lsss
    if not lsss.satisfied_by(key.labels):
        return
    g = group.generator("G1")
    secret = group.random_zr()
    shares = lsss.shares(secret, group.order)
    omega = lsss.coefficients(key.labels, group.order)
    rebuilt = group.identity("G1")
    for row, w in omega.items():
        rebuilt = rebuilt * (g ** shares[row]) ** w
    assert rebuilt == g**secret


bool_trees = st.recursive(
    literal_leaves,
    lambda sub: st.lists(sub, min_size=2, max_size=3).flatmap(
        lambda cs: st.sampled_from([flat(And, cs), flat(Or, cs)])
    ),
    max_leaves=12,
)


@settings(max_examples=150)
@given(tree=bool_trees, data=st.data())
def test_and_or_policies_reconstruct_with_unit_coefficients(tree, data):
    key = data.draw(keys(tree))
    lsss = compile_lsss(tree)
    if lsss.satisfied_by(key.labels):
        assert set(lsss.coefficients(key.labels, 2**127 - 1).values()) == {1}
        assert all(v in (-1, 1) for row in lsss.rows for _, v in row)


def _holds_with_rows(node, rows: set[int], counter: list[int]) -> bool:
    if isinstance(node, Attribute):
        counter[0] += 1
        return counter[0] - 1 in rows
    results = [_holds_with_rows(c, rows, counter) for c in node.children]
    need = {And: len(node.children), Or: 1}.get(type(node)) or node.k
    return sum(results) >= need


@settings(max_examples=100)
@given(tree=trees(3).filter(lambda t: not isinstance(t, Comparison)), data=st.data())
def test_coefficients_use_a_minimum_set_of_rows(tree, data):
    key = data.draw(keys(tree))
    policy = Policy(tree)
    lsss = policy.lsss
    if lsss.n_rows > 12 or not lsss.satisfied_by(key.labels):
        return
    held = [i for i, label in enumerate(lsss.rho) if label in key.labels]
    expanded = policy.expanded
    best = next(
        size
        for size in range(len(held) + 1)
        for subset in itertools.combinations(held, size)
        if _holds_with_rows(expanded, set(subset), [0])
    )
    assert len(lsss.coefficients(key.labels, 2**127 - 1)) == best
    assert len(lsss.rows_used(key.labels)) == best


def test_repeated_attributes_get_their_own_rows():
    lsss = Policy.parse("(a and b) or (a and c) or 2 of (a, b, c)").lsss
    assert lsss.rho.count("a") == 3
    assert lsss.satisfied_by({"a", "c"})
    assert not lsss.satisfied_by({"a"})


def test_threshold_shape():
    lsss = Policy.parse("2 of (a, b, c)").lsss
    assert (lsss.n_rows, lsss.n_cols) == (3, 2)
    assert lsss.dense() == [[1, 1], [1, 2], [1, 3]]
    assert not lsss.satisfied_by({"c"})
    omega = lsss.coefficients({"b", "c"}, 101)
    # Lagrange at 0 through x = 2, 3: 3/(3-2) and 2/(2-3)
    assert omega == {1: 3, 2: 101 - 2}


def test_shares_length_and_explicit_randomness():
    lsss = Policy.parse("a and b").lsss
    assert lsss.shares(5, 101, [7]) == [12, 101 - 7]
    with pytest.raises(ValueError):
        lsss.shares(5, 101, [])


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_threshold_rows_hide_the_secret_below_k_and_reveal_it_at_k(n):
    p = 2**127 - 1
    names = [f"x{j}" for j in range(n)]
    for k in range(1, n + 1):
        lsss = Policy.parse(f"{k} of ({', '.join(names)})").lsss
        dense = lsss.dense()
        e1 = [1] + [0] * (lsss.n_cols - 1)
        for size in (k - 1, k):
            for subset in itertools.combinations(range(n), size):
                spans = in_row_span([dense[i] for i in subset], e1, p) if subset else False
                assert spans is (size >= k), (k, n, subset)
                assert lsss.satisfied_by({names[i] for i in subset}) is (size >= k)
