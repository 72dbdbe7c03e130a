"""Builds at scale, tested small: streamed input, spilled runs, batches of subtrees and segments
split by documents give exactly the index (and the answers) of one in-memory build; merges
stream old segments (version 2 among them); peak memory stays flat as the input grows."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import search.build as build
from search import DocumentExists, SearchIndex, SearchKey, reference_search
from search.build import FANOUT, capacity, tree_levels
from search.client import open_leaf
from search.query import reference_query

KEY = SearchKey.generate()
VECTOR = Path(__file__).resolve().parent / "vectors" / "index"
PATTERNS = ["a", "e", "ab", "^b", "an$", "ing", "tion", "^con", "ed$", "^zebra$", "q", "zz", "ology"]


def corpus(n_docs: int, seed: int = 1) -> dict[str, Counter[str]]:
    """Documents of random pronounceable words: frequent ones shared, rare ones in one or two."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfgklmnprstvz" for v in "aeiou"] + ["ing", "tion", "ed", "an"]
    lexicon = sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
                      for _ in range(40 * n_docs)})
    return {f"doc-{d:04d}": Counter({rng.choice(lexicon): rng.randint(1, 4)
                                     for _ in range(rng.randint(0, 25))}) for d in range(n_docs)}


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of 2 top subtrees of 16 leaves and runs of 40 postings: every path of a large
    build (spilled runs, several batches, a partial last batch) at a few hundred keywords."""
    monkeypatch.setattr(build, "TOP_LEVEL", 2)
    monkeypatch.setattr(build, "CHUNK_LEAVES", 2 * FANOUT**2)
    monkeypatch.setattr(build, "RUN_POSTINGS", 40)


def leaf_words(segment) -> list[str]:
    return [open_leaf(KEY, segment, i, segment.payload(i))[0] for i in range(segment.levels[0])]


def substrings(word: str) -> set[str]:
    marked = "^" + word + "$"
    m = len(marked)
    return {marked[i:j] for i in range(m) for j in range(i + 1, m + 1) if (i, j) not in ((0, 1), (m - 1, m))}


def test_a_streamed_build_in_batches_equals_the_plaintext_model(tmp_path, small_batches):
    docs = corpus(60)
    index, stats = SearchIndex.create(tmp_path / "idx", iter(docs.items()), KEY)
    segment = index.segments[0]
    distinct = {w for counts in docs.values() for w in counts}
    assert stats.keywords == len(distinct) == segment.levels[0] > 2 * build.CHUNK_LEAVES
    assert segment.levels == tree_levels(len(distinct)) and len(segment.levels) == 3
    assert sorted(index.documents(KEY)) == sorted(docs)
    for pattern in PATTERNS:
        assert index.search(pattern, KEY).hits == reference_search(pattern, docs), pattern
    assert not list(tmp_path.glob("idx/*/scratch")) and not list(tmp_path.glob("idx/*.tmp"))


def test_batches_build_the_same_nodes_as_one_tree(tmp_path, small_batches):
    """Every node of a tree built batch by batch holds the substrings of exactly the keywords
    below it: its size is that of their capacity bucket, and the walk finds every keyword."""
    docs = corpus(25, seed=2)
    segment = SearchIndex.create(tmp_path / "idx", docs, KEY)[0].segments[0]
    words = leaf_words(segment)
    assert words == sorted(words, key=lambda w: build.order_key(KEY, w))  # the keyed leaf order
    node = 0
    for level, n_nodes in enumerate(segment.levels):
        for i in range(n_nodes):
            below = words[i * FANOUT**level : (i + 1) * FANOUT**level]
            c = len(set().union(*(substrings(w) for w in below)))
            bits = int(segment.node_m[node + i])
            assert bits == 64 * math.ceil(10 * int(capacity(np.array([c]))[0]) / 64), (level, i)
        node += n_nodes


def test_segments_split_by_documents_rank_as_one(tmp_path, monkeypatch):
    """Past MAX_DOCUMENTS a build starts another segment; a keyword in several segments has its
    postings joined and every document counts once in the idf, so ranking is unchanged."""
    monkeypatch.setattr(build, "MAX_DOCUMENTS", 7)
    docs = corpus(30, seed=3)
    index, stats = SearchIndex.create(tmp_path / "idx", (item for item in docs.items()), KEY)
    assert stats.segments == len(index.segments) == 5 and stats.documents == 30
    for pattern in PATTERNS:
        assert index.search(pattern, KEY).hits == reference_search(pattern, docs), pattern
    assert reference_query("ing AND an", docs) == index.search("ing AND an", KEY).hits


def test_a_stream_that_repeats_an_id_is_refused_and_leaves_nothing(tmp_path, small_batches, monkeypatch):
    monkeypatch.setattr(build, "MAX_DOCUMENTS", 5)
    docs = list(corpus(12, seed=4).items())
    with pytest.raises(DocumentExists, match="given twice"):
        SearchIndex.create(tmp_path / "idx", [*docs, docs[2]], KEY)  # in another segment
    with pytest.raises(DocumentExists, match="given twice"):
        SearchIndex.create(tmp_path / "idx2", [docs[0], docs[1], docs[0]], KEY)  # in the same one
    for folder in ("idx", "idx2"):
        assert not [p.name for p in (tmp_path / folder).iterdir() if p.name.startswith("seg-")
                    and not (p / "meta.cbor").exists()]


def test_streamed_adds_merge_in_leaf_order(tmp_path, small_batches):
    docs = corpus(40, seed=5)
    items = list(docs.items())
    index = SearchIndex.create(tmp_path / "idx", items[:10], KEY)[0]
    for start in range(10, 40, 10):
        index.add(iter(items[start : start + 10]), KEY)
    assert len(index.segments) < 4  # the binary schedule merged on the way
    amended = {items[3][0]: Counter({"zebra": 2})}
    with pytest.raises(DocumentExists, match="already indexed"):
        index.add(iter(amended.items()), KEY)
    index.add(iter(amended.items()), KEY, replace=True)
    index.remove([items[0][0]], KEY)
    index.compact(KEY)
    model = {d: c for d, c in {**docs, **amended}.items() if d != items[0][0]}
    for pattern in PATTERNS:
        assert index.search(pattern, KEY).hits == reference_search(pattern, model), pattern
    for segment in index.segments:
        words = leaf_words(segment)
        assert words == sorted(words, key=lambda w: build.order_key(KEY, w))


def test_version_2_segments_are_searched_beside_and_merged_into_version_3(tmp_path):
    """The frozen version-2 index (binary tree): a small version-3 segment is walked beside it
    in one batched walk, and a merge streams its leaves into one version-3 segment."""
    shutil.copytree(VECTOR / "idx", tmp_path / "idx")
    key = SearchKey.load(VECTOR / "search.key")
    index = SearchIndex(tmp_path / "idx")
    old = index.contents(key)
    assert [s.fanout for s in index.segments] == [2]
    index.add({"new-1": Counter({"cardiomyopathy": 1})}, key)
    assert [s.fanout for s in index.segments] == [2, 4]
    model = {**old, "new-1": Counter({"cardiomyopathy": 1})}
    for pattern in ("card", "^cardio", "pathy$", "a"):
        assert index.search(pattern, key).hits == reference_search(pattern, model), pattern
    index.add({f"new-{i}": Counter({f"word{i}": 1}) for i in range(2, 200)}, key)
    model.update({f"new-{i}": Counter({f"word{i}": 1}) for i in range(2, 200)})
    assert [s.fanout for s in index.segments] == [4]  # merged
    for pattern in ("card", "^cardio", "pathy$", "a", "word1"):
        assert index.search(pattern, key).hits == reference_search(pattern, model), pattern


_CHILD = r"""
import json, random, sys
import search.build as build
from benchmarks.envelope import peak_rss_mb
from search import SearchIndex, SearchKey
build.RUN_POSTINGS, build.CHUNK_LEAVES = 20_000, 4096
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(n)
syllables = [c + v for c in "bcdfgklmnprstvz" for v in "aeiou"]

def stream():
    for d in range(n // 8):  # about 8 new keywords a document, and some common ones
        words = {f"{rng.choice(syllables)}{rng.choice(syllables)}{8 * d + i}x": 1 for i in range(8)}
        words.update({rng.choice(syllables): rng.randint(1, 3) for _ in range(4)})
        yield f"doc{d}", words

stats = SearchIndex.create(out, stream(), SearchKey.generate())[1]
print(json.dumps({"keywords": stats.keywords, "peak_mb": peak_rss_mb()}))
"""


def _peak(n: int, out: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(out)], capture_output=True,
                          text=True, check=True, timeout=600, cwd=Path(__file__).resolve().parent.parent)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def test_peak_memory_stays_flat_as_a_streamed_build_grows(tmp_path):
    """Peak RSS (VmHWM, in a child process) of a streamed build of 5x the keywords stays within
    20 MB of the smaller one's (about 110 MB here): runs, merges, batches and the assembly of
    files are bounded; what grows is the document table and the duplicate check (ids only)."""
    small = _peak(30_000, tmp_path / "small")
    large = _peak(150_000, tmp_path / "large")
    assert large["keywords"] > 4.5 * small["keywords"]
    assert large["peak_mb"] < small["peak_mb"] + 20, (small, large)
