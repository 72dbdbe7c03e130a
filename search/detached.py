"""An index known only from what a server returns with a search answer.

A remote server walks the trees; the client receives the index's manifest bytes and, per
segment, its id, key check and sealed document table beside the sealed leaves reached. This
class gives the query engine (`engine.finish`) the same view of those as of a local
`SearchIndex`: segment stubs without filters (the client never walks them), the document tables
opened with the key, and the removals sealed in the manifest. Everything in it came from the
server and is checked as a local file would be: the manifest by `format.parse_manifest`,
sealed payloads by their AEAD tags (bound to segment and index ids).
"""

from __future__ import annotations

import hmac
from pathlib import Path

import numpy as np

from .client import documents, key_matches
from .errors import IndexCorrupt
from .format import Manifest, Segment
from .index import open_removed
from .keys import SearchKey

_EMPTY = np.zeros(0, dtype=np.uint8)


def segment_stub(where: str, name: str, segment_id: bytes, key_check: bytes, sealed_table: bytes,
                 levels: int = 1) -> Segment:
    """A segment as far as the client needs it: id, key check, sealed document table."""
    meta = {"id": segment_id, "key_check": key_check, "documents": sealed_table}
    return Segment(Path(f"{where}/{name}"), meta, [levels], np.zeros(1, dtype=np.int64), _EMPTY, _EMPTY,
                   _EMPTY, _EMPTY, _EMPTY, _EMPTY)


class DetachedIndex:
    """The client's view of a remote index (see the module docstring)."""

    def __init__(self, where: str, manifest: Manifest, segments: list[Segment]) -> None:
        if len(segments) != len(manifest.segments):
            raise IndexCorrupt(f"{where}: the answer names {len(segments)} segments, the manifest "
                               f"{len(manifest.segments)}")
        self.where = where
        self.manifest = manifest
        self.index_id = manifest.index_id
        self.segments = segments
        self._tables: dict[bytes, list[str]] = {}

    def key_matches(self, key: SearchKey) -> bool:
        """Whether `key` built this index (as `SearchIndex.key_matches`)."""
        check = self.manifest.key_check
        if check is not None and not hmac.compare_digest(key.check_value(self.index_id), check):
            return False
        return all(key_matches(key, s) for s in self.segments)

    def removed(self, key: SearchKey) -> dict[bytes, frozenset[int]]:
        return open_removed(key, self.manifest, self.where)

    def table(self, key: SearchKey, segment: Segment) -> list[str]:
        if segment.id not in self._tables:
            self._tables[segment.id] = documents(key, segment)
        return self._tables[segment.id]
