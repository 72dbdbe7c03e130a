"""Write the frozen vectors of the device formats (docs/formats.md section 11) in this directory.

    python tests/vectors/devices/generate_devices.py     # refuses to overwrite existing vectors
    python tests/vectors/devices/generate_devices.py --transformed-v2   # adds file.v2.abt only

Run by hand, once; the tests (tests/test_devices_vectors.py) read these bytes back with today's
code. The keys here are test data, published on purpose; they protect nothing. `file.abt` is a
transformed file of version 1 (uncompressed GT, written before version 2 existed); `file.v2.abt`
is the same transformation in version 2, added from the same keys and `.abe` file.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from abe_health import (
    CPABE,
    KPABE,
    AttributesRecipient,
    Authority,
    MultiAuthorityRecipient,
    PolicyRecipient,
    encrypt,
)
from abe_health.devices import Pool, PoolKey, TransformationKey, blind, precompute, transform_file

HERE = Path(__file__).resolve().parent
PLAIN = b'{"resourceType": "Observation", "code": "8867-4", "value": 72}\n' * 40


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def outsourced(out: Path, blob: bytes, keys: list, names: list[str]) -> dict:
    out.mkdir()
    tk, rk = blind(*keys)
    for key, name in zip(keys, names, strict=True):
        key.save(out / name)
    tk.save(out / "holder.tk")
    rk.save(out / "holder.rk")
    (out / "file.abe").write_bytes(blob)
    (out / "file.v2.abt").write_bytes(transform_file(tk, blob, None))
    return {"keys": names, "tk": tk.id, "payload": sha(PLAIN)}


def transformed_v2() -> int:
    """Add each scheme's version-2 transformed file beside the version-1 one, never replacing."""
    for scheme in ("fame", "fame-kp", "rw15"):
        out = HERE / scheme / "file.v2.abt"
        if not out.exists():
            tk = TransformationKey.read(HERE / scheme / "holder.tk")
            out.write_bytes(transform_file(tk, HERE / scheme / "file.abe", None))
    return 0


def main() -> int:
    existing = [p for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__"]
    if existing:
        print("error: vectors exist; regenerate only with a format version bump", file=sys.stderr)
        return 1
    expect: dict = {}
    cp = CPABE.setup()
    alice = cp.keygen(["doctor", "cardiology", "age = 70"])
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "(doctor and cardiology) or nurse"),
                   chunk=1024)
    expect["fame"] = outsourced(HERE / "fame", blob, [alice], ["alice.key"])
    kp = KPABE.setup()
    blob = encrypt(PLAIN, None, AttributesRecipient(kp.public_key, ["study = diabetes", "year = 2025"]),
                   chunk=1024)
    auditor = kp.keygen(policy="study = diabetes and year >= 2024")
    expect["fame-kp"] = outsourced(HERE / "fame-kp", blob, [auditor], ["auditor.key"])
    hospital, university = Authority.setup("hospitalA"), Authority.setup("university")
    blob = encrypt(PLAIN, None, MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                                        [hospital.public_key, university.public_key]))
    expect["rw15"] = outsourced(HERE / "rw15", blob, [hospital.keygen("alice", ["doctor"]),
                                                      university.keygen("alice", ["researcher"])],
                                ["alice-0.key", "alice-1.key"])
    out = HERE / "rw13"
    out.mkdir()
    wearable = CPABE.setup("rw13")
    wearable.public_key.save(out / "public.key")
    wearable.keygen(["doctor", "ward = 3"]).save(out / "alice.key")
    key = PoolKey.generate()
    key.save(out / "pool.key")
    precompute(out / "readings.pool", key, wearable.public_key, count=3, rows=6)
    (out / "online.abe").write_bytes(Pool(out / "readings.pool", key).encrypt(PLAIN, None,
                                                                               "doctor and ward = 3"))
    (out / "full.abe").write_bytes(encrypt(PLAIN, None, PolicyRecipient(wearable.public_key,
                                                                        "doctor and ward = 3")))
    fixed = PolicyRecipient(wearable.public_key, "doctor")
    precompute(out / "fixed.pool", key, fixed, count=2)
    expect["rw13"] = {"payload": sha(PLAIN), "readings.pool": {"sessions": 2, "pieces": 4},
                      "fixed.pool": {"sessions": 2, "policy": "doctor"}}
    (HERE / "devices.json").write_text(json.dumps(expect, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(transformed_v2() if sys.argv[1:] == ["--transformed-v2"] else main())
