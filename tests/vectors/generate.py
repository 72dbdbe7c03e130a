"""Write the frozen format vectors in this directory (run by hand, never by CI or the tests).

    python tests/vectors/generate.py            # refuses to overwrite existing vectors
    python tests/vectors/generate.py --force    # only with a deliberate format version bump
    python tests/vectors/generate.py --add      # only the vectors that do not exist yet

Every vector is made through the public API from fresh randomness, then frozen: the tests read
these bytes back with today's code, so a change that silently alters a format fails them. The
keys here are test data, published on purpose; they protect nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

from abe_health import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, encrypt

HERE = Path(__file__).resolve().parent
PLAIN = b'{"resourceType": "Observation", "code": "8867-4", "value": 72}\n' * 40


def vec(path: Path, headers: dict[str, str], body: bytes) -> None:
    """A vector file: `name: value` header lines, a line `---`, then the raw bytes."""
    text = "".join(f"{k}: {v}\n" for k, v in headers.items()) + "---\n"
    path.write_bytes(text.encode() + body)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def abe_vectors(out: Path, encrypt, identities: dict[str, object], good: str, bad: str) -> None:
    """The .abe vectors of one scheme: success, header/payload/version failures, wrong key,
    wrong context; `encrypt(data, context)` makes a file."""
    from abe_health.hazmat.envelope import read_header

    blob = encrypt(PLAIN, b"")
    size = read_header(io.BytesIO(blob)).size
    vec(out / "success.vec", {"expect": "success", "identity": good, "payload": sha(PLAIN)}, blob)
    vec(out / "header-failure.vec", {"expect": "header failure", "identity": good},
        flip(blob, size - 20))
    vec(out / "payload-failure.vec", {"expect": "payload failure", "identity": good},
        flip(blob, len(blob) - 5))
    vec(out / "truncated.vec", {"expect": "payload failure", "identity": good}, blob[:-1])
    vec(out / "wrong-version.vec", {"expect": "version failure", "identity": good},
        b"ABE1" + blob[4:])
    vec(out / "not-satisfied.vec", {"expect": "not satisfied", "identity": bad}, blob)
    bound = encrypt(PLAIN, b"vault/file-1/0")
    vec(out / "context.vec", {"expect": "success", "identity": good, "context": b"vault/file-1/0".hex(),
                              "payload": sha(PLAIN)}, bound)
    vec(out / "wrong-context.vec", {"expect": "header failure", "identity": good,
                                    "context": b"vault/file-2/0".hex()}, bound)
    for name, key in identities.items():
        key.save(out / name)  # type: ignore[attr-defined]


def single_authority(root: Path) -> None:
    from abe_health.authority import CPABE, KPABE

    for scheme in ("fame", "bsw07", "waters11", "fame-kp"):
        out = root / scheme
        out.mkdir()
        kp = scheme == "fame-kp"
        abe = (KPABE if kp else CPABE).setup(scheme, widths={"age": 8})
        abe.public_key.save(out / "public.key")
        abe.master_key.save(out / "master.key")
        if kp:
            alice = abe.keygen(policy="(doctor and cardiology) or age >= 65")
            bob = abe.keygen(policy="nurse and age < 18")
            target: object = ["doctor", "cardiology", "age = 70"]
        else:
            alice = abe.keygen(["doctor", "cardiology", "age = 70"])
            bob = abe.keygen(["nurse", "age = 12"])
            target = "(doctor and cardiology) or (nurse and age >= 65)"

        recipient = (AttributesRecipient(abe.public_key, target) if kp
                     else PolicyRecipient(abe.public_key, target))

        def make(data: bytes, context: bytes, recipient=recipient) -> bytes:
            return encrypt(data, None, recipient, chunk=1024, context=context)

        abe_vectors(out, make, {"alice.key": alice, "bob.key": bob}, "alice.key", "bob.key")


def uncompressed(root: Path) -> None:
    """`uncompressed.vec` of FAME CP and KP: a file whose rows' G1 points are in the 96-byte form
    (docs/formats.md section 1.1), under the authority and for the key already in the directory,
    so that both forms stay frozen (the older `success.vec` has them compressed)."""
    from abe_health.keys import read_key

    for scheme, target in (("fame", "(doctor and cardiology) or (nurse and age >= 65)"),
                           ("fame-kp", ["doctor", "cardiology", "age = 70"])):
        out = root / scheme / "uncompressed.vec"
        if out.exists():
            continue
        public = read_key(root / scheme / "public.key")
        recipient = (AttributesRecipient(public, target) if scheme == "fame-kp"
                     else PolicyRecipient(public, target))  # type: ignore[arg-type]
        blob = encrypt(PLAIN, None, recipient, chunk=1024)
        vec(out, {"expect": "success", "identity": "alice.key", "payload": sha(PLAIN)}, blob)


def multi_authority(root: Path) -> None:
    import datetime as dt

    from abe_health.ma import Authority
    from abe_health.phr import PolicyMap, encrypt_record

    out = root / "rw15"
    out.mkdir()
    hospital, university, er = (Authority.setup(n) for n in ("hospitalA", "university", "ER"))
    for auth in (hospital, university, er):
        auth.public_key.save(out / f"{auth.name}.pub")
        auth.secret_key.save(out / f"{auth.name}.key")
    alice = [hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"])]
    bob = [hospital.keygen("bob", ["nurse"]), university.keygen("bob", ["researcher"])]
    medic = [er.keygen("medic", ["emergency = 2099-12-31"])]
    expired = [er.keygen("old-medic", ["emergency = 2000-01-01"])]
    for name, keys in (("alice", alice), ("bob", bob), ("medic", medic), ("expired", expired)):
        for i, key in enumerate(keys):
            key.save(out / f"{name}-{i}.key")
    pks = [hospital.public_key, university.public_key, er.public_key]

    cohort = MultiAuthorityRecipient("doctor@hospitalA and researcher@university", pks)

    def make(data: bytes, context: bytes) -> bytes:
        return encrypt(data, None, cohort, context=context)

    abe_vectors(out, make, {}, "alice-0.key,alice-1.key", "bob-0.key,bob-1.key")
    record = {"profile": {"blood": "A+"}, "lab_results": {"hba1c": 6.1}, "billing": "I48"}
    pmap = PolicyMap.from_json({"sections": {"profile": "doctor@hospitalA",
                                             "lab_results": "doctor@hospitalA and researcher@university",
                                             "billing": "nurse@hospitalA"},
                                "emergency": ["profile"], "emergency_authority": "ER"})
    blob = encrypt_record(record, pmap, pks, today=dt.date(2026, 12, 1), record_id="patient-42")
    visible = {
        "alice-0.key,alice-1.key": ["lab_results", "profile"],
        "bob-0.key,bob-1.key": ["billing"],
        "medic-0.key": ["profile"],
        "expired-0.key": [],
    }
    (out / "record.phr").write_bytes(blob)
    (out / "record.json").write_text(json.dumps({
        "record_id": "patient-42",
        "sections": {k: sha(json.dumps(v, sort_keys=True).encode()) for k, v in record.items()},
        "visible": visible}, indent=2) + "\n")


def keys(root: Path) -> None:
    out = root / "keys"
    out.mkdir()
    src = root / "fame"
    for name in ("public.key", "master.key", "alice.key"):
        from abe_health.keys import read_key

        key = read_key(src / name)
        key.save(out / f"{name}.asc", armor=True)
    from abe_health.keys import read_key

    read_key(src / "master.key").save(out / "master-protected.key", passphrase="correct horse")
    (out / "keys.json").write_text(json.dumps({
        "public.key.asc": {"kind": "public", "scheme": "fame", "same_as": "../fame/public.key"},
        "master.key.asc": {"kind": "master", "scheme": "fame", "same_as": "../fame/master.key"},
        "alice.key.asc": {"kind": "user", "scheme": "fame", "same_as": "../fame/alice.key"},
        "master-protected.key": {"kind": "master", "scheme": "fame", "same_as": "../fame/master.key",
                                 "passphrase": "correct horse"},
    }, indent=2) + "\n")


def index(root: Path) -> None:
    from abe_health.authority import CPABE
    from abe_health.keys import read_key
    from abe_health.owner import OwnerKey, seal_search_key
    from search import SearchIndex, SearchKey

    out = root / "index"
    out.mkdir()
    docs = {"a.json": {"cardiology": 2, "consult": 1, "fibrillation": 1},
            "b.txt": {"discarded": 1, "postcard": 1, "heart": 2},
            "c.txt": {"cardiomyopathy": 1, "note": 1}}
    key = SearchKey.generate()
    key.save(out / "search.key")
    idx, _ = SearchIndex.create(out / "idx", docs, key)
    owner = OwnerKey.generate()
    owner.save(out / "owner.key")
    owner.public_key.save(out / "owner.pub")
    fame = root / "fame"
    authority = CPABE(read_key(fame / "public.key"), read_key(fame / "master.key"))
    seal_search_key(idx, key, authority, "doctor", owner)
    queries = {q: [h.doc_id for h in idx.search(q, key).hits]
               for q in ("card", "^card", "heart$", "^heart$", "ote", "zzz")}
    (out / "index.json").write_text(json.dumps({"identity": "../fame/alice.key",
                                                "queries": queries}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace existing vectors")
    parser.add_argument("--add", action="store_true",
                        help="write only the vectors added since (uncompressed.vec), never replacing one")
    args = parser.parse_args()
    if args.add:
        uncompressed(HERE)
        return 0
    existing = [p for p in HERE.iterdir() if p.is_dir() and p.name != "__pycache__"]
    if existing and not args.force:
        print("error: vectors exist; regenerate only with a format version bump (--force)", file=sys.stderr)
        return 1
    for path in existing:
        shutil.rmtree(path)
    single_authority(HERE)
    uncompressed(HERE)
    multi_authority(HERE)
    keys(HERE)
    index(HERE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
