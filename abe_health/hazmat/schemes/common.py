"""Small helpers the schemes share: small-integer powers, weighted products, policy lookup."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

from ...errors import InvalidCiphertext, InvalidKey, PolicyNotSatisfied, PolicySyntaxError
from ...policy import LSSS, Policy
from ..pairing import Element
from .base import Record


def exp(element: Element, m: int) -> Element:
    """element^m for a small LSSS entry: 1 and -1 (all of an AND/OR matrix) cost no exponentiation."""
    if m == 1:
        return element
    if m == -1:
        return ~element
    return element**m


def row_product(elements: Sequence[Element], weights: Sequence[int]) -> Element:
    """prod elements_i^{weights_i}; weights of 1 (every AND/OR policy) are plain multiplications,
    other weights (thresholds) one multi-exponentiation."""
    if not elements:
        raise ValueError("empty product")
    group = elements[0].group
    if all(w == 1 for w in weights):
        if len(weights) != len(elements):
            raise ValueError("one weight per element")
        return group.product(elements)
    return group.multi_exp(elements, weights)


def signed(element: Element, w: int) -> Element:
    """element^w, with 1 and -1 free: how a pairing's G1 side carries a weight or a division."""
    if w == 1:
        return element
    if w == -1 or w == element.group.order - 1:
        return ~element
    return element**w


@lru_cache(maxsize=64)  # at most ~5 MiB a worst-case policy: bounded even if headers are hostile
def _parse(text: str, widths: tuple[tuple[str, int], ...]) -> Policy:
    return Policy.parse(text, dict(widths), internal=True)


def policy_of(key: Record, rec: Record) -> Policy:
    """The policy a ciphertext (CP) or user key (KP) carries, parsed with the widths that the
    user key copied from the public key at keygen (so decryption needs no public key).

    The text was written by the toolkit (possibly rewritten by revocation), so it is read with
    `internal=True`: internal names such as epochs `nurse#v3` are accepted. It may also have been
    planted by whoever stores it; the parser's limits bound the work it can cause."""
    text = rec.meta.get("policy")
    error = InvalidCiphertext if rec.kind == "ciphertext" else InvalidKey
    if not isinstance(text, str):
        raise error(f"{rec.kind} carries no policy")
    widths = key.meta.get("widths", {})
    if not isinstance(widths, dict) or not all(
        isinstance(name, str) and type(bits) is int and 1 <= bits <= 64 for name, bits in widths.items()
    ):
        raise InvalidKey("key carries malformed numeric widths")
    try:
        return _parse(text, tuple(sorted(widths.items())))
    except PolicySyntaxError as exc:
        raise error(f"{rec.kind} carries a malformed policy: {exc}") from None


def coefficients_or_refuse(lsss: LSSS, labels: Iterable[str], order: int, policy: Policy,
                           kp: bool = False) -> dict[int, int]:
    """Reconstruction coefficients, or PolicyNotSatisfied naming the policy."""
    try:
        return lsss.coefficients(labels, order)
    except PolicyNotSatisfied:
        who = "ciphertext attributes do not satisfy key policy" if kp else \
            "key attributes do not satisfy policy"
        raise PolicyNotSatisfied(f'{who} "{policy}"') from None
