"""On-disk layout of an index: a directory of segments, each loaded with memory mapping.

```
INDEX/manifest.cbor      {"v": 3, "format": "abe-health/pass-index", "index": 16 random bytes,
                          "segments": ["seg-0001", ...], "key_check": 16 bytes,
                          "removed": sealed removals (only when there are any)}
INDEX/lock               the writers' advisory lock (abe_health.locks): one writer at a time
INDEX/seg-0001/meta.cbor {"v": 3, "format": "abe-health/pass-segment", "id", "k",
                          "bits_per_element", "fanout", "levels": [n_0 leaves, n_1, ..., n_top],
                          "fixed_key", "key_check", "documents": sealed document id table}
              filters.bin  every node's Bloom filter, level by level (bit offsets in node_off)
              node_off.npy node_m.npy salts.npy   uint64 bit offset, uint64 size, 16-byte salt
              leaves.bin leaf_off.npy             sealed leaf payloads and their byte offsets
```
The index id is fixed when the index is created and kept by every later manifest: the owner's
signature over the search key names it (see `abe_health.owner`), so a key signed for one index
is refused for another. Version 2 added it and pads the document table to a capacity bucket
(version 1 padded it to 32 bytes only, which showed the document count); version-1 indexes are
refused with a request to rebuild. Version 3 adds "removed": the documents taken out of the
index since their segments were built (`SearchIndex.remove`), sealed under the search key and
bound to the index id, until a merge or `compact` rebuilds those segments without them; and the
index's own key check, so that an index whose every document was removed and compacted away (no
segment left) still refuses another key. Version 2 manifests are still read. Nothing in an
index is a plaintext keyword, document id or count beyond what `docs/leakage.md` lists.

Segments of version 3 add "fanout" (4 when written): node i of level l has the children
fanout*i .. fanout*i + fanout - 1 of level l - 1, so a tree has half the levels of the binary
version-2 tree (half the filter bytes and build work at the same walk cost). Version-2 segments
(binary, no "fanout") are still read and searched, and merged into version-3 segments.

A segment is written piece by piece (`SegmentOutput`): leaves in leaf order, each level's nodes a
batch of whole subtrees at a time into scratch files, assembled into the files above at the end
with bounded memory, then renamed into place.

Everything in an index directory is written by the server that stores it, so loading is one
explicit, bounded decoding layer that raises `IndexCorrupt` for anything else: the manifest and
meta.cbor have their sizes, types and ranges checked; the `.npy` arrays are NOT read with
`np.load` (whose header parser evaluates text and allocates what the header claims): `_read_npy`
matches the header against the one layout this writer produces (version 1.0 or 2.0, a fixed
little-endian dtype, C order, a shape of at most 19-digit integers), requires exactly the dtype
and shape the tree's level sizes call for, and requires the file's length to be exactly header
plus data before it memory-maps the data. Bloom offsets and sizes are checked against the length
of filters.bin with subtractions that cannot overflow (size <= bits - offset once offset <=
bits), and leaf offsets are checked to rise strictly from 0 to the length of leaves.bin, so
traversal can only index inside the maps.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cbor2
import numpy as np

from abe_health.fileio import write_atomic

from .errors import IndexCorrupt

INDEX_FORMAT = "abe-health/pass-index"
SEGMENT_FORMAT = "abe-health/pass-segment"
#: the version-2 layout (bucketed document table, binary trees): segments and manifests still read
VERSION = 2
#: the segment layout written (3: trees of fan-out "fanout", 4 when written)
SEGMENT_VERSION = 3
#: the fan-outs a version-3 segment may declare
FANOUTS = (2, 4, 8, 16)
#: the manifest version written (3: sealed removals and the index's key check)
MANIFEST_VERSION = 3
INDEX_ID_BYTES = 16
#: bounds of what an index file may declare (far above what the builder writes)
MAX_META_BYTES = 256 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_LEVELS = 64
MAX_NODES = 1 << 40
MAX_SEGMENTS = 4096
#: Bloom filter sizes are multiplied into 32-bit hash words (prf.positions), so below 2^32 bits
MAX_FILTER_BITS = 1 << 32
SEGMENT_NAME = re.compile(r"seg-[0-9]{4,9}\Z")
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = re.compile(r"\{'descr': '([<>|][a-zA-Z][0-9]{1,2})', 'fortran_order': (False|True), "
                         r"'shape': \(((?:[0-9]{1,19}, ?)*(?:[0-9]{1,19})?)\), \} *\n\Z")
_REBUILD = "rebuild it with `abe-health index build` (older indexes show their document count)"


#: bytes copied at a time when a segment's files are assembled
COPY_BLOCK = 1 << 22


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _npy_header(handle: BinaryIO, dtype: str, shape: tuple[int, ...]) -> None:
    """The .npy 1.0 header `np.save` writes for a C-order array of `dtype` and `shape`."""
    np.lib.format.write_array_header_1_0(handle, {"descr": dtype, "fortran_order": False,
                                                  "shape": shape})


def _append(out: BinaryIO, source: Path) -> None:
    with open(source, "rb") as handle:
        shutil.copyfileobj(handle, out, COPY_BLOCK)


class SegmentOutput:
    """A segment directory written piece by piece, in memory bounded by one batch.

    `leaves` appends sealed payloads in leaf order; `level` appends, for one level, the packed
    filters, sizes and salts of a batch of its nodes (batches in node order); `finish` writes
    meta.cbor and assembles filters.bin (level 0 first) and the .npy arrays from the per-level
    scratch files a block at a time, fsyncs everything and renames the directory into place.
    Until then it lives at `seg-NNNN.tmp`, which a later writer sweeps if this one dies."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tmp = out.with_name(out.name + ".tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.scratch = self.tmp / "scratch"
        self.scratch.mkdir(parents=True)
        self._leaves = open(self.tmp / "leaves.bin", "wb")
        self._leaf_off = open(self.scratch / "leaf_off", "wb")
        self._leaf_off.write(np.zeros(1, dtype="<u8").tobytes())
        self._leaf_end = 0
        self.n_leaves = 0
        self.level_nodes: list[int] = []
        self.filter_bytes = 0
        self._level_files: list[tuple[BinaryIO, BinaryIO, BinaryIO]] = []

    def leaves(self, payloads: list[bytes]) -> None:
        """Append sealed leaf payloads (the next leaves in leaf order)."""
        ends = np.cumsum([len(p) for p in payloads], dtype=np.uint64) + np.uint64(self._leaf_end)
        self._leaves.write(b"".join(payloads))
        self._leaf_off.write(ends.astype("<u8").tobytes())
        if len(payloads):
            self._leaf_end = int(ends[-1])
        self.n_leaves += len(payloads)

    def level(self, level: int, packed: np.ndarray, sizes: np.ndarray, salts: np.ndarray) -> None:
        """Append the next nodes of `level`: packed filter bytes, sizes in bits, 16-byte salts."""
        while len(self._level_files) <= level:
            n = len(self._level_files)
            self._level_files.append(tuple(  # type: ignore[arg-type]
                open(self.scratch / f"level{n}.{part}", "wb")
                for part in ("filters", "sizes", "salts")))
            self.level_nodes.append(0)
        filters, size_file, salt_file = self._level_files[level]
        filters.write(np.ascontiguousarray(packed, dtype=np.uint8).tobytes())
        size_file.write(sizes.astype("<u8").tobytes())
        salt_file.write(np.ascontiguousarray(salts, dtype=np.uint8).tobytes())
        self.level_nodes[level] += len(sizes)
        self.filter_bytes += len(packed)

    def _close(self) -> None:
        for handle in (self._leaves, self._leaf_off, *(f for fs in self._level_files for f in fs)):
            handle.close()

    def abort(self) -> None:
        """Close and delete everything written so far."""
        self._close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def finish(self, meta: dict[str, Any]) -> None:
        """Write meta.cbor, assemble the segment's files and rename the directory into place."""
        self._close()
        tmp, scratch = self.tmp, self.scratch
        (tmp / "meta.cbor").write_bytes(cbor2.dumps(meta))
        levels = range(len(self.level_nodes))
        total = sum(self.level_nodes)
        os.replace(scratch / "level0.filters", tmp / "filters.bin")  # the largest part, not copied
        with open(tmp / "filters.bin", "ab") as out:
            for lvl in levels[1:]:
                _append(out, scratch / f"level{lvl}.filters")
        for name, dtype, shape, part in (("node_m.npy", "<u8", (total,), "sizes"),
                                         ("salts.npy", "|u1", (total, 16), "salts")):
            with open(tmp / name, "wb") as out:
                _npy_header(out, dtype, shape)
                for lvl in levels:
                    _append(out, scratch / f"level{lvl}.{part}")
        with open(tmp / "node_off.npy", "wb") as out:  # running bit offsets, a block at a time
            _npy_header(out, "<u8", (total,))
            base = np.uint64(0)
            for lvl in levels:
                with open(scratch / f"level{lvl}.sizes", "rb") as handle:
                    while block := handle.read(COPY_BLOCK):
                        sizes = np.frombuffer(block, dtype="<u8")
                        ends = np.cumsum(sizes, dtype=np.uint64) + base
                        out.write((ends - sizes).astype("<u8").tobytes())
                        base = ends[-1]
        with open(tmp / "leaf_off.npy", "wb") as out:
            _npy_header(out, "<u8", (self.n_leaves + 1,))
            _append(out, scratch / "leaf_off")
        shutil.rmtree(scratch)
        for written in tmp.iterdir():  # durable before the manifest may name it
            _fsync(written)
        os.replace(tmp, self.out)
        _fsync(self.out.parent)


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
    #: children per node (2 in a version-2 segment, "fanout" in a version-3 one)
    fanout: int = 2

    @property
    def id(self) -> bytes:
        return bytes(self.meta["id"])

    def payload(self, leaf: int) -> bytes:
        return self.leaves[int(self.leaf_off[leaf]) : int(self.leaf_off[leaf + 1])].tobytes()


def _version(decoded: dict[Any, Any]) -> str:
    """The "v" field for an error message (only a small integer is echoed back)."""
    v = decoded.get("v")
    return str(v) if isinstance(v, int) and 0 <= v < 1000 else "unknown"


def _corrupt(path: Path, why: str) -> IndexCorrupt:
    return IndexCorrupt(f"{path}: {why}")


def _read_npy(path: Path, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Memory-map a `.npy` file that must hold exactly `dtype` (`<u8`, `|u1`) of `shape`.

    The header is matched, not evaluated, and the data's length is required to be exactly what
    dtype and shape call for, so no declared size is ever allocated or trusted."""
    name = path.name
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 10 or head[:6] != _NPY_MAGIC or head[6:8] not in (b"\x01\x00", b"\x02\x00"):
                raise IndexCorrupt(f"{name} is not a .npy file of a known version")
            if head[6] == 1:
                start, header_len = 10, int.from_bytes(head[8:10], "little")
            else:
                start, header_len = 12, int.from_bytes(head[8:12], "little")
            if header_len > 4096 or start + header_len > size:
                raise IndexCorrupt(f"{name}: malformed .npy header")
            handle.seek(start)
            header = handle.read(header_len)
    except OSError as exc:
        raise IndexCorrupt(f"cannot read {name}: {exc.strerror}") from None
    match = _NPY_HEADER.match(header.decode("latin-1"))
    if match is None:
        raise IndexCorrupt(f"{name}: malformed .npy header")
    descr, fortran, dims = match.groups()
    found = tuple(int(d) for d in dims.replace(" ", "").split(",") if d)
    if descr != dtype or fortran != "False" or found != shape:
        raise IndexCorrupt(f"{name}: expected {dtype} of shape {shape}, found {descr} of shape {found}")
    itemsize = np.dtype(dtype).itemsize
    count = 1
    for d in shape:
        count *= d
    offset = start + header_len
    if size - offset != count * itemsize:
        raise IndexCorrupt(f"{name}: {size - offset} data bytes, expected {count * itemsize}")
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    try:
        return np.asarray(np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"cannot map {name}: {exc}") from None


def _map_bytes(path: Path) -> np.ndarray:
    """A raw byte file (filters.bin, leaves.bin) as a read-only uint8 map (empty: an empty array)."""
    try:
        size = path.stat().st_size
        if not size:
            return np.zeros(0, dtype=np.uint8)
        return np.asarray(np.memmap(path, dtype=np.uint8, mode="r"))
    except FileNotFoundError:
        raise IndexCorrupt(f"missing {path.name}") from None
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"cannot map {path.name}: {exc}") from None


def _read_small(path: Path, limit: int, what: str) -> bytes:
    """A file's bytes, refusing more than `limit` (a planted huge file costs nothing)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise IndexCorrupt(f"missing {what}") from None
    except OSError as exc:
        raise IndexCorrupt(f"cannot read {what}: {exc.strerror}") from None
    if len(data) > limit:
        raise IndexCorrupt(f"{what} is larger than {limit} bytes")
    return data


def _decode(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except Exception:  # cbor2 raises several error types (and RecursionError) for garbage
        raise IndexCorrupt(f"{what} is not valid CBOR") from None


def segment_fanout(meta: dict[str, Any]) -> int:
    """The fan-out of a checked segment's tree (2 for a version-2 segment)."""
    return int(meta["fanout"]) if meta.get("v") == SEGMENT_VERSION else 2


def check_meta(meta: Any, path: Path) -> dict[str, Any]:
    """A segment's meta.cbor, with the type and range of every field traversal or the client use."""
    if not isinstance(meta, dict) or meta.get("format") != SEGMENT_FORMAT:
        raise _corrupt(path, "not a PASS segment")
    if meta.get("v") not in (VERSION, SEGMENT_VERSION):
        raise _corrupt(path, f"a version-{_version(meta)} segment; this version reads versions "
                             f"{VERSION} and {SEGMENT_VERSION} only: {_REBUILD}")
    if meta["v"] == SEGMENT_VERSION and (type(meta.get("fanout")) is not int
                                         or meta["fanout"] not in FANOUTS):
        raise _corrupt(path, "bad fan-out")
    fanout = segment_fanout(meta)
    levels = meta.get("levels")
    if (not isinstance(levels, list) or not 1 <= len(levels) <= MAX_LEVELS
            or any(type(n) is not int or not 1 <= n <= MAX_NODES for n in levels)
            or any(levels[i + 1] != -(-levels[i] // fanout) for i in range(len(levels) - 1))):
        raise _corrupt(path, "level sizes do not describe a tree")
    for field, kind, low, high in (("id", bytes, 1, 64), ("key_check", bytes, 16, 16),
                                   ("documents", bytes, 28, MAX_META_BYTES)):
        value = meta.get(field)
        if not isinstance(value, kind) or not low <= len(value) <= high:
            raise _corrupt(path, f"meta field {field!r} missing or malformed")
    if type(meta.get("k")) is not int or not 1 <= meta["k"] <= 32:
        raise _corrupt(path, "bad number of hash functions")
    return meta


def load_segment(path: Path) -> Segment:
    """Memory-map a segment, validating everything that traversal will index into."""
    try:
        meta = check_meta(_decode(_read_small(path / "meta.cbor", MAX_META_BYTES, "meta.cbor"),
                                  "meta.cbor"), path)
        levels: list[int] = meta["levels"]
        total = sum(levels)
        node_off = _read_npy(path / "node_off.npy", "<u8", (total,))
        node_m = _read_npy(path / "node_m.npy", "<u8", (total,))
        salts = _read_npy(path / "salts.npy", "|u1", (total, 16))
        leaf_off = _read_npy(path / "leaf_off.npy", "<u8", (levels[0] + 1,))
        filters = _map_bytes(path / "filters.bin")
        leaves = _map_bytes(path / "leaves.bin")
    except IndexCorrupt as exc:
        if str(exc).startswith(str(path)):
            raise
        raise _corrupt(path, str(exc)) from None
    bits = np.uint64(8 * len(filters))
    # offset <= bits first, so that bits - offset cannot wrap; sizes in [1, 2^32)
    if np.any(node_m == 0) or np.any(node_m >= np.uint64(MAX_FILTER_BITS)) or np.any(node_off > bits) \
            or np.any(node_m > bits - np.minimum(node_off, bits)):
        raise _corrupt(path, "a Bloom filter lies outside filters.bin")
    if leaf_off[0] != 0 or int(leaf_off[-1]) != len(leaves) or np.any(leaf_off[1:] <= leaf_off[:-1]):
        raise _corrupt(path, "leaf offsets do not match leaves.bin")
    start = np.zeros(len(levels), dtype=np.int64)
    start[1:] = np.cumsum(levels)[:-1]
    return Segment(path, meta, levels, start, filters, node_off, node_m, salts, leaves, leaf_off,
                   segment_fanout(meta))


@dataclass(frozen=True)
class Manifest:
    """What manifest.cbor says: the index's stable random id, its segment names in order, and
    the sealed removals (None when nothing was removed since the segments were built), and the
    index's key check (None in a version-2 manifest)."""

    index_id: bytes
    segments: list[str]
    removed: bytes | None = None
    key_check: bytes | None = None


def read_manifest(index: Path) -> Manifest:
    """The manifest of an index directory, validated (a version-1 index is refused: rebuild it)."""
    if not (index / "manifest.cbor").is_file():
        raise IndexCorrupt(f"{index}: not an index (no manifest.cbor)")
    try:
        data = _read_small(index / "manifest.cbor", MAX_MANIFEST_BYTES, "manifest.cbor")
    except IndexCorrupt as exc:
        raise IndexCorrupt(f"{index}: {exc}") from None
    return parse_manifest(data, index)


def parse_manifest(data: bytes, index: Path | str) -> Manifest:
    """A manifest's bytes, validated; `index` names where they came from in errors."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise IndexCorrupt(f"{index}: manifest.cbor is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = _decode(data, "manifest.cbor")
    except IndexCorrupt as exc:
        raise IndexCorrupt(f"{index}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT:
        raise IndexCorrupt(f"{index}: not an abe-health search index")
    if manifest.get("v") not in (VERSION, MANIFEST_VERSION):
        raise IndexCorrupt(f"{index}: a version-{_version(manifest)} search index; this version reads "
                           f"versions {VERSION} and {MANIFEST_VERSION} only: {_REBUILD}")
    index_id = manifest.get("index")
    if not isinstance(index_id, bytes) or len(index_id) != INDEX_ID_BYTES:
        raise IndexCorrupt(f"{index}: manifest has no valid index id")
    segments = manifest.get("segments")
    least = 1 if manifest["v"] == VERSION else 0  # version 3: every document may be removed
    if not isinstance(segments, list) or not least <= len(segments) <= MAX_SEGMENTS or not all(
            isinstance(s, str) and SEGMENT_NAME.match(s) for s in segments) \
            or len(set(segments)) != len(segments):
        raise IndexCorrupt(f"{index}: malformed segment list")
    if manifest["v"] == VERSION:
        return Manifest(index_id, segments)
    removed, key_check = manifest.get("removed"), manifest.get("key_check")
    if removed is not None and (not isinstance(removed, bytes) or len(removed) < 28):
        raise IndexCorrupt(f"{index}: malformed removals")
    if not isinstance(key_check, bytes) or len(key_check) != 16:
        raise IndexCorrupt(f"{index}: manifest has no valid key check")
    return Manifest(index_id, segments, removed, key_check)


def new_index_id() -> bytes:
    """A fresh random index id (16 bytes from the OS CSPRNG)."""
    return secrets.token_bytes(INDEX_ID_BYTES)


def write_manifest(index: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically and durably (the switch that makes new segments visible)."""
    if len(manifest.index_id) != INDEX_ID_BYTES or manifest.key_check is None:
        raise ValueError(f"a manifest needs an index id of {INDEX_ID_BYTES} bytes and a key check")
    fields: dict[str, Any] = {"v": MANIFEST_VERSION, "format": INDEX_FORMAT,
                              "index": manifest.index_id, "segments": manifest.segments,
                              "key_check": manifest.key_check}
    if manifest.removed is not None:
        fields["removed"] = manifest.removed
    write_atomic(index / "manifest.cbor", cbor2.dumps(fields))


def stray_segments(index: Path, live: list[str]) -> list[str]:
    """Segment directories (and their temporaries) that no manifest names: left by a writer that
    was killed before its switch. Only a writer holding the lock may remove them."""
    keep = set(live)
    try:
        names = [p.name for p in index.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []
    return sorted(n for n in names if n not in keep and SEGMENT_NAME.match(n.removesuffix(".tmp")))


def remove_segments(index: Path, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(index / name)
