"""Smoke-run of `python -m benchmarks devices --quick`: it runs and writes what it promises
(shapes and counts only: timings are never asserted on a shared machine)."""

from __future__ import annotations

import json

from benchmarks.__main__ import main


def test_devices_quick(tmp_path):
    assert main(["devices", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "devices" / "results.json").read_text())
    rows = data["rows"]
    retrieve = [r for r in rows if r["mode"] == "retrieve (device)"]
    assert {(r["scheme"], r["N"]) for r in retrieve} == {
        (s, n) for s in ("fame", "fame-kp", "rw15") for n in (10, 50, 100)}
    for row in retrieve:
        assert row["counts"] == {"exp_gt": 1}  # one GT exponentiation, whatever N
    sizes = {r["scheme"]: {x["header_bytes"] for x in retrieve if x["scheme"] == r["scheme"]}
             for r in retrieve}
    assert all(len(s) == 1 and max(s) < 1024 for s in sizes.values())  # RW15 too: compressed GT
    online = [r for r in rows if r["mode"].startswith("online (")]
    expected = {(s, n) for s in ("rw13", "fame") for n in (10, 50, 100)}
    assert {(r["scheme"], r["N"]) for r in online} == expected
    assert all(r["counts"] == {} for r in online)  # no group operation online
    assert any("N=50" in note and "online" in note for note in data["notes"])
