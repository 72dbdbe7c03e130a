"""The server's cache of index segments: a search stats only the manifest, so every write the
server makes into an index must make the next search look at the segments again."""

from __future__ import annotations

from pathlib import Path

import pytest

from abe_health.cloud.errors import NotFound
from abe_health.cloud.search import index_files
from abe_health.cloud.store import DataDir
from search import SearchIndex, SearchKey


def _upload(data: DataDir, local: Path, name: str, files: list[str]) -> None:
    for rel in files:
        with data.write(data.index_path(name) / rel) as out:
            out.write((local / rel).read_bytes())


def test_a_segment_replaced_under_the_same_manifest_is_loaded_again(tmp_path):
    key = SearchKey.generate()
    SearchIndex.create(tmp_path / "a", {"d1": {"heart": 1}, "d2": {"lung": 1}}, key)
    SearchIndex.create(tmp_path / "b", {"d1": {"kidney": 1}}, key)
    data = DataDir(tmp_path / "data")
    try:
        _upload(data, tmp_path / "a", "x", index_files(tmp_path / "a"))
        raw, first = data.segments("x")
        assert data.segments("x")[1][0] is first[0]  # cached while nothing changed
        segment_files = [f for f in index_files(tmp_path / "b") if f != "manifest.cbor"]
        assert {f.split("/")[0] for f in segment_files} == {s.path.name for s in first}
        _upload(data, tmp_path / "b", "x", segment_files)  # the manifest stays a's
        raw_again, second = data.segments("x")
        assert raw_again == raw and second[0] is not first[0]
        assert second[0].id == SearchIndex(tmp_path / "b").segments[0].id
    finally:
        data.close()


def test_a_removed_index_is_gone_from_the_cache(tmp_path):
    key = SearchKey.generate()
    SearchIndex.create(tmp_path / "a", {"d1": {"heart": 1}}, key)
    data = DataDir(tmp_path / "data")
    try:
        _upload(data, tmp_path / "a", "x", index_files(tmp_path / "a"))
        data.segments("x")
        data.remove_index("x")
        with pytest.raises(NotFound, match="no index x"):
            data.segments("x")
    finally:
        data.close()
