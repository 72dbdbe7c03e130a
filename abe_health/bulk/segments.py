"""Bulk indexing: a search index built as segments in parallel, then joined under one manifest.

The documents (files, named as `index build` names them: `search.text.document_id`) are split
into contiguous partitions of about equal size, one per segment; each task reads its partition's
files on the worker, extracts keywords, and builds one complete PASS-tree segment
(`search.build.build_segment`, in the task's one thread: a worker process is one core of the
cluster, so the build's own threads would only oversubscribe it) into a temporary directory of
its own inside the index. The driver renames each finished segment to its place (`seg-0001`,
...) and, when all are built, writes the index manifest naming them all, in one atomic switch:
before it the directory is not an index, after it the index is complete. A query over several
segments is answered exactly as over one (the client merges postings and counts documents over
all segments: `search.engine`), so the result ranks every query exactly as a serial `index
build` of the same documents does; tests check this against `search.query.reference_query` and
a serial build.

What segments cost: a segment's build work grows with its distinct keywords, and a keyword that
documents of several partitions share is built into each of their segments. So N segments are
more work in all than one (on the benchmark's corpus, where most words recur across documents,
2 segments hold 1.9x the keywords of one and take 1.6x its build time, 4 segments 3.6x and
2.7x): one segment per worker thread, the default, is the fewest that keeps every worker busy.

What this changes for the server (docs/leakage.md I1, I2): the index has as many segments as
partitions, each with its own tree shape, as after that many `index add` runs. Queries walk
every segment (small ones together: `engine.Searcher`), so fewer, larger segments answer
faster: choose `segments` near the number of workers. Later `index add` runs merge on the usual
binary schedule. Workers see the search key (read from its path, checked against the job's key
check) and the documents' text: they run in the owner's domain.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.build import MAX_DOCUMENTS, build_segment
from search.errors import DocumentExists, IndexExists
from search.format import Manifest, new_index_id, write_manifest
from search.keys import SearchKey
from search.text import document_keywords

from .cluster import worker_count
from .encrypt import default_journal
from .journal import Journal
from .runner import BulkReport, run_batches
from .sources import files_below

TEMP_PREFIX = ".bulk-"


@dataclass(frozen=True)
class SegmentTask:
    """One partition: (document id, path) pairs, and where and under which key to build."""

    index_path: str
    key_path: str
    index_id: bytes
    key_check: bytes
    docs: list[tuple[str, str]]


def build_partition(task: SegmentTask) -> tuple[str, int]:
    """Build one segment into a fresh temporary directory of the index; returns its name and
    the number of keywords."""
    from . import keycache

    key = keycache.search_key(task.key_path, task.index_id, task.key_check)
    docs = {doc_id: document_keywords(Path(path)) for doc_id, path in task.docs}
    name = f"{TEMP_PREFIX}{secrets.token_hex(6)}"
    stats = build_segment(docs, key, Path(task.index_path) / name, threads=0)
    return name, stats.keywords


def list_documents(paths: list[str | os.PathLike[str]], root: str | os.PathLike[str] | None
                   ) -> list[tuple[str, str]]:
    """(document id, path) of every file given or below a given directory, sorted by id; a file
    reached twice is refused (as `index build` does)."""
    return [(doc_id, path) for doc_id, path, _ in _documents(paths, root)]


def _documents(paths: list[str | os.PathLike[str]], root: str | os.PathLike[str] | None
               ) -> list[tuple[str, str, int]]:
    """`list_documents` with each file's size.

    The ids are `search.text.document_id`'s (a file's real path relative to the real `root`),
    found without resolving every file component by component and with one system call a file:
    the driver lists alone, before any task runs. A directory's scan gives each entry's type, so
    only a file's size needs a `stat` (2,000 files: 0.13-0.2 s of CPU resolving each, 0.04 s
    with three calls a file, fewer with one). Linked directories are not descended (as `rglob`
    does not), so below a resolved directory only a file that is itself a link needs resolving."""
    base = (Path.cwd() if root is None else Path(root)).resolve()
    found: dict[str, tuple[str, int]] = {}
    for given in map(Path, paths):
        if given.is_dir():
            # a file below the resolved directory: its id is the directory's id and its path
            real_dir, prefix = given.resolve(), len(os.path.join(given, ""))
            dir_id = _relative_id(real_dir, base)
            head = "" if dir_id == "." else dir_id + "/"
            listed = []
            for path, link, size in files_below(str(given)):
                if link:
                    real = Path(path).resolve()
                    listed.append((_relative_id(real, base), str(real), size))
                else:
                    rel = Path(path[prefix:]).as_posix()
                    listed.append((head + rel, str(real_dir / rel), size))
        else:
            real = given.resolve()
            listed = [(_relative_id(real, base), str(real), os.path.getsize(given))]
        for doc_id, real_path, size in listed:
            if doc_id in found:
                raise DocumentExists(f"{doc_id} is given twice; each document is indexed once", case="twice")
            found[doc_id] = (real_path, size)
    return [(doc_id, path, size) for doc_id, (path, size) in sorted(found.items())]


def _relative_id(real: Path, base: Path) -> str:
    """`search.text.document_id` of a resolved path for a resolved root, with nothing resolved
    again (tests check the two agree, links included)."""
    try:
        return real.relative_to(base).as_posix()
    except ValueError:
        return real.as_posix()


def partition(docs: list[tuple[str, str]], parts: int, cap: int = MAX_DOCUMENTS,
              sizes: list[int] | None = None) -> list[list[tuple[str, str]]]:
    """Contiguous runs of about equal total file size (`sizes`, else read), none empty and none
    of more than `cap` documents (a segment holds at most `search.build.MAX_DOCUMENTS`): `parts`
    of them, or more when the documents need more."""
    sizes = [max(1, size) for size in (sizes or [os.path.getsize(path) for _, path in docs])]
    total = sum(sizes)
    parts = max(1, min(max(parts, -(-len(docs) // cap)), len(docs)))
    out: list[list[tuple[str, str]]] = [[]]
    filled = 0
    for doc, size in zip(docs, sizes, strict=True):
        if out[-1] and (len(out[-1]) >= cap or (filled >= total * len(out) / parts and len(out) < parts)):
            out.append([])
        out[-1].append(doc)
        filled += size
    return out


def build_index(client: Any, paths: list[str | os.PathLike[str]], key_path: str | os.PathLike[str],
                out: str | os.PathLike[str], root: str | os.PathLike[str] | None = None,
                segments: int | None = None, journal: str | os.PathLike[str] | None = None) -> BulkReport:
    """Index the files `paths` name into a new index `out` (missing or empty) on `client`'s
    cluster, as `segments` segments (default: one per worker thread); restartable."""
    target = Path(out).resolve()
    key_path = str(Path(key_path).resolve())
    key = SearchKey.load(key_path)
    report = BulkReport("index")
    with Journal.open(journal or default_journal(target, "index")) as book:
        listed = _documents(paths, root)
        docs = [(doc_id, path) for doc_id, path, _ in listed]
        spec = {"out": str(target), "key": key.fingerprint.hex(), "docs": len(docs),
                "segments": segments}
        if not book.check("index", spec):
            if target.exists() and any(target.iterdir()):
                raise IndexExists(f"{target} exists and is not empty; refusing to overwrite it")
            target.mkdir(exist_ok=True)
            book.set("index", new_index_id().hex())
            parts = partition(docs, segments or worker_count(client), sizes=[size for *_, size in listed])
            book.plan("index", spec, [[{"name": f"seg-{n + 1:04d}", "docs": part}]
                                      for n, part in enumerate(parts)])
        index_id = bytes.fromhex(book.get("index"))
        check = key.check_value(index_id)
        keywords: dict[str, int] = book.get("keywords") or {}

        def make_task(batch: int, items: list[dict[str, Any]]) -> tuple[Callable[[Any], Any], Any]:
            docs_of = [(d, p) for d, p in items[0]["docs"]]
            return build_partition, SegmentTask(str(target), key_path, index_id, check, docs_of)

        def commit(batch: int, items: list[dict[str, Any]], result: tuple[str, int]) -> list[tuple[str, str]]:
            temp, count = result
            final = target / items[0]["name"]
            if not temp.startswith(TEMP_PREFIX) or "/" in temp:
                raise IndexExists(f"a worker returned an unexpected segment name {temp!r}")
            if final.exists():  # renamed by a killed run that did not mark it
                shutil.rmtree(final)
            os.replace(target / temp, final)
            keywords[items[0]["name"]] = count
            book.set("keywords", keywords)
            return []

        run_batches(client, book, report, make_task, commit)
        names = sorted(i["name"] for i in book.items())
        if not report.failed:
            write_manifest(target, Manifest(index_id, names, None, check))
        for stray in target.glob(f"{TEMP_PREFIX}*"):
            shutil.rmtree(stray, ignore_errors=True)
        report.extra.update(segments=len(names), keywords=sum(keywords.values()), documents=len(docs))
        return report
