"""Queries with several terms and field ranges: parsing, exactness against a plaintext model,
ranking, and what the trapdoors show.

The model: documents are plain words (Counter) and plain field values; `reference_query`
scans them. The encrypted index is built from the same words plus `fields.field_keywords`,
and must answer every query exactly as the model does.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import InvalidPattern, SearchIndex, SearchKey, Source
from search.engine import run, trapdoors
from search.fields import BITS, COVER_SIZE, FieldValue, cover, document_fields, field_keywords, keyword
from search.query import Op, Pattern, Range, parse_query, reference_query
from search.text import json_keywords

KEY = SearchKey.generate()


# -- the language ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "tree"), [
    ("card", Pattern("card")),
    ("card AND ^diab", Op("AND", (Pattern("card"), Pattern("^diab")))),
    ("card ^diab", Op("AND", (Pattern("card"), Pattern("^diab")))),
    ("asthma OR wheez and", Op("OR", (Pattern("asthma"), Op("AND", (Pattern("wheez"), Pattern("and")))))),
    ("(a OR b) c", Op("AND", (Op("OR", (Pattern("a"), Pattern("b"))), Pattern("c")))),
])
def test_parse(text, tree):
    assert parse_query(text) == tree


def test_parse_ranges():
    ge = parse_query("bp_systolic >= 140")
    assert isinstance(ge, Range)
    assert (ge.kind, ge.name, ge.low, ge.high) == ("n", "bp_systolic", 2**31 + 140, 2**32 - 1)
    assert parse_query("BP_Systolic<140") == Range("n", "bp_systolic", 0, 2**31 + 139, "BP_Systolic<140")
    day = dt.date(2024, 1, 1).toordinal()
    assert parse_query("date in 2024-01-01..2024-01-31") == Range("d", "date", day, day + 30,
                                                                  "date in 2024-01-01..2024-01-31")
    assert parse_query("age = -3").low == 2**31 - 3


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty query"), ("AND", "expected a term"), ("(card", "not closed"), ("card)", "unexpected"),
    ("d >= 2024-02-30", "not a date"), ("x >= 99999999999", "outside the indexed integers"),
    ("x in 1..2024-01-01", "both ends"), ("a^b", "may only open and close"),
    (" ".join(["w"] * 17), "at most 16 terms"), ("(" * 20 + "a" + ")" * 20, "nests at most"),
    ("x" * 3000, "at most 2048 characters"),
])
def test_parse_refuses(text, message):
    with pytest.raises(InvalidPattern, match=message):
        parse_query(text)


# -- fields -----------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["n", "d"]), data=st.data())
def test_cover_is_exact_and_small(kind, data):
    top = (1 << BITS[kind]) - 1
    low = data.draw(st.integers(0, top))
    high = data.draw(st.integers(low, top))
    words = set(cover(kind, "f", low, high))
    assert 1 <= len(words) <= COVER_SIZE
    for v in {low, high, max(low - 1, 0), min(high + 1, top), data.draw(st.integers(0, top))}:
        indexed = {keyword(kind, "f", level, v >> level) for level in range(BITS[kind] + 1)}
        assert bool(words & indexed) == (low <= v <= high), v


def test_document_fields_from_json():
    doc = {"bp_systolic": 150, "vitals": [{"pulse": 72}, {"pulse": 80.0}], "temp": 37.5,
           "flag": True, "effective": "2024-03-05T10:00:00Z", "note": "2024-99-99 typo",
           "code": "8302-2", "huge": 2**40}
    fields = document_fields(doc)
    assert fields == {"bp_systolic": {FieldValue("n", 150)},
                      "pulse": {FieldValue("n", 72), FieldValue("n", 80)},
                      "effective": {FieldValue("d", dt.date(2024, 3, 5))}}
    words = json_keywords(doc)
    assert words["typo"] == 1 and words["8302"] == 1  # text is still indexed as words
    assert all(len(w) <= 40 for w in words)
    long_name = {"a" * 60: 5}
    assert all(len(w) <= 40 for w in field_keywords(document_fields(long_name)))


# -- exactness against the plaintext model ----------------------------------------------------------
WORDS = ["cardio", "card", "diabetes", "asthma", "wheeze", "heart", "art", "pre"]
QUERY_WORDS = ["card", "^card", "art$", "^diab", "asthma", "wheez", "e", "^heart$", "zzz"]


@st.composite
def documents(draw):
    n = draw(st.integers(1, 8))
    words, fields = {}, {}
    for i in range(n):
        doc = f"doc{i}"
        words[doc] = Counter({w: draw(st.integers(1, 3))
                              for w in draw(st.lists(st.sampled_from(WORDS), max_size=4, unique=True))})
        values: dict[str, set[FieldValue]] = {}
        for value in draw(st.lists(st.integers(-5, 200), max_size=2)):
            values.setdefault("bp", set()).add(FieldValue("n", value))
        if draw(st.booleans()):
            day = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(0, 400)))
            values["date"] = {FieldValue("d", day)}
        fields[doc] = values
    return words, fields


@st.composite
def queries(draw, depth=0):
    kind = draw(st.sampled_from(["pattern", "range", "date"] + (["op"] if depth < 2 else [])))
    if kind == "pattern":
        return draw(st.sampled_from(QUERY_WORDS))
    if kind == "range":
        op = draw(st.sampled_from([">=", ">", "<=", "<", "="]))
        return f"bp {op} {draw(st.integers(-10, 210))}"
    if kind == "date":
        start = dt.date(2024, 1, 1) + dt.timedelta(days=draw(st.integers(-10, 410)))
        end = start + dt.timedelta(days=draw(st.integers(0, 200)))
        return f"date in {start}..{end}"
    parts = draw(st.lists(queries(depth + 1), min_size=2, max_size=3))
    return "(" + f" {draw(st.sampled_from(['AND', 'OR']))} ".join(parts) + ")"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corpus=documents(), asked=st.lists(queries(), min_size=1, max_size=4))
def test_queries_equal_the_plaintext_model(tmp_path_factory, corpus, asked):
    words, fields = corpus
    indexed = {d: words[d] + field_keywords(fields[d]) for d in words}
    if not any(indexed.values()):
        return
    index = SearchIndex.create(tmp_path_factory.mktemp("q") / "idx", indexed, KEY)[0]
    for query in asked:
        assert index.search(query, KEY).hits == reference_query(query, words, fields), query


def test_ranking_of_and_and_or():
    words = {"a": Counter({"cardiology": 1, "asthma": 2}), "b": Counter({"card": 1}),
             "c": Counter({"asthma": 1, "card": 3})}
    either = reference_query("card OR asthma", words)
    assert [h.doc_id for h in either] == ["c", "a", "b"]  # c: exact + exact; a: prefix + exact
    assert either[0].match == "exact" and either[0].keywords == ("card", "asthma")
    both = reference_query("^card AND asthma", words)
    assert [h.doc_id for h in both] == ["c", "a"]
    fields = {"a": {"bp": {FieldValue("n", 150)}}, "b": {}, "c": {"bp": {FieldValue("n", 120)}}}
    ranged = reference_query("bp >= 140", words, fields)
    assert [(h.doc_id, h.match, h.score) for h in ranged] == [("a", "range", 0.0)]
    assert reference_query("card", words) == reference_query("card", words, fields)


# -- what the server sees ---------------------------------------------------------------------------
def test_every_range_sends_the_same_number_of_trapdoors(tmp_path):
    index = SearchIndex.create(tmp_path / "idx", {"d": Counter({"w": 1}) + field_keywords(
        {"bp": {FieldValue("n", 150)}})}, KEY)[0]
    source = Source(index, KEY)
    for query in ("bp = 150", "bp >= 0", "bp in 3..999999", "bp < -2147483648"):
        term = parse_query(query)
        assert isinstance(term, Range)
        doors, _ = trapdoors(term, source, None)
        assert len(doors) == COVER_SIZE == len(set(doors)) and doors == sorted(doors)
        assert trapdoors(term, source, None)[0] == doors  # a repeated query repeats exactly
        assert run(query, [source]).stats.trapdoors == COVER_SIZE


def test_a_group_without_a_key_gets_the_same_trapdoor_counts(tmp_path):
    """Sources the searcher cannot open receive as many (keyed, repeatable) stand-ins, and add
    nothing to the results."""
    held = SearchIndex.create(tmp_path / "held", {"h": Counter({"heart": 1})}, KEY)[0]
    other_key = SearchKey.generate()
    other = SearchIndex.create(tmp_path / "other", {"o": Counter({"heart": 2})}, other_key)[0]
    decoy = b"\x07" * 32
    for query in ("heart", "bp >= 3"):
        term = parse_query(query)
        assert isinstance(term, (Pattern, Range))
        real, _ = trapdoors(term, Source(held, KEY), decoy)
        stand_in, _ = trapdoors(term, Source(other, None), decoy)
        assert len(real) == len(stand_in) and not set(real) & set(stand_in)
        assert trapdoors(term, Source(other, None), decoy)[0] == stand_in
        assert trapdoors(term, Source(other, None), b"\x08" * 32)[0] != stand_in
    result = run("heart", [Source(held, KEY), Source(other, None)], decoy_key=decoy)
    assert [h.doc_id for h in result.hits] == ["h"]
    assert run("heart", [Source(held, KEY, "x/"), Source(other, other_key, "y/")]).hits[0].doc_id == "y/o"


def test_batched_traversal_equals_one_trapdoor_at_a_time(tmp_path):
    """The server's batched walk returns, per trapdoor, exactly what a walk of that trapdoor alone
    returns (a tree of several levels, patterns that match, miss, and stand-ins)."""
    import os

    from search.client import trapdoor
    from search.server import traverse_many

    words = {f"d{i}": Counter({f"w{i}x{j}": 1 for j in range(30)}) for i in range(200)}
    index = SearchIndex.create(tmp_path / "idx", words, KEY)[0]
    segment = index.segments[0]
    assert len(segment.levels) > 1
    doors = [trapdoor(KEY, p) for p in ("w1x", "^w19", "x2$", "zzz", "w")]
    doors += [os.urandom(16) for _ in range(5)]
    batched = traverse_many(segment, doors)
    alone = [traverse_many(segment, [d])[0] for d in doors]
    assert batched == alone
    assert len(batched[0].leaves) >= 30 and batched[3].leaves == []
