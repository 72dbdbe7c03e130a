"""The three roles over an index directory: the owner builds and adds, the server traverses, the
client makes trapdoors and finishes. `SearchIndex.search` runs server and client in one process.

Updates are log-structured: `add` builds a new segment for the new documents only, then merges
the two newest segments while the newer holds at least half as many keywords as the one before
(a binary-counter schedule: each keyword is rebuilt O(log n) times over the index's life).
Merging needs the key (the client decrypts both segments' leaves and rebuilds one).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .build import BuildStats, Progress, build_segment
from .client import documents, key_matches, open_leaf, trapdoor
from .errors import IndexCorrupt, InvalidSearchKey
from .format import Segment, load_segment, new_index_id, read_manifest, remove_segments, write_manifest
from .keys import SearchKey
from .rank import Hit, rank
from .server import traverse
from .text import matches, parse_pattern


@dataclass(frozen=True)
class SearchStats:
    nodes_visited: int
    leaves_returned: int
    false_positives: int
    server_ms: float
    client_ms: float


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    stats: SearchStats


class SearchIndex:
    """An index directory (a manifest and memory-mapped segments).

    `index_id` is the 16 random bytes the index got at creation; every later manifest keeps it,
    and the owner's signature over a search key names it (see `abe_health.owner`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = read_manifest(self.path)
        self.index_id: bytes = manifest.index_id
        self.segment_names = manifest.segments
        self.segments: list[Segment] = [load_segment(self.path / n) for n in self.segment_names]
        self._tables: dict[tuple[bytes, bytes], list[str]] = {}

    def _table(self, key: SearchKey, segment: Segment) -> list[str]:
        """The segment's document table, decrypted once per key."""
        slot = (segment.id, key.check_value(segment.id))
        if slot not in self._tables:
            self._tables[slot] = documents(key, segment)
        return self._tables[slot]

    @classmethod
    def create(cls, path: str | Path, docs: Mapping[str, Mapping[str, int]], key: SearchKey,
               progress: Progress | None = None) -> tuple[SearchIndex, BuildStats]:
        """Build a new index at `path` (which must not exist or be empty)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise IndexCorrupt(f"{path} exists and is not empty; refusing to overwrite it")
        path.mkdir(parents=True, exist_ok=True)
        stats = build_segment(docs, key, path / "seg-0001", progress)
        write_manifest(path, ["seg-0001"], new_index_id())
        return cls(path), stats

    def key_matches(self, key: SearchKey) -> bool:
        return all(key_matches(key, s) for s in self.segments)

    def _require_key(self, key: SearchKey) -> None:
        if not self.key_matches(key):
            raise InvalidSearchKey(f"{self.path}: this search key did not build the index")

    def documents(self, key: SearchKey) -> list[str]:
        self._require_key(key)
        return [d for s in self.segments for d in self._table(key, s)]

    def add(self, docs: Mapping[str, Mapping[str, int]], key: SearchKey,
            progress: Progress | None = None) -> BuildStats:
        """Index more documents in a new segment, then merge segments on the binary schedule."""
        existing = set(self.documents(key))
        clash = sorted(existing & set(docs))
        if clash:
            raise IndexCorrupt(f"already indexed: {', '.join(clash[:5])}; rebuild to replace documents")
        number = max(int(n.split("-")[1]) for n in self.segment_names) + 1
        name = f"seg-{number:04d}"
        stats = build_segment(docs, key, self.path / name, progress)
        names = [*self.segment_names, name]
        write_manifest(self.path, names, self.index_id)
        segments = [*self.segments, load_segment(self.path / name)]
        while len(segments) >= 2 and 2 * segments[-1].levels[0] >= segments[-2].levels[0]:
            merged_docs = self._decrypt_all(key, segments[-2:])
            number += 1
            merged = f"seg-{number:04d}"
            build_segment(merged_docs, key, self.path / merged, progress)
            old = names[-2:]
            names = [*names[:-2], merged]
            write_manifest(self.path, names, self.index_id)
            remove_segments(self.path, old)
            segments = [*segments[:-2], load_segment(self.path / merged)]
        self.segment_names, self.segments = names, segments
        return stats

    @staticmethod
    def _decrypt_all(key: SearchKey, segments: list[Segment]) -> dict[str, dict[str, int]]:
        docs: dict[str, dict[str, int]] = defaultdict(dict)
        for segment in segments:
            table = documents(key, segment)
            for leaf in range(segment.levels[0]):
                word, postings = open_leaf(key, segment, leaf, segment.payload(leaf))
                for d, tf in postings:
                    docs[table[d]][word] = tf
        return docs

    def search(self, pattern: str, key: SearchKey, top: int | None = None) -> SearchResult:
        """Ranked documents whose keywords contain the pattern. A wrong key finds nothing."""
        body, start, end = parse_pattern(pattern)
        t0 = time.perf_counter()
        door = trapdoor(key, pattern)
        reached = [(s, traverse(s, door)) for s in self.segments if key_matches(key, s)]
        t1 = time.perf_counter()
        postings: dict[str, dict[str, int]] = defaultdict(dict)
        n_docs, returned, false_pos, visited = 0, 0, 0, 0
        for segment, result in reached:
            table = self._table(key, segment)
            n_docs += len(table)
            visited += result.nodes_visited
            for leaf, sealed in result.leaves:
                returned += 1
                word, plist = open_leaf(key, segment, leaf, sealed)
                if not matches(body, start, end, word):
                    false_pos += 1
                    continue
                for d, tf in plist:
                    if not 0 <= d < len(table):
                        raise IndexCorrupt(f"{segment.path}: posting names document {d} of {len(table)}")
                    postings[word][table[d]] = tf
        hits = rank(body, postings, n_docs, top)
        t2 = time.perf_counter()
        return SearchResult(hits, SearchStats(visited, returned, false_pos, (t1 - t0) * 1e3, (t2 - t1) * 1e3))
