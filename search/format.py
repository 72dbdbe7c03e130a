"""On-disk layout of an index: a directory of segments, each loaded with memory mapping.

```
INDEX/manifest.cbor      {"v": 2, "format": "abe-health/pass-index", "index": 16 random bytes,
                          "segments": ["seg-0001", ...]}
INDEX/seg-0001/meta.cbor {"v": 2, "format": "abe-health/pass-segment", "id", "k",
                          "bits_per_element", "levels": [n_0 leaves, n_1, ..., n_top], "fixed_key",
                          "key_check", "documents": sealed document id table}
              filters.bin  every node's Bloom filter, level by level (bit offsets in node_off)
              node_off.npy node_m.npy salts.npy   uint64 bit offset, uint64 size, 16-byte salt
              leaves.bin leaf_off.npy             sealed leaf payloads and their byte offsets
```
The index id is fixed when the index is created and kept by every later manifest: the owner's
signature over the search key names it (see `abe_health.owner`), so a key signed for one index
is refused for another. Version 2 added it and pads the document table to a capacity bucket
(version 1 padded it to 32 bytes only, which showed the document count); version-1 indexes are
refused with a request to rebuild. Nothing in an index is a plaintext keyword, document id or
count beyond what `docs/leakage.md` lists. Loading checks versions, shapes and offsets, so a
damaged index raises `IndexCorrupt`, not garbage.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import numpy as np

from .errors import IndexCorrupt

INDEX_FORMAT = "abe-health/pass-index"
SEGMENT_FORMAT = "abe-health/pass-segment"
#: manifest and segment layout version (2: index id in the manifest, bucketed document table)
VERSION = 2
INDEX_ID_BYTES = 16
_REBUILD = "rebuild it with `abe-health index build` (older indexes show their document count)"


def write_segment(out: Path, meta: dict[str, Any], filters: np.ndarray, node_off: np.ndarray,
                  node_m: np.ndarray, salts: np.ndarray, payloads: list[bytes]) -> None:
    """Write a segment directory (to a temporary name, renamed into place when complete)."""
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / "meta.cbor").write_bytes(cbor2.dumps(meta))
    filters.tofile(tmp / "filters.bin")
    np.save(tmp / "node_off.npy", node_off.astype(np.uint64))
    np.save(tmp / "node_m.npy", node_m.astype(np.uint64))
    np.save(tmp / "salts.npy", salts.astype(np.uint8))
    offsets = np.zeros(len(payloads) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum([len(p) for p in payloads])
    with open(tmp / "leaves.bin", "wb") as handle:
        for p in payloads:
            handle.write(p)
    np.save(tmp / "leaf_off.npy", offsets)
    os.replace(tmp, out)


@dataclass
class Segment:
    """A loaded (memory-mapped) segment: what the server holds."""

    path: Path
    meta: dict[str, Any]
    levels: list[int]
    level_start: np.ndarray
    filters: np.ndarray
    node_off: np.ndarray
    node_m: np.ndarray
    salts: np.ndarray
    leaves: np.ndarray
    leaf_off: np.ndarray

    @property
    def id(self) -> bytes:
        return self.meta["id"]

    def payload(self, leaf: int) -> bytes:
        return self.leaves[int(self.leaf_off[leaf]) : int(self.leaf_off[leaf + 1])].tobytes()


def _version(decoded: dict[Any, Any]) -> str:
    """The "v" field for an error message (only a small integer is echoed back)."""
    v = decoded.get("v")
    return str(v) if isinstance(v, int) and 0 <= v < 1000 else "unknown"


def _corrupt(path: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(f"{path}: {why}")


def load_segment(path: Path) -> Segment:
    """Memory-map a segment, validating everything that traversal will index into."""
    try:
        meta = cbor2.loads((path / "meta.cbor").read_bytes())
    except FileNotFoundError:
        raise _corrupt(path, "missing meta.cbor") from None
    except Exception:  # cbor2 raises several error types for garbage
        raise _corrupt(path, "meta.cbor is not valid CBOR") from None
    if not isinstance(meta, dict) or meta.get("format") != SEGMENT_FORMAT:
        raise _corrupt(path, "not a PASS segment")
    if meta.get("v") != VERSION:
        raise _corrupt(path, f"a version-{_version(meta)} segment; this version reads version "
                             f"{VERSION} only: {_REBUILD}")
    levels = meta.get("levels")
    if (not isinstance(levels, list) or not levels
            or any(not isinstance(n, int) or n < 1 for n in levels)
            or any(levels[i + 1] != (levels[i] + 1) // 2 for i in range(len(levels) - 1))):
        raise _corrupt(path, "level sizes do not describe a binary tree")
    for field, kind in (("id", bytes), ("k", int), ("key_check", bytes), ("documents", bytes)):
        if not isinstance(meta.get(field), kind):
            raise _corrupt(path, f"meta field {field!r} missing or malformed")
    if not 1 <= meta["k"] <= 32:
        raise _corrupt(path, "bad number of hash functions")
    try:
        filters = np.memmap(path / "filters.bin", dtype=np.uint8, mode="r")
        node_off = np.load(path / "node_off.npy", mmap_mode="r")
        node_m = np.load(path / "node_m.npy", mmap_mode="r")
        salts = np.load(path / "salts.npy", mmap_mode="r")
        leaf_off = np.load(path / "leaf_off.npy", mmap_mode="r")
        leaves_size = (path / "leaves.bin").stat().st_size
        leaves = (np.memmap(path / "leaves.bin", dtype=np.uint8, mode="r") if leaves_size
                  else np.zeros(0, dtype=np.uint8))
    except (OSError, ValueError) as exc:
        raise _corrupt(path, f"cannot map index arrays: {exc}") from None
    total = sum(levels)
    if node_off.shape != (total,) or node_m.shape != (total,) or salts.shape != (total, 16):
        raise _corrupt(path, "node arrays do not match the tree")
    if node_off.dtype != np.uint64 or node_m.dtype != np.uint64 or salts.dtype != np.uint8:
        raise _corrupt(path, "node arrays have the wrong types")
    if np.any(node_m == 0) or np.any(node_off + node_m > np.uint64(8 * len(filters))):
        raise _corrupt(path, "a Bloom filter lies outside filters.bin")
    if leaf_off.shape != (levels[0] + 1,) or leaf_off[0] != 0 or leaf_off[-1] != leaves_size \
            or np.any(np.diff(leaf_off.astype(np.int64)) <= 0):
        raise _corrupt(path, "leaf offsets do not match leaves.bin")
    start = np.zeros(len(levels), dtype=np.int64)
    start[1:] = np.cumsum(levels)[:-1]
    # plain ndarray views of the maps: the same pages, without np.memmap's per-index overhead
    return Segment(path, meta, levels, start, *(np.asarray(a) for a in (
        filters, node_off, node_m, salts, leaves, leaf_off)))


@dataclass(frozen=True)
class Manifest:
    """What manifest.cbor says: the index's stable random id and its segment names, in order."""

    index_id: bytes
    segments: list[str]


def read_manifest(index: Path) -> Manifest:
    """The manifest of an index directory, validated (a version-1 index is refused: rebuild it)."""
    try:
        manifest = cbor2.loads((index / "manifest.cbor").read_bytes())
    except FileNotFoundError:
        raise IndexCorrupt(f"{index}: not an index (no manifest.cbor)") from None
    except Exception:  # cbor2 raises several error types for garbage
        raise IndexCorrupt(f"{index}: manifest.cbor is not valid CBOR") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise IndexCorrupt(f"{index}: not an abe-health search index")
    if manifest.get("v") != VERSION:
        raise IndexCorrupt(f"{index}: a version-{_version(manifest)} search index; this version reads "
                           f"version {VERSION} only: {_REBUILD}")
    index_id = manifest.get("index")
    if not isinstance(index_id, bytes) or len(index_id) != INDEX_ID_BYTES:
        raise IndexCorrupt(f"{index}: manifest has no valid index id")
    segments = manifest.get("segments")
    if not isinstance(segments, list) or not all(
            isinstance(s, str) and s.startswith("seg-") and "/" not in s for s in segments):
        raise IndexCorrupt(f"{index}: malformed segment list")
    return Manifest(index_id, segments)


def new_index_id() -> bytes:
    """A fresh random index id (16 bytes from the OS CSPRNG)."""
    return secrets.token_bytes(INDEX_ID_BYTES)


def write_manifest(index: Path, segments: list[str], index_id: bytes | None = None) -> None:
    """Replace the manifest atomically (the switch that makes new segments visible).

    `index_id` is the index's id; None (only when creating an index) draws a fresh one."""
    if index_id is None:
        index_id = new_index_id()
    if len(index_id) != INDEX_ID_BYTES:
        raise ValueError(f"an index id has {INDEX_ID_BYTES} bytes")
    tmp = index / "manifest.cbor.tmp"
    tmp.write_bytes(cbor2.dumps({"v": VERSION, "format": INDEX_FORMAT, "index": index_id,
                                 "segments": segments}))
    os.replace(tmp, index / "manifest.cbor")


def remove_segments(index: Path, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(index / name)
