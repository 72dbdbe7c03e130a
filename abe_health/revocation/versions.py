"""Attribute versions as epoch attributes, expressed in the ordinary policy language.

When attribute `a` is revoked from a user for the v-th time, every policy occurrence of `a`
becomes `(a and a.vN)` with N = v, and the holders who keep `a` receive a new key that also
holds `a.vN`. A revoked key lacks `a.vN` and so fails on every header rewritten at that version,
while the schemes, keys and LSSS stay unchanged (no new cryptography, hence no new assumption:
see the module docstring of `abe_health.revocation.vault`). Attribute names ending in `.v<digits>`
are reserved for these epochs. Numeric comparisons are not versioned (use expiry for them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..policy import And, Attribute, Comparison, KeyAttributes, Node, Or, Policy, Threshold

_EPOCH = re.compile(r"\.v[0-9]+\Z")


def base_label(attr: Attribute) -> str:
    """The label of the attribute without any epoch (what versions are keyed by)."""
    return attr.label


def epoch_attribute(attr: Attribute, version: int) -> Attribute:
    """The attribute `name.vN` that holders of `attr` at version N also hold."""
    return Attribute(f"{attr.name}.v{version}", attr.value, attr.authority)


def is_epoch(attr: Attribute) -> bool:
    return bool(_EPOCH.search(attr.name))


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
    """Labels of the (non-epoch, non-numeric) attributes a policy mentions."""
    out: set[str] = set()

    def walk(node: Node) -> None:
        if isinstance(node, Attribute):
            if not is_epoch(node):
                out.add(node.label)
        elif isinstance(node, (And, Or, Threshold)):
            for child in node.children:
                walk(child)

    walk(policy.tree)
    return out


def versioned_key_attributes(attributes: KeyAttributes, versions: Mapping[str, int]) -> KeyAttributes:
    """A key's attributes plus the current epoch of each versioned attribute it holds."""
    extra = [epoch_attribute(a, versions[a.label]) for a in attributes.attributes
             if versions.get(a.label, 0) and not is_epoch(a)]
    return KeyAttributes(tuple(dict.fromkeys((*attributes.attributes, *extra))), attributes.widths)
