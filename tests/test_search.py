"""PASS-tree search: exact equality with a plaintext scan, ranking, salts, leakage, corruption."""

from __future__ import annotations

import gc
import math
import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search import (
    DocumentExists,
    IndexCorrupt,
    IndexExists,
    InvalidPattern,
    InvalidSearchKey,
    SearchIndex,
    SearchKey,
    keywords,
    reference_search,
)
from search.build import capacity, random_bytes
from search.client import open_leaf, trapdoor
from search.prf import positions
from search.rank import CLASS_NAMES, Hit, match_class, rank, term_scores
from search.server import traverse
from search.text import MAX_KEYWORD, collect, parse_pattern

KEY = SearchKey.generate()
ALPHABET = "abcdeäßσç日"


def build(tmp_path, docs, key=KEY, name="idx"):
    return SearchIndex.create(tmp_path / name, docs, key)[0]


words_st = st.text(alphabet=ALPHABET, min_size=1, max_size=9)
docs_st = st.dictionaries(
    st.text(alphabet="xyz0123456789", min_size=1, max_size=4),
    st.dictionaries(words_st, st.integers(1, 4), min_size=1, max_size=8),
    min_size=1, max_size=12,
)


@st.composite
def patterns(draw, docs):
    words = sorted({w for counts in docs.values() for w in counts})
    if draw(st.booleans()):
        w = draw(st.sampled_from(words))
        i = draw(st.integers(0, len(w) - 1))
        j = draw(st.integers(i + 1, len(w)))
        body = w[i:j]
        start = i == 0 and draw(st.booleans())
        end = j == len(w) and draw(st.booleans())
    else:
        body, start, end = draw(words_st), draw(st.booleans()), draw(st.booleans())
    return ("^" if start else "") + body + ("$" if end else "")


@settings(max_examples=40)
@given(docs=docs_st, data=st.data())
def test_results_equal_a_plaintext_scan(tmp_path_factory, docs, data):
    tmp = tmp_path_factory.mktemp("idx")
    docs = {d: Counter({w.casefold(): n for w, n in c.items()}) for d, c in docs.items()}
    docs = {d: Counter({w: n for w, n in c.items() if w.isalnum()}) for d, c in docs.items()}
    docs = {d: c for d, c in docs.items() if c}
    if not docs:
        return
    index = build(tmp, docs)
    for _ in range(8):
        pattern = data.draw(patterns(docs))
        if not pattern.strip("^$"):
            continue
        result = index.search(pattern, KEY)
        assert result.hits == reference_search(pattern, docs), pattern


def test_ranking_rule():
    docs = {
        "a": Counter({"card": 1}),
        "b": Counter({"cardiology": 5}),
        "c": Counter({"postcard": 1}),
        "d": Counter({"discarded": 9}),
        "e": Counter({"cardiology": 1, "discarded": 1}),
    }
    hits = reference_search("card", docs)
    assert [(h.doc_id, h.match) for h in hits] == [
        ("a", "exact"), ("b", "prefix"), ("e", "prefix"), ("c", "suffix"), ("d", "inner")]
    assert hits[1].score > hits[2].score  # tf 5 against tf 1, same idf
    assert [h.doc_id for h in reference_search("^card", docs)] == ["a", "b", "e"]
    assert [h.doc_id for h in reference_search("card$", docs)] == ["a", "c"]
    assert [h.doc_id for h in reference_search("^card$", docs)] == ["a"]


def _naive_rank(body, postings, n_docs, top=None):
    """The ranking rule written out directly: one pass over the sorted keywords, one sort on
    (class, score, id) tuples (what `rank` computed before it was made faster)."""
    best = {}
    for word in sorted(postings):
        cls = match_class(body, word)
        idf = math.log(1 + n_docs / max(1, len(postings[word])))
        for doc, tf in postings[word].items():
            current = best.get(doc)
            if current is None or cls > current[0]:
                best[doc] = (cls, tf * idf, [word])
            elif cls == current[0]:
                best[doc] = (cls, current[1] + tf * idf, [*current[2], word])
    order = sorted(best.items(), key=lambda item: (-item[1][0], -round(item[1][1], 9), item[0]))
    hits = [Hit(doc, CLASS_NAMES[c], round(s, 9), tuple(ws)) for doc, (c, s, ws) in order]
    return best, (hits if top is None else hits[:top])


@settings(max_examples=300)
@given(postings=st.dictionaries(st.text(alphabet="abc", min_size=1, max_size=5),
                                st.dictionaries(st.sampled_from("pqrstuvw"), st.integers(0, 3), min_size=1,
                                                max_size=6), max_size=12),
       extra=st.integers(0, 20), top=st.none() | st.integers(0, 12))
def test_rank_equals_the_rule_written_out(postings, extra, top):
    """Ties in class and score (small tfs, equal dfs) are common here, so the order by id is
    exercised; scores must be equal bit for bit, not only close."""
    n_docs = len({d for docs in postings.values() for d in docs}) + extra
    for body in ("a", "ab", "b", "abc"):
        matching = {w: docs for w, docs in postings.items() if body in w}
        best, expected = _naive_rank(body, matching, n_docs, top)
        assert rank(body, matching, n_docs, top) == expected
        assert term_scores(body, matching, n_docs) == best


def test_search_matches_reference_on_records(tmp_path):
    docs = {
        "rec1.json": keywords("Cardiology consult: atrial fibrillation; cardiac arrest risk"),
        "rec2.txt": keywords("Discarded postcard; card game. Heart heart heart"),
        "rec3.txt": keywords("Ärztin: Herzinsuffizienz, kardiale Dekompensation, STRASSE Straße"),
    }
    index = build(tmp_path, docs)
    for pattern in ["card", "^card", "card$", "^card$", "heart", "ärz", "ÄRZ", "zinsuff", "xyz",
                    "^h", "strasse", "e$", "^ca"]:
        assert index.search(pattern, KEY).hits == reference_search(pattern, docs), pattern
    assert index.search("card", KEY, top=1).hits == reference_search("card", docs)[:1]


def test_wrong_key_finds_nothing(tmp_path):
    index = build(tmp_path, {"d": Counter({"cardiology": 1})})
    other = SearchKey.generate()
    assert not index.key_matches(other)
    assert index.search("card", other).hits == []
    with pytest.raises(InvalidSearchKey):
        index.documents(other)


def test_node_salts_separate_the_same_substring(tmp_path):
    """The same keyword in two subtrees (two segments here, two leaves below) sets different bits."""
    index = build(tmp_path, {"d1": Counter({"cardiac": 1, "cardiology": 1})})
    index.add({"d2": Counter({"cardiac": 1, "zebra": 1, "yak": 1, "xylophone": 1})}, KEY)
    door = np.frombuffer(trapdoor(KEY, "cardiac"), dtype=np.uint8)[None, :]
    size = np.array([1 << 20], dtype=np.uint64)
    seen = []
    for segment in index.segments:
        for node in range(segment.levels[0]):
            pos = positions(door, segment.salts[node][None, :], size, 4)
            seen.append(tuple(int(p) for p in pos[0]))
    assert len(set(seen)) == len(seen)  # every node maps "cardiac" to its own positions
    zero = np.zeros((1, 16), dtype=np.uint8)
    assert (positions(door, zero, size, 4) == positions(door, zero.copy(), size, 4)).all()
    # and each segment's tree still leads the exact-word trapdoor to its "cardiac" leaf (a Bloom
    # false positive may add another leaf, which the client would drop)
    for segment in index.segments:
        reached = traverse(segment, trapdoor(KEY, "^cardiac$")).leaves
        assert "cardiac" in [open_leaf(KEY, segment, leaf, sealed)[0] for leaf, sealed in reached]


def test_index_files_hold_no_plaintext(tmp_path):
    docs = {"patient-4711-record.json": Counter({"myocarditis": 3, "warfarin": 1})}
    build(tmp_path, docs)
    blob = b"".join(p.read_bytes() for p in (tmp_path / "idx").rglob("*") if p.is_file())
    for secret in (b"myocarditis", b"warfarin", b"carditis", b"patient-4711", b"4711"):
        assert secret not in blob


def test_padding_rounds_counts_to_capacity_buckets():
    counts = np.array([1, 8, 9, 10, 11, 100, 1000, 12345])
    cap = capacity(counts)
    assert (cap >= np.maximum(counts, 8)).all()
    assert (cap <= np.maximum(counts, 8) * 1.2 + 1).all()
    assert len(set(capacity(np.arange(100, 119)))) <= 2  # nearby counts share a bucket


def test_add_merges_and_matches_reference(tmp_path):
    first = {f"d{i}": Counter({f"word{i}": 1, "common": 1}) for i in range(20)}
    index = build(tmp_path, first)
    every = dict(first)
    for batch in range(3):
        more = {f"n{batch}-{i}": Counter({f"extra{batch}x{i}": 2, "common": 1}) for i in range(8)}
        index.add(more, KEY)
        every.update(more)
        for pattern in ("common", "word1", "^extra", "x1$"):
            assert index.search(pattern, KEY).hits == reference_search(pattern, every), pattern
    assert len(index.segments) < 4  # merged on the way
    with pytest.raises(DocumentExists, match="already indexed"):
        index.add({"d1": Counter({"again": 1})}, KEY)
    reopened = SearchIndex(tmp_path / "idx")
    assert reopened.search("common", KEY).hits == reference_search("common", every)


def test_corrupt_indexes_raise_typed_errors(tmp_path):
    docs = {f"d{i}": Counter({f"term{i}": 1}) for i in range(30)}
    build(tmp_path, docs)
    seg = tmp_path / "idx" / "seg-0001"
    filters = (seg / "filters.bin").read_bytes()
    (seg / "filters.bin").write_bytes(filters[: len(filters) // 2])
    with pytest.raises(IndexCorrupt, match=r"outside filters\.bin"):
        SearchIndex(tmp_path / "idx")
    (seg / "filters.bin").write_bytes(filters)
    leaves = bytearray((seg / "leaves.bin").read_bytes())
    leaves[20] ^= 1
    (seg / "leaves.bin").write_bytes(bytes(leaves))
    index = SearchIndex(tmp_path / "idx")
    with pytest.raises(IndexCorrupt, match="does not open"):
        for i in range(30):
            index.search(f"term{i}", KEY)
    (seg / "meta.cbor").write_bytes(b"\xff garbage")
    with pytest.raises(IndexCorrupt, match="not valid CBOR"):
        SearchIndex(tmp_path / "idx")
    (tmp_path / "idx" / "manifest.cbor").write_bytes(b"nope")
    with pytest.raises(IndexCorrupt):
        SearchIndex(tmp_path / "idx")
    with pytest.raises(IndexCorrupt, match="not an index"):
        SearchIndex(tmp_path)
    (seg / "salts.npy").unlink()
    with pytest.raises(IndexCorrupt):
        SearchIndex(tmp_path / "idx")


def test_refuses_to_overwrite(tmp_path):
    build(tmp_path, {"d": Counter({"x": 1})})
    with pytest.raises(IndexExists, match="not empty"):
        build(tmp_path, {"d": Counter({"y": 1})})


@pytest.mark.parametrize("bad", ["", "^", "$", "^$", "a^b", "a$b"])
def test_invalid_patterns(bad):
    with pytest.raises(InvalidPattern):
        parse_pattern(bad)


def test_keywords_and_collect(tmp_path):
    assert keywords("Straße STRASSE straße") == Counter({"strasse": 3})
    assert keywords("x" * (MAX_KEYWORD + 1) + " ok") == Counter({"ok": 1})
    (tmp_path / "r.json").write_text('{"a": "Heart rate", "b": {"c": ["ECG normal", 5]}, "heart": 1}')
    (tmp_path / "n.txt").write_text("free text heart")
    docs = collect([tmp_path], root=tmp_path)
    words = Counter({w: n for w, n in docs["r.json"].items() if not w.startswith("#")})
    assert words == Counter({"heart": 1, "rate": 1, "ecg": 1, "normal": 1})
    fields = {w for w in docs["r.json"] if w.startswith("#")}  # heart = 1 and c = 5: 33 prefixes each
    assert len(fields) == 66 and f"#nheart/0/{2**31 + 1}" in fields and f"#nc/0/{2**31 + 5}" in fields
    assert docs["n.txt"] == Counter({"free": 1, "text": 1, "heart": 1})


def test_document_ids_are_unique_and_stable(tmp_path, monkeypatch):
    """Same-named files in two folders stay two documents; one file under two names is refused."""
    for site in ("siteA", "siteB"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "rec.json").write_text(f'{{"note": "{site} cardiology"}}')
    monkeypatch.chdir(tmp_path)
    docs = collect([Path("siteA"), Path("siteB")])
    assert sorted(docs) == ["siteA/rec.json", "siteB/rec.json"]
    assert collect([Path("./siteA/../siteA/rec.json")]) == {"siteA/rec.json": docs["siteA/rec.json"]}
    assert sorted(collect([tmp_path / "siteA"], root=tmp_path / "siteA")) == ["rec.json"]
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("elsewhere")
    try:
        assert list(collect([outside])) == [outside.resolve().as_posix()]
    finally:
        outside.unlink()
    (tmp_path / "alias.json").symlink_to(tmp_path / "siteA" / "rec.json")
    for twice in ([Path("siteA"), Path("siteA/rec.json")], [Path("siteA"), Path("alias.json")]):
        with pytest.raises(DocumentExists, match=r"siteA/rec\.json is given twice"):
            collect(twice)


def test_search_key_files(tmp_path):
    path = tmp_path / "s.key"
    KEY.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SearchKey.load(path) == KEY
    path.write_bytes(b"garbage")
    with pytest.raises(InvalidSearchKey):
        SearchKey.load(path)
    with pytest.raises(InvalidSearchKey, match="cannot read"):
        SearchKey.load(tmp_path / "missing")


def test_search_key_repr_shows_no_secret():
    for text in (repr(KEY), str(KEY), f"{KEY!r}"):
        assert KEY.secret.hex() not in text and KEY.secret.hex()[:8] not in text
        assert str(KEY.secret) not in text
    assert KEY.fingerprint.hex()[:16] in repr(KEY)
    assert KEY.fingerprint not in (KEY.secret, KEY.leaf_key, KEY.order_key)
    assert SearchKey.generate().fingerprint != KEY.fingerprint


def test_index_id_is_random_and_stable(tmp_path):
    index = build(tmp_path, {f"d{i}": Counter({f"w{i}": 1}) for i in range(10)})
    first = index.index_id
    assert len(first) == 16
    for batch in range(3):  # adds and merges rewrite the manifest but keep the id
        index.add({f"n{batch}-{i}": Counter({f"x{batch}{i}": 1}) for i in range(10)}, KEY)
        assert index.index_id == first == SearchIndex(tmp_path / "idx").index_id
    assert build(tmp_path, {"d": Counter({"w": 1})}, name="other").index_id != first


def test_version_1_segments_are_refused(tmp_path):
    import cbor2

    build(tmp_path, {"d": Counter({"w": 1})})
    meta_path = tmp_path / "idx" / "seg-0001" / "meta.cbor"
    meta = cbor2.loads(meta_path.read_bytes())
    meta_path.write_bytes(cbor2.dumps({**meta, "v": 1}))
    with pytest.raises(IndexCorrupt, match=r"version-1 segment.*rebuild it"):
        SearchIndex(tmp_path / "idx")
    meta_path.write_bytes(cbor2.dumps({**meta, "v": "x" * 10_000}))
    with pytest.raises(IndexCorrupt, match="version-unknown segment"):
        SearchIndex(tmp_path / "idx")


def test_search_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """`engine.finish` pauses the collector while it opens and ranks (even when it fails), then
    switches it back on only if it was on."""
    index = build(tmp_path, {"a": Counter({"cardiac": 1}), "b": Counter({"card": 2})})
    assert gc.isenabled()
    assert [h.doc_id for h in index.search("card", KEY).hits] == ["b", "a"]
    assert gc.isenabled()
    gc.disable()
    try:
        index.search("card", KEY)
        assert not gc.isenabled()
    finally:
        gc.enable()
    (index.path / index.segment_names[0] / "leaves.bin").write_bytes(
        bytes(len((index.path / index.segment_names[0] / "leaves.bin").read_bytes())))
    with pytest.raises(IndexCorrupt):
        SearchIndex(index.path).search("card", KEY)
    assert gc.isenabled()


def test_padding_randomness_is_fresh_and_uniform():
    """Dummy positions come from `build.random_bytes` (AES-CTR under a fresh OS key): never the
    same stream twice, and bytes spread evenly."""
    a, b = random_bytes(1 << 16), random_bytes(1 << 16)
    assert len(a) == len(b) == 1 << 16 and a != b and a[:16] != b[:16]
    counts = np.bincount(np.frombuffer(a + b, dtype=np.uint8), minlength=256)
    assert counts.min() > 350 and counts.max() < 700  # mean 512; a constant or zero stream fails


def test_builds_leave_the_garbage_collector_as_they_found_it(tmp_path):
    """`build_segment` runs with the collector paused (see `search.pause`) and switches it back
    on after, also when the build fails."""
    index = build(tmp_path, {"a": Counter({"cardiac": 1})})
    assert gc.isenabled() and index.search("card", KEY).hits
    with pytest.raises(DocumentExists):
        SearchIndex.create(tmp_path / "twice", iter([("a", {"x": 1}), ("a", {"y": 1})]), KEY)
    assert gc.isenabled()
