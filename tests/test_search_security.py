"""The leakage table (docs/leakage.md), one test per row: what the server learns, and no more.

Row ids (I1..., Q1..., N1..., C1) are the table's; `test_the_leakage_table_agrees_with_the_docstring`
checks that docs/leakage.md, the `search` package docstring and this module name the same rows.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections import Counter
from dataclasses import replace
from pathlib import Path

import cbor2
import numpy as np
import pytest

import search
from abe_health import PolicyRecipient, decrypt, encrypt, inspect
from abe_health.authority import ABE
from abe_health.collection import Collection, decoy_key, open_collection
from abe_health.owner import (
    KEY_SIGNATURE,
    SEALED_KEY,
    InvalidSignature,
    OwnerKey,
    decode_signed,
    open_search_key,
    seal_search_key,
)
from search import SearchIndex, SearchKey, Source
from search.build import BITS_PER_ELEMENT, DOC_SLOT, FANOUT, K_HASHES, SEAL_OVERHEAD, TOP_LEVEL, capacity
from search.client import documents, open_leaf, trapdoor
from search.engine import run, trapdoors
from search.fields import COVER_SIZE, FieldValue, field_keywords
from search.format import Segment, read_manifest, write_manifest
from search.query import Pattern
from search.server import ServerResult, traverse
from search.text import matches, parse_pattern

KEY = SearchKey.generate()
LEAKAGE_MD = Path(__file__).resolve().parent.parent / "docs" / "leakage.md"


def build(path: Path, docs, key: SearchKey = KEY) -> SearchIndex:
    return SearchIndex.create(path, docs, key)[0]


def stored_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def leaf_words(key: SearchKey, segment: Segment) -> list[str]:
    return [open_leaf(key, segment, i, segment.payload(i))[0] for i in range(segment.levels[0])]


def substrings(word: str) -> set[str]:
    """Distinct substrings of "^w$" as the builder inserts them (lone markers excluded)."""
    marked = "^" + word + "$"
    m = len(marked)
    return {marked[i:j] for i in range(m) for j in range(i + 1, m + 1)
            if (i, j) not in ((0, 1), (m - 1, m))}


def filter_bits(segment: Segment, node: int) -> np.ndarray:
    bits = np.unpackbits(segment.filters, bitorder="little")
    off = int(segment.node_off[node])
    return bits[off : off + int(segment.node_m[node])]


def cap(n: int) -> int:
    return int(capacity(np.array([n]))[0])


def plain_ints(value) -> list[int]:
    """Every integer in a decoded CBOR value (booleans aside)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        return [i for v in value.values() for i in plain_ints(v)]
    if isinstance(value, list):
        return [i for v in value for i in plain_ints(v)]
    return []


# ---------------------------------------------------------------------------------------------
# per index


def test_segment_count_is_exact_and_all_the_manifest_shows(tmp_path, monkeypatch):
    """I1: the manifest holds a version, the format, the index id, the segment names and the
    index's key check only; a build writes one segment per MAX_DOCUMENTS documents."""
    monkeypatch.setattr(search.build, "MAX_DOCUMENTS", 16)
    split = build(tmp_path / "split", {f"d{i:02d}": Counter({f"w{i}": 1}) for i in range(40)})
    assert len(split.segments) == 3 == len(read_manifest(tmp_path / "split").segments)
    assert [len(documents(KEY, s)) for s in split.segments] == [16, 16, 8]
    monkeypatch.undo()
    index = build(tmp_path / "idx", {f"d{i}": Counter({f"w{i}": 1}) for i in range(40)})
    index_id = index.index_id
    for batch in range(3):
        index.add({f"n{batch}-{i}": Counter({f"x{batch}{i}": 1}) for i in range(5)}, KEY)
    manifest = cbor2.loads((tmp_path / "idx" / "manifest.cbor").read_bytes())
    assert set(manifest) == {"v", "format", "index", "segments", "key_check"}
    assert manifest["v"] == 3 and manifest["index"] == index_id and len(index_id) == 16
    assert manifest["key_check"] == KEY.check_value(index_id)
    assert len(manifest["segments"]) == len(index.segments) == len(
        [p for p in (tmp_path / "idx").iterdir() if p.name.startswith("seg-")])
    assert build(tmp_path / "other", {"d": Counter({"w": 1})}).index_id != index_id


@pytest.mark.parametrize("n", [1, 5, 1500, 4096, 4097, 9000])
def test_tree_shape_shows_the_keyword_count_only(tmp_path, n):
    """I2: levels[0] is the number of distinct keywords; the other levels follow from it (divided
    by the fan-out 4, rounded up, up to one node or level 6) and the meta has no other field
    that varies with the data."""
    words = [f"kw{i:05d}" for i in range(n)]
    docs = {f"d{i}": Counter({w: 1 + i % 3 for w in words[i::7]}) for i in range(7)}
    segment = build(tmp_path / "idx", docs).segments[0]
    meta = cbor2.loads((segment.path / "meta.cbor").read_bytes())
    assert set(meta) == {"v", "format", "id", "k", "bits_per_element", "fanout", "levels",
                         "fixed_key", "key_check", "documents"}
    assert (meta["v"], meta["fanout"], FANOUT, TOP_LEVEL) == (3, 4, 4, 6)
    levels = meta["levels"]
    assert levels[0] == n
    expected = [n]
    while expected[-1] > 1 and len(expected) <= 6:
        expected.append(-(-expected[-1] // 4))
    assert levels == expected
    assert segment.node_m.shape == (sum(levels),) and segment.leaf_off.shape == (n + 1,)


def test_node_sizes_and_fills_are_bucketed(tmp_path):
    """I3: a node's size is a function of capacity(c) alone, and padding fills it to capacity(c)."""
    singles = [chr(0x4E00 + i) for i in range(600)]  # "^x$" has 4 substrings: capacity 8
    longer = [f"{a}{b}ology" for a in "abcdefgh" for b in "ijklmnop"]
    docs = {"d1": Counter(dict.fromkeys(singles, 1)), "d2": Counter(dict.fromkeys(longer, 1))}
    segment = build(tmp_path / "idx", docs).segments[0]
    words = leaf_words(KEY, segment)
    node = 0
    for level, n_nodes in enumerate(segment.levels):
        for i in range(n_nodes):
            below = words[i * FANOUT**level : (i + 1) * FANOUT**level]
            c = len(set().union(*(substrings(w) for w in below)))
            bits = int(segment.node_m[node + i])
            assert bits == 64 * math.ceil(BITS_PER_ELEMENT * cap(c) / 64), (level, i, c)
        node += n_nodes
    # leaves of single characters hold 4 real substrings but show the fill of capacity(4) = 8
    fills = [int(filter_bits(segment, leaf).sum())
             for leaf, w in enumerate(words) if w in singles]
    m = 128
    assert all(int(segment.node_m[leaf]) == m for leaf, w in enumerate(words) if w in singles)

    def expected(n: int) -> float:
        return m * (1 - (1 - 1 / m) ** (K_HASHES * n))

    assert abs(np.mean(fills) - expected(8)) < 1.5
    assert abs(np.mean(fills) - expected(4)) > 10


def test_leaf_payloads_grow_in_32_byte_steps(tmp_path):
    """I4: a leaf's sealed length is 28 + 32 ceil((4 + |CBOR([keyword, postings])|) / 32)."""
    docs = {f"d{i}": Counter({"a": 1, "abc": 1, "abcdefghijklmnopqrstuvwxyzabcdefghijklm": 2,
                              **({"often": 1} if i % 2 else {})}) for i in range(30)}
    segment = build(tmp_path / "idx", docs).segments[0]
    lengths = {}
    for leaf in range(segment.levels[0]):
        sealed = segment.payload(leaf)
        word, postings = open_leaf(KEY, segment, leaf, sealed)
        plain = len(cbor2.dumps([word, [list(p) for p in postings]]))
        assert len(sealed) == SEAL_OVERHEAD + 32 * math.ceil((4 + plain) / 32)
        lengths[word] = len(sealed)
    assert lengths["a"] == lengths["abc"]  # keyword lengths within one 32-byte step look alike
    assert lengths["abcdefghijklmnopqrstuvwxyzabcdefghijklm"] > lengths["a"]  # the next step shows


@pytest.mark.parametrize(("same", "other"), [((10, 11), 9), ((1, 5, 8), 9), ((101, 104, 107), 110)])
def test_document_count_shows_only_its_bucket(tmp_path, same, other):
    """I5: document counts in one capacity bucket give sealed tables of equal length, whatever
    the ids; another bucket may differ; the length is exactly 28 + 64 capacity(n)."""
    assert len({cap(n) for n in same}) == 1 and cap(other) != cap(same[0])
    lengths = {}
    for n in (*same, other):
        for id_len in (2, 40):
            docs = {f"{i:0{id_len}d}": Counter({"w": 1}) for i in range(n)}
            segment = build(tmp_path / f"{n}-{id_len}", docs).segments[0]
            lengths[n, id_len] = len(segment.meta["documents"])
            assert lengths[n, id_len] == SEAL_OVERHEAD + DOC_SLOT * cap(n)
            assert len(documents(KEY, segment)) == n
    assert len({lengths[n, i] for n in same for i in (2, 40)}) == 1
    # ids far longer than a slot: the bucket of their encoded length in slots
    docs = {"x" * 300 + str(i): Counter({"w": 1}) for i in range(10)}
    segment = build(tmp_path / "long", docs).segments[0]
    slots = math.ceil((4 + len(cbor2.dumps(sorted(docs)))) / DOC_SLOT)
    assert len(segment.meta["documents"]) == SEAL_OVERHEAD + DOC_SLOT * cap(slots)


@pytest.fixture(scope="module")
def authority():
    return ABE.setup()


def test_signature_file_names_the_index_and_key_only(tmp_path, authority):
    """I6: search.key.sig holds the index id and the key's fingerprint; no secret is stored."""
    owner = OwnerKey.generate()
    a = build(tmp_path / "a", {"d": Counter({"myocarditis": 1})})
    b = build(tmp_path / "b", {"d": Counter({"warfarin": 1})})
    other_key = SearchKey.generate()
    c = build(tmp_path / "c", {"d": Counter({"warfarin": 1})}, other_key)
    seal_search_key(a, KEY, authority, "doctor", owner)
    seal_search_key(b, KEY, authority, "doctor", owner)
    seal_search_key(c, other_key, authority, "doctor", owner)
    statements = {}
    for name, index in (("a", a), ("b", b), ("c", c)):
        statement, signature = decode_signed((tmp_path / name / KEY_SIGNATURE).read_bytes())
        assert set(statement) == {"type", "index", "key"} and statement["index"] == index.index_id
        owner.public_key.verify(statement, signature)  # anyone with owner.pub can check
        statements[name] = statement
    assert statements["a"]["key"] == statements["b"]["key"] != statements["c"]["key"]  # shared key
    blob = stored_bytes(tmp_path)
    for secret in (KEY.secret, KEY.leaf_key, KEY.order_key, KEY.long_pattern_key,
                   other_key.secret, other_key.leaf_key, cbor2.loads(owner.to_bytes())["seed"]):
        assert secret not in blob


def test_sealed_search_key_shows_its_policy_only(tmp_path, authority):
    """I7: the header of search.key.abe names its policy; the key inside is encrypted."""
    index = build(tmp_path / "idx", {"d": Counter({"x": 1})})
    seal_search_key(index, KEY, authority, "doctor and cardiology", OwnerKey.generate())
    info = inspect(tmp_path / "idx" / SEALED_KEY)
    assert info["policy"] == "doctor and cardiology"
    sealed = (tmp_path / "idx" / SEALED_KEY).read_bytes()
    assert KEY.secret not in sealed and KEY.to_bytes() not in sealed


def test_removals_show_only_their_bucket(tmp_path):
    """I8: the manifest's sealed removals grow by capacity bucket of the removal count; no id,
    position or segment name of a removed document is readable in it."""
    docs = {f"patient-{i:03d}": Counter({f"w{i}": 1, "common": 1}) for i in range(120)}
    index = build(tmp_path / "idx", docs)
    sizes = {}
    for r in (1, 5, 8, 9, 40, 100):
        index.remove([d for d in sorted(docs)[:r] if d in index.documents(KEY)], KEY)
        manifest = cbor2.loads((tmp_path / "idx" / "manifest.cbor").read_bytes())
        assert set(manifest) == {"v", "format", "index", "segments", "key_check", "removed"}
        sealed = manifest["removed"]
        sizes[r] = len(sealed)
        assert sizes[r] == SEAL_OVERHEAD + DOC_SLOT * cap(r)
        assert b"patient" not in sealed and plain_ints(manifest) == [3]
    assert sizes[1] == sizes[5] == sizes[8] < sizes[9] < sizes[40] < sizes[100]
    index.compact(KEY)
    assert "removed" not in cbor2.loads((tmp_path / "idx" / "manifest.cbor").read_bytes())


# ---------------------------------------------------------------------------------------------
# per query


def test_equal_patterns_give_equal_trapdoors():
    """Q1: a trapdoor depends only on the key and the normalized pattern with its markers."""
    nfd = unicodedata.normalize("NFD", "ärz")
    assert trapdoor(KEY, "ärz") == trapdoor(KEY, "ÄRZ") == trapdoor(KEY, nfd)
    assert trapdoor(KEY, "^Card") == trapdoor(KEY, "^card")
    doors = [trapdoor(KEY, p) for p in ("card", "^card", "card$", "^card$", "cards", "car")]
    assert len(set(doors)) == len(doors) and all(len(d) == 16 for d in doors)
    long = "x" * 100  # longer than any indexed keyword: still one deterministic value per pattern
    assert trapdoor(KEY, long) == trapdoor(KEY, long) != trapdoor(KEY, long + "x")


def test_access_pattern_is_the_reached_nodes_and_leaves(tmp_path):
    """Q2: the server's answer is the leaf positions and sealed payloads it reached, and how many
    nodes it tested; queries with common matches share leaves."""
    docs = {f"d{i}": Counter({w: 1}) for i, w in enumerate(
        ["cardiology", "cardiac", "postcard", "heart", "hepatic", "renal", "discard", "oncology"])}
    index = build(tmp_path / "idx", docs)
    segment = index.segments[0]
    words = leaf_words(KEY, segment)
    reached, matched = {}, {}
    for pattern in ("card", "^card", "heart", "zzz"):
        result = traverse(segment, trapdoor(KEY, pattern))
        assert isinstance(result, ServerResult) and set(vars(result)) == {"leaves", "nodes_visited"}
        assert result.nodes_visited >= segment.levels[-1]  # the whole top level, always
        positions = {leaf for leaf, _ in result.leaves}
        assert all(sealed == segment.payload(leaf) for leaf, sealed in result.leaves)
        body, start, end = parse_pattern(pattern)
        true = {i for i, w in enumerate(words) if matches(body, start, end, w)}
        assert true <= positions  # every match is reached; false positives may add leaves
        reached[pattern], matched[pattern] = positions, true
    # the server sees that these queries overlap: every true match of ^card is reached by card
    # (comparing the whole reached sets would be flaky: Bloom false positives differ per query)
    assert matched["^card"] and matched["^card"] <= reached["card"] & reached["^card"]


# ---------------------------------------------------------------------------------------------
# what the server does not learn


def test_no_keyword_document_id_or_count_in_any_stored_byte(tmp_path, authority):
    """N1: no keyword, substring, document id or term frequency is stored in the clear; the only
    plaintext integers are versions, k, bits per element, the fan-out and level sizes."""
    docs = {f"patient-{4711 + i}-record.json": Counter({"myocarditis": 3 + i, "warfarin": 1,
                                                         "straße": 2}) for i in range(37)}
    index = build(tmp_path / "idx", docs)
    seal_search_key(index, KEY, authority, "doctor", OwnerKey.generate())
    blob = stored_bytes(tmp_path / "idx")
    for secret in ("myocarditis", "carditis", "warfar", "farin", "straße", "straß", "patient-",
                   "4711", "4747", "record.json"):
        for encoding in ("utf-8", "utf-16-le"):
            assert secret.encode(encoding) not in blob, secret
    manifest = cbor2.loads((tmp_path / "idx" / "manifest.cbor").read_bytes())
    assert plain_ints(manifest) == [3]
    meta = cbor2.loads((index.segments[0].path / "meta.cbor").read_bytes())
    assert sorted(plain_ints(meta)) == sorted([3, K_HASHES, BITS_PER_ELEMENT, FANOUT, *meta["levels"]])
    assert 37 not in meta["levels"]


def test_document_counts_in_one_bucket_give_identical_file_sizes(tmp_path):
    """N2: two indexes that differ only in their document count within one bucket (14 and 16
    documents, same keywords) have files of exactly the same sizes."""
    assert cap(14) == cap(16)
    sizes = []
    for n in (14, 16):
        root = tmp_path / str(n)
        build(root, {f"d{i:02d}": Counter({"alpha": 1, "beta": 2}) for i in range(n)})
        sizes.append({str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()})
    assert sizes[0] == sizes[1]


def test_trapdoors_do_not_show_the_pattern():
    """N3: trapdoors are unrelated to the pattern's bytes, to related patterns, and across keys."""
    other = SearchKey.generate()
    patterns = ["card", "^card", "card$", "cards", "car", "ard", "x" * 70, "x" * 71]
    doors = [trapdoor(KEY, p) for p in patterns]
    for p, d in zip(patterns, doors, strict=True):
        assert p.strip("^$").encode()[:4] not in d
        assert d != trapdoor(other, p)
        assert d != bytes(16)
    for i in range(len(doors)):
        for j in range(i + 1, len(doors)):
            distance = bin(int.from_bytes(doors[i], "big") ^ int.from_bytes(doors[j], "big")).count("1")
            assert 24 <= distance <= 104, (patterns[i], patterns[j])  # 64 +- 7 sigma of 128 bits


def test_leaf_order_is_keyed_not_alphabetical(tmp_path):
    """N4: leaf positions follow a keyed order: not alphabetical, and unrelated under another key."""
    words = [f"word{i:03d}" for i in range(60)]
    docs = {"d": Counter(dict.fromkeys(words, 1))}
    other = SearchKey.generate()
    mine = leaf_words(KEY, build(tmp_path / "a", docs).segments[0])
    theirs = leaf_words(other, build(tmp_path / "b", docs, other).segments[0])
    assert sorted(mine) == sorted(theirs) == words
    assert mine != words and theirs != words and mine != theirs


def test_node_salts_make_filters_incomparable(tmp_path):
    """N5: every node of every segment has its own salt; equal content gives different filters."""
    docs = {"d": Counter(dict.fromkeys([f"term{i}" for i in range(200)], 1))}
    a = build(tmp_path / "a", docs).segments[0]
    b = build(tmp_path / "b", docs).segments[0]
    salts = np.concatenate([a.salts, b.salts])
    assert len({bytes(s) for s in salts}) == len(salts)
    assert a.filters.shape == b.filters.shape and (a.filters != b.filters).any()
    common = leaf_words(KEY, a).index("term7"), leaf_words(KEY, b).index("term7")
    assert not np.array_equal(filter_bits(a, common[0]), filter_bits(b, common[1]))


def test_a_search_key_the_server_sealed_is_refused(tmp_path, authority):
    """N6: a server that seals its own key (and plants segments built with it) gets no trapdoor
    from a reader who pins the owner (tests/test_owner.py runs every substitution, API and CLI)."""
    owner = OwnerKey.generate()
    index = build(tmp_path / "idx", {"d": Counter({"hiv": 1})})
    seal_search_key(index, KEY, authority, "doctor", owner)
    rogue = SearchKey.generate()
    rogue_index = build(tmp_path / "rogue", {"x": Counter({"hiv": 1})}, rogue)
    manifest = read_manifest(tmp_path / "idx")  # the server rewrites the key check too
    write_manifest(tmp_path / "idx", replace(manifest, segments=["seg-0001"],
                                             key_check=rogue.check_value(manifest.index_id)))
    for path in (tmp_path / "idx" / "seg-0001").iterdir():
        path.write_bytes((rogue_index.path / "seg-0001" / path.name).read_bytes())
    sealed = encrypt(rogue.to_bytes(), None, PolicyRecipient(authority.public_key, "doctor"))
    (tmp_path / "idx" / SEALED_KEY).write_bytes(sealed)
    doctor = authority.keygen(attributes=["doctor"])
    with pytest.raises(InvalidSignature, match="not the one the owner signed"):
        open_search_key(SearchIndex(tmp_path / "idx"), doctor, owner.public_key)


def test_a_colluding_reader_opens_everything(tmp_path, authority):
    """C1: the search key, once a reader hands it over, opens every keyword and document id, and
    recovers queries from their trapdoors by trying candidate patterns."""
    docs = {"rec-17": Counter({"hiv": 1, "oncology": 1}), "rec-18": Counter({"asthma": 2})}
    index = build(tmp_path / "idx", docs)
    seal_search_key(index, KEY, authority, "doctor", OwnerKey.generate())
    sealed = (tmp_path / "idx" / SEALED_KEY).read_bytes()
    reader = SearchKey.from_bytes(decrypt(sealed, None, authority.keygen(attributes=["doctor"])))
    segment = SearchIndex(tmp_path / "idx").segments[0]
    assert sorted(leaf_words(reader, segment)) == ["asthma", "hiv", "oncology"]
    assert documents(reader, segment) == ["rec-17", "rec-18"]
    observed = trapdoor(KEY, "^oncolog")  # what the server saw a doctor send
    guesses = {trapdoor(reader, p): p for w in ("asthma", "hiv", "oncology")
               for p in (w, "^" + w[:7], "^" + w[:8], w[2:5])}
    assert guesses[observed] == "^oncolog"


def test_query_shape_shows_term_counts_only(tmp_path):
    """Q3: per index, 1 trapdoor per pattern term and COVER_SIZE per range term; AND/OR, fields
    and range widths do not change the count."""
    docs = {"d": Counter({"heart": 1}) + field_keywords({"bp": {FieldValue("n", 150)},
                                                         "date": {FieldValue("d", dt.date(2024, 1, 5))}})}
    index = build(tmp_path / "idx", docs)
    counts = {query: run(query, [Source(index, KEY)]).stats.trapdoors for query in (
        "heart AND card", "heart OR card", "(heart card)", "heart bp >= 1", "card OR bp = 150",
        "heart date in 2024-01-01..2024-01-02", "card AND date >= 1900-01-01")}
    assert set(counts.values()) == {2, 1 + COVER_SIZE}
    assert counts["heart AND card"] == counts["heart OR card"] == counts["(heart card)"] == 2


def _collection(tmp_path, authority, owner):
    coll = Collection.create(tmp_path / "clinic", owner)
    coll.add({"a": Counter({"heart": 1})}, "doctor", authority.public_key)
    coll.add({"b": Counter({"heart": 2, "wheeze": 1})}, "nurse", authority.public_key)
    coll.add({"c": Counter({"asthma": 1})}, "researcher", authority.public_key)
    return coll


def test_collection_statement_shows_groups_and_policies_only(tmp_path, authority):
    """G1: the statement names groups, policies, epochs and index ids: no document id or word."""
    owner = OwnerKey.generate()
    coll = _collection(tmp_path, authority, owner)
    statement, _ = decode_signed((tmp_path / "clinic" / "collection.sig").read_bytes())
    assert set(statement) == {"type", "collection", "name", "seq", "groups"}
    assert sorted(g["policy"] for g in statement["groups"]) == ["doctor", "nurse", "researcher"]
    fields = {"id", "dir", "policy", "sealed", "epoch", "index", "key"}
    assert all(set(g) == fields for g in statement["groups"])
    blob = stored_bytes(tmp_path / "clinic")
    for secret in (b"heart", b"wheeze", b"asthma"):
        assert secret not in blob
    assert {p.name for p in (tmp_path / "clinic").iterdir()} == {"collection.sig", "lock",
                                                                *(g.dir for g in coll.groups)}


def test_stand_ins_hide_which_groups_a_searcher_holds(tmp_path, authority):
    """S1: a nurse and a doctor send the same number of values to every group; each repeats its
    own values exactly on a repeated query, stand-ins included."""
    owner = OwnerKey.generate()
    _collection(tmp_path, authority, owner)
    sent = {}
    for attr in ("doctor", "nurse"):
        user = authority.keygen(attributes=[attr])
        opened = open_collection(tmp_path / "clinic", [user], [owner.public_key])
        per_group = [trapdoors(Pattern("heart"), s, decoy_key([user]))[0] for s in opened.sources]
        again = [trapdoors(Pattern("heart"), s, decoy_key([user]))[0] for s in opened.sources]
        assert per_group == again and [len(d) for d in per_group] == [1, 1, 1]
        sent[attr] = per_group
        assert sum(s.key is not None for s in opened.sources) == 1
    assert [len(d) for d in sent["doctor"]] == [len(d) for d in sent["nurse"]]


def test_equal_queries_show_shared_groups(tmp_path, authority):
    """S2: two searchers asking the same pattern send equal values exactly to the groups both
    hold."""
    owner = OwnerKey.generate()
    _collection(tmp_path, authority, owner)
    users = {name: authority.keygen(attributes=attrs) for name, attrs in
             (("x", ["doctor", "nurse"]), ("y", ["nurse", "researcher"]))}
    sent = {}
    for name, user in users.items():
        opened = open_collection(tmp_path / "clinic", [user], [owner.public_key])
        sent[name] = {g.policy: trapdoors(Pattern("heart"), s, decoy_key([user]))[0]
                      for g, s in zip(opened.statement.groups, opened.sources, strict=True)}
    equal = sorted(p for p in sent["x"] if sent["x"][p] == sent["y"][p])
    assert equal == ["nurse"]


# ---------------------------------------------------------------------------------------------
# the table, the docstring and this module agree


ROW = re.compile(r"^\| ([IQNCSG]\d) \| ([^|]+?) \| (exact|coarse|none) \|.*\| `(test_\w+)` \|$")
DOC_ROW = re.compile(r"^\s+([IQNCSG]\d) (.+?) \((exact|coarse|none)\):")


def test_the_leakage_table_agrees_with_the_docstring():
    table = [ROW.match(line) for line in LEAKAGE_MD.read_text(encoding="utf-8").splitlines()
             if line.startswith("| ") and re.match(r"^\| [IQNCSG]\d ", line)]
    assert all(table), "a table row does not have the expected columns"
    rows = {(m[1], m[2], m[3]) for m in table if m}
    doc_rows = {(m[1], m[2], m[3]) for m in map(DOC_ROW.match, (search.__doc__ or "").splitlines()) if m}
    assert rows == doc_rows
    assert len(rows) == len(table) == 21
    names = [m[4] for m in table if m]
    assert len(set(names)) == len(names)
    for name in names:
        assert callable(globals().get(name)), f"{name} is named in docs/leakage.md but missing here"
    here = {n for n in globals() if n.startswith("test_")}
    assert here - {"test_the_leakage_table_agrees_with_the_docstring"} == set(names)
