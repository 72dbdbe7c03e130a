"""Numeric comparisons as dyadic prefixes (range attributes).

A key holding `age = 42` with width w holds, for every level L = 0..w, the prefix label
`age#pL=P` with P = 42 >> L (`age#p0=42`, `age#p1=21`, ..., `age#p{w}=0`): "the value lies in the
dyadic interval [P * 2^L, (P + 1) * 2^L)". A comparison becomes the OR of the prefix labels of the
minimal dyadic cover of the values in [0, 2^w) that satisfy it: at most 2w labels (a one-sided
range needs at most w), `==` is the single level-0 label, and a comparison every value satisfies
is the level-w label `age#p{w}=0` ("holds some value"); one no value satisfies is refused.

Each label of a cover names an interval inside the satisfying range, so labels pooled from
several keys satisfy a comparison only if one of those keys' values does. The bag-of-bits
encoding this replaces (one label per bit, BSW07 section 4.3) lacked that: the bits of 17 and 46,
held by an old and a renewed key of one user whose components combine by design (RW15 keys of one
GID), include every bit of 63. A key still holds at most one value per numeric attribute.
Dates count days since 1970-01-01. The authority suffix `@A` of a numeric attribute carries over
to its prefix labels (`age#p3=5@A`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import InvalidKey, PolicySyntaxError
from .ast import (
    BIT_MARK,
    DATE_RE,
    DEFAULT_WIDTH,
    INT_RE,
    MAX_NUMBER_DIGITS,
    Attribute,
    Comparison,
    Node,
    Or,
    Threshold,
    check_width,
    numeric_subject,
    parse_date,
    prefix_attribute,
)

__all__ = [
    "comparison_range",
    "comparison_tree",
    "dyadic_cover",
    "expand",
    "key_labels",
    "key_numbers",
    "numeric_value",
    "prefix_attribute",
]


def comparison_range(cmp: Comparison) -> tuple[int, int] | None:
    """The values [lo, hi] in [0, 2^width) that satisfy `cmp`, or None when none does."""
    top = (1 << cmp.width) - 1
    c = cmp.value
    lo, hi = {
        "<": (0, c - 1),
        "<=": (0, c),
        ">": (c + 1, top),
        ">=": (c, top),
        "==": (c, c),
    }[cmp.op]
    lo, hi = max(lo, 0), min(hi, top)
    return (lo, hi) if lo <= hi else None


def dyadic_cover(lo: int, hi: int, width: int) -> list[tuple[int, int]]:
    """The minimal list of (level, prefix) whose intervals [prefix << level, (prefix + 1) << level)
    partition [lo, hi] (0 <= lo <= hi < 2^width): greedily the largest aligned block at lo."""
    cover = []
    while lo <= hi:
        aligned = (lo & -lo).bit_length() - 1 if lo else width  # trailing zero bits of lo
        level = min(aligned, width, (hi - lo + 1).bit_length() - 1)
        cover.append((level, lo >> level))
        lo += 1 << level
    return cover


def comparison_tree(cmp: Comparison) -> Node:
    """The OR of the prefix labels covering the values that satisfy `cmp` (one label alone when
    the cover is a single interval); PolicySyntaxError when no value satisfies it."""
    try:
        width = check_width(cmp.name, cmp.width)
    except ValueError as exc:
        raise PolicySyntaxError(str(exc)) from None
    bounds = comparison_range(cmp) if 0 <= cmp.value < (1 << width) else None
    if bounds is None:
        raise PolicySyntaxError(f"'{cmp}' can never be satisfied")
    labels = [prefix_attribute(cmp.name, level, prefix, cmp.authority)
              for level, prefix in dyadic_cover(*bounds, width)]
    return labels[0] if len(labels) == 1 else Or(tuple(labels))


def expand(node: Node) -> Node:
    """Replace every comparison by its prefix-label tree; other nodes are rebuilt unchanged."""
    if isinstance(node, Attribute):
        return node
    if isinstance(node, Comparison):
        return comparison_tree(node)
    children = tuple(expand(c) for c in node.children)
    if isinstance(node, Threshold):
        return Threshold(node.k, children)
    return type(node)(children)


def numeric_value(value: str) -> int | None:
    """The integer meaning of a key attribute value (an integer or a date), else None; InvalidKey
    for a digit string of more than MAX_NUMBER_DIGITS significant digits (no width holds it)."""
    if INT_RE.match(value):
        digits = value.lstrip("0") or "0"
        if len(digits) > MAX_NUMBER_DIGITS:
            raise InvalidKey(f"numeric value of {len(digits)} digits: over MAX_NUMBER_DIGITS = "
                             f"{MAX_NUMBER_DIGITS}")
        return int(digits)
    if DATE_RE.match(value):
        return parse_date(value)
    return None


def key_numbers(attributes: Iterable[Attribute]) -> dict[str, int]:
    """Numeric values of key attributes by subject (`name[@authority]`), refusing two values for one.

    Internal attributes (names with `#`, e.g. revocation epochs) are not numeric attributes."""
    numbers: dict[str, int] = {}
    for attr in attributes:
        if attr.value is None or BIT_MARK in attr.name:
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
    """All labels a key with these attributes holds: their own, plus the width + 1 prefix labels
    `name#pL=(x >> L)[@authority]` (L = 0..width) of each numeric value x."""
    attributes = list(attributes)
    widths = widths or {}
    labels = {attr.label for attr in attributes}
    numeric = {numeric_subject(a.name, a.authority): a for a in attributes
               if a.value is not None and BIT_MARK not in a.name}
    for subject, x in key_numbers(attributes).items():
        attr = numeric[subject]
        try:
            width = check_width(attr.name, widths.get(attr.name, DEFAULT_WIDTH))
        except ValueError as exc:
            raise InvalidKey(str(exc)) from None
        if x >> width:
            raise InvalidKey(f"value {attr.value} of {subject} does not fit in {width} bits")
        labels.update(
            prefix_attribute(attr.name, level, x >> level, attr.authority).label
            for level in range(width + 1)
        )
    return frozenset(labels)
