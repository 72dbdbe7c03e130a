"""Searching and publishing PASS indexes through `abe-health serve`.

The roles of the search package split across the wire as they were designed to: the owner
builds an index on its own machine and uploads its files (`push_index`); the server walks each
segment with a trapdoor (`search.server.traverse`) and returns the sealed leaves it reached with
each segment's sealed document table and key check; the client makes the trapdoor and finishes
(opens each leaf, drops Bloom false positives, ranks) with the search package's own functions,
in the same order as `SearchIndex.search`, so the ranked hits are the same.

A reader opens the sealed search key with `open_remote_search_key`: the three small files it
needs (manifest.cbor, search.key.abe, search.key.sig) are fetched with bounded reads into a
private temporary directory and checked by `abe_health.owner.open_search_key`, the same code
that checks a local index: the owner's signature must name this index and this key before a
single trapdoor is made.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from search import SearchIndex, SearchKey, SearchResult
from search.client import documents, key_matches, open_leaf, trapdoor
from search.errors import IndexCorrupt, InvalidSearchKey
from search.format import Segment, read_manifest
from search.index import SearchStats
from search.rank import rank
from search.text import matches, parse_pattern

from ..keys import Key
from ..owner import KEY_SIGNATURE, MAX_FILE_BYTES, SEALED_KEY, OwnerPublicKey, open_search_key
from . import ids
from .errors import ProtocolError

if TYPE_CHECKING:
    from .client import Client

_EMPTY = np.zeros(0, dtype=np.uint8)


def _segment(index: str, item: Any, where: str) -> tuple[Segment, list[tuple[int, bytes]], int]:
    """A segment as far as the client needs it (id, key check, sealed document table), its
    reached leaves and nodes visited, from one untrusted answer item."""
    if not isinstance(item, dict):
        raise ProtocolError(f"{where}: a malformed search answer")
    name, sid, check, docs = item.get("name"), item.get("id"), item.get("key_check"), item.get("documents")
    leaves, visited = item.get("leaves"), item.get("visited")
    if not (isinstance(name, str) and len(name) <= 16 and isinstance(sid, bytes) and 1 <= len(sid) <= 64
            and isinstance(check, bytes) and len(check) == 16 and isinstance(docs, bytes)
            and type(visited) is int and visited >= 0 and isinstance(leaves, list)
            and all(isinstance(leaf, list) and len(leaf) == 2 and type(leaf[0]) is int
                    and 0 <= leaf[0] < 2**40 and isinstance(leaf[1], bytes) for leaf in leaves)):
        raise ProtocolError(f"{where}: a malformed search answer")
    segment = Segment(Path(f"{index}/{name}"), {"id": sid, "key_check": check, "documents": docs},
                      [], np.zeros(0, dtype=np.int64), _EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY, _EMPTY)
    return segment, [(i, p) for i, p in leaves], visited


def remote_search(client: Client, index: str, pattern: str, key: SearchKey, top: int | None = None,
                  require_key: bool = False) -> SearchResult:
    """`SearchIndex.search`, with the tree walk done by the server."""
    body, start, end = parse_pattern(pattern)
    where = f"{client.url}/v1/indexes/{ids.name(index, 'index name')}"
    t0 = time.perf_counter()
    door = trapdoor(key, pattern)
    answer = client.cbor("POST", f"/v1/indexes/{index}/search", {"trapdoor": door})
    t1 = time.perf_counter()
    if not isinstance(answer, dict) or not isinstance(answer.get("segments"), list):
        raise ProtocolError(f"{where}: a malformed search answer")
    reached = [_segment(index, item, where) for item in answer["segments"]]
    if require_key and not any(key_matches(key, segment) for segment, _, _ in reached):
        raise InvalidSearchKey(f"{where}: this search key did not build the index")
    postings: dict[str, dict[str, int]] = defaultdict(dict)
    n_docs, returned, false_pos, visited = 0, 0, 0, 0
    for segment, leaves, nodes in reached:
        if not key_matches(key, segment):
            continue
        table = documents(key, segment)
        n_docs += len(table)
        visited += nodes
        for leaf, sealed in leaves:
            returned += 1
            word, plist = open_leaf(key, segment, leaf, sealed)
            if not matches(body, start, end, word):
                false_pos += 1
                continue
            for d, tf in plist:
                if not 0 <= d < len(table):
                    raise IndexCorrupt(f"{segment.path}: posting names document {d} of {len(table)}")
                postings[word][table[d]] = tf
    hits = rank(body, postings, n_docs, top)
    t2 = time.perf_counter()
    return SearchResult(hits, SearchStats(visited, returned, false_pos, (t1 - t0) * 1e3,
                                          (t2 - t1) * 1e3))


def index_files(index: Path) -> list[str]:
    """The files of a local index directory that a server stores, segments first and the
    manifest last (so the server never names a segment it does not have yet)."""
    names = [str(p.relative_to(index)) for p in sorted(index.rglob("*")) if p.is_file()]
    stored = [n for n in names if ids.INDEX_FILE.match(n) and n != "manifest.cbor"]
    return [*stored, "manifest.cbor"]


def push_index(client: Client, index: str | Path, name: str) -> int:
    """Upload a local index directory as index `name` (files the server already has in the same
    size are skipped: segments never change once written); returns how many were sent."""
    root = Path(index)
    read_manifest(root)  # a local index, or IndexCorrupt
    ids.name(name, "index name")
    sent = 0
    for rel in index_files(root):
        with open(root / rel, "rb") as src:
            with client.uploading(f"/v1/indexes/{name}/files/{rel}") as out:
                while block := src.read(1 << 20):
                    out.write(block)
        sent += 1
    return sent


class _FetchedIndex:
    """What `open_search_key` reads of an index: its directory and its id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index_id = read_manifest(path).index_id


def open_remote_search_key(client: Client, index: str, identity: Key | Sequence[Key],
                           owner: OwnerPublicKey) -> SearchKey:
    """The index's sealed search key, opened with an ABE user key and accepted only with the
    pinned owner's signature for this index (see the module docstring)."""
    ids.name(index, "index name")
    with tempfile.TemporaryDirectory(prefix="abe-health-index-") as tmp:
        folder = Path(tmp)
        for name, limit in (("manifest.cbor", 1 << 20), (SEALED_KEY, MAX_FILE_BYTES),
                            (KEY_SIGNATURE, MAX_FILE_BYTES)):
            (folder / name).write_bytes(client.request(
                "GET", f"/v1/indexes/{index}/files/{name}", limit=limit))
        return open_search_key(cast(SearchIndex, _FetchedIndex(folder)), identity, owner)
