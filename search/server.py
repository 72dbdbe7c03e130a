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
    return traverse_many(segment, [trapdoor])[0]


def traverse_many(segment: Segment, trapdoors: list[bytes]) -> list[ServerResult]:
    """`traverse` for several trapdoors at once: one numpy pass per level over every (trapdoor,
    node) pair still alive, so a query of several terms (or a range's 62 trapdoors) costs about
    as many passes as one term. Results are per trapdoor, in order."""
    if not trapdoors:
        return []
    values = np.frombuffer(b"".join(trapdoors), dtype=np.uint8).reshape(len(trapdoors), 16)
    k = int(segment.meta["k"])
    top = segment.levels[-1]
    door = np.repeat(np.arange(len(trapdoors), dtype=np.int64), top)  # every pair of the top level
    frontier = np.tile(np.arange(top, dtype=np.int64), len(trapdoors))
    visited = np.zeros(len(trapdoors), dtype=np.int64)
    for level in range(len(segment.levels) - 1, -1, -1):
        nodes = segment.level_start[level] + frontier
        visited += np.bincount(door, minlength=len(trapdoors))
        pos = positions(values[door], segment.salts[nodes], segment.node_m[nodes], k)
        bit = segment.node_off[nodes][:, None] + pos
        byte = segment.filters[(bit >> np.uint64(3)).astype(np.int64)]
        hit = ((byte >> (bit & np.uint64(7)).astype(np.uint8)) & 1).all(axis=1)
        door, frontier = door[hit], frontier[hit]
        if level == 0 or not len(frontier):
            break
        door = np.concatenate([door, door])
        children = np.concatenate([2 * frontier, 2 * frontier + 1])
        keep = children < segment.levels[level - 1]
        door, frontier = door[keep], children[keep]
        order = np.lexsort((frontier, door))
        door, frontier = door[order], frontier[order]
    results = []
    for i in range(len(trapdoors)):
        leaves = frontier[door == i] if len(frontier) else frontier
        results.append(ServerResult([(int(n), segment.payload(int(n))) for n in leaves], int(visited[i])))
    return results
