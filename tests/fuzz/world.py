"""The corpus: seeds for every surface and the context their oracles need, made through the
public API (`python -m tests.fuzz --make-corpus`) and committed under `corpus/`.

`corpus/context.cbor` holds the keys (authorities, readers, a search key, an owner key), the
plaintext behind every seed that has one, and the expected search results' documents; every
`corpus/<surface>/<name>.bin` is one seed. Secrets in here are test fixtures made for the corpus,
nothing else. Keys are random, so making the corpus again changes every seed: do it only when a
format changes (then the saved reproducers, which are mutants of the old seeds, still replay
against the new keys: they only have to be refused).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cbor2

from tests.fuzz.engine import HERE

CORPUS = HERE / "corpus"
CONTEXT = CORPUS / "context.cbor"
PASSPHRASE = "correct horse battery staple"
VAULT_NAME = "fuzz-vault"
PATTERNS = ["card", "^card", "itis$", "^heart$", "a", "zz", "rt", "o$"]
TODAY = dt.date(2026, 3, 1)
PHR_RECORDS: dict[str, dict[str, Any]] = {
    "patient-A": {"profile": {"name": "Ada", "born": 1970}, "medications": ["aspirin"],
                  "lab_results": {"hb": 13.5}, "notes": "allergic to penicillin"},
    "patient-B": {"profile": {"name": "Bo"}, "medications": [], "lab_results": {"ldl": 2.9}},
}
PHR_POLICIES = {"sections": {"profile": "doctor@hospitalA or family@patient",
                             "medications": "doctor@hospitalA",
                             "lab_results": "doctor@hospitalA and nurse@hospitalA"},
                "default": "family@patient", "emergency": ["profile", "medications"],
                "emergency_authority": "ER"}
SEARCH_DOCS: dict[str, dict[str, dict[str, int]]] = {
    "one": {"a-1": {"cardiology": 2, "heart": 1, "arthritis": 1},
            "a-2": {"cardiac": 1, "zebra": 3}, "a-3": {"otitis": 1, "heart": 2}},
    "two": {"b-1": {"card": 1, "carditis": 2}, "b-2": {"heartburn": 1, "oo": 1},
            "b-3": {"neuro": 4, "cardiology": 1}},
}


def _file_map(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make(directory: Path = CORPUS) -> None:
    """Make every seed and the context through the public API, replacing `directory`."""
    from abe_health import (
        CPABE,
        KPABE,
        AttributesRecipient,
        Authority,
        MultiAuthorityRecipient,
        PolicyRecipient,
        encrypt,
    )
    from abe_health import keys as keys_module
    from abe_health.owner import OwnerKey, seal_search_key
    from abe_health.phr import PolicyMap, encrypt_record
    from abe_health.revocation import Vault
    from abe_health.revocation.manifest import AuthorityState
    from search import SearchIndex, SearchKey
    from tests.fuzz.mutate import pack_bundle

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    seeds: dict[str, dict[str, bytes]] = {}
    ctx: dict[str, Any] = {"passphrase": PASSPHRASE, "plain": {}}

    def seed(surface: str, name: str, data: bytes) -> None:
        seeds.setdefault(surface, {})[name] = data

    # --- single-authority schemes -------------------------------------------------------------
    cp = CPABE.setup()
    kp = KPABE.setup()
    bsw = CPABE.setup("bsw07")
    waters = CPABE.setup("waters11")
    users = {
        "fame": cp.keygen(["doctor", "cardiology", "ward = 3", "valid_until = 2026-12-31"]),
        "fame-kp": kp.keygen(policy="doctor and (cardiology or ward >= 2)"),
        "bsw07": bsw.keygen(["doctor", "nurse"]),
        "waters11": waters.keygen(["doctor", "cardiology"]),
    }
    ctx["schemes"] = {}
    for name, auth in (("fame", cp), ("fame-kp", kp), ("bsw07", bsw), ("waters11", waters)):
        assert auth.master_key is not None
        ctx["schemes"][name] = {"public": auth.public_key.to_bytes(), "master": auth.master_key.to_bytes(),
                                "user": users[name].to_bytes()}
    # --- multi-authority ----------------------------------------------------------------------
    ma = {n: Authority.setup(n) for n in ("hospitalA", "patient", "ER")}
    reader = [ma["hospitalA"].keygen("dr-who", ["doctor", "nurse"]),
              ma["patient"].keygen("dr-who", ["family"])]
    ctx["ma"] = {"public": {n: a.public_key.to_bytes() for n, a in ma.items()},
                 "secret": {n: a.secret_key.to_bytes() for n, a in ma.items() if a.secret_key},
                 "reader": [k.to_bytes() for k in reader]}
    pks = [a.public_key for a in ma.values()]

    # --- key files ----------------------------------------------------------------------------
    for name, entry in ctx["schemes"].items():
        for kind in ("public", "master", "user"):
            seed("keys", f"{name}-{kind}", entry[kind])
    seed("keys", "fame-user-armored", users["fame"].to_bytes(armor=True))
    seed("keys", "fame-public-armored", cp.public_key.to_bytes(armor=True))
    seed("keys", "rw15-public", ma["hospitalA"].public_key.to_bytes())
    seed("keys", "rw15-user", reader[0].to_bytes())
    secret = ma["ER"].secret_key
    assert secret is not None
    seed("keys", "rw15-secret", secret.to_bytes())
    # protected keys with the smallest scrypt cost the format admits (2^10): cases stay fast
    saved = keys_module.SCRYPT_N
    keys_module.SCRYPT_N = 2**10
    try:
        protected = keys_module.protect(users["fame"].to_bytes(), PASSPHRASE)
        protected_kp = keys_module.protect(users["fame-kp"].to_bytes(), PASSPHRASE)
    finally:
        keys_module.SCRYPT_N = saved
    seed("keys", "fame-user-protected", protected)
    seed("keys", "fame-kp-user-protected", protected_kp)
    seed("keys", "fame-user-protected-armored", keys_module.armor_bytes(protected, "USER KEY"))

    # --- .abe files ---------------------------------------------------------------------------
    probe = b'{"bp": "120/80", "probe": true}'
    ctx["probe"] = {}
    files = {
        "fame": encrypt(probe, None, PolicyRecipient(cp.public_key, "doctor and (cardiology or nurse)")),
        "fame-armored": encrypt(b"armored record", None, PolicyRecipient(cp.public_key, "doctor"),
                                armor=True),
        "fame-numeric": encrypt(b"ward three", None, PolicyRecipient(
            cp.public_key, "ward in 2..4 and valid_until >= 2026-06-01")),
        "fame-chunks": encrypt(bytes(range(256)) * 12, None, PolicyRecipient(cp.public_key, "doctor"),
                               chunk=1024),
        "fame-empty": encrypt(b"", None, PolicyRecipient(cp.public_key, "cardiology")),
        "fame-kp": encrypt(b"kp record", None, AttributesRecipient(kp.public_key, ["doctor", "ward = 3"])),
        "bsw07": encrypt(b"bsw record", None, PolicyRecipient(bsw.public_key, "doctor or nurse")),
        "waters11": encrypt(b"waters record", None,
                            PolicyRecipient(waters.public_key, "2 of (doctor, cardiology, x)")),
        "rw15": encrypt(b"ma record", None,
                        MultiAuthorityRecipient("doctor@hospitalA and family@patient", pks)),
        "fame-closed": encrypt(b"closed to the readers", None, PolicyRecipient(cp.public_key, "nurse")),
    }
    plains = {"fame": probe, "fame-armored": b"armored record", "fame-numeric": b"ward three",
              "fame-chunks": bytes(range(256)) * 12, "fame-empty": b"", "fame-kp": b"kp record",
              "bsw07": b"bsw record", "waters11": b"waters record", "rw15": b"ma record",
              "fame-closed": b"closed to the readers"}
    for name, blob in files.items():
        seed("abe", name, blob)
    ctx["plain"]["abe"] = sorted(set(plains.values()))
    ctx["probe"] = {"fame": files["fame"], "fame-kp": files["fame-kp"], "bsw07": files["bsw07"],
                    "waters11": files["waters11"], "rw15": files["rw15"]}

    # --- armor --------------------------------------------------------------------------------
    seed("armor", "user-key", users["fame"].to_bytes(armor=True))
    seed("armor", "public-key", cp.public_key.to_bytes(armor=True))
    seed("armor", "protected-key", keys_module.armor_bytes(protected, "USER KEY"))
    seed("armor", "abe-file", files["fame-armored"])
    seed("armor", "abe-file-long", encrypt(bytes(1000), None, PolicyRecipient(cp.public_key, "doctor"),
                                           armor=True))

    # --- policy text --------------------------------------------------------------------------
    for i, text in enumerate([
        "doctor", "doctor and cardiology", "(doctor and cardiology) or (nurse and ward = 3)",
        "2 of (doctor, nurse, pharmacist)", "age >= 18 and age < 65", "ward in 3..5",
        "valid_until >= 2026-12-31", "doctor@hospitalA or family@patient",
        "(profile or family@patient) or (emergency >= 2026-03-01@ER)", "not_a_keyword_or",
        "ward = 3", "doctor@A", "valid_until = 2026-12-31", "x > 0 and (y <= 7 or 2 of (a, b, c))",
    ]):
        seed("policy", f"text-{i:02d}", text.encode())

    # --- .phr records -------------------------------------------------------------------------
    pmap = PolicyMap.from_json(PHR_POLICIES)
    for rid, record in PHR_RECORDS.items():
        seed("phr", rid, encrypt_record(record, pmap, pks, TODAY, record_id=rid))
    ctx["plain"]["phr"] = PHR_RECORDS

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # --- search index -------------------------------------------------------------------
        skey = SearchKey.generate()
        owner = OwnerKey.generate()
        ctx["search"] = {"key": skey.to_bytes(), "docs": {d: c for docs in SEARCH_DOCS.values()
                                                          for d, c in docs.items()},
                         "patterns": PATTERNS}
        one, _ = SearchIndex.create(tmp / "one", SEARCH_DOCS["one"], skey)
        seal_search_key(one, skey, cp, "doctor", owner)
        two, _ = SearchIndex.create(tmp / "two", dict(list(SEARCH_DOCS["two"].items())[:2]), skey)
        two.add(dict(list(SEARCH_DOCS["two"].items())[2:]), skey)
        seal_search_key(two, skey, cp, "doctor", owner)
        seed("search", "one-segment", pack_bundle(_file_map(tmp / "one")))
        seed("search", "two-segments", pack_bundle(_file_map(tmp / "two")))
        # --- owner files --------------------------------------------------------------------
        ctx["owner"] = {"public": owner.public_key.to_bytes()}
        seed("owner", "owner-pub", owner.public_key.to_bytes())
        seed("owner", "owner-key", owner.to_bytes())
        seed("owner", "signature", (tmp / "one" / "search.key.sig").read_bytes())
        seed("owner", "search-key", skey.to_bytes())
        # --- vault --------------------------------------------------------------------------
        hospital = CPABE.setup()
        state_path = tmp / "state.db"
        vault = Vault(tmp / VAULT_NAME, create_for=hospital, state=AuthorityState(state_path))
        plain_by_id = {}
        for text, policy in ((b"cardiology notes", "doctor and cardiology"),
                             (b"ward rota", "nurse or doctor"), (b"x" * 3000, "doctor")):
            file_id = vault.add(io.BytesIO(text), policy, hospital)
            plain_by_id[file_id] = text
        vault.revoke("nurse", hospital, lazy=True)
        vault_user = vault.issue_key(hospital, ["doctor", "cardiology", "nurse"])
        vault.close()
        assert vault.state is not None
        vault.state.close()
        with sqlite3.connect(tmp / VAULT_NAME / "catalog.sqlite") as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        assert hospital.master_key is not None
        ctx["vault"] = {"public": hospital.public_key.to_bytes(), "master": hospital.master_key.to_bytes(),
                        "user": vault_user.to_bytes(), "state": state_path.read_bytes(),
                        "plain": plain_by_id}
        files_map = {k: v for k, v in _file_map(tmp / VAULT_NAME).items()
                     if not k.endswith(("-wal", "-shm")) and k != ".lock"}
        seed("vault", "three-files", pack_bundle(files_map))

    for surface, entries in seeds.items():
        (directory / surface).mkdir()
        for name, data in entries.items():
            (directory / surface / f"{name}.bin").write_bytes(data)
    CONTEXT.write_bytes(cbor2.dumps(ctx))


def context() -> dict[str, Any]:
    return dict(cbor2.loads(CONTEXT.read_bytes()))


def seeds(surface: str) -> list[tuple[str, bytes]]:
    return [(p.stem, p.read_bytes()) for p in sorted((CORPUS / surface).glob("*.bin"))]


def same_json(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def plain_map(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return dict(value)
