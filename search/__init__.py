"""PASS-tree encrypted keyword and pattern search (Bezawada, Liu, Jayaraman, Wang, Li, "Privacy
Preserving String Matching for Cloud Computing", ICDCS 2015), ranked, at ten million keywords.

Symmetric keys only (of `abe_health` it uses just the file lock and the atomic write). Three roles:
- owner: `SearchIndex.create(path, docs, key)` / `index.add(docs, key)` (docs: {id: {word: tf}},
  e.g. from `text.collect(paths)`, or a stream of (id, {word: tf}) pairs, e.g. `text.stream(paths)`:
  the build's memory is then bounded by a constant, see `build`);
- server: `format.load_segment` + `server.traverse(segment, trapdoor)`, holding only the index;
- client: `client.trapdoor(key, pattern)` and the finish in `SearchIndex.search`.

Patterns: `card` (anywhere in a keyword), `^card` (prefix), `itis$` (suffix), `^heart$` (exact).

Leakage to the server, which stores the index, sees every trapdoor and may collude with
readers. The same rows, with exact formulas, are in docs/leakage.md, and each row's test in
tests/test_search_security.py keeps it true (capacity buckets: steps of 2^(1/4), at least 8).

Per index:
  I1 segment count (exact): how many segments, and when an add or merge made new ones (one per
     2^20 documents of a build).
  I2 tree shape (exact): each segment's number of distinct keywords and its level sizes (fan-out
     4, up to one node or nodes of 4,096 leaves).
  I3 node filter sizes and fills (coarse): each node's distinct substring count up to its
     capacity bucket; dummy insertions fill it to that bucket.
  I4 leaf payload lengths (coarse): keyword length plus postings, in 32-byte steps.
  I5 document count (coarse): each segment's sealed document table is 64 bytes per slot of the
     count's capacity bucket (or of its id bytes / 64 when ids are long).
  I6 index id and key sharing (exact): the random index id; the search key's public fingerprint
     (which indexes share a key) and the owner who signed it.
  I7 policy of the sealed search key (exact): the ABE policy of search.key.abe.
  I8 removals (coarse): when documents were removed, and how many are removed but not yet
     compacted away, up to a capacity bucket (the sealed list in the manifest).
Per query:
  Q1 search pattern (exact): equal patterns give equal trapdoors.
  Q2 access pattern (exact): the nodes reached on the way down and the leaves returned.
  Q3 query shape (coarse): per index, one trapdoor per pattern term and 62 per range term.
With several groups, owners and searchers (abe_health.collection):
  G1 the groups of a collection (exact): each group's policy, sealed policy, epoch, and I1-I8.
  S1 which groups a searcher holds (none): equal counts, keyed repeatable stand-ins.
  S2 searchers who share a group (exact): if their queries are linked, equal trapdoors where
     both hold.
What the server does not learn:
  N1 keyword, substring and document id text, term frequencies (none): all sealed.
  N2 exact document count (none): within a bucket, file sizes are identical.
  N3 query text (none): a trapdoor is a keyed PRF value.
  N4 spelling from leaf positions (none): leaves are in a keyed order.
  N5 shared substrings across nodes or segments (none): every node has its own salt.
  N6 queries of a reader through a key the server sealed (none): a reader who pins the owner's
     public key refuses a search key without the owner's signature for this index
     (abe_health.owner), before computing any trapdoor.
With a colluding reader:
  C1 everything the search key opens (exact): every keyword, posting and document id, and every
     query (by computing trapdoors of candidate patterns).
"""

from .engine import SearchResult, Source
from .errors import (
    DocumentExists,
    IndexCorrupt,
    IndexExists,
    InvalidPattern,
    InvalidSearchKey,
    SearchError,
    UnknownDocument,
)
from .index import SearchIndex
from .keys import SearchKey
from .rank import Hit, reference_search
from .text import collect, keywords

__all__ = [
    "DocumentExists",
    "Hit",
    "IndexCorrupt",
    "IndexExists",
    "InvalidPattern",
    "InvalidSearchKey",
    "SearchError",
    "SearchIndex",
    "SearchKey",
    "SearchResult",
    "Source",
    "UnknownDocument",
    "collect",
    "keywords",
    "reference_search",
]
