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
    return {doc: (cls, score, [found] if isinstance(found, str) else found)
            for cls, scores, words in _scores(body, postings, n_docs)
            for (doc, score), found in zip(scores.items(), words.values(), strict=True)}


#: per class, best first: (class, {doc: score}, {doc: its keyword, or its keywords if several})
ClassScores = list[tuple[int, dict[str, float], dict[str, str | list[str]]]]


def _scores(body: str, postings: Mapping[str, Mapping[str, int]], n_docs: int) -> ClassScores:
    """`term_scores`, a dictionary per class. Classes are taken best first, so a document is
    entered once, in its best class, and only added to after; within a class, keywords come in
    sorted order, so every score is summed in the same order as by one pass over the sorted
    keywords. Plain floats and strings per document (no list or tuple each) keep a query with
    tens of thousands of documents from allocating as many containers."""
    by_class: tuple[list[str], ...] = ([], [], [], [])
    for word in sorted(postings):
        by_class[match_class(body, word)].append(word)
    out: ClassScores = []
    taken: dict[str, float] = {}  # documents of a better class
    log = math.log
    for cls in (EXACT, PREFIX, SUFFIX, INNER):
        scores: dict[str, float] = {}
        words: dict[str, str | list[str]] = {}
        for word in by_class[cls]:
            docs = postings[word]
            idf = log(1 + n_docs / max(1, len(docs)))
            for doc_id, tf in docs.items():
                if doc_id in scores:
                    scores[doc_id] += tf * idf
                    found = words[doc_id]
                    if isinstance(found, str):
                        words[doc_id] = [found, word]
                    else:
                        found.append(word)
                elif doc_id not in taken:
                    scores[doc_id] = tf * idf
                    words[doc_id] = word
        if scores:
            out.append((cls, scores, words))
            taken.update(scores)
    return out


def rank(body: str, postings: Mapping[str, Mapping[str, int]], n_docs: int, top: int | None = None
         ) -> list[Hit]:
    """Rank documents from {keyword: {doc_id: tf}} of the matching keywords: best class, then
    score (`term_scores`), then id."""
    if top is not None and top < 0:  # as the slice hits[:top] of the whole ranking
        return rank(body, postings, n_docs)[:top]
    hits: list[Hit] = []
    for cls, scores, words in _scores(body, postings, n_docs):  # best class first
        negated = {doc: -round(score, 9) for doc, score in scores.items()}
        order = sorted(negated)  # by id, then (stable) by score: two sorts on one plain type
        order.sort(key=negated.__getitem__)  # each, much faster than one sort on tuples
        if top is not None:
            order = order[: top - len(hits)]
        name = CLASS_NAMES[cls]
        for doc in order:
            found = words[doc]
            hits.append(Hit(doc, name, -negated[doc], (found,) if isinstance(found, str) else tuple(found)))
        if top is not None and len(hits) >= top:
            break
    return hits


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
