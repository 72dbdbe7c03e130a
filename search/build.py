"""The owner's side: build one PASS-tree segment from documents' keyword counts.

Keywords are the leaves of a balanced binary tree, in a keyed pseudorandom order (not
alphabetical, so leaf positions say nothing about spelling). Level 0 holds the leaves; node i of
level l has children 2i and 2i+1 of level l-1; levels are stored up to the first with at most
`top_nodes(n)` nodes, which the server tests in full for every query. Every node's Bloom filter holds
every substring of every marked keyword "^w$" below it, each substring once, at positions from
its PRF value and the node's fresh 16-byte salt (see prf.py). A node holding c substrings is
sized and padded with random dummy insertions up to the next capacity bucket (steps of 2^(1/4)),
so its size and fill reveal only that bucket, not how similar its subtree's keywords are. Leaves
carry an AES-GCM payload (the keyword and its postings: segment-local document index and term
frequency), padded to 32-byte multiples. The document id table is sealed as one more payload,
padded the way nodes are: to DOC_SLOT bytes times the capacity bucket of the document count (or
of its encoded length in DOC_SLOT units, if ids average more than that), so its length shows
only that bucket.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cbor2
import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .format import SEGMENT_FORMAT, VERSION, write_segment
from .keys import SearchKey
from .prf import FIXED_KEY, encode, positions
from .text import MAX_KEYWORD

K_HASHES = 4
BITS_PER_ELEMENT = 10  # with k = 4: a false-positive rate of about 1.2% per node
PAD_TO = 32
#: bytes of sealed document table per document slot (a slot holds an id of up to ~60 bytes)
DOC_SLOT = 64
#: bytes a seal adds to its padded body: the 12-byte nonce and the 16-byte GCM tag
SEAL_OVERHEAD = 28
#: the tree is stored from the leaves up to the first level of at most `top_nodes(n)` nodes;
#: the server starts every query by testing all of them. Near the root of a large tree every
#: filter would hold almost every substring (a quarter of the work and size for no pruning), so
#: the top stops at nodes of about KEYWORDS_PER_TOP_NODE keywords, and never wider than
#: TOP_NODES; a small tree (a policy group of a few hundred keywords) goes up to a few nodes, so
#: a query tests a handful of nodes instead of every leaf
TOP_NODES = 512
KEYWORDS_PER_TOP_NODE = 2048


def top_nodes(keywords: int) -> int:
    """How many nodes the stored top level of a tree over `keywords` leaves may have."""
    return max(1, min(TOP_NODES, -(-keywords // KEYWORDS_PER_TOP_NODE)))
#: pairs per numpy batch: 2^16 runs about 25x faster here than 2^21 (cache-resident temporaries)
CHUNK = 1 << 16
WORKERS = 2
#: unpacked Bloom bits filled at once per worker (a bool array: 128 MB)
RANGE_BITS = 1 << 27

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class BuildStats:
    keywords: int
    documents: int
    nodes: int
    filter_bytes: int
    leaf_bytes: int
    substrings: int  # distinct (node, substring) insertions over all levels


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


def document_table_size(n_docs: int, encoded: int) -> int:
    """Body bytes of a sealed document table of `n_docs` ids whose CBOR takes `encoded` bytes.

    DOC_SLOT x capacity(max(n_docs, slots the encoding needs)): the same capacity buckets as tree
    nodes (steps of 2^(1/4), at least 8), so the length reveals that bucket and nothing finer."""
    units = max(n_docs, -(-(4 + encoded) // DOC_SLOT))
    return int(capacity(np.array([units]))[0]) * DOC_SLOT


def _leaf_order(words: list[str], key: SearchKey) -> list[str]:
    return sorted(words, key=lambda w: hashlib.blake2b(w.encode(), key=key.order_key,
                                                        digest_size=16).digest())


def _substrings(words: list[str], key: SearchKey) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys (leaf << 32 | substring id) of level 0, and the (D, 16) PRF values of
    the distinct substring ids. Memory is kept to a few bytes per substring beyond the values."""
    by_length: dict[int, list[int]] = defaultdict(list)
    for leaf, word in enumerate(words):
        by_length[len(word)].append(leaf)

    def batch(chunk: list[int]) -> tuple[np.ndarray, np.ndarray]:
        codes = np.stack([encode(words[i], True, True) for i in chunk])
        local, values = key.prf.all_substrings(codes)
        return np.asarray(chunk, dtype=np.uint64)[local], values

    chunks = [leaves[s : s + 2000] for _, leaves in sorted(by_length.items())
              for s in range(0, len(leaves), 2000)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(batch, chunks))
    leaves_of = np.concatenate([r[0] for r in results])
    values = np.concatenate([r[1] for r in results])
    del results
    pairs = values.view("<u8").reshape(-1, 2)
    # Sort (high bits of the value | position) as one uint64: twice as fast as an argsort. Equal
    # values become adjacent unless another value shares their high bits, in which case a value
    # may get two ids: it is then inserted twice at the same positions, which is harmless.
    bits = max(1, int(len(pairs) - 1).bit_length())
    mask = np.uint64((1 << bits) - 1)
    order = (pairs[:, 0] & ~mask) | np.arange(len(pairs), dtype=np.uint64)
    order.sort()
    order &= mask
    order = order.astype(np.int64)
    new = np.ones(len(order), dtype=bool)
    for start in range(1, len(order), 1 << 20):  # neighbours compared in slices: no full copy
        here = pairs[order[start : start + (1 << 20)]]
        before = pairs[order[start - 1 : start - 1 + len(here)]]
        new[start : start + len(here)] = np.any(here != before, axis=1)
    distinct = values[order[new]]
    del values, pairs
    ids = np.empty(len(order), dtype=np.uint64)
    ids[order] = np.cumsum(new, dtype=np.uint64) - np.uint64(1)
    del order, new
    leaves_of <<= np.uint64(32)
    leaves_of |= ids
    del ids
    return _distinct_sorted(leaves_of), distinct


def _distinct_sorted(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without its hashing, which is slower on big int arrays).

    Parent keys arrive as two sorted runs per parent, which the stable sort (timsort) merges
    in near-linear time: about 13x faster here than the default quicksort."""
    keys.sort(kind="stable")
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    return keys[keep]


def _level_filters(keys: np.ndarray, n_nodes: int, distinct: np.ndarray, salted: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Salts, bit offsets, sizes and packed filter bytes of one level's nodes.

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
    while first < n_nodes:  # a range of whole nodes with at most RANGE_BITS bits (or one node)
        last = max(first + 1, int(np.searchsorted(local_off, local_off[first] + RANGE_BITS)))
        last = min(last, n_nodes)
        base = local_off[first]
        bits = np.zeros(int(local_off[last - 1] + sizes[last - 1] - base), dtype=bool)
        for start in range(int(bounds[first]), int(bounds[last]), CHUNK):
            chunk = keys[start : min(start + CHUNK, int(bounds[last]))]
            nd = (chunk >> np.uint64(32)).astype(np.int64)
            sd = (chunk & np.uint64(0xFFFFFFFF)).astype(np.int64)
            pos = positions(distinct[sd], salts[nd], sizes[nd], K_HASHES)
            pos += (local_off[nd] - base)[:, None]
            bits[pos.ravel()] = True
        owner = np.repeat(np.arange(first, last), (cap - counts)[first:last])
        if len(owner):  # padding: random dummy elements up to the node's capacity
            rnd = np.frombuffer(os.urandom(8 * K_HASHES * len(owner)), dtype=np.uint64)
            rnd = rnd.reshape(-1, K_HASHES) % sizes[owner][:, None]
            bits[(local_off[owner] - base)[:, None] + rnd] = True
        packed_parts.append(np.packbits(bits, bitorder="little"))
        first = last
    return salts, local_off, sizes, np.concatenate(packed_parts)


def _seal_leaves(words: list[str], postings: Mapping[str, list[list[int]]], key: SearchKey,
                 segment_id: bytes) -> list[bytes]:
    """Each leaf's payload [keyword, postings], sealed under the leaf key, bound to its position."""
    nonces = os.urandom(12 * len(words))
    return [
        seal(key.aead, cbor2.dumps([w, postings[w]]), segment_id + i.to_bytes(8, "big"),
             nonces[12 * i : 12 * i + 12])
        for i, w in enumerate(words)
    ]


def build_segment(docs: Mapping[str, Mapping[str, int]], key: SearchKey, out: Path,
                  progress: Progress | None = None, salted: bool = True) -> BuildStats:
    """Build a segment for `docs` ({doc_id: {keyword: tf}}) into directory `out`.

    `salted=False` gives every node the all-zero salt: the unsalted baseline of the benchmark,
    whose filters could be compared across nodes. Never use it for real data."""
    doc_ids = sorted(docs)
    postings: dict[str, list[list[int]]] = defaultdict(list)
    for d, doc_id in enumerate(doc_ids):
        for word, tf in sorted(docs[doc_id].items()):
            if 0 < len(word) <= MAX_KEYWORD:
                postings[word].append([d, int(tf)])
    words = _leaf_order(list(postings), key)
    segment_id = secrets.token_bytes(16)
    if not words:
        raise ValueError("no keywords to index")
    keys, distinct = _substrings(words, key)
    if progress:
        progress("substrings", len(words))
    levels, built, n_level, inserted = [], [], len(words), 0
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:  # numpy releases the GIL: levels in parallel
        while True:
            inserted += len(keys)
            levels.append(n_level)
            built.append(pool.submit(_level_filters, keys, n_level, distinct, salted))
            if len(built) > WORKERS:  # bound the levels held in memory at once
                built[-1 - WORKERS].result()
            if n_level <= top_nodes(len(words)):
                break
            parent = (keys >> np.uint64(33)) << np.uint64(32)  # node // 2, in the high half
            parent |= keys & np.uint64(0xFFFFFFFF)
            keys = _distinct_sorted(parent)
            del parent
            n_level = (n_level + 1) // 2
            if progress:
                progress("level", n_level)
        payloads = _seal_leaves(words, postings, key, segment_id)  # while the workers finish
        salts_all, offs_all, sizes_all, packed_all, bit_base = [], [], [], [], 0
        for future in built:
            salts, offs, sizes, packed = future.result()
            salts_all.append(salts)
            offs_all.append(offs + np.uint64(bit_base))
            sizes_all.append(sizes)
            packed_all.append(packed)
            bit_base += 8 * len(packed)
    table = cbor2.dumps(doc_ids)
    doc_table = seal(key.aead, table, segment_id + b"documents",
                     size=document_table_size(len(doc_ids), len(table)))
    meta = {
        "v": VERSION, "format": SEGMENT_FORMAT, "id": segment_id, "k": K_HASHES,
        "bits_per_element": BITS_PER_ELEMENT, "levels": levels, "fixed_key": FIXED_KEY,
        "key_check": key.check_value(segment_id), "documents": doc_table,
    }
    write_segment(out, meta, np.concatenate(packed_all), np.concatenate(offs_all),
                  np.concatenate(sizes_all), np.concatenate(salts_all), payloads)
    return BuildStats(len(words), len(doc_ids), sum(levels), sum(len(p) for p in packed_all),
                      sum(len(p) for p in payloads), inserted)
