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

import hashlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from search import SearchIndex, SearchKey, SearchResult
from search.detached import DetachedIndex, segment_stub
from search.engine import Reached, Source, finish, held_trapdoors, live_count, live_tables
from search.errors import InvalidSearchKey
from search.format import Segment, parse_manifest, read_manifest
from search.query import parse_query, terms
from search.server import ServerResult

from ..keys import Key
from ..owner import KEY_SIGNATURE, MAX_FILE_BYTES, SEALED_KEY, OwnerPublicKey, open_search_key
from . import ids
from .errors import ProtocolError

#: sealed document tables a client keeps (the server accepts as many segment ids as known)
KNOWN_TABLES = 4096

if TYPE_CHECKING:
    from .client import Client

def _answer(index: str, item: Any, where: str, count: int, tables: dict[bytes, bytes]
            ) -> tuple[Segment, list[ServerResult]]:
    """A segment stub (id, key check, sealed document table) and one walk result per trapdoor,
    from one untrusted answer item. An empty table is one the client named as known: taken from
    `tables` (a sealed table opens only under its own segment id, so a wrong one is refused)."""
    if not isinstance(item, dict):
        raise ProtocolError(f"{where}: a malformed search answer")
    name, sid, check, docs = item.get("name"), item.get("id"), item.get("key_check"), item.get("documents")
    answers = item.get("answers")
    if not (isinstance(name, str) and len(name) <= 16 and isinstance(sid, bytes) and 1 <= len(sid) <= 64
            and isinstance(check, bytes) and len(check) == 16 and isinstance(docs, bytes)
            and isinstance(answers, list) and len(answers) == count):
        raise ProtocolError(f"{where}: a malformed search answer")
    results = []
    for answer in answers:
        leaves, visited = (answer.get("leaves"), answer.get("visited")) if isinstance(answer, dict) \
            else (None, None)
        if not (type(visited) is int and visited >= 0 and isinstance(leaves, list) and all(
                isinstance(leaf, list) and len(leaf) == 2 and type(leaf[0]) is int
                and 0 <= leaf[0] < 2**40 and isinstance(leaf[1], bytes) for leaf in leaves)):
            raise ProtocolError(f"{where}: a malformed search answer")
        results.append(ServerResult([(i, p) for i, p in leaves], visited))
    if not docs:
        if sid not in tables:
            raise ProtocolError(f"{where}: the answer leaves out a document table the client lacks")
        docs = tables[sid]
    tables[sid] = docs
    while len(tables) > KNOWN_TABLES:  # forget the oldest
        tables.pop(next(iter(tables)))
    return segment_stub(index, name, sid, check, docs), results


def remote_search(client: Client, index: str, query: str, key: SearchKey, top: int | None = None,
                  require_key: bool = False) -> SearchResult:
    """`SearchIndex.search` (patterns and ranges under AND/OR, removals honoured), with the tree
    walks done by the server: the client plans the trapdoors, the server walks, and the search
    package's own `engine.finish` opens, filters and ranks."""
    where = f"{client.url}/v1/indexes/{ids.name(index, 'index name')}"
    node = parse_query(query)
    t0 = time.perf_counter()
    planned = [[(term, *held_trapdoors(term, key)) for term in terms(node)]]
    doors = [door for _, ds, _ in planned[0] for door in ds]
    known = list(client.search_tables)
    answer = client.cbor("POST", f"/v1/indexes/{index}/search", {"trapdoors": doors, "known": known})
    t1 = time.perf_counter()
    if not isinstance(answer, dict) or not isinstance(answer.get("segments"), list) \
            or not isinstance(answer.get("manifest"), bytes):
        raise ProtocolError(f"{where}: a malformed search answer")
    manifest = parse_manifest(answer["manifest"], where)
    items = [_answer(index, item, where, len(doors), client.search_tables) for item in answer["segments"]]
    view = DetachedIndex(where, manifest, [segment for segment, _ in items])
    if require_key and not view.key_matches(key):
        raise InvalidSearchKey(f"{where}: this search key did not build the index")
    source = Source(view, key)
    # the opened, live document tables and their number of live documents depend only on the
    # manifest (removals), the segments (each sealed table opens only under its segment id) and
    # the key: kept per index, so a repeated search opens and counts none again
    stamp = hashlib.sha256(answer["manifest"] + key.check_value(view.index_id)
                           + b"".join(bytes([len(segment.id)]) + segment.id for segment, _ in items)).digest()
    cached = client.search_views.get(index)
    if cached is None or cached[0] != stamp:
        opened = live_tables([source])
        cached = (stamp, opened, live_count(opened))
        client.search_views[index] = cached
    tables = {(id(source), sid): table for (_, sid), table in cached[1].items()}
    reached: Reached = []
    for segment, results in items:
        answers = iter(results)
        reached += [(source, term, cover_words, segment, next(answers))
                    for term, ds, cover_words in planned[0] for _ in ds]
    return finish(node, [source], [planned[0]], reached, top, t1 - t0, tables, cached[2])


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
