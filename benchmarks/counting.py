"""Count the group operations a call performs, to compute its estimate from primitive costs.

The estimate of an operation is sum(count_op x median cost of op) over every operation counted
here: pairings, Miller loops and final exponentiations of multi-pairings, full-size and small
exponentiations in G1/G2/GT (a multi-exponentiation counts one exponentiation per term), hashes to
G1/G2, and, with `decodes=True`, validated decodes of G1/G2/GT (G1 points decoded for pairings
separately: they skip the per-point subgroup test). The costs are measured by the `primitives`
suite in the same run.
Group-law multiplications, CBOR, AES and Python work are not counted, so the estimate is not a
lower bound: with few counted operations, a ratio near or below 1 means the uncounted work is
small or that a fused operation (a multi-exponentiation) is cheaper than its terms.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from abe_health.hazmat.pairing import Element, PairingGroup


def _exp_name(group: PairingGroup, kind: str, exponent: int) -> str:
    e = exponent % group.order
    small = min(e, group.order - e).bit_length() <= 64
    return f"{'small_' if small else ''}exp_{kind.lower()}"


@contextlib.contextmanager
def count_ops(group: PairingGroup, decodes: bool = False) -> Iterator[Counter[str]]:
    """Within the block, count the operations named in the module docstring on `group`
    (decodes of group elements only with `decodes`: the end-to-end rows count them)."""
    counts: Counter[str] = Counter()
    classes = {type(group.generator(kind)) for kind in ("G1", "G2", "GT")}
    saved = {cls: cls.__pow__ for cls in classes}
    cls_group = type(group)

    def counting_pow(original: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        def pow_(self: Any, exponent: int) -> Any:
            counts[_exp_name(group, self.kind, exponent)] += 1
            return original(self, exponent)

        return pow_

    def pair(a: Element, b: Element) -> Element:
        counts["pair"] += 1
        return cls_group.pair(group, a, b)

    def pair_prod(pairs: Iterable[tuple[Element, Element]]) -> Element:
        items = list(pairs)
        counts["miller_loop"] += len(items)
        counts["final_exp"] += 1
        return cls_group.pair_prod(group, items)

    def multi_exp(elements: Sequence[Element], exponents: Sequence[int]) -> Element:
        for element, e in zip(elements, exponents, strict=True):
            if e != 1:
                counts[_exp_name(group, element.kind, e)] += 1
        return cls_group.multi_exp(group, elements, exponents)

    def hash_to_point(kind: Any, data: bytes) -> Element:
        counts[f"hash_{kind.lower()}"] += 1
        return cls_group._hash_to_point(group, kind, data)

    def deserialize(kind: Any, data: bytes) -> Element:
        counts[f"decode_{kind.lower()}"] += 1
        return cls_group._deserialize(group, kind, data)

    def decode_many(kind: Any, items: Sequence[object]) -> list[Element]:
        short = group.sizes[kind]  # compressed points cost a square root, uncompressed ones do not
        for item in items:
            form = "" if not isinstance(item, (bytes, bytearray)) or len(item) == short else "_uncompressed"
            counts[f"decode_{kind.lower()}_for_pairing{form}"] += 1
        return cls_group.decode_many_for_pairing(group, kind, items)

    patches: dict[str, Callable[..., Any]] = {
        "pair": pair, "pair_prod": pair_prod, "multi_exp": multi_exp, "_hash_to_point": hash_to_point}
    if decodes:
        patches.update(_deserialize=deserialize, decode_many_for_pairing=decode_many)
    for cls in classes:
        cls.__pow__ = counting_pow(saved[cls])  # type: ignore[method-assign]
    for name, fn in patches.items():
        setattr(group, name, fn)
    try:
        yield counts
    finally:
        for cls, original in saved.items():
            cls.__pow__ = original  # type: ignore[method-assign]
        for name in patches:
            delattr(group, name)


def estimate_ms(counts: Counter[str], costs_ms: dict[str, float]) -> float:
    """sum(count x cost) over the counted operations whose cost was measured."""
    return sum(n * costs_ms[op] for op, n in counts.items() if op in costs_ms)


#: the name the suites used before the column was renamed (it never was a lower bound)
lower_bound_ms = estimate_ms
