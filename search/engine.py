"""Running a query over one or many indexes: trapdoors, traversal, and the client's finish.

A query runs over `Source`s: indexes with the key the searcher holds for each, or with no key
for an index it may not open (a policy group it is not entitled to). Every source receives the
same number of trapdoors per term, so the server cannot tell which sources the searcher holds:
- a pattern term: one trapdoor (the PRF value of the pattern);
- a range term: COVER_SIZE trapdoors, the exact-keyword trapdoors of the range's dyadic cover
  padded with pseudorandom values, sorted, so neither the width nor the position of the range
  shows;
- in a source without a key, the same counts of pseudorandom values.
Padding and stand-in values are keyed (by the search key, or by the searcher's `decoy_key`), so a
repeated query repeats them exactly as a real trapdoor repeats: the server cannot spot a stand-in
by asking for the same query twice. With no `decoy_key` they are fresh random values.

The server traverses each source's segments with all of a query's trapdoors in one batched walk
(`server.traverse_many`) and returns the sealed leaves each reached. The client, per source it
holds: opens the leaves, keeps the keywords that truly match (pattern) or belong to the cover
(range), maps postings to document ids (the source's `prefix` + id), skips removed documents,
and counts live documents for idf.
Then `query.evaluate` combines the terms and `query.hits` ranks: the result equals
`query.reference_query` over the union of the documents of the held sources.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from .client import key_matches, open_leaf, trapdoor
from .errors import IndexCorrupt
from .fields import COVER_SIZE, cover, is_field_keyword
from .format import Segment
from .keys import SearchKey
from .pause import collector_paused
from .prf import encode
from .query import (
    Node,
    Pattern,
    Result,
    Term,
    evaluate,
    hits,
    parse_query,
    pattern_result,
    range_result,
    terms,
)
from .rank import Hit, rank
from .server import Forest, ServerResult
from .text import parse_pattern

DECOY_LABEL = b"abe-health/pass/v1/decoy"
#: segments with filters up to this size are walked together (their filters copied once)
BATCH_BYTES = 8 << 20
PAD_LABEL = b"abe-health/pass/v1/range-pad"


class IndexView(Protocol):
    """What a query needs of an index: a local `SearchIndex`, or a `detached.DetachedIndex`
    rebuilt from what a server returned."""

    @property
    def index_id(self) -> bytes: ...

    @property
    def segments(self) -> list[Segment]: ...

    def removed(self, key: SearchKey) -> dict[bytes, frozenset[int]]: ...

    def table(self, key: SearchKey, segment: Segment) -> list[str]: ...


@dataclass(frozen=True)
class Source:
    """An index to query, the key the searcher holds for it (None: it may not open it), and the
    prefix its document ids get in the merged results."""

    index: IndexView
    key: SearchKey | None
    prefix: str = ""


#: per source, per term of the query: (term, the trapdoors sent, a range's cover keywords)
Plan = list[list[tuple["Term", list[bytes], set[str]]]]
#: what came back: (source, term, cover keywords, segment, the walk's result), one per trapdoor
Reached = list[tuple[Source, "Term", set[str], Segment, ServerResult]]


@dataclass(frozen=True)
class SearchStats:
    nodes_visited: int
    leaves_returned: int
    false_positives: int
    server_ms: float
    client_ms: float
    trapdoors: int = 0
    bytes_returned: int = 0


@dataclass(frozen=True)
class SearchResult:
    hits: list[Hit]
    stats: SearchStats


def keyword_trapdoor(key: SearchKey, word: str) -> bytes:
    """The trapdoor of the exact keyword `word` (as `^word$`), field keywords included."""
    return key.prf.one(encode(word, True, True))


def _stand_in(secret: bytes | None, label: bytes, *parts: bytes) -> bytes:
    """A 16-byte value the server cannot tell from a trapdoor: keyed and repeatable, or random."""
    if secret is None:
        return os.urandom(16)
    mac = hmac.new(secret, label, hashlib.sha256)
    for part in parts:
        mac.update(len(part).to_bytes(4, "big") + part)
    return mac.digest()[:16]


def _term_id(term: Term) -> bytes:
    if isinstance(term, Pattern):
        return b"p" + term.text.encode()
    return f"r{term.kind}{term.name}/{term.low}/{term.high}".encode()


def trapdoors(term: Term, source: Source, decoy_key: bytes | None) -> tuple[list[bytes], set[str]]:
    """The trapdoors `source` receives for `term`, and (for a range) the cover's keywords."""
    if source.key is None:
        count = 1 if isinstance(term, Pattern) else COVER_SIZE
        return [_stand_in(decoy_key, DECOY_LABEL, source.index.index_id, _term_id(term), i.to_bytes(4, "big"))
                for i in range(count)], set()
    return held_trapdoors(term, source.key)


def held_trapdoors(term: Term, key: SearchKey) -> tuple[list[bytes], set[str]]:
    """The trapdoors of `term` under a search key the searcher holds: one for a pattern; for a
    range its cover's exact-keyword trapdoors padded to COVER_SIZE with values keyed by the
    search key and the term (repeatable, unpredictable without the key), sorted."""
    if isinstance(term, Pattern):
        return [trapdoor(key, term.text)], set()
    words = cover(term.kind, term.name, term.low, term.high)
    doors = [keyword_trapdoor(key, w) for w in words]
    doors += [_stand_in(key.long_pattern_key, PAD_LABEL, _term_id(term), i.to_bytes(4, "big"))
              for i in range(COVER_SIZE - len(doors))]
    return sorted(doors), set(words)


class Searcher:
    """Queries over a fixed set of sources, keeping the server's batched view of their segments
    and the client's opened document tables between queries: small segments (filters up to
    BATCH_BYTES) are walked together in one `Forest` (copied once), larger ones each in place.
    A Searcher answers from the indexes as they were at its first query; make a new one to see
    later changes."""

    def __init__(self, sources: Sequence[Source], decoy_key: bytes | None = None) -> None:
        self.sources = list(sources)
        self.decoy_key = decoy_key
        self._forests: list[tuple[Forest, list[tuple[int, Segment]]]] | None = None
        self._tables: dict[tuple[int, bytes], list[str | None]] | None = None
        self._n_docs = 0

    def _walks(self) -> list[tuple[Forest, list[tuple[int, Segment]]]]:
        """(forest, [(source position, segment) of each of its segments, in forest order])."""
        if self._forests is None:
            small: list[tuple[int, Segment]] = []
            large: list[tuple[int, Segment]] = []
            for i, source in enumerate(self.sources):
                for segment in source.index.segments:
                    (small if len(segment.filters) <= BATCH_BYTES else large).append((i, segment))
            groups = ([small] if small else []) + [[item] for item in large]
            self._forests = [(Forest([seg for _, seg in g]), g) for g in groups]
        return self._forests

    def search(self, query: str | Node, top: int | None = None) -> SearchResult:
        """Ranked hits of `query` over every source held (see the module docstring)."""
        node = parse_query(query) if isinstance(query, str) else query
        t0 = time.perf_counter()
        planned = plan(node, self.sources, self.decoy_key)
        reached: Reached = []
        for forest, members in self._walks():  # the server: every trapdoor of every segment at once
            requests = [(at, door) for at, (i, _) in enumerate(members)
                        for _, doors, _ in planned[i] for door in doors]
            answers = iter(forest.traverse(requests))
            reached += [(self.sources[i], term, cover_words, segment, next(answers))
                        for i, segment in members for term, doors, cover_words in planned[i]
                        for _ in doors]
        t1 = time.perf_counter()
        if self._tables is None:
            self._tables = live_tables(self.sources)
            self._n_docs = live_count(self._tables)
        return finish(node, self.sources, planned, reached, top, t1 - t0, self._tables, self._n_docs)


def plan(node: Node, sources: Sequence[Source], decoy_key: bytes | None) -> Plan:
    """The client's first step: every term's trapdoors for every source."""
    wanted = terms(node)
    return [[(term, *trapdoors(term, source, decoy_key)) for term in wanted] for source in sources]


def live_tables(sources: Sequence[Source]) -> dict[tuple[int, bytes], list[str | None]]:
    """Per (source, segment id) the searcher holds: document ids with the source's prefix, None
    where removed (see `_live_tables`)."""
    return {(id(s), sid): table for s in sources if s.key is not None
            for sid, table in _live_tables(s, s.key).items()}


def live_count(tables: dict[tuple[int, bytes], list[str | None]]) -> int:
    """The number of live documents over all tables (N of the idf: documents are disjoint
    across segments, so the sum counts each once)."""
    return sum(len(table) - table.count(None) for table in tables.values())


def finish(node: Node, sources: Sequence[Source], planned: Plan, reached: Reached, top: int | None,
           server_seconds: float, tables: dict[tuple[int, bytes], list[str | None]] | None = None,
           n_docs: int | None = None) -> SearchResult:
    """The client's last step: open what came back, keep true matches, evaluate and rank
    (`n_docs`: `live_count(tables)`, passed by a caller that keeps it)."""
    with collector_paused():
        return _finish(node, sources, planned, reached, top, server_seconds, tables, n_docs)


def _finish(node: Node, sources: Sequence[Source], planned: Plan, reached: Reached, top: int | None,
            server_seconds: float, tables: dict[tuple[int, bytes], list[str | None]] | None,
            n_docs: int | None) -> SearchResult:
    t1 = time.perf_counter()
    wanted = terms(node)
    postings: dict[Term, dict[str, dict[str, int]]] = {t: defaultdict(dict) for t in wanted}
    in_range: dict[Term, set[str]] = {t: set() for t in wanted}
    visited = sum(r.nodes_visited for *_, r in reached)
    returned = sum(len(r.leaves) for *_, r in reached)
    sent = sum(len(doors) for terms_of in planned for _, doors, _ in terms_of)
    volume = sum(len(sealed) for *_, r in reached for _, sealed in r.leaves)
    false_pos = 0
    if tables is None:
        tables = live_tables(sources)
    if n_docs is None:
        n_docs = live_count(tables)
    parsed: dict[Term, tuple[str, bool, bool]] = {
        t: parse_pattern(t.text) for t in wanted if isinstance(t, Pattern)}
    needles = {t: ("^" if start else "") + body + ("$" if end else "")
               for t, (body, start, end) in parsed.items()}  # `text.matches`, precomputed
    for source, term, cover_words, segment, result in reached:
        table = tables.get((id(source), segment.id))
        if source.key is None or table is None:  # not held, or a segment another key built
            continue
        needle = needles.get(term)
        n_table = len(table)
        term_postings, term_range = postings[term], in_range[term]
        for leaf, sealed in result.leaves:
            word, plist = open_leaf(source.key, segment, leaf, sealed)
            if needle is not None:
                if is_field_keyword(word) or needle not in "^" + word + "$":
                    false_pos += 1
                    continue
            elif word not in cover_words:
                false_pos += 1
                continue
            docs = term_postings[word] if needle is not None else None
            for d, tf in plist:
                if not 0 <= d < n_table:
                    raise IndexCorrupt(f"{segment.path}: posting names document {d} of {n_table}")
                doc = table[d]
                if doc is None:  # removed
                    continue
                if docs is not None:
                    docs[doc] = tf
                else:
                    term_range.add(doc)
    if isinstance(node, Pattern):  # one pattern: `rank` itself, as `reference_search` ranks
        ranked = rank(parsed[node][0], postings[node], n_docs, top)
    else:
        results: dict[Term, Result] = {
            t: pattern_result(t, postings[t], n_docs) if isinstance(t, Pattern) else range_result(in_range[t])
            for t in wanted}
        ranked = hits(evaluate(node, results), top)
    t2 = time.perf_counter()
    return SearchResult(ranked, SearchStats(visited, returned, false_pos, server_seconds * 1e3,
                                            (t2 - t1) * 1e3, sent, volume))


def run(query: str | Node, sources: Sequence[Source], top: int | None = None,
        decoy_key: bytes | None = None) -> SearchResult:
    """Ranked hits of `query` over every source the searcher holds a key for (see the module
    docstring); sources without a key are queried with stand-ins and contribute nothing. Keep a
    `Searcher` instead to run many queries over the same sources."""
    return Searcher(sources, decoy_key).search(query, top)


def _live_tables(source: Source, key: SearchKey) -> dict[bytes, list[str | None]]:
    """Per segment `key` built (by segment id): its document ids with the source's prefix, None where a
    document is removed. Segments another key built are left out (a wrong key finds nothing)."""
    removed = source.index.removed(key)
    out: dict[bytes, list[str | None]] = {}
    for segment in source.index.segments:
        if key_matches(key, segment):
            gone = removed.get(segment.id, frozenset())
            out[segment.id] = [None if i in gone else source.prefix + doc
                            for i, doc in enumerate(source.index.table(key, segment))]
    return out


__all__ = ["IndexView", "SearchResult", "SearchStats", "Searcher", "Source", "finish", "held_trapdoors",
           "keyword_trapdoor", "live_count", "live_tables", "plan", "run", "trapdoors"]
