"""The server's side: walk a segment's tree with a trapdoor, holding only the index.

From the root down, a node is kept when all k Bloom bits of the trapdoor under the node's salt
are set; the children of kept nodes form the next level's frontier. Each level is one batch of
numpy work and one AES call, so a query costs O(levels x frontier) with small constants. The
server returns the sealed payloads of the leaves reached; it learns which nodes matched (the
access pattern), not the pattern or the keywords.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .format import Segment
from .prf import positions


@dataclass(frozen=True)
class ServerResult:
    """Sealed payloads of the leaves a trapdoor reached, and how much of the tree it visited."""

    leaves: list[tuple[int, bytes]]
    nodes_visited: int


def traverse(segment: Segment, trapdoor: bytes) -> ServerResult:
    """The leaves of `segment` whose root-to-leaf filters all contain the trapdoor."""
    value = np.frombuffer(trapdoor, dtype=np.uint8)
    k = int(segment.meta["k"])
    frontier = np.arange(segment.levels[-1], dtype=np.int64)  # the whole top level
    visited = 0
    for level in range(len(segment.levels) - 1, -1, -1):
        nodes = segment.level_start[level] + frontier
        visited += len(nodes)
        pos = positions(np.broadcast_to(value, (len(nodes), 16)), segment.salts[nodes],
                        segment.node_m[nodes], k)
        bit = segment.node_off[nodes][:, None] + pos
        byte = segment.filters[(bit >> np.uint64(3)).astype(np.int64)]
        hit = ((byte >> (bit & np.uint64(7)).astype(np.uint8)) & 1).all(axis=1)
        frontier = frontier[hit]
        if level == 0 or not len(frontier):
            break
        children = np.concatenate([2 * frontier, 2 * frontier + 1])
        frontier = np.sort(children[children < segment.levels[level - 1]])
    leaves = [(int(i), segment.payload(int(i))) for i in frontier] if len(frontier) else []
    return ServerResult(leaves, visited)
