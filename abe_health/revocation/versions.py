"""Attribute versions as epoch attributes, expressed in the ordinary policy language.

When attribute `a` is revoked from a user for the v-th time, every policy occurrence of `a`
becomes `(a and a#vN)` with N = v, and the holders who keep `a` receive a new key that also
holds `a#vN`. A revoked key lacks `a#vN` and so fails on every header rewritten at that version,
while the schemes, keys and LSSS stay unchanged (no new cryptography, hence no new assumption:
see the module docstring of `abe_health.revocation.vault`). Epochs are internal attributes
(`abe_health.policy.internal_attribute`): their names hold `#`, which no user-written policy or
key attribute may, so a user attribute such as `icd.v10` is an ordinary attribute that can be
revoked, and no key can hold an epoch it was not issued. Numeric comparisons are not versioned
(use expiry for them).
"""

from __future__ import annotations

from collections.abc import Mapping

from ..policy import (
    And,
    Attribute,
    Comparison,
    KeyAttributes,
    Node,
    Or,
    Policy,
    Threshold,
    internal_attribute,
    is_internal,
)


def base_label(attr: Attribute) -> str:
    """The label of the attribute without any epoch (what versions are keyed by)."""
    return attr.label


def epoch_attribute(attr: Attribute, version: int) -> Attribute:
    """The internal attribute `name#vN` that holders of `attr` at version N also hold."""
    return internal_attribute(attr, f"v{version}")


def apply_versions(policy: Policy, versions: Mapping[str, int]) -> Policy:
    """The policy with every versioned attribute `a` (version N >= 1) replaced by `(a and a.vN)`."""

    def walk(node: Node) -> Node:
        if isinstance(node, Attribute):
            version = versions.get(node.label, 0)
            return And((node, epoch_attribute(node, version))) if version else node
        if isinstance(node, Comparison):
            return node
        children = tuple(walk(c) for c in node.children)
        if isinstance(node, Threshold):
            return Threshold(node.k, children)
        flat: list[Node] = []  # keep the canonical shape: (a and a.v1) inside an AND merges into it
        for child in children:
            flat.extend(child.children if type(child) is type(node) else (child,))
        return type(node)(tuple(flat))

    return Policy(walk(policy.tree))


def mentioned(policy: Policy) -> set[str]:
    """Labels of every user attribute a policy mentions (numeric comparisons and internal
    attributes excluded)."""
    out: set[str] = set()

    def walk(node: Node) -> None:
        if isinstance(node, Attribute):
            if not is_internal(node):
                out.add(node.label)
        elif isinstance(node, (And, Or, Threshold)):
            for child in node.children:
                walk(child)

    walk(policy.tree)
    return out


def versioned_key_attributes(attributes: KeyAttributes, versions: Mapping[str, int]) -> KeyAttributes:
    """A key's attributes plus the current epoch of each versioned attribute it holds."""
    extra = [epoch_attribute(a, versions[a.label]) for a in attributes.attributes
             if versions.get(a.label, 0) and not is_internal(a)]
    return KeyAttributes(tuple(dict.fromkeys((*attributes.attributes, *extra))), attributes.widths)
