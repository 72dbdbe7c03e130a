"""Changing an index after it is built: removal, replacement, compaction, and many writers.

Every sequence of updates is checked against a plain model (a dict of documents and a
plaintext scan of it, `reference_search`); a removed document must never come back, and after
compaction no file of the index may derive from it. Concurrent writers (separate processes
through the CLI) queue on the index's lock: nothing is lost and readers never fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import DocumentExists, IndexCorrupt, SearchIndex, SearchKey, UnknownDocument, reference_search
from search.client import documents, open_leaf
from search.format import read_manifest

KEY = SearchKey.generate()
PATTERNS = ("common", "^w", "x$", "card", "^unique")
CLI = [sys.executable, "-m", "abe_health.cli"]


def doc(name: str) -> Counter[str]:
    """A document with a keyword of its own, one it shares with all, and one of a few."""
    return Counter({f"unique{name}": 2, "common": 1, f"w{len(name) % 3}x": 1})


def assert_equals_model(index: SearchIndex, model: dict[str, Counter[str]]) -> None:
    assert sorted(index.documents(KEY)) == sorted(model)
    for pattern in PATTERNS:
        assert index.search(pattern, KEY).hits == reference_search(pattern, model), pattern


def stored_words_and_ids(index: SearchIndex) -> tuple[set[str], set[str]]:
    """Every keyword and document id in any segment file of the index, removed or not."""
    words: set[str] = set()
    ids: set[str] = set()
    for segment in index.segments:
        ids |= set(documents(KEY, segment))
        words |= {open_leaf(KEY, segment, i, segment.payload(i))[0] for i in range(segment.levels[0])}
    return words, ids


names = st.text(alphabet="abcdef", min_size=1, max_size=3)
operations = st.lists(st.one_of(
    st.tuples(st.just("add"), st.lists(names, min_size=1, max_size=4, unique=True)),
    st.tuples(st.just("replace"), names),
    st.tuples(st.just("remove"), st.lists(names, min_size=1, max_size=3, unique=True)),
    st.tuples(st.just("compact"), st.none()),
), min_size=1, max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(names, min_size=1, max_size=5, unique=True), steps=operations)
def test_updates_match_a_plain_model(tmp_path_factory, first, steps):
    path = tmp_path_factory.mktemp("idx") / "idx"
    model = {n: doc(n) for n in first}
    index = SearchIndex.create(path, model, KEY)[0]
    for op, arg in steps:
        if op == "add":
            new = {n: doc(n) for n in arg}
            if set(new) & set(model):
                with pytest.raises(DocumentExists):
                    index.add(new, KEY)
                continue
            index.add(new, KEY)
            model.update(new)
        elif op == "replace":
            amended = Counter({f"card{arg}": 1, "common": 3})
            index.add({arg: amended}, KEY, replace=True)
            model[arg] = amended
        elif op == "remove":
            if set(arg) - set(model):
                with pytest.raises(UnknownDocument):
                    index.remove(arg, KEY)
                continue
            index.remove(arg, KEY)
            for n in arg:
                del model[n]
        else:
            index.compact(KEY)
            assert stored_words_and_ids(index)[1] == set(model)
        assert_equals_model(index, model)
        assert_equals_model(SearchIndex(path), model)  # as a fresh reader sees it


def test_a_removed_document_never_comes_back_and_leaves_nothing(tmp_path):
    docs = {f"d{i}": doc(f"d{i}") for i in range(12)}
    docs["secret"] = Counter({"hivpositive": 1, "common": 1})
    index = SearchIndex.create(tmp_path / "idx", docs, KEY)[0]
    old_segments = set(index.segment_names)
    assert index.remove(["secret"], KEY) == 1
    del docs["secret"]
    assert index.search("hivpos", KEY).hits == []
    assert "hivpositive" in stored_words_and_ids(index)[0]  # still in a segment until compaction
    for batch in range(3):  # merges on the way drop it too
        more = {f"n{batch}{i}": doc(f"n{batch}{i}") for i in range(4)}
        index.add(more, KEY)
        docs.update(more)
        assert index.search("hivpos", KEY).hits == [] and "secret" not in index.documents(KEY)
    index.compact(KEY)
    words, ids = stored_words_and_ids(index)
    assert "hivpositive" not in words and "secret" not in ids
    assert not old_segments & {p.name for p in (tmp_path / "idx").iterdir()}
    assert "removed" not in cbor2.loads((tmp_path / "idx" / "manifest.cbor").read_bytes())
    assert_equals_model(SearchIndex(tmp_path / "idx"), docs)


def test_purge_and_removing_everything(tmp_path):
    index = SearchIndex.create(tmp_path / "idx", {"a": doc("a"), "b": doc("b")}, KEY)[0]
    index.remove(["a", "b"], KEY, purge=True)
    assert index.segments == [] and index.documents(KEY) == []
    assert [p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("seg-")] == []
    reopened = SearchIndex(tmp_path / "idx")
    assert reopened.search("common", KEY).hits == []
    assert not reopened.key_matches(SearchKey.generate())  # the manifest's own key check
    with pytest.raises(Exception, match="did not build"):
        reopened.add({"c": doc("c")}, SearchKey.generate())
    reopened.add({"c": doc("c")}, KEY)
    assert_equals_model(SearchIndex(tmp_path / "idx"), {"c": doc("c")})


def test_sealed_removals_refuse_tampering_and_moving(tmp_path):
    """The server may not edit the removals, nor move them from another index."""
    one = SearchIndex.create(tmp_path / "one", {"a": doc("a"), "b": doc("b")}, KEY)[0]
    two = SearchIndex.create(tmp_path / "two", {"a": doc("a"), "b": doc("b")}, KEY)[0]
    one.remove(["a"], KEY)
    two.remove(["b"], KEY)
    raw = cbor2.loads((tmp_path / "one" / "manifest.cbor").read_bytes())
    flipped = bytearray(raw["removed"])
    flipped[20] ^= 1
    (tmp_path / "one" / "manifest.cbor").write_bytes(cbor2.dumps({**raw, "removed": bytes(flipped)}))
    with pytest.raises(IndexCorrupt, match="does not open"):
        SearchIndex(tmp_path / "one").search("common", KEY)
    other = cbor2.loads((tmp_path / "two" / "manifest.cbor").read_bytes())["removed"]
    (tmp_path / "one" / "manifest.cbor").write_bytes(cbor2.dumps({**raw, "removed": other}))
    with pytest.raises(IndexCorrupt, match="does not open"):
        SearchIndex(tmp_path / "one").documents(KEY)
    for bad in (b"short", 7):
        (tmp_path / "one" / "manifest.cbor").write_bytes(cbor2.dumps({**raw, "removed": bad}))
        with pytest.raises(IndexCorrupt, match="malformed removals"):
            SearchIndex(tmp_path / "one")


def test_a_killed_writer_leaves_nothing_visible(tmp_path):
    """A segment written but never switched in (the writer died first) is invisible to readers
    and swept by the next writer."""
    index = SearchIndex.create(tmp_path / "idx", {"a": doc("a")}, KEY)[0]
    SearchIndex.create(tmp_path / "other", {"ghost": doc("ghost")}, KEY)
    (tmp_path / "other" / "seg-0001").rename(tmp_path / "idx" / "seg-0007")
    (tmp_path / "idx" / "seg-0008.tmp").mkdir()
    assert SearchIndex(tmp_path / "idx").documents(KEY) == ["a"]
    index.add({"b": doc("b")}, KEY)
    left = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith("seg-"))
    assert left == read_manifest(tmp_path / "idx").segments
    assert sorted(SearchIndex(tmp_path / "idx").documents(KEY)) == ["a", "b"]


def test_eight_concurrent_writers_lose_nothing(tmp_path):
    """Eight `index add` processes at once, and a reader searching meanwhile: all succeed, every
    document is then searchable, and the index loads cleanly."""
    base = tmp_path / "docs"
    base.mkdir()
    (base / "first.txt").write_text("common cardiology")
    KEY.save(tmp_path / "s.key")
    env = {**os.environ, "ABE_HEALTH_LOCK_TIMEOUT": "300"}
    subprocess.run([*CLI, "index", "build", str(base / "first.txt"), "--root", str(base), "--key",
                    str(tmp_path / "s.key"), "-o", str(tmp_path / "idx")], check=True, env=env)
    for i in range(8):
        (base / f"doc{i}.txt").write_text(f"common unique{i} " + " ".join(f"w{i}x{j}" for j in range(30)))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "idx"), str(tmp_path / "s.key")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([*CLI, "index", "add", str(tmp_path / "idx"), str(base / f"doc{i}.txt"),
                                 "--root", str(base), "--key", str(tmp_path / "s.key")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
               for i in range(8)]
    results = [(*w.communicate(timeout=600), w.returncode) for w in writers]
    (tmp_path / "idx" / "stop").touch()
    out, err = reader.communicate(timeout=120)
    assert all(code == 0 for _, _, code in results), results
    assert reader.returncode == 0 and int(out) > 0, err
    index = SearchIndex(tmp_path / "idx")
    assert sorted(index.documents(KEY)) == sorted(["first.txt", *(f"doc{i}.txt" for i in range(8))])
    for i in range(8):
        assert [h.doc_id for h in index.search(f"^unique{i}$", KEY).hits] == [f"doc{i}.txt"]
    assert len(index.search("common", KEY).hits) == 9


#: a reader that searches until told to stop; any error fails the test (it exits non-zero)
READER = """
import sys, time
from pathlib import Path
from search import SearchIndex, SearchKey
path, key = Path(sys.argv[1]), SearchKey.load(sys.argv[2])
done = 0
while not (path / "stop").exists():
    SearchIndex(path).search("common", key)
    done += 1
    time.sleep(0.01)
print(done)
"""


def test_cli_remove_replace_list_and_compact(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for site in ("siteA", "siteB"):
        (tmp_path / site).mkdir()
        (tmp_path / site / "rec.json").write_text(f'{{"note": "{site} cardiology"}}')

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True)

    assert cli("index", "keygen", "-o", "s.key").returncode == 0
    built = cli("index", "build", "siteA", "siteB", "--key", "s.key", "-o", "idx")
    assert built.returncode == 0 and "indexed 2 documents" in built.stderr, built.stderr
    listed = cli("index", "list", "idx", "--key", "s.key").stdout.split()
    assert listed == ["siteA/rec.json", "siteB/rec.json"]
    again = cli("index", "add", "idx", "siteA/rec.json", "--key", "s.key")
    assert again.returncode == 1 and again.stderr.startswith("error: already indexed: siteA/rec.json")
    (tmp_path / "siteA" / "rec.json").write_text('{"note": "amended oncology"}')
    assert cli("index", "add", "idx", "siteA/rec.json", "--key", "s.key", "--replace").returncode == 0
    hits = cli("search", "idx", "cardio", "--key", "s.key").stdout
    assert "siteB/rec.json" in hits and "siteA" not in hits
    assert "siteA/rec.json" in cli("search", "idx", "oncol", "--key", "s.key").stdout
    gone = cli("index", "remove", "idx", "siteB/rec.json", "nope", "--key", "s.key")
    assert gone.returncode == 1 and gone.stderr.strip() == "error: not in the index: nope"
    assert cli("index", "remove", "idx", "siteB/rec.json", "--key", "s.key", "--purge").returncode == 0
    assert cli("index", "list", "idx", "--key", "s.key").stdout.split() == ["siteA/rec.json"]
    assert cli("index", "compact", "idx", "--key", "s.key").stderr.strip() == "rebuilt 0 segment(s)"
    twice = cli("index", "build", "siteA", "siteA/rec.json", "--key", "s.key", "-o", "idx2")
    assert twice.returncode == 1 and "siteA/rec.json is given twice" in twice.stderr
    one = cli("index", "build", "siteA/rec.json", "--id", "patient-42/visit-1", "--key", "s.key",
              "-o", "idx3")
    assert one.returncode == 0
    assert cli("index", "list", "idx3", "--key", "s.key").stdout.split() == ["patient-42/visit-1"]
    usage = cli("index", "build", "siteA", "--id", "x", "--key", "s.key", "-o", "idx4")
    assert usage.returncode == 2 and "--id names one document" in usage.stderr


def test_busy_index_exits_4(tmp_path):
    """A writer that cannot get the lock in time gets one `busy` line and exit status 4."""
    from abe_health.locks import exclusive

    SearchIndex.create(tmp_path / "idx", {"a": doc("a")}, KEY)
    KEY.save(tmp_path / "s.key")
    (tmp_path / "b.txt").write_text("more")
    with exclusive(tmp_path / "idx" / "lock"):
        start = time.monotonic()
        result = subprocess.run([*CLI, "index", "add", str(tmp_path / "idx"), str(tmp_path / "b.txt"),
                                 "--key", str(tmp_path / "s.key")], capture_output=True, text=True,
                                env={**os.environ, "ABE_HEALTH_LOCK_TIMEOUT": "0.3"})
    assert result.returncode == 4 and result.stderr.startswith("error: "), result.stderr
    assert "busy" in result.stderr and time.monotonic() - start < 30
    assert SearchIndex(tmp_path / "idx").documents(KEY) == ["a"]
