"""Count the expensive group operations a call performs, to compute its lower bound.

The lower bound of an operation is sum(count_op x median cost of op) over pairings,
full-size exponentiations in G1/G2/GT and hashes to G1/G2, with the costs measured by the `primitives`
suite in the same run; multiplications and Python work are what the ratio to it measures.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from abe_health.hazmat.pairing import PairingGroup


@contextlib.contextmanager
def count_ops(group: PairingGroup) -> Iterator[Counter[str]]:
    """Within the block, count pair / exp_g1 / exp_g2 / exp_gt / hash_g1 / hash_g2 on `group`."""
    counts: Counter[str] = Counter()
    classes = {type(group.generator(kind)) for kind in ("G1", "G2", "GT")}
    saved = {cls: cls.__pow__ for cls in classes}

    def counting_pow(original):
        def pow_(self, exponent):
            e = exponent % group.order
            small = min(e, group.order - e).bit_length() <= 64
            counts[f"{'small_' if small else ''}exp_{self.kind.lower()}"] += 1
            return original(self, exponent)

        return pow_

    def pair(a, b):
        counts["pair"] += 1
        return type(group).pair(group, a, b)

    def hash_to_point(kind, data):
        counts[f"hash_{kind.lower()}"] += 1
        return type(group)._hash_to_point(group, kind, data)

    for cls in classes:
        cls.__pow__ = counting_pow(saved[cls])
    group.pair = pair  # type: ignore[method-assign]
    group._hash_to_point = hash_to_point  # type: ignore[method-assign]
    try:
        yield counts
    finally:
        for cls, original in saved.items():
            cls.__pow__ = original
        del group.pair
        del group._hash_to_point


def lower_bound_ms(counts: Counter[str], costs_ms: dict[str, float]) -> float:
    """sum(count x cost) over full-size operations; exponentiations by small integers (LSSS
    entries such as the j^t of threshold rows) are cheap in mcl and left out, keeping it a bound."""
    return sum(n * costs_ms[op] for op, n in counts.items() if op in costs_ms)
