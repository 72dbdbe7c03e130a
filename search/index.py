"""The three roles over an index directory: the owner builds and adds, the server traverses, the
client makes trapdoors and finishes. `SearchIndex.search` runs server and client in one process.

Builds stream: `create` and `add` take {id: {keyword: tf}} or an iterable of (id, {keyword: tf})
pairs, and build in memory bounded by a constant (see `build`): a segment holds at most
`build.MAX_DOCUMENTS` documents, a larger build writes several (documents are disjoint across
segments; the engine joins a keyword's postings from all of them and counts documents over all).

Updates are log-structured: `add` builds a new segment for the new documents only, then merges
the two newest segments while the newer holds at least half as many keywords as the one before
(a binary-counter schedule: each keyword is rebuilt O(log n) times over the index's life) and
the merged segment stays within `build.MAX_DOCUMENTS` documents. Merging needs the key: the
client streams both segments' leaves, already in leaf order, through a k-way merge into one new
segment (`build.merge_leaves`), never holding more than a batch of them.

Removal (`remove`, and `add(..., replace=True)` for an amended document) writes a tombstone: the
document's position in its segment's table, kept in the manifest sealed under the search key
(`format.Manifest.removed`). Searches skip tombstoned documents at once; a merge, `compact`, or
`remove(..., purge=True)` rebuilds the segments that hold them without them and deletes the old
segment directories, after which nothing derived from the document is left in the index.

Writers (`add`, `remove`, `compact`) hold the index's lock (`abe_health.locks.exclusive` on
INDEX/lock): they queue, or fail with `Busy` after the lock timeout, and each starts from the
manifest the previous writer left. Every change becomes visible in one atomic manifest switch;
a reader whose manifest names segments a merge has just deleted reads the new manifest again.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import cbor2

from abe_health.locks import exclusive

from . import build as builder
from .build import (
    BuildStats,
    Documents,
    EmptySegment,
    Progress,
    build_segment,
    document_table_size,
    leaves_of,
    merge_leaves,
    seal,
    write_leaves,
)
from .client import documents, key_matches, open_leaf, open_payload
from .engine import Searcher, SearchResult, SearchStats, Source
from .errors import DocumentExists, IndexCorrupt, IndexExists, InvalidSearchKey, UnknownDocument
from .format import (
    Manifest,
    Segment,
    load_segment,
    new_index_id,
    read_manifest,
    remove_segments,
    stray_segments,
    write_manifest,
)
from .keys import SearchKey

__all__ = ["SearchIndex", "SearchResult", "SearchStats", "open_removed", "seal_removed"]

#: the writers' lock file inside an index directory
LOCK = "lock"
#: how often a reader re-reads a manifest that a writer switched while it was loading
LOAD_ATTEMPTS = 5
#: the removals' associated data: bound to the index, so a sealed list moves to no other index
REMOVED_AAD = b"abe-health/pass/v1/removed"

#: segment id -> positions (in that segment's document table) of its removed documents
Removed = dict[bytes, frozenset[int]]


def seal_removed(key: SearchKey, index_id: bytes, removed: Removed) -> bytes | None:
    """The manifest's sealed removals (None when there are none), padded like a document table:
    its length shows the number of removals only up to a capacity bucket."""
    live = {sid: sorted(slots) for sid, slots in removed.items() if slots}
    if not live:
        return None
    encoded = cbor2.dumps(live)
    size = document_table_size(sum(len(v) for v in live.values()), len(encoded))
    return seal(key.aead, encoded, REMOVED_AAD + index_id, size=size)


def open_removed(key: SearchKey, manifest: Manifest, where: str) -> Removed:
    """The removals of a manifest, opened and type-checked (a wrong key or a moved list fails)."""
    if manifest.removed is None:
        return {}
    item = open_payload(key, manifest.removed, REMOVED_AAD + manifest.index_id, where)
    if not isinstance(item, dict) or not all(
            isinstance(sid, bytes) and isinstance(slots, list)
            and all(type(i) is int and 0 <= i < 2**32 for i in slots) for sid, slots in item.items()):
        raise IndexCorrupt(f"{where}: malformed removals")
    return {sid: frozenset(slots) for sid, slots in item.items()}


class SearchIndex:
    """An index directory (a manifest and memory-mapped segments).

    `index_id` is the 16 random bytes the index got at creation; every later manifest keeps it,
    and the owner's signature over a search key names it (see `abe_health.owner`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._tables: dict[tuple[bytes, bytes], list[str]] = {}
        self._searcher: tuple[Manifest, bytes, Searcher] | None = None
        self._load()

    def _load(self) -> None:
        """Read the manifest and map its segments. A writer may switch the manifest and delete
        the segments it replaced between the two reads: then the new manifest is read again."""
        for attempt in range(LOAD_ATTEMPTS):
            manifest = read_manifest(self.path)
            try:
                segments = [load_segment(self.path / n) for n in manifest.segments]
            except IndexCorrupt:
                if attempt + 1 < LOAD_ATTEMPTS and read_manifest(self.path) != manifest:
                    continue
                raise
            break
        self.manifest = manifest
        self.index_id: bytes = manifest.index_id
        self.segment_names = manifest.segments
        self.segments: list[Segment] = segments

    def table(self, key: SearchKey, segment: Segment) -> list[str]:
        """The segment's document table, decrypted once per key."""
        slot = (segment.id, key.check_value(segment.id))
        if slot not in self._tables:
            self._tables[slot] = documents(key, segment)
        return self._tables[slot]

    def removed(self, key: SearchKey) -> Removed:
        """Which documents of which segments are removed but not yet compacted away."""
        return open_removed(key, self.manifest, str(self.path))

    @classmethod
    def create(cls, path: str | Path, docs: Documents, key: SearchKey,
               progress: Progress | None = None) -> tuple[SearchIndex, BuildStats]:
        """Build a new index at `path` (which must not exist or be empty) from `docs`: a mapping
        {id: {keyword: tf}} or a stream of (id, {keyword: tf}) pairs, read once. More than
        `build.MAX_DOCUMENTS` documents make several segments."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise IndexExists(f"{path} exists and is not empty; refusing to overwrite it")
        path.mkdir(parents=True, exist_ok=True)
        seen: set[str] = set()
        names: list[str] = []
        stats: BuildStats | None = None
        for batch in _batches(docs):
            names.append(f"seg-{len(names) + 1:04d}")
            built = build_segment(batch, key, path / names[-1], progress, seen=seen)
            stats = built if stats is None else stats + built
        if stats is None:
            raise EmptySegment("no keywords to index")
        index_id = new_index_id()
        write_manifest(path, Manifest(index_id, names, None, key.check_value(index_id)))
        return cls(path), stats

    def key_matches(self, key: SearchKey) -> bool:
        """Whether `key` built this index (its manifest's key check, then every segment's)."""
        check = self.manifest.key_check
        if check is not None and not hmac.compare_digest(key.check_value(self.index_id), check):
            return False
        return all(key_matches(key, s) for s in self.segments)

    def _require_key(self, key: SearchKey) -> None:
        if not self.key_matches(key):
            raise InvalidSearchKey(f"{self.path}: this search key did not build the index")

    def _live(self, key: SearchKey) -> dict[str, tuple[bytes, int]]:
        """Every document the index holds: id -> (segment id, position in its table)."""
        removed = self.removed(key)
        return {doc: (s.id, i) for s in self.segments for i, doc in enumerate(self.table(key, s))
                if i not in removed.get(s.id, frozenset())}

    def documents(self, key: SearchKey) -> list[str]:
        """The ids of the documents the index holds (removed ones excluded)."""
        self._require_key(key)
        return list(self._live(key))

    @contextlib.contextmanager
    def _writing(self, key: SearchKey) -> Iterator[dict[bytes, set[int]]]:
        """Hold the lock, start from the manifest the last writer left, sweep what a killed
        writer left behind; yield the removals to edit."""
        with exclusive(self.path / LOCK):
            self._load()
            self._require_key(key)
            remove_segments(self.path, stray_segments(self.path, self.segment_names))
            yield {sid: set(slots) for sid, slots in self.removed(key).items()}

    def _switch(self, key: SearchKey, segments: list[Segment], removed: dict[bytes, set[int]],
                drop: Iterable[str] = ()) -> None:
        """Make `segments` and `removed` the index's state in one manifest write, then delete the
        segment directories `drop` (which no manifest names any more)."""
        ids = {s.id for s in segments}
        kept: Removed = {sid: frozenset(v) for sid, v in removed.items() if sid in ids and v}
        names = [s.path.name for s in segments]
        manifest = Manifest(self.index_id, names, seal_removed(key, self.index_id, kept),
                            key.check_value(self.index_id))
        write_manifest(self.path, manifest)
        self.manifest = manifest
        self.segment_names, self.segments = names, segments
        remove_segments(self.path, list(drop))

    def _next_name(self, segments: list[Segment] | None = None) -> str:
        names = self.segment_names if segments is None else [s.path.name for s in segments]
        numbers = [int(n.split("-")[1]) for n in names]
        return f"seg-{max(numbers, default=0) + 1:04d}"

    def add(self, docs: Documents, key: SearchKey, progress: Progress | None = None,
            replace: bool = False) -> BuildStats:
        """Index more documents (a mapping or a stream, as in `create`) in a new segment, then
        merge segments on the binary schedule.

        An id the index already holds is refused (`DocumentExists`; a stream is refused at the
        first such id), or with `replace=True` its old version is removed in the same switch
        that adds the new one."""
        with self._writing(key) as removed:
            live = self._live(key)
            if isinstance(docs, Mapping):
                clash = sorted(live.keys() & set(docs))
                if clash and not replace:
                    raise DocumentExists(f"already indexed: {', '.join(clash[:5])}"
                                         + (f" and {len(clash) - 5} more" if len(clash) > 5 else ""))

            def checked(items: Iterable[tuple[str, Mapping[str, int]]]
                        ) -> Iterator[tuple[str, Mapping[str, int]]]:
                for doc, counts in items:
                    if doc in live:
                        if not replace:
                            raise DocumentExists(f"already indexed: {doc}")
                        sid, slot = live[doc]
                        removed.setdefault(sid, set()).add(slot)
                    yield doc, counts

            seen: set[str] = set()
            stats: BuildStats | None = None
            segments = list(self.segments)
            for batch in _batches(checked(docs.items() if isinstance(docs, Mapping) else docs)):
                name = self._next_name(segments)
                built = build_segment(batch, key, self.path / name, progress, seen=seen)
                stats = built if stats is None else stats + built
                segments.append(load_segment(self.path / name))
            if stats is None:
                raise EmptySegment("no keywords to index")
            self._switch(key, segments, removed)
            while len(segments) >= 2 and 2 * segments[-1].levels[0] >= segments[-2].levels[0] \
                    and self._documents_in(key, segments[-2:]) <= builder.MAX_DOCUMENTS:
                merged = self._rebuild(key, segments[-2:], removed, progress)
                old = [s.path.name for s in segments[-2:]]
                segments = [*segments[:-2], *merged]
                self._switch(key, segments, removed, old)
                if not merged:
                    break
        return stats

    def _documents_in(self, key: SearchKey, segments: list[Segment]) -> int:
        return sum(len(self.table(key, s)) for s in segments)

    def remove(self, doc_ids: Iterable[str], key: SearchKey, purge: bool = False) -> int:
        """Take documents out of the index (a tombstone each, in one switch); with `purge`, also
        rebuild the segments that held them at once (see `compact`). Returns how many."""
        wanted = sorted(set(doc_ids))
        with self._writing(key) as removed:
            live = self._live(key)
            missing = [d for d in wanted if d not in live]
            if missing:
                raise UnknownDocument(f"not in the index: {', '.join(missing[:5])}"
                                      + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
            for doc in wanted:
                sid, slot = live[doc]
                removed.setdefault(sid, set()).add(slot)
            self._switch(key, self.segments, removed)
            if purge:
                self._compact(key, removed)
        return len(wanted)

    def compact(self, key: SearchKey, progress: Progress | None = None) -> int:
        """Rebuild every segment that holds removed documents without them, and delete the old
        segments: afterwards no file of the index derives from a removed document. Returns how
        many segments were rebuilt."""
        with self._writing(key) as removed:
            return self._compact(key, removed, progress)

    def _compact(self, key: SearchKey, removed: dict[bytes, set[int]],
                 progress: Progress | None = None) -> int:
        rebuilt = 0
        for segment in list(self.segments):
            if not removed.get(segment.id):
                continue
            merged = self._rebuild(key, [segment], removed, progress)
            at = self.segments.index(segment)
            segments = [*self.segments[:at], *merged, *self.segments[at + 1:]]
            self._switch(key, segments, removed, [segment.path.name])
            rebuilt += 1
        return rebuilt

    def _rebuild(self, key: SearchKey, segments: list[Segment], removed: dict[bytes, set[int]],
                 progress: Progress | None) -> list[Segment]:
        """One new segment holding the live documents of `segments` (none if nothing is left),
        streamed: their leaves, each segment's in leaf order, merged into the new tree."""
        tables = [self.table(key, s) for s in segments]
        gone = [removed.get(s.id, set()) for s in segments]
        live = sorted(doc for table, out in zip(tables, gone, strict=True)
                      for i, doc in enumerate(table) if i not in out)
        position = {doc: i for i, doc in enumerate(live)}
        if len(position) != len(live):
            raise IndexCorrupt(f"{self.path}: a document is in two segments")
        sources = [leaves_of(self._leaves(key, s, len(table)),
                             [-1 if i in out else position[doc] for i, doc in enumerate(table)], key)
                   for s, table, out in zip(segments, tables, gone, strict=True)]
        name = self._next_name()
        try:
            write_leaves(merge_leaves(sources), live, key, self.path / name, progress)
        except EmptySegment:  # no live document has a keyword left
            return []
        finally:
            for source in sources:
                source.close()
        for segment in segments:
            removed.pop(segment.id, None)
        return [load_segment(self.path / name)]

    def _leaves(self, key: SearchKey, segment: Segment, documents: int
                ) -> Iterator[tuple[str, list[list[int]]]]:
        """A segment's leaves (keyword, postings) in stored order, opened and checked."""
        for leaf in range(segment.levels[0]):
            word, postings = open_leaf(key, segment, leaf, segment.payload(leaf))
            if any(not 0 <= d < documents for d, _ in postings):
                raise IndexCorrupt(f"{segment.path}: a posting names a document outside the table")
            yield word, postings

    def contents(self, key: SearchKey) -> dict[str, dict[str, int]]:
        """Every live document's keyword counts, recovered from the leaves (the owner's view:
        what a rebuild under another key starts from)."""
        self._require_key(key)
        removed = {sid: set(slots) for sid, slots in self.removed(key).items()}
        return self._decrypt_all(key, self.segments, removed)

    def _decrypt_all(self, key: SearchKey, segments: list[Segment], removed: dict[bytes, set[int]]
                     ) -> dict[str, dict[str, int]]:
        docs: dict[str, dict[str, int]] = defaultdict(dict)
        for segment in segments:
            table = self.table(key, segment)
            gone = removed.get(segment.id, set())
            for leaf in range(segment.levels[0]):
                word, postings = open_leaf(key, segment, leaf, segment.payload(leaf))
                for d, tf in postings:
                    if not 0 <= d < len(table):
                        raise IndexCorrupt(f"{segment.path}: posting names document {d} of {len(table)}")
                    if d not in gone:
                        docs[table[d]][word] = tf
        return docs

    def search(self, query: str, key: SearchKey, top: int | None = None) -> SearchResult:
        """Ranked documents matching `query`: a pattern (`card`, `^card`, `itis$`, `^heart$`) or
        patterns and field ranges under AND/OR (`search.query`). A wrong key finds nothing."""
        return self._session(key).search(query, top)

    def _session(self, key: SearchKey) -> Searcher:
        """A warm `Searcher` over this index for `key` (its batched walk and opened document
        tables), kept while the manifest this object holds is unchanged: any switch through
        this object or a reload replaces the manifest and so starts a new one."""
        cached = self._searcher
        if cached is None or cached[0] is not self.manifest or cached[1] != key.fingerprint:
            cached = (self.manifest, key.fingerprint, Searcher([Source(self, key)]))
            self._searcher = cached
        return cached[2]


def _batches(docs: Documents) -> Iterator[Iterator[tuple[str, Mapping[str, int]]]]:
    """The documents in batches of at most MAX_DOCUMENTS (one segment each), read lazily: each
    batch must be consumed before the next is asked for."""
    items = iter(docs.items() if isinstance(docs, Mapping) else docs)
    for first in items:
        yield itertools.chain([first], itertools.islice(items, builder.MAX_DOCUMENTS - 1))
