"""The server's side: walk a segment's tree with a trapdoor, holding only the index.

From the stored top level down, a node is kept when all k Bloom bits of the trapdoor under the
node's salt are set; the children of kept nodes (2 per node in a version-2 segment, the
segment's fan-out in a version-3 one) form the next level's frontier. Each level is one batch of
numpy work and one AES call, so a query costs O(levels x frontier) with small constants. The
server returns the sealed payloads of the leaves reached; it learns which nodes matched (the
access pattern), not the pattern or the keywords.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .format import Segment
from .prf import as_rows, positions


@dataclass(frozen=True)
class ServerResult:
    """Sealed payloads of the leaves a trapdoor reached, and how much of the tree it visited."""

    leaves: list[tuple[int, bytes]]
    nodes_visited: int


def traverse(segment: Segment, trapdoor: bytes) -> ServerResult:
    """The leaves of `segment` whose root-to-leaf filters all contain the trapdoor."""
    return traverse_many(segment, [trapdoor])[0]


def traverse_many(segment: Segment, trapdoors: list[bytes]) -> list[ServerResult]:
    """`traverse` for several trapdoors at once, in one batched walk (see `Forest`)."""
    return Forest([segment]).traverse([(0, door) for door in trapdoors])


class Forest:
    """Several segments searched as one: their node arrays side by side, so one numpy pass per
    step walks every (segment, trapdoor) request at once. Querying a hundred small groups then
    costs a few passes, not a hundred walks' fixed overheads.

    Filters of the segments are copied once into one array (a single segment is used in place),
    so keep a Forest for many queries and build it from segments of moderate size."""

    def __init__(self, segments: list[Segment]) -> None:
        if not segments:
            raise ValueError("a forest needs at least one segment")
        ks = {int(s.meta["k"]) for s in segments}
        if len(ks) != 1:
            raise ValueError("segments of a forest share their number of hash functions")
        self.segments = segments
        self.k = ks.pop()
        if len(segments) == 1:
            only = segments[0]
            self.filters, self.node_off, self.node_m, self.salts = (only.filters, only.node_off,
                                                                    only.node_m, only.salts)
            node_base = [0]
        else:
            bit_base = np.cumsum([0] + [8 * len(s.filters) for s in segments[:-1]]).astype(np.uint64)
            node_base = np.cumsum([0] + [sum(s.levels) for s in segments[:-1]]).tolist()
            self.filters = np.concatenate([s.filters for s in segments])
            self.node_off = np.concatenate([s.node_off + b for s, b in zip(segments, bit_base, strict=True)])
            self.node_m = np.concatenate([s.node_m for s in segments])
            self.salts = np.concatenate([s.salts for s in segments])
        depth = max(len(s.levels) for s in segments)
        self.level_start = np.zeros((len(segments), depth), dtype=np.int64)
        self.level_size = np.zeros((len(segments), depth), dtype=np.int64)
        for i, s in enumerate(segments):
            self.level_start[i, : len(s.levels)] = node_base[i] + s.level_start
            self.level_size[i, : len(s.levels)] = s.levels
        self.top = np.array([len(s.levels) - 1 for s in segments], dtype=np.int64)
        self.fanout = np.array([s.fanout for s in segments], dtype=np.int64)
        self.salt_rows = as_rows(self.salts)

    def traverse(self, requests: list[tuple[int, bytes]]) -> list[ServerResult]:
        """For each (segment position, trapdoor): what `traverse(segments[i], trapdoor)` returns."""
        if not requests:
            return []
        seg_of = np.array([i for i, _ in requests], dtype=np.int64)
        values = as_rows(np.frombuffer(b"".join(d for _, d in requests), dtype=np.uint8).reshape(-1, 16))
        tops = self.level_size[seg_of, self.top[seg_of]]
        req = np.repeat(np.arange(len(requests), dtype=np.int64), tops)
        first = np.repeat(np.cumsum(tops) - tops, tops)
        idx = np.arange(len(req), dtype=np.int64) - first
        lvl = self.top[seg_of][req]
        visited = np.zeros(len(requests), dtype=np.int64)
        found_req, found_leaf = [], []
        while len(req):
            seg = seg_of[req]
            nodes = self.level_start[seg, lvl] + idx
            visited += np.bincount(req, minlength=len(requests))
            pos = positions(values[req], self.salt_rows[nodes], self.node_m[nodes], self.k)
            bit = self.node_off[nodes][:, None] + pos
            byte = self.filters[(bit >> np.uint64(3)).astype(np.int64)]
            hit = ((byte >> (bit & np.uint64(7)).astype(np.uint8)) & 1).all(axis=1)
            req, lvl, idx = req[hit], lvl[hit], idx[hit]
            leaf = lvl == 0
            found_req.append(req[leaf])
            found_leaf.append(idx[leaf])
            req, lvl, idx = req[~leaf], lvl[~leaf] - 1, idx[~leaf]
            fan = self.fanout[seg_of[req]]  # each kept node's children: fan * idx + 0 .. fan - 1
            ends = np.cumsum(fan)
            child = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
            child -= np.repeat(ends - fan, fan)
            req, lvl = np.repeat(req, fan), np.repeat(lvl, fan)
            idx = np.repeat(idx * fan, fan) + child
            keep = idx < self.level_size[seg_of[req], lvl]
            req, lvl, idx = req[keep], lvl[keep], idx[keep]
        all_req = np.concatenate(found_req)
        all_leaf = np.concatenate(found_leaf)
        order = np.lexsort((all_leaf, all_req))
        all_req, all_leaf = all_req[order], all_leaf[order]
        bounds = np.searchsorted(all_req, np.arange(len(requests) + 1))
        out = []
        for r, (i, _) in enumerate(requests):
            segment = self.segments[i]
            leaves = all_leaf[bounds[r] : bounds[r + 1]]
            starts = segment.leaf_off[leaves].tolist()
            ends = segment.leaf_off[leaves + 1].tolist()
            data = segment.leaves
            sealed = [(n, data[a:b].tobytes()) for n, a, b in zip(leaves.tolist(), starts, ends, strict=True)]
            out.append(ServerResult(sealed, int(visited[r])))
        return out
