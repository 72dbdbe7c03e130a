"""Numeric comparisons as bag-of-bits attributes (Bethencourt-Sahai-Waters, S&P 2007, section 4.3).

A key holding `age = 42` (width w) also holds one attribute per bit, `age#i=b` for i < w; a
comparison `age >= 18` becomes an AND/OR tree over those bit attributes that is satisfied exactly
by the values that satisfy the comparison. Dates count days since 1970-01-01. A key holds at most
one value per numeric attribute: two values would give both bits and satisfy any comparison.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import InvalidKey, PolicySyntaxError
from .ast import (
    BIT_MARK,
    DEFAULT_WIDTH,
    And,
    Attribute,
    Comparison,
    Node,
    Or,
    Threshold,
    numeric_subject,
)
from .parser import _DATE, _INT, parse_date


def bit_attribute(name: str, index: int, bit: int, authority: str | None) -> Attribute:
    """The attribute meaning "bit `index` of numeric attribute `name` is `bit`"."""
    return Attribute(f"{name}{BIT_MARK}{index}", str(bit), authority)


def comparison_tree(cmp: Comparison) -> Node:
    """An AND/OR tree over bit attributes equivalent to `cmp` for values in [0, 2^width).

    Walking from the most significant bit, `x >= c` is `x_i=1 or rest` where c_i = 0 and
    `x_i=1 and rest` where c_i = 1 (the rest compares the lower bits); the base case is true for
    the non-strict and false for the strict operators; `<`/`<=` mirror it with x_i=0.
    """

    def bit(i: int, b: int) -> Attribute:
        return bit_attribute(cmp.name, i, b, cmp.authority)

    if cmp.op == "==":
        return And(tuple(bit(i, (cmp.value >> i) & 1) for i in reversed(range(cmp.width))))
    greater = cmp.op in (">", ">=")
    node: Node | bool = cmp.op in (">=", "<=")
    for i in range(cmp.width):  # from the least significant bit up
        c_i = (cmp.value >> i) & 1
        x_wins = bit(i, 1 if greater else 0)  # the bit of x that beats c at position i
        joins_with_or = (c_i == 0) if greater else (c_i == 1)
        node = _combine(x_wins, node, joins_with_or)
    if node is True:
        # every value satisfies the comparison: require only that the key holds some value
        return Or((bit(0, 0), bit(0, 1)))
    if node is False:
        raise PolicySyntaxError(f"'{cmp}' can never be satisfied")
    return node


def _combine(leaf: Attribute, rest: Node | bool, use_or: bool) -> Node | bool:
    if use_or:
        if rest is True:
            return True
        if rest is False:
            return leaf
        children = rest.children if isinstance(rest, Or) else (rest,)
        return Or((leaf, *children))
    if rest is False:
        return False
    if rest is True:
        return leaf
    children = rest.children if isinstance(rest, And) else (rest,)
    return And((leaf, *children))


def expand(node: Node) -> Node:
    """Replace every comparison by its bit-attribute tree; other nodes are rebuilt unchanged."""
    if isinstance(node, Attribute):
        return node
    if isinstance(node, Comparison):
        return comparison_tree(node)
    children = tuple(expand(c) for c in node.children)
    if isinstance(node, Threshold):
        return Threshold(node.k, children)
    return type(node)(children)


def numeric_value(value: str) -> int | None:
    """The integer meaning of a key attribute value (an integer or a date), else None."""
    if _INT.match(value):
        return int(value)
    if _DATE.match(value):
        return parse_date(value)
    return None


def key_numbers(attributes: Iterable[Attribute]) -> dict[str, int]:
    """Numeric values of key attributes by subject (`name[@authority]`), refusing two values for one."""
    numbers: dict[str, int] = {}
    for attr in attributes:
        if attr.value is None:
            continue
        x = numeric_value(attr.value)
        if x is None:
            continue
        subject = numeric_subject(attr.name, attr.authority)
        if subject in numbers and numbers[subject] != x:
            raise InvalidKey(
                f"a key may hold one value of numeric attribute {subject}, "
                f"got {numbers[subject]} and {x}"
            )
        numbers[subject] = x
    return numbers


def key_labels(
    attributes: Iterable[Attribute], widths: Mapping[str, int] | None = None
) -> frozenset[str]:
    """All labels a key with these attributes holds: their own plus bit attributes of numeric values."""
    attributes = list(attributes)
    widths = widths or {}
    labels = {attr.label for attr in attributes}
    numeric = {numeric_subject(a.name, a.authority): a for a in attributes if a.value is not None}
    for subject, x in key_numbers(attributes).items():
        attr = numeric[subject]
        width = widths.get(attr.name, DEFAULT_WIDTH)
        if x >> width:
            raise InvalidKey(f"value {attr.value} of {subject} does not fit in {width} bits")
        labels.update(
            bit_attribute(attr.name, i, (x >> i) & 1, attr.authority).label for i in range(width)
        )
    return frozenset(labels)
