"""Bulk index segments built in one thread: the same segment as the threaded serial build (every
query answered alike), no thread pool at all, and the bulk task asking for it; local workers
start with the mmap threshold that keeps a build's numpy temporaries on the heap."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import search.build as build
from abe_health.bulk import segments
from search import DocumentExists, SearchIndex, SearchKey, reference_search
from search.build import FANOUT
from search.format import Manifest, load_segment, new_index_id, write_manifest
from search.text import document_id

KEY = SearchKey.generate()
PATTERNS = ["card", "^ast", "ia$", "^ward$", "o", "zz"]
LEXICON = [f"{stem}{n}" for stem in ("cardio", "asthma", "ward", "anaemia", "otitis") for n in range(30)]


def corpus(n_docs: int) -> dict[str, dict[str, int]]:
    """Documents sharing a lexicon of 150 words (enough leaves for several small batches)."""
    return {f"doc-{d:03d}": {LEXICON[(d * 7 + j * 11) % len(LEXICON)]: 1 + j % 3 for j in range(12)}
            for d in range(n_docs)}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 2 top subtrees of 16 leaves: a build of 150 keywords runs several batches."""
    monkeypatch.setattr(build, "TOP_LEVEL", 2)
    monkeypatch.setattr(build, "CHUNK_LEAVES", 2 * FANOUT**2)


def as_index(path: Path, docs: dict[str, dict[str, int]], threads: int) -> SearchIndex:
    """An index of one segment built by `build_segment` with `threads`."""
    index_id = new_index_id()
    path.mkdir()
    build.build_segment(docs, KEY, path / "seg-0001", threads=threads)
    write_manifest(path, Manifest(index_id, ["seg-0001"], None, KEY.check_value(index_id)))
    return SearchIndex(path)


def test_a_one_thread_build_equals_the_threaded_one(tmp_path: Path, small_batches: None,
                                                    monkeypatch: pytest.MonkeyPatch):
    docs = corpus(40)
    threaded = as_index(tmp_path / "threaded", docs, threads=build.WORKERS)

    def no_pool(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a one-thread build started a thread pool")

    monkeypatch.setattr(build, "ThreadPoolExecutor", no_pool)
    single = as_index(tmp_path / "single", docs, threads=0)
    one = load_segment(tmp_path / "single" / "seg-0001")
    other = load_segment(tmp_path / "threaded" / "seg-0001")
    assert one.levels == other.levels and len(one.levels) == 3  # several batches, then the root
    assert np.array_equal(one.node_m, other.node_m)
    for pattern in PATTERNS:
        assert single.search(pattern, KEY).hits == threaded.search(pattern, KEY).hits \
            == reference_search(pattern, docs), pattern


def test_a_bulk_task_builds_in_its_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    asked: list[int] = []
    real = segments.build_segment

    def spy(*args: Any, threads: int = build.WORKERS, **kwargs: Any) -> build.BuildStats:
        asked.append(threads)
        return real(*args, threads=threads, **kwargs)

    monkeypatch.setattr(segments, "build_segment", spy)
    KEY.save(tmp_path / "s.key")
    (tmp_path / "a.txt").write_text("cardiology ward")
    index_id = new_index_id()
    task = segments.SegmentTask(str(tmp_path), str(tmp_path / "s.key"), index_id, KEY.check_value(index_id),
                                [("a.txt", str(tmp_path / "a.txt"))])
    name, keywords = segments.build_partition(task)
    assert asked == [0]
    assert keywords == 2 and load_segment(tmp_path / name).levels[0] == 2


def test_listed_ids_are_document_ids_without_resolving_every_file(tmp_path: Path):
    """The driver's quick listing names files exactly as `document_id` does: nested files, a
    link to a file outside the root, a linked directory (not descended, as `index build`), a
    directory given through a link and `..`."""
    tree, outside = tmp_path / "real" / "docs", tmp_path / "elsewhere"
    (tree / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    for name in ("x.txt", "a/y.txt", "a/b/z.txt"):
        (tree / name).write_text(name)
    (outside / "o.txt").write_text("outside")
    (tree / "a" / "o-link.txt").symlink_to(outside / "o.txt")
    (tree / "linked-dir").symlink_to(outside, target_is_directory=True)
    (tmp_path / "via").symlink_to(tmp_path / "real", target_is_directory=True)
    given = tmp_path / "via" / "docs" / "a" / ".."
    expected = sorted((document_id(f, tmp_path / "via" / "docs"), str(f.resolve()))
                      for f in given.rglob("*") if f.is_file())
    assert segments.list_documents([given], tmp_path / "via" / "docs") == expected
    assert [d for d, _ in expected] == [(outside.resolve() / "o.txt").as_posix(), "a/b/z.txt", "a/y.txt",
                                        "x.txt"]
    (tree / "again.txt").symlink_to(tree / "x.txt")
    with pytest.raises(DocumentExists):
        segments.list_documents([given], tmp_path)


def worker_environ(_: int) -> str | None:
    """What a worker process sees of the mmap threshold."""
    return os.environ.get("MALLOC_MMAP_THRESHOLD_")


def test_local_workers_start_with_the_mmap_threshold():
    pytest.importorskip("distributed")
    from abe_health.bulk import connect
    from abe_health.bulk.cluster import WORKER_ENVIRON

    expected = os.environ.get("MALLOC_MMAP_THRESHOLD_", str(next(iter(WORKER_ENVIRON.values()))))
    with connect(workers=1) as client:
        assert client.gather(client.map(worker_environ, [0], pure=False)) == [expected]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40), st.integers(1, 8), st.integers(1, 50))
def test_partitions_keep_order_and_never_exceed_a_segments_documents(sizes, parts, cap):
    with tempfile.TemporaryDirectory() as tmp:
        docs = []
        for i, size in enumerate(sizes):
            path = Path(tmp) / f"d{i}"
            path.write_bytes(b"x" * size)
            docs.append((f"d{i}", str(path)))
        out = segments.partition(docs, parts, cap)
    assert [doc for part in out for doc in part] == docs
    assert all(0 < len(part) <= cap for part in out)
    if cap >= len(docs):
        assert len(out) <= parts
