"""Deterministic relevance: exact word > prefix > suffix > inner substring, then tf-idf, then id.

The client applies `rank` to the keywords it recovered from the index; `reference_search` applies
the same rule to plaintext, so encrypted search can be checked for exact equality with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .text import matches, parse_pattern

EXACT, PREFIX, SUFFIX, INNER = 3, 2, 1, 0
CLASS_NAMES = {EXACT: "exact", PREFIX: "prefix", SUFFIX: "suffix", INNER: "inner"}


def match_class(body: str, word: str) -> int:
    """How the pattern body sits in the word."""
    if word == body:
        return EXACT
    if word.startswith(body):
        return PREFIX
    if word.endswith(body):
        return SUFFIX
    return INNER


@dataclass(frozen=True)
class Hit:
    """One ranked document: its id, best match class, tf-idf score, and the keywords that matched."""

    doc_id: str
    match: str
    score: float
    keywords: tuple[str, ...]


def term_scores(body: str, postings: Mapping[str, Mapping[str, int]], n_docs: int
                ) -> dict[str, tuple[int, float, list[str]]]:
    """Each matching document's (best class, tf-idf score over that class's keywords, those
    keywords) from {keyword: {doc_id: tf}} of the matching keywords.

    score(d) = sum over matching keywords w in d of the best class: tf(w, d) * ln(1 + N / df(w)).
    """
    best: dict[str, tuple[int, float, list[str]]] = {}
    for word in sorted(postings):
        docs = postings[word]
        cls = match_class(body, word)
        idf = math.log(1 + n_docs / max(1, len(docs)))
        for doc_id, tf in docs.items():
            current = best.get(doc_id)
            if current is None or cls > current[0]:
                best[doc_id] = (cls, tf * idf, [word])
            elif cls == current[0]:
                best[doc_id] = (cls, current[1] + tf * idf, [*current[2], word])
    return best


def rank(body: str, postings: Mapping[str, Mapping[str, int]], n_docs: int, top: int | None = None
         ) -> list[Hit]:
    """Rank documents from {keyword: {doc_id: tf}} of the matching keywords: best class, then
    score (`term_scores`), then id."""
    best = term_scores(body, postings, n_docs)
    order = sorted(best.items(), key=lambda item: (-item[1][0], -round(item[1][1], 9), item[0]))
    hits = [Hit(doc, CLASS_NAMES[c], round(s, 9), tuple(ws)) for doc, (c, s, ws) in order]
    return hits if top is None else hits[:top]


def reference_search(pattern: str, docs: Mapping[str, Mapping[str, int]], top: int | None = None
                     ) -> list[Hit]:
    """The plaintext answer: scan every keyword of every document."""
    body, start, end = parse_pattern(pattern)
    postings: dict[str, dict[str, int]] = {}
    for doc_id, counts in docs.items():
        for word, tf in counts.items():
            if not word.startswith("#") and matches(body, start, end, word):  # "#": field keywords
                postings.setdefault(word, {})[doc_id] = tf
    return rank(body, postings, len(docs), top)
