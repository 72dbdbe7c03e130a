"""The policy language: text -> tree -> (comparisons expanded to prefix labels) -> LSSS.

parser.py reads text (bounded: see its limits), ast.py holds the tree, its labels and canonical
text (round-trips), numeric.py the dyadic prefix encoding of numbers, dates and ranges
(`ward in 3..5`) and the rule for two constraints on one subject, lsss.py the share matrix.
Names with `#` are internal (`internal_attribute`), read only with `internal=True`.

>>> p = Policy.parse("(doctor and cardiology) or (nurse and ward = 3)")
>>> str(p)
'(doctor and cardiology) or (nurse and ward = 3)'
>>> p.lsss.n_rows, p.lsss.n_cols
(4, 3)
>>> p.is_satisfied_by(parse_attributes(["nurse", "ward = 3"]))
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from .ast import (
    And,
    Attribute,
    Comparison,
    Node,
    Or,
    Threshold,
    evaluate,
    internal_attribute,
    is_internal,
    leaves,
)
from .lsss import LSSS, compile_lsss
from .numeric import check_pooled, comparison_tree, expand, key_labels, key_numbers
from .parser import parse, parse_attribute, tokenize

__all__ = [
    "LSSS",
    "And",
    "Attribute",
    "Comparison",
    "KeyAttributes",
    "Node",
    "Or",
    "Policy",
    "Threshold",
    "check_pooled",
    "comparison_tree",
    "compile_lsss",
    "expand",
    "internal_attribute",
    "is_internal",
    "key_labels",
    "key_numbers",
    "parse",
    "parse_attribute",
    "parse_attributes",
    "tokenize",
]


@dataclass(frozen=True)
class KeyAttributes:
    """The attributes of a key (CP-ABE) or ciphertext (KP-ABE), with their labels (prefix labels included)."""

    attributes: tuple[Attribute, ...]
    widths: Mapping[str, int] = field(default_factory=dict, compare=False)

    @cached_property
    def labels(self) -> frozenset[str]:
        """Every label held, the prefix labels of numeric values included."""
        return key_labels(self.attributes, self.widths)

    @cached_property
    def numbers(self) -> dict[str, int]:
        """Numeric values by subject (`name[@authority]`)."""
        return key_numbers(self.attributes)

    def __str__(self) -> str:
        return ", ".join(str(a) for a in self.attributes)


def parse_attributes(
    texts: Iterable[str | Attribute], widths: Mapping[str, int] | None = None, *, internal: bool = False
) -> KeyAttributes:
    """Parse key attributes such as `doctor`, `ward = 3`, `valid_until = 2026-12-31`, `doctor@A`
    (`internal=True`: also internal ones such as `nurse#v3`, as a key file lists them)."""
    attrs = tuple(t if isinstance(t, Attribute) else parse_attribute(t, internal=internal)
                  for t in texts)
    unique = tuple(dict.fromkeys(attrs))
    result = KeyAttributes(unique, dict(widths or {}))
    _ = result.labels  # validates numeric values (one per attribute, in range) now, not later
    return result


@dataclass(frozen=True)
class Policy:
    """A parsed policy: its tree, canonical text, expanded tree and LSSS (computed once)."""

    tree: Node

    @classmethod
    def parse(cls, text: str, widths: Mapping[str, int] | None = None, *,
              internal: bool = False) -> Policy:
        """Parse policy text; raises PolicySyntaxError with the column of the first problem.
        `internal=True` accepts internal names (`nurse#v3`): for text the toolkit wrote, never
        for text a user typed."""
        return cls(parse(text, widths, internal=internal))

    def __str__(self) -> str:
        return str(self.tree)

    @cached_property
    def expanded(self) -> Node:
        """The tree with comparisons and ranges replaced by ORs of prefix labels, the parts of one
        numeric subject under an AND merged into their exact set of values (see numeric.py)."""
        return expand(self.tree)

    def check_pooled(self) -> None:
        """Refuse (PolicySyntaxError naming the subject) a policy whose parts on one numeric
        subject could be satisfied by different values of keys one holder pools, such as
        `(ward >= 3 or doctor) and ward <= 5`: what RW15, whose keys of one GID combine, checks
        before it encrypts. Shapes it merges (`ward >= 3 and ward <= 5`) pass (numeric.py)."""
        check_pooled(self.tree)

    @cached_property
    def lsss(self) -> LSSS:
        """The share matrix of the expanded tree."""
        return compile_lsss(self.expanded)

    @cached_property
    def attributes(self) -> frozenset[str]:
        """Labels of every attribute the expanded policy mentions."""
        return frozenset(self.lsss.rho)

    @cached_property
    def authorities(self) -> frozenset[str]:
        """Authorities named by `@` in the policy."""
        return frozenset(leaf.authority for leaf in leaves(self.tree) if leaf.authority is not None)

    def is_satisfied_by(self, key: KeyAttributes) -> bool:
        """Plain boolean evaluation (comparisons evaluated numerically, not through prefix labels)."""
        return evaluate(self.tree, key.labels, key.numbers)
