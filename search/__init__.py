"""PASS-tree encrypted keyword and pattern search (Bezawada, Liu, Jayaraman, Wang, Li, "Privacy
Preserving String Matching for Cloud Computing", ICDCS 2015), ranked, at a million keywords.

Independent of `abe_health`: symmetric keys only. Three roles:
- owner: `SearchIndex.create(path, docs, key)` / `index.add(docs, key)` (docs: {id: {word: tf}},
  e.g. from `text.collect(paths)`);
- server: `format.load_segment` + `server.traverse(segment, trapdoor)`, holding only the index;
- client: `client.trapdoor(key, pattern)` and the finish in `SearchIndex.search`.

Patterns: `card` (anywhere in a keyword), `^card` (prefix), `itis$` (suffix), `^heart$` (exact).

Leakage (what the server learns): the tree's shape (number of keywords, segments), each node's
filter size and fill up to a capacity bucket (steps of 2^(1/4)), each leaf payload's length in
32-byte steps (a coarse bound on its posting list), and per query the search pattern (repeated
trapdoors are equal) and access pattern: which nodes matched on the way down and which leaves
were returned. It learns no keyword, pattern text, document id, term frequency or document count.
Node salts make the same substring set unrelated bits in different nodes, so filters cannot be
compared across nodes or segments.
"""

from .errors import IndexCorrupt, InvalidPattern, InvalidSearchKey, SearchError
from .index import SearchIndex, SearchResult
from .keys import SearchKey
from .rank import Hit, reference_search
from .text import collect, keywords

__all__ = [
    "Hit",
    "IndexCorrupt",
    "InvalidPattern",
    "InvalidSearchKey",
    "SearchError",
    "SearchIndex",
    "SearchKey",
    "SearchResult",
    "collect",
    "keywords",
    "reference_search",
]
