"""Numeric comparisons and ranges as dyadic prefixes (range attributes), and the rule that keeps
them sound when keys combine.

Encoding. A key holding `age = 42` with width w holds, for every level L = 0..w, the prefix label
`age#pL=P` with P = 42 >> L (`age#p0=42`, `age#p1=21`, ..., `age#p{w}=0`): "the value lies in the
dyadic interval [P * 2^L, (P + 1) * 2^L)". A comparison (`age >= 65`) or range (`age in 18..65`,
inclusive) becomes the OR of the prefix labels of the minimal dyadic cover of the values in
[0, 2^w) that satisfy it: at most 2w labels (a one-sided range needs at most w), `==` is the
single level-0 label, and a comparison every value satisfies is the level-w label `age#p{w}=0`
("holds some value"); one no value satisfies is refused. Dates count days since 1970-01-01. The
authority suffix `@A` of a numeric attribute carries over to its prefix labels (`age#p3=5@A`).

Each label of a cover names an interval inside the satisfying range, so labels pooled from
several keys satisfy ONE comparison only if one of those keys' values does. The bag-of-bits
encoding this replaces (one label per bit, BSW07 section 4.3) lacked even that: the bits of 17
and 46 include every bit of 63. A key holds at most one value per numeric attribute.

Two constraints on one subject. Keys can pool: in RW15 the attributes one authority issues to
one GID accumulate across issuances (the scheme's model), so a user with `ward = 2` and `ward = 7`
from two issuances holds the labels of both. A policy that constrains `ward` twice where both
constraints must hold (`ward >= 3 and ward <= 5`) is then satisfied by 7 for one side and 2 for
the other, though neither value lies in [3, 5]. Two rules close this, for every gate that needs
two or more children (AND, threshold k >= 2):

1. Merge (every scheme, in `expand`, counted as merged by the parser's limits). A subtree whose
   leaves are all comparisons or ranges on one subject (same name, authority and width) is a set
   of values; under such a gate it compiles to the dyadic cover of that exact set
   (`x >= 3 and x <= 5` -> the labels of `x in 3..5`; `2 of (x >= 3, x <= 5, x == 9)` -> the
   cover of [3, 5] and {9}), so ONE label from ONE key certifies the whole conjunction. Under an
   AND, such children of one subject are merged into their intersection wherever they stand
   among other children: `nurse@H and ward >= 3@H and ward <= 5@H` compiles exactly as
   `nurse@H and ward in 3..5@H`. For one key this is an equivalence (it holds one value per
   subject), so no single-key decision changes; a set no value lies in is left as written. ORs
   are left as written: an OR of covers is satisfied only by a value in one of them.
2. Refuse what cannot be merged (`check_pooled`, called by RW15 when it encrypts): two children of
   such a gate constraining one subject differently, as in `(ward >= 3 or doctor) and ward <= 5`,
   `2 of (ward >= 3, ward <= 5, nurse)` or `ward = 3 and ward >= 2` (an integer or date literal
   counts), and sets no value lies in (`x < 3 and x > 5`), with a PolicySyntaxError naming the
   subject and both parts and suggesting `name in LO..HI`. Two children with the same constraint
   (the same set of values, or the same literal label) are allowed: whichever key satisfies one
   satisfies the other. Keys of the single-authority schemes never pool (each key's components
   share its own randomness), so they keep these shapes, with the one-key meaning.

Why this is sound for pooled keys: after (1) and (2), any two leaves of one subject that one
satisfying row set can use carry the same constraint (their lowest common gate needs two
children, so (2) made them equal; under an OR only one child is used). One key satisfying that
constraint fixes one value of the subject satisfying every leaf used, so labels pooled from keys
satisfy the compiled policy only if some choice of ONE held value per subject satisfies it; for a
policy on one subject, iff one key alone does (property tests in tests/test_policy_security.py,
end to end through RW15 in tests/test_ma.py). Why refuse (2) instead of rewriting it: splitting
`(ward >= 3 or doctor) and ward <= 5` exactly needs a case split on the subject's value (an OR
over value intervals, each a copy of the rest of the policy), which multiplies rows per subject and
nests across subjects, and a hostile header could make the decryptor do that work; the refused
shapes have a plain equivalent the user can write (`ward in 3..5 or (doctor and ward <= 5)`),
and the message says which subject to rewrite. Compatibility: a header written before (1) under
a policy (1) rewrites no longer decrypts (its rows do not match: encrypt it again); one written
under a shape (2) refuses still opens, also with pooled keys: encrypt it again too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..errors import InvalidKey, PolicySyntaxError
from .ast import (
    BIT_MARK,
    DATE_RE,
    DEFAULT_WIDTH,
    INT_RE,
    MAX_NUMBER_DIGITS,
    MAX_WIDTH,
    RANGE_OP,
    And,
    Attribute,
    Comparison,
    Node,
    Or,
    Threshold,
    check_width,
    numeric_subject,
    parse_date,
    prefix_attribute,
    quote,
    threshold_of,
)

__all__ = [
    "GatePlan",
    "Merged",
    "Profile",
    "check_pooled",
    "comparison_range",
    "comparison_tree",
    "cover_bounds",
    "cover_size",
    "dyadic_cover",
    "expand",
    "gate_profile",
    "key_labels",
    "key_numbers",
    "leaf_profile",
    "numeric_value",
    "plan_gate",
    "prefix_attribute",
    "set_tree",
]

#: a set of values: sorted, disjoint, non-adjacent inclusive intervals (lo, hi)
Intervals = tuple[tuple[int, int], ...]
#: a numeric subject as the compiler keys it: (name, authority, width)
NumericKey = tuple[str, str | None, int]
#: what a subtree requires of one subject: ("set", width, values), ("label", label) or MANY
Token = tuple[object, ...]
#: the token of a subtree that constrains one subject in two different ways
MANY: Token = ("many",)


def comparison_range(cmp: Comparison) -> tuple[int, int] | None:
    """The values [lo, hi] in [0, 2^width) that satisfy `cmp`, or None when none does."""
    top = (1 << cmp.width) - 1
    c = cmp.value
    if cmp.op == RANGE_OP:
        lo, hi = c, (c if cmp.high is None else cmp.high)
    else:
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


def cover_size(values: Intervals, width: int) -> int:
    """How many prefix labels (LSSS rows) the cover of a set of values takes."""
    return sum(len(dyadic_cover(lo, hi, width)) for lo, hi in values)


def cover_bounds(cmp: Comparison) -> tuple[int, int]:
    """(fewest, most) labels `cmp` covers over every width its constants fit in (1..MAX_WIDTH),
    for bounding a header's rows before the widths are known: the fewest at the narrowest width,
    the most at MAX_WIDTH (a cover only grows with the width: `>=` gains the new top block, and
    the others change only when the narrowest top ends their range, which one block covers)."""
    high = cmp.value + (cmp.op == ">") if cmp.high is None else max(cmp.value, cmp.high)
    counts = []
    for width in (max(1, high.bit_length()), MAX_WIDTH):
        bounds = comparison_range(replace(cmp, width=width))
        counts.append(len(dyadic_cover(*bounds, width)) if bounds else 0)
    return counts[0], counts[1]


def set_tree(key: NumericKey, values: Intervals) -> Node:
    """The OR of the prefix labels covering `values` (one label alone when the cover is one
    interval); the labels of a single interval are exactly those of the comparison or range."""
    name, authority, width = key
    labels = [prefix_attribute(name, level, prefix, authority)
              for lo, hi in values for level, prefix in dyadic_cover(lo, hi, width)]
    if not labels:
        raise PolicySyntaxError(f"no value of {numeric_subject(name, authority)} satisfies this")
    return labels[0] if len(labels) == 1 else Or(tuple(labels))


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
    return set_tree((cmp.name, cmp.authority, width), (bounds,))


# -- sets of values ------------------------------------------------------------------------------


def _normalized(intervals: Iterable[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _at_least(k: int, sets: Sequence[Intervals]) -> Intervals:
    """The values lying in at least k of `sets` (k = 1: union, k = len: intersection)."""
    events: dict[int, int] = {}
    for values in sets:
        for lo, hi in values:
            events[lo] = events.get(lo, 0) + 1
            events[hi + 1] = events.get(hi + 1, 0) - 1
    out: list[tuple[int, int]] = []
    count, start = 0, 0
    for point in sorted(events):
        before = count
        count += events[point]
        if before < k <= count:
            start = point
        elif count < k <= before:
            out.append((start, point - 1))
    return _normalized(out)


# -- the rule for gates (see the module docstring) ---------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What the rule needs to know of a subtree: the one subject and set of values when every
    leaf is a comparison on one subject (`pure`), and, per numeric subject below, the constraint
    it puts on it (MANY when two different ones)."""

    pure: NumericKey | None = None
    values: Intervals = ()
    touches: Mapping[tuple[str, str | None], Token] = field(default_factory=dict)


@dataclass(frozen=True)
class Merged:
    """Children of an AND (indexes) that constrain one subject, merged into the cover of `values`."""

    children: tuple[int, ...]
    key: NumericKey
    values: Intervals


@dataclass(frozen=True)
class GatePlan:
    """How a gate compiles: wholly to the cover of one set (`cover`), or to a gate over `units`
    (child indexes, and Merged groups standing where their first child stood)."""

    cover: tuple[NumericKey, Intervals] | None
    units: tuple[int | Merged, ...] = ()


def _set_token(key: NumericKey, values: Intervals) -> Token:
    return ("set", key[2], values)


def numeric_literal_subject(attr: Attribute) -> str | None:
    """The numeric subject an attribute literal such as `ward = 3` or `emergency = 2026-12-31`
    constrains (a key holds one value per subject), else None."""
    if attr.value is None or BIT_MARK in attr.name:
        return None
    try:
        if numeric_value(attr.value) is None:
            return None
    except (InvalidKey, PolicySyntaxError):  # too many digits, or no such day: no key holds it
        return None
    return numeric_subject(attr.name, attr.authority)


def leaf_profile(leaf: Attribute | Comparison) -> Profile:
    """The profile of a leaf: a comparison is pure (its set is empty when no value satisfies
    it: refused elsewhere); a numeric literal constrains its subject by its label."""
    if isinstance(leaf, Comparison):
        key = (leaf.name, leaf.authority, leaf.width)
        bounds = comparison_range(leaf) if 0 <= leaf.value and leaf.value >> leaf.width == 0 else None
        values = (bounds,) if bounds else ()
        return Profile(key, values, {key[:2]: _set_token(key, values)})
    numeric = numeric_literal_subject(leaf) is not None
    return Profile(touches={(leaf.name, leaf.authority): ("label", leaf.label)} if numeric else {})


def gate_profile(node: And | Or | Threshold, children: Sequence[Profile]) -> Profile:
    """The profile of a gate from its children's."""
    k = threshold_of(node)
    key = children[0].pure
    if key is not None and all(c.pure == key for c in children):
        values = _at_least(k, [c.values for c in children])
        return Profile(key, values, {key[:2]: _set_token(key, values)})
    touches: dict[tuple[str, str | None], Token] = {}
    for child in children:
        for subject, token in child.touches.items():
            seen = touches.setdefault(subject, token)
            if seen != token:
                touches[subject] = MANY
    return Profile(touches=touches)


def _short(node: Node) -> str:
    text = str(node)
    return text if len(text) <= 60 else text[:57] + "..."


def plan_gate(node: And | Or | Threshold, children: Sequence[Profile], profile: Profile,
              *, strict: bool = False) -> GatePlan:
    """How `node` compiles under rule 1 of the module docstring: a gate needing two or more
    children that is one subject's set of values becomes its cover, and under an AND the children
    that are sets of one subject are merged into their intersection. A set no value lies in is
    left as written (one key never satisfies it; `strict` refuses it). `strict=True` also refuses,
    with a PolicySyntaxError, what rule 2 refuses: two children constraining one subject differently."""
    k = threshold_of(node)
    if k == 1:
        return GatePlan(None, tuple(range(len(children))))
    if profile.pure is not None:
        if profile.values:
            return GatePlan((profile.pure, profile.values))
        if strict:
            raise PolicySyntaxError(f"'{_short(node)}' can never be satisfied by one value of "
                              f"{numeric_subject(*profile.pure[:2])}, and keys pooled by one holder "
                              "could satisfy its parts with different values")
    units: list[int | Merged] = list(range(len(children)))
    if isinstance(node, And) and profile.pure is None:
        groups: dict[NumericKey, list[int]] = {}
        for i, child in enumerate(children):
            if child.pure is not None:
                groups.setdefault(child.pure, []).append(i)
        merged: dict[int, Merged] = {}  # first member -> its group; later members are dropped
        for key, members in groups.items():
            if len(members) < 2:
                continue
            values = _at_least(len(members), [children[i].values for i in members])
            if values:
                merged[members[0]] = Merged(tuple(members), key, values)
            elif strict:
                parts = " and ".join(_short(node.children[i]) for i in members)
                raise PolicySyntaxError(f"'{parts}' can never be satisfied by one value of "
                                  f"{numeric_subject(*key[:2])}, and keys pooled by one holder "
                                  "could satisfy its parts with different values")
        dropped = {i for group in merged.values() for i in group.children[1:]}
        units = [merged.get(i, i) for i in range(len(children)) if i not in dropped]
    if strict:
        _check_conflicts(node, children, units)
    return GatePlan(None, tuple(units))


def _check_conflicts(node: And | Or | Threshold, children: Sequence[Profile],
                     units: Sequence[int | Merged]) -> None:
    """Refuse two units of a gate needing two or more children that constrain one numeric subject
    differently (rule 2 of the module docstring)."""
    seen: dict[tuple[str, str | None], tuple[Token, str]] = {}
    for unit in units:
        if isinstance(unit, Merged):
            text = " and ".join(_short(node.children[i]) for i in unit.children)
            touches: Mapping[tuple[str, str | None], Token] = {
                unit.key[:2]: _set_token(unit.key, unit.values)}
        else:
            text, touches = _short(node.children[unit]), children[unit].touches
        for subject, token in touches.items():
            if subject not in seen:
                seen[subject] = (token, text)
                continue
            first_token, first = seen[subject]
            if token == first_token and token != MANY:
                continue
            gate = ("AND" if isinstance(node, And)
                    else f"threshold {threshold_of(node)} of {len(node.children)}")
            raise PolicySyntaxError(
                f"numeric attribute {numeric_subject(*subject)} is constrained twice under one "
                f"{gate}, by '{first}' and '{text}': keys issued to one holder at different times "
                "combine (RW15 keys of one GID), so each part could be satisfied by a different "
                "value; constrain it once, with one comparison or a range such as "
                f"'{quote(subject[0])} in LO..HI'")


def expand(node: Node) -> Node:
    """The tree with comparisons and ranges replaced by their prefix-label covers, and gates
    needing two or more children planned by `plan_gate` (one subject's parts merged into its
    exact set of values)."""
    return _expand(node, False)[0]


def check_pooled(node: Node) -> None:
    """Refuse, with a PolicySyntaxError naming the subject and the parts, a tree whose parts on
    one numeric subject keys pooled by one holder could satisfy with different values (rule 2 of
    the module docstring, and sets no value lies in). For schemes whose keys of one holder
    combine (RW15: keys of one GID); a key of the other schemes is never pooled with another."""
    _expand(node, True)


def _expand(node: Node, strict: bool) -> tuple[Node, Profile]:
    if isinstance(node, Attribute):
        return node, leaf_profile(node)
    if isinstance(node, Comparison):
        return comparison_tree(node), leaf_profile(node)
    results = [_expand(c, strict) for c in node.children]
    profiles = [p for _, p in results]
    profile = gate_profile(node, profiles)
    plan = plan_gate(node, profiles, profile, strict=strict)
    if plan.cover is not None:
        return set_tree(*plan.cover), profile
    children = tuple(results[u][0] if isinstance(u, int) else set_tree(u.key, u.values)
                     for u in plan.units)
    if len(children) == 1:
        return children[0], profile
    if isinstance(node, Threshold):
        return Threshold(node.k, children), profile
    return type(node)(children), profile


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
