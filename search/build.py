"""The owner's side: build one PASS-tree segment from documents' keyword counts, streamed.

Keywords are the leaves of a balanced tree of fan-out FANOUT (4), in a keyed pseudorandom order
(not alphabetical, so leaf positions say nothing about spelling). Level 0 holds the leaves; node
i of level l has children 4i .. 4i + 3 of level l - 1; levels are stored up to the first with one
node, or up to level TOP_LEVEL (nodes of 4^6 = 4,096 leaves), which the server tests in full for
every query (near the root of a large tree every filter would hold almost every substring: work
and size for no pruning). Every node's Bloom filter holds every substring of every marked keyword
"^w$" below it, each substring once, at positions from its PRF value and the node's fresh 16-byte
salt (see prf.py). A node holding c substrings is sized and padded with random dummy insertions
up to the next capacity bucket (steps of 2^(1/4)), so its size and fill reveal only that bucket,
not how similar its subtree's keywords are. Leaves carry an AES-GCM payload (the keyword and its
postings: segment-local document index and term frequency), padded to 32-byte multiples. The
document id table is sealed as one more payload, padded the way nodes are: to DOC_SLOT bytes
times the capacity bucket of the document count (or of its encoded length in DOC_SLOT units, if
ids average more than that), so its length shows only that bucket.

Memory is bounded by a constant, whatever the input's size:
1. documents arrive as a stream of (id, {keyword: tf}); their postings are gathered by keyword a
   run of RUN_POSTINGS at a time, each run sorted in leaf order and spilled to a scratch file
   (a build that fits one run stays in memory);
2. the runs are merged (a k-way merge in leaf order, postings of a keyword from several runs
   joined), and the leaves are sealed and written as they come;
3. every CHUNK_LEAVES leaves (whole subtrees of the stored top level) are one batch whose
   subtrees' filters, level by level, are computed in numpy and appended to per-level scratch
   files (`format.SegmentOutput`), which are assembled into the segment's files at the end.
Subtrees of different batches are independent, so batches are built on WORKERS threads.
What stays in memory for the whole build is the segment's document id table: a segment holds at
most MAX_DOCUMENTS documents (`SearchIndex.create` starts another segment after that).
Merging segments (`rebuild_segment`) streams the old segments' leaves, already in leaf order, in
the same way: nothing is decrypted into memory at once.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import os
import secrets
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cbor2
import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import DocumentExists, IndexCorrupt
from .format import SEGMENT_FORMAT, SEGMENT_VERSION, SegmentOutput
from .keys import SearchKey
from .pause import collector_paused
from .prf import FIXED_KEY, as_rows, encode_many, positions
from .text import MAX_KEYWORD

K_HASHES = 4
BITS_PER_ELEMENT = 10  # with k = 4: a false-positive rate of about 1.2% per node
PAD_TO = 32
#: bytes of sealed document table per document slot (a slot holds an id of up to ~60 bytes)
DOC_SLOT = 64
#: bytes a seal adds to its padded body: the 12-byte nonce and the 16-byte GCM tag
SEAL_OVERHEAD = 28
#: children per node: half the levels of a binary tree (half the filter bytes and insertions)
#: for the same number of node tests per matching keyword (4 per level over half the levels)
FANOUT = 4
#: the highest stored level: nodes of FANOUT^TOP_LEVEL = 4,096 leaves (or one root, if smaller)
TOP_LEVEL = 6
SUBTREE = FANOUT**TOP_LEVEL
#: leaves per batch of filter work: whole top-level subtrees (about 20 MB of PRF values)
CHUNK_LEAVES = 4 * SUBTREE
#: postings gathered in memory before a run is sorted and spilled to disk
RUN_POSTINGS = 1 << 19
#: records per CBOR block of a spilled run (a merge holds one block of each run it reads)
RUN_BLOCK = 1024
#: runs merged at once: reaching it, the runs so far are merged into one (so a merge holds at
#: most MERGE_FANIN blocks, however large the input)
MERGE_FANIN = 64
#: documents one segment holds at most (its document table stays in memory while it is built)
MAX_DOCUMENTS = 1 << 20
#: pairs per numpy batch: 2^16 runs about 25x faster here than 2^21 (cache-resident temporaries)
CHUNK = 1 << 16
#: threads building batches of subtrees (numpy and AES release the GIL)
WORKERS = 2
#: unpacked Bloom bits filled at once (a bool array: 128 MB)
RANGE_BITS = 1 << 27

Progress = Callable[[str, int], None]
#: documents to index: {doc_id: {keyword: tf}}, or a stream of (doc_id, {keyword: tf})
Documents = Mapping[str, Mapping[str, int]] | Iterable[tuple[str, Mapping[str, int]]]
#: a keyword's postings: [[segment-local document index, tf], ...] in document order
Postings = list[list[int]]


class EmptySegment(ValueError):
    """A segment would hold no keyword (no document given, or none with a keyword)."""


@dataclass(frozen=True)
class BuildStats:
    keywords: int
    documents: int
    nodes: int
    filter_bytes: int
    leaf_bytes: int
    substrings: int  # distinct (node, substring) insertions over all levels
    segments: int = 1

    def __add__(self, other: BuildStats) -> BuildStats:
        return BuildStats(self.keywords + other.keywords, self.documents + other.documents,
                          self.nodes + other.nodes, self.filter_bytes + other.filter_bytes,
                          self.leaf_bytes + other.leaf_bytes, self.substrings + other.substrings,
                          self.segments + other.segments)


def tree_levels(keywords: int) -> list[int]:
    """The stored level sizes of a tree over `keywords` leaves: divided by FANOUT (rounded up)
    up to the first level of one node, or up to TOP_LEVEL."""
    levels = [keywords]
    while levels[-1] > 1 and len(levels) <= TOP_LEVEL:
        levels.append(-(-levels[-1] // FANOUT))
    return levels


def capacity(counts: np.ndarray) -> np.ndarray:
    """Round counts up to the next power of 2^(1/4) (at least 8): the padded element count."""
    c = np.maximum(counts, 8).astype(np.float64)
    out: np.ndarray = np.ceil(2.0 ** (np.ceil(4 * np.log2(c) - 1e-9) / 4)).astype(np.int64)
    return out


def seal(aead: AESGCM, plaintext: bytes, aad: bytes, nonce: bytes | None = None,
         size: int | None = None) -> bytes:
    """nonce | AES-256-GCM(length | plaintext | zeros): the body padded to a multiple of 32 bytes,
    or to exactly `size` bytes when given (so the sealed length is size + SEAL_OVERHEAD)."""
    body = len(plaintext).to_bytes(4, "big") + plaintext
    target = len(body) + (-len(body) % PAD_TO) if size is None else size
    if target < len(body):
        raise ValueError(f"payload of {len(body)} bytes does not fit in {target}")
    body += bytes(target - len(body))
    nonce = nonce or os.urandom(12)
    return nonce + aead.encrypt(nonce, body, aad)


def random_bytes(n: int) -> bytes:
    """n random bytes: AES-256-CTR under a fresh key from the OS, a CSPRNG (8x faster here than
    os.urandom for the megabytes of dummy positions a batch of filters needs)."""
    encryptor = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(bytes(16))).encryptor()
    out: bytes = encryptor.update(bytes(n))
    return out


def document_table_size(n_docs: int, encoded: int) -> int:
    """Body bytes of a sealed document table of `n_docs` ids whose CBOR takes `encoded` bytes.

    DOC_SLOT x capacity(max(n_docs, slots the encoding needs)): the same capacity buckets as tree
    nodes (steps of 2^(1/4), at least 8), so the length reveals that bucket and nothing finer."""
    units = max(n_docs, -(-(4 + encoded) // DOC_SLOT))
    return int(capacity(np.array([units]))[0]) * DOC_SLOT


def order_key(key: SearchKey, word: str) -> bytes:
    """A keyword's place in the keyed leaf order (BLAKE2b under the order key, 16 bytes)."""
    h = key.order_hash.copy()
    h.update(word.encode())
    digest: bytes = h.digest()
    return digest


# --- filters of a batch of subtrees ------------------------------------------------------------


def _substrings(words: Sequence[str], key: SearchKey) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys (leaf << 32 | substring id) of level 0, and the (D, 16) PRF values of
    the distinct substring ids. Memory is kept to a few bytes per substring beyond the values."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for leaf, word in enumerate(words):
        by_length[len(word)].append(leaf)
    leaves_parts, value_parts = [], []
    for _, leaves in sorted(by_length.items()):
        codes = encode_many([words[i] for i in leaves])
        local, values = key.prf.all_substrings(codes)
        leaves_parts.append(np.asarray(leaves, dtype=np.uint64)[local])
        value_parts.append(values)
    leaves_of = np.concatenate(leaves_parts)
    values = np.concatenate(value_parts)
    del leaves_parts, value_parts
    pairs = values.view("<u8").reshape(-1, 2)
    rows = as_rows(values)
    # Sort (high bits of the value | position) as one uint64: twice as fast as an argsort. Equal
    # values become adjacent unless another value shares their high bits, in which case a value
    # may get two ids: it is then inserted twice at the same positions, which is harmless.
    bits = max(1, int(len(pairs) - 1).bit_length())
    mask = np.uint64((1 << bits) - 1)
    order = (pairs[:, 0] & ~mask) | np.arange(len(pairs), dtype=np.uint64)
    order.sort()
    order &= mask
    order = order.astype(np.int64)
    ordered = rows[order].view("<u8").reshape(-1, 2)
    new = np.ones(len(order), dtype=bool)
    new[1:] = (ordered[1:, 0] != ordered[:-1, 0]) | (ordered[1:, 1] != ordered[:-1, 1])
    del ordered
    # Ids in order of first occurrence (the first of equal values is the one at the lowest
    # position), not of value: a node's substrings then have nearby ids, so the level passes
    # gather their values from a few runs of memory instead of all over the batch's values.
    firsts = order[new]
    first = np.zeros(len(order), dtype=bool)
    first[firsts] = True
    distinct = rows[first].view(np.uint8).reshape(-1, 16)
    del values, pairs, rows
    id_at = np.cumsum(first, dtype=np.uint64) - np.uint64(1)
    ids = np.empty(len(order), dtype=np.uint64)
    ids[order] = id_at[firsts][np.cumsum(new) - 1]
    del order, new, first, firsts, id_at
    leaves_of <<= np.uint64(32)
    leaves_of |= ids
    del ids
    return _distinct_sorted(leaves_of), distinct


def _distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without its hashing, which is slower on big int arrays).

    numpy's default sort (vectorized quicksort on x86) beats the stable sort (timsort on 64-bit
    keys) here even where parent keys arrive as FANOUT sorted runs per parent: measured 1.5x
    faster on a level's keys, about 10x on the unsorted keys of level 0."""
    keys.sort()
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _level_filters(keys: np.ndarray, n_nodes: int, distinct: np.ndarray, salted: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Salts, sizes, packed filter bytes and distinct counts of one level's nodes (of a batch).

    `keys` are the level's sorted (node << 32 | substring id). Nodes are filled a range at a
    time, so the unpacked bit array never exceeds RANGE_BITS."""
    bounds = np.searchsorted(keys, np.arange(n_nodes + 1, dtype=np.uint64) << np.uint64(32))
    counts = np.diff(bounds)
    cap = capacity(counts)
    sizes = ((cap * BITS_PER_ELEMENT + 63) // 64 * 64).astype(np.uint64)
    local_off = np.zeros(n_nodes, dtype=np.uint64)
    local_off[1:] = np.cumsum(sizes)[:-1]
    salts = (np.frombuffer(os.urandom(16 * n_nodes), dtype=np.uint8) if salted
             else np.zeros(16 * n_nodes, dtype=np.uint8)).reshape(n_nodes, 16)
    packed_parts = []
    first = 0
    value_rows, salt_rows = as_rows(distinct), as_rows(salts)
    while first < n_nodes:  # a range of whole nodes with at most RANGE_BITS bits (or one node)
        last = max(first + 1, int(np.searchsorted(local_off, local_off[first] + RANGE_BITS)))
        last = min(last, n_nodes)
        base = local_off[first]
        bits = np.zeros(int(local_off[last - 1] + sizes[last - 1] - base), dtype=bool)
        # bit offsets in this range as int64: numpy indexes with int64 at once, with uint64 it
        # converts every index array first (a 1.5-3x slower scatter)
        off = local_off.astype(np.int64) - int(base)
        for start in range(int(bounds[first]), int(bounds[last]), CHUNK):
            chunk = keys[start : min(start + CHUNK, int(bounds[last]))]
            nd = (chunk >> np.uint64(32)).astype(np.int64)
            sd = (chunk & np.uint64(0xFFFFFFFF)).astype(np.int64)
            pos = positions(value_rows[sd], salt_rows[nd], sizes[nd], K_HASHES).T.view(np.int64)
            pos += off[nd]  # (k, n), each below 2^32 before the offset
            bits[pos.reshape(-1)] = True
        owner = np.repeat(np.arange(first, last), (cap - counts)[first:last])
        if len(owner):  # padding: random dummy elements up to the node's capacity, each position
            # a uniform 32-bit value reduced by multiply-shift, as a real element's are
            rnd = np.frombuffer(random_bytes(4 * K_HASHES * len(owner)), dtype="<u4")
            rnd = rnd.reshape(K_HASHES, -1).astype(np.uint64)  # (k, n): contiguous rows
            rnd *= sizes[owner]
            rnd >>= np.uint64(32)
            dummy = rnd.view(np.int64)
            dummy += off[owner]
            bits[dummy.reshape(-1)] = True
        packed_parts.append(np.packbits(bits, bitorder="little"))
        first = last
    return salts, sizes, np.concatenate(packed_parts), counts


#: per level of a batch: (salts, sizes, packed filters); and the insertions counted
Batch = tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], int]


def _batch_filters(words: Sequence[str], key: SearchKey, height: int, salted: bool) -> Batch:
    """The filters of levels 0..height of the subtrees over `words` (a run of leaves starting at
    a multiple of FANOUT^height, so its subtrees are whole nodes of the segment's tree)."""
    keys, distinct = _substrings(words, key)
    out, inserted, n_level = [], 0, len(words)
    shift = np.uint64(32 + (FANOUT.bit_length() - 1))
    for level in range(height + 1):
        inserted += len(keys)
        salts, sizes, packed, _ = _level_filters(keys, n_level, distinct, salted)
        out.append((salts, sizes, packed))
        if level == height:
            break
        parent = (keys >> shift) << np.uint64(32)  # node // FANOUT, in the high half
        parent |= keys & np.uint64(0xFFFFFFFF)
        keys = _distinct_sorted(parent)
        del parent
        n_level = -(-n_level // FANOUT)
    return out, inserted


# --- leaves in leaf order -----------------------------------------------------------------------


#: a leaf on its way to the writer: (order key, keyword, postings)
Leaf = tuple[bytes, str, Postings]


class _Writer:
    """Seals leaves as they come (in leaf order) and builds their subtrees' filters in batches
    of CHUNK_LEAVES on worker threads, appending both to a `SegmentOutput`."""

    def __init__(self, output: SegmentOutput, key: SearchKey, salted: bool,
                 progress: Progress | None, threads: int = WORKERS) -> None:
        self.output = output
        self.key = key
        self.salted = salted
        self.progress = progress
        self.segment_id = secrets.token_bytes(16)
        self.words: list[str] = []
        self.payloads: list[bytes] = []
        self.leaves = 0
        self.leaf_bytes = 0
        self.inserted = 0
        self.last: tuple[bytes, str] | None = None
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads) if threads > 0 else None
        self.pending: list[Future[Batch]] = []
        self.nonces: list[bytes] = []

    def add(self, okey: bytes, word: str, postings: Postings) -> None:
        if self.last is not None and (okey, word) <= self.last:
            raise IndexCorrupt("leaves out of leaf order (a segment not built with this key?)")
        self.last = (okey, word)
        if not self.nonces:  # drawn a batch at a time: one system call per CHUNK_LEAVES leaves
            drawn = os.urandom(12 * CHUNK_LEAVES)
            self.nonces = [drawn[i : i + 12] for i in range(0, len(drawn), 12)]
        aad = self.segment_id + self.leaves.to_bytes(8, "big")
        self.payloads.append(seal(self.key.aead, cbor2.dumps([word, postings]), aad, self.nonces.pop()))
        self.words.append(word)
        self.leaves += 1
        if len(self.words) == CHUNK_LEAVES:
            self._flush(TOP_LEVEL)

    def _flush(self, height: int) -> None:
        """Hand the buffered leaves to a worker; write finished batches in order."""
        self.output.leaves(self.payloads)
        self.leaf_bytes += sum(len(p) for p in self.payloads)
        if self.pool is None:
            self._write(_batch_filters(self.words, self.key, height, self.salted))
        else:
            self.pending.append(self.pool.submit(_batch_filters, self.words, self.key, height, self.salted))
        self.words, self.payloads = [], []
        while len(self.pending) > self.threads or (self.pending and self.pending[0].done()):
            self._write(self.pending.pop(0).result())
        if self.progress:
            self.progress("keywords", self.leaves)

    def _write(self, batch: Batch) -> None:
        levels, inserted = batch
        for level, (salts, sizes, packed) in enumerate(levels):
            self.output.level(level, packed, sizes, salts)
        self.inserted += inserted

    def finish(self, doc_ids: list[str]) -> BuildStats:
        """Build what is buffered, seal the document table and write the segment."""
        if not self.leaves:
            raise EmptySegment("no keywords to index")
        if self.words:  # the last batch; a tree of one batch stops at its root
            self._flush(len(tree_levels(self.leaves)) - 1)
        for future in self.pending:
            self._write(future.result())
        self.pending = []
        if self.pool is not None:
            self.pool.shutdown()
        levels = self.output.level_nodes
        if levels != tree_levels(self.leaves):  # the batches' levels add up to the tree's
            raise AssertionError(f"built levels {levels}, expected {tree_levels(self.leaves)}")
        table = cbor2.dumps(doc_ids)
        documents = seal(self.key.aead, table, self.segment_id + b"documents",
                         size=document_table_size(len(doc_ids), len(table)))
        meta = {
            "v": SEGMENT_VERSION, "format": SEGMENT_FORMAT, "id": self.segment_id, "k": K_HASHES,
            "bits_per_element": BITS_PER_ELEMENT, "fanout": FANOUT, "levels": levels,
            "fixed_key": FIXED_KEY, "key_check": self.key.check_value(self.segment_id),
            "documents": documents,
        }
        self.output.finish(meta)
        return BuildStats(self.leaves, len(doc_ids), sum(levels), self.output.filter_bytes,
                          self.leaf_bytes, self.inserted)

    def abort(self) -> None:
        for future in self.pending:
            future.cancel()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self.output.abort()


@collector_paused()
def write_leaves(leaves: Iterable[Leaf], doc_ids: list[str], key: SearchKey, out: Path,
                 progress: Progress | None = None, salted: bool = True) -> BuildStats:
    """Write a segment into directory `out` from `leaves` in leaf order, each keyword once, whose
    postings index `doc_ids` (the segment's document table)."""
    return _write(SegmentOutput(out), leaves, doc_ids, key, progress, salted)


def _write(output: SegmentOutput, leaves: Iterable[Leaf], doc_ids: list[str], key: SearchKey,
           progress: Progress | None, salted: bool, threads: int = WORKERS) -> BuildStats:
    writer = _Writer(output, key, salted, progress, threads)
    try:
        for okey, word, postings in leaves:
            writer.add(okey, word, postings)
        return writer.finish(doc_ids)
    except BaseException:
        writer.abort()
        raise


def _joined(leaves: Iterable[Leaf]) -> Iterator[Leaf]:
    """Consecutive leaves of one keyword (from several runs or segments) as one, postings in
    document order (each part's postings are). A keyword found once (nearly always) passes
    through as the same tuple."""
    parts: list[Leaf] = []
    for leaf in leaves:
        if parts and (leaf[0] != parts[0][0] or leaf[1] != parts[0][1]):
            yield parts[0] if len(parts) == 1 else _join(parts)
            parts = []
        parts.append(leaf)
    if parts:
        yield parts[0] if len(parts) == 1 else _join(parts)


def _join(parts: list[Leaf]) -> Leaf:
    okey, word, _ = parts[0]
    return okey, word, sorted(p for _, _, postings in parts for p in postings)


# --- documents to leaves: runs spilled to disk and merged ----------------------------------------


def _write_run(path: Path, run: Iterable[Leaf]) -> None:
    """Spill leaves (in leaf order) to a run file, RUN_BLOCK a block: u64 block length | u32 n |
    n order keys | n u32 keyword lengths | the keywords (UTF-8) | n u32 posting counts | the
    postings as int64 (document, tf) pairs. Flat arrays: several times faster to read back than
    CBOR of nested lists."""
    with open(path, "wb") as handle:
        items = iter(run)
        while block := list(itertools.islice(items, RUN_BLOCK)):
            words = [w.encode() for _, w, _ in block]
            flat = np.fromiter(itertools.chain.from_iterable(itertools.chain.from_iterable(
                postings for _, _, postings in block)), dtype="<i8")
            body = b"".join([len(block).to_bytes(4, "big"), b"".join(o for o, _, _ in block),
                             np.array([len(w) for w in words], dtype="<u4").tobytes(), b"".join(words),
                             np.array([len(p) for _, _, p in block], dtype="<u4").tobytes(),
                             flat.tobytes()])
            handle.write(len(body).to_bytes(8, "big") + body)


def _read_run(path: Path) -> Iterator[Leaf]:
    """The leaves of a run file (see `_write_run`), a block at a time."""
    handle: BinaryIO
    with open(path, "rb") as handle:
        while head := handle.read(8):
            body = handle.read(int.from_bytes(head, "big"))
            n = int.from_bytes(body[:4], "big")
            at = 4 + 16 * n
            okeys = body[4:at]
            lengths = np.frombuffer(body, dtype="<u4", count=n, offset=at)
            ends = np.cumsum(lengths, dtype=np.int64)
            at += 4 * n
            text = body[at : at + int(ends[-1])]
            at += int(ends[-1])
            counts = np.frombuffer(body, dtype="<u4", count=n, offset=at)
            stops = np.cumsum(counts, dtype=np.int64).tolist()
            pairs = np.frombuffer(body, dtype="<i8", count=2 * stops[-1], offset=at + 4 * n)
            flat = pairs.reshape(-1, 2).tolist()  # the [document, tf] lists, made in C
            starts = [0, *stops[:-1]]
            word_ends = ends.tolist()
            word_starts = [0, *word_ends[:-1]]
            for i in range(n):
                yield (okeys[16 * i : 16 * i + 16], text[word_starts[i] : word_ends[i]].decode(),
                       flat[starts[i] : stops[i]])


def _documents(docs: Documents) -> Iterable[tuple[str, Mapping[str, int]]]:
    """A mapping's documents in id order (its table is sorted), a stream's as they come."""
    return ((d, docs[d]) for d in sorted(docs)) if isinstance(docs, Mapping) else docs


@collector_paused()
def build_segment(docs: Documents, key: SearchKey, out: Path, progress: Progress | None = None,
                  salted: bool = True, seen: set[str] | None = None,
                  threads: int = WORKERS) -> BuildStats:
    """Build a segment for `docs` ({doc_id: {keyword: tf}}, or a stream of (doc_id, {keyword: tf})
    pairs) into directory `out`, in memory bounded by RUN_POSTINGS, CHUNK_LEAVES and the
    document table (in id order for a mapping, in arrival order for a stream). A document id
    given twice (or already in `seen`, the ids of earlier segments of the same build, which this
    adds to) is refused (`DocumentExists`).

    `salted=False` gives every node the all-zero salt: the unsalted baseline of the benchmark,
    whose filters could be compared across nodes. Never use it for real data.

    `threads`: threads building batches of subtrees beside the one sealing leaves (default
    WORKERS); 0 builds them in the calling thread, one thread in all: for a cluster whose
    processes each build a segment (`abe_health.bulk`), so they do not oversubscribe the cores."""
    output = SegmentOutput(out)  # the runs go to its scratch directory, swept if we die
    scratch = output.scratch
    try:
        doc_ids: list[str] = []
        seen = set() if seen is None else seen
        runs: list[Path] = []
        gathered: dict[str, Postings] = defaultdict(list)
        count = spilled = 0

        def sorted_run() -> list[Leaf]:
            run = sorted((order_key(key, w), w, p) for w, p in gathered.items())
            gathered.clear()
            return run

        for doc_id, counts in _documents(docs):
            if doc_id in seen:
                raise DocumentExists(f"{doc_id} is given twice; each document is indexed once",
                                     case="twice")
            seen.add(doc_id)
            d = len(doc_ids)
            doc_ids.append(doc_id)
            for word, tf in counts.items():
                if 0 < len(word) <= MAX_KEYWORD:
                    gathered[word].append([d, int(tf)])
                    count += 1
            if count >= RUN_POSTINGS:
                spilled += 1
                runs.append(scratch / f"run{spilled}")
                _write_run(runs[-1], sorted_run())
                count = 0
                gc.collect(0)  # the collector is paused: free any cycles the input made since
                if len(runs) == MERGE_FANIN:  # one run of them all, streamed
                    spilled += 1
                    _write_run(scratch / f"run{spilled}", _joined(heapq.merge(*map(_read_run, runs))))
                    for run in runs:
                        run.unlink()
                    runs = [scratch / f"run{spilled}"]
                if progress:
                    progress("documents", len(doc_ids))
        last = sorted_run()
        sources: list[Iterable[Leaf]] = [_read_run(r) for r in runs] + [last]
        merged = sources[0] if len(sources) == 1 else heapq.merge(*sources)
        stats = _write(output, _joined(merged), doc_ids, key, progress, salted, threads)
    except BaseException:
        output.abort()
        raise
    return stats


def leaves_of(segment_leaves: Iterator[tuple[str, Postings]], remap: Sequence[int],
              key: SearchKey) -> Generator[Leaf, None, None]:
    """An old segment's leaves (keyword, postings) as leaves of a new segment: postings mapped
    through `remap` (old document index -> new, or -1 for a removed document), leaves left with
    no posting dropped."""
    for word, postings in segment_leaves:
        kept = [[remap[d], tf] for d, tf in postings if remap[d] >= 0]
        if kept:
            yield order_key(key, word), word, kept


def merge_leaves(sources: Sequence[Iterator[Leaf]]) -> Iterator[Leaf]:
    """Leaves of several segments (each in leaf order) as one stream in leaf order, a keyword in
    several of them joined."""
    return _joined(sources[0] if len(sources) == 1 else heapq.merge(*sources))
