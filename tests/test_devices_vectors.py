"""Frozen vectors of the device formats (tests/vectors/devices/, written once by its
generate_devices.py): transformation and retrieval keys, transformed files, RW13 files made online and
in one go, and sealed pools must all read as they did."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from abe_health import decrypt
from abe_health.devices import Pool, PoolKey, RetrievalKey, TransformationKey, retrieve, transform_file
from abe_health.errors import PoolExhausted
from abe_health.keys import read_key

HERE = Path(__file__).parent / "vectors" / "devices"
EXPECT = json.loads((HERE / "devices.json").read_text())


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("scheme", ["fame", "fame-kp", "rw15"])
def test_transformed_vectors(scheme):
    where, want = HERE / scheme, EXPECT[scheme]
    tk = TransformationKey.read(where / "holder.tk")
    rk = RetrievalKey.read(where / "holder.rk")
    assert tk.id == rk.transformation_key == want["tk"]
    assert tk.to_bytes() == (where / "holder.tk").read_bytes()  # decoding and encoding are stable
    v1, v2 = (where / "file.abt").read_bytes(), (where / "file.v2.abt").read_bytes()
    assert v1[:4] == b"ABT1" and v2[:4] == b"ABT2"
    assert sha(retrieve(v1, None, rk)) == sha(retrieve(v2, None, rk)) == want["payload"]
    assert transform_file(tk, where / "file.abe", None) == v2  # a transformation is deterministic
    keys = [read_key(where / name) for name in want["keys"]]
    assert sha(decrypt(where / "file.abe", None, *keys)) == want["payload"]


def test_rw13_vectors(tmp_path):
    where, want = HERE / "rw13", EXPECT["rw13"]
    alice = read_key(where / "alice.key")
    for name in ("online.abe", "full.abe"):
        assert sha(decrypt(where / name, None, alice)) == want["payload"]
    key = PoolKey.read(where / "pool.key")
    for name in ("readings.pool", "fixed.pool"):
        shutil.copy(where / name, tmp_path / name)  # consuming rewrites the pool: use a copy
        info = Pool(tmp_path / name, key).info()
        assert info.sessions == want[name]["sessions"]
    assert Pool(tmp_path / "readings.pool", key).info().pieces == want["readings.pool"]["pieces"]
    assert Pool(tmp_path / "fixed.pool", key).info().policy == want["fixed.pool"]["policy"]
    blob = Pool(tmp_path / "readings.pool", key).encrypt(b"hr=72", None, "doctor and ward = 3")
    assert decrypt(blob, None, alice) == b"hr=72"
    pool = Pool(tmp_path / "fixed.pool", key)
    assert [decrypt(pool.encrypt(b"x", None), None, alice) for _ in range(2)] == [b"x", b"x"]
    with pytest.raises(PoolExhausted):
        pool.encrypt(b"x", None)
