"""Bulk work on a LocalCluster of two worker processes: every job's result equals the serial
path's (files decrypt to their sources, the same catalog, the same headers' policies, search
results equal to a serial build and to the plaintext reference), a worker killed with SIGKILL
mid-run, a run interrupted and resumed, nothing secret in what crosses to workers."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest

from abe_health import read_key
from abe_health.authority import ABE
from abe_health.bulk import (
    PolicyMap,
    build_index,
    connect,
    encrypt_files,
    issue_keys,
    revoke,
    update,
)
from abe_health.bulk import issue as issue_module
from abe_health.bulk.journal import Journal
from abe_health.derived import escrow_key, fingerprint
from abe_health.errors import BulkError, MissingExtra, PolicyNotSatisfied, PolicySyntaxError
from abe_health.register import Register, register_path_for
from abe_health.revocation import Vault
from abe_health.revocation.catalog import Row
from abe_health.revocation.manifest import AuthorityState
from search import SearchIndex, SearchKey, collect
from search.query import reference_query
from search.text import document_keywords

pytest.importorskip("distributed")

MAP = {"rules": [{"match": "psy/*", "policy": "psychiatrist"},
                 {"match": "lab/*", "policy": "doctor and (lab or cardiology)"}],
       "default": "doctor or nurse"}
WORDS = ["cardiology", "cardiac", "asthma", "wheeze", "diabetes", "insulin", "fracture", "ward",
         "cardiomyopathy", "hypertension", "penicillin", "allergy"]
QUERIES = ["card", "^cardio", "itis$", "^asthma$", "card AND ^diab", "asthma OR wheez", "ward",
           "bp >= 140", "(^cardio OR ^hyper) AND bp >= 120", "day in 2024-01-01..2024-06-30"]


def make_sources(root: Path, n: int = 36) -> dict[str, bytes]:
    """n small records under root (three policy classes), name -> content."""
    out = {}
    for i in range(n):
        folder = ("psy", "lab", "notes")[i % 3]
        (root / folder).mkdir(parents=True, exist_ok=True)
        words = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 5))
        data = json.dumps({"note": words, "bp": 100 + 3 * i, "day": f"2024-{1 + i % 12:02d}-{1 + i % 27:02d}",
                           "scan": "x" * (i * 997 % 5000)}).encode()
        (root / folder / f"r{i:03d}.json").write_bytes(data)
        out[f"{folder}/r{i:03d}.json"] = data
    return out


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with connect(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    t = tmp_path_factory.mktemp("bulk")
    subprocess.run([sys.executable, "-m", "abe_health.cli", "setup", "-o", str(t / "auth")], check=True,
                   capture_output=True)
    sources = make_sources(t / "src")
    (t / "map.json").write_text(json.dumps(MAP))
    return {"t": t, "sources": sources, "master": t / "auth" / "master.key",
            "public": t / "auth" / "public.key"}


def authority(world: dict[str, Any]) -> ABE:
    master = world["master"]
    return ABE(read_key(world["public"]), read_key(master), register=register_path_for(master))


def new_vault(world: dict[str, Any], name: str) -> Path:
    path = world["t"] / name
    Vault(path, create_for=authority(world), state=AuthorityState(register_path_for(world["master"]))).close()
    return path


def serial_vault(world: dict[str, Any], name: str) -> Path:
    """The serial path: Vault.add of every source under the map's policy."""
    path = new_vault(world, name)
    pmap, vault, auth = PolicyMap.of(MAP), Vault(path), ABE(read_key(world["public"]))
    for source, data in sorted(world["sources"].items()):
        vault.add(io.BytesIO(data), str(pmap.policy_of(source)), auth, source)
    vault.close()
    return path


def catalog(path: Path) -> dict[str, tuple[str, int, int]]:
    """name -> (base policy, body bytes, generation) of a vault."""
    vault = Vault(path)
    try:
        return {r.name: (r.policy, r.body_bytes, r.gen) for r in vault.catalog.rows() if isinstance(r, Row)}
    finally:
        vault.close()


def opened(path: Path, key: Any) -> dict[str, bytes]:
    """name -> plaintext of every file of the vault `key` opens."""
    vault, out = Vault(path), {}
    try:
        for file_id, name, _, _ in vault.list():
            sink = io.BytesIO()
            try:
                vault.get(file_id, key, sink)
            except PolicyNotSatisfied:
                continue
            out[name] = sink.getvalue()
    finally:
        vault.close()
    return out


def header_policies(path: Path) -> dict[str, str]:
    vault = Vault(path)
    try:
        return {r.name: str(vault._header_policy(r)) for r in vault.catalog.rows() if isinstance(r, Row)}
    finally:
        vault.close()


def test_encrypt_into_a_vault_equals_the_serial_path(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "bulk.vault")
    report = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    assert (report.committed, report.failed, report.items) == (36, [], 36)
    assert report.tasks >= 4 and report.workers == 2
    serial = serial_vault(world, "serial.vault")
    assert catalog(bulk) == catalog(serial)
    assert header_policies(bulk) == header_policies(serial)
    auth = authority(world)
    everyone = auth.keygen(["doctor", "nurse", "psychiatrist", "lab"])
    assert opened(bulk, everyone) == world["sources"] == opened(serial, everyone)
    nurse = auth.keygen(["nurse"])
    assert set(opened(bulk, nurse)) == {n for n in world["sources"] if n.startswith("notes/")}
    assert not [n for n in os.listdir(bulk / "files") if n.endswith(".tmp")]
    again = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    assert (again.committed, again.resumed, again.tasks) == (0, 36, 0)  # nothing encrypted twice
    assert len(catalog(bulk)) == 36


def test_one_encapsulation_per_policy_per_batch(client: Any, world: dict[str, Any]):
    """Headers of one batch under one policy share the ABE ciphertext, never the wrap."""
    out = world["t"] / "shared"
    encrypt_files(client, world["t"] / "src", world["public"], PolicyMap((), "doctor"), out)
    heads = [p.read_bytes()[:8 + int.from_bytes(p.read_bytes()[4:8], "big") + 92]
             for p in sorted(out.rglob("*.abe"))]
    cts = {cbor2.dumps(cbor2.loads(h[8:-92])["ct"]) for h in heads}
    wraps = {h[-92:] for h in heads}
    assert 1 <= len(cts) < len(heads) and len(wraps) == len(heads)


def test_encrypt_into_a_directory(client: Any, world: dict[str, Any]):
    out = world["t"] / "out"
    report = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", out)
    assert report.committed == 36 and not report.failed
    key = authority(world).keygen(["doctor", "nurse", "psychiatrist", "lab"])
    from abe_health import decrypt

    for name, data in world["sources"].items():
        assert decrypt(out / f"{name}.abe", None, key) == data
    assert not list(out.rglob(".*.part"))


def test_a_run_interrupted_and_resumed_commits_each_file_once(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "interrupted.vault")
    calls = []

    def interrupt(count: int) -> None:
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk,
                      on_commit=interrupt)
    assert 0 < len(catalog(bulk)) < 36
    report = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    assert report.resumed == sum(calls) and report.committed == 36 - sum(calls)
    assert sorted(catalog(bulk)) == sorted(world["sources"])
    key = authority(world).keygen(["doctor", "nurse", "psychiatrist", "lab"])
    assert opened(bulk, key) == world["sources"]


def test_a_commit_the_journal_missed_is_not_repeated(client: Any, world: dict[str, Any]):
    """Killed between the catalog commit and the journal mark: the rows are recognized."""
    bulk = new_vault(world, "unmarked.vault")
    encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    journal = bulk.with_name(f".{bulk.name}.encrypt.journal")
    with Journal.open(journal) as book:
        book.db.execute("UPDATE items SET done = 0")
        book.db.commit()
    report = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    assert (report.committed, report.tasks) == (0, 0) and len(catalog(bulk)) == 36


def test_a_worker_killed_mid_run(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "killed.vault")
    pids = client.run(os.getpid)
    killed = []

    def kill_one(count: int) -> None:
        if not killed:
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)

    report = encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk,
                           on_commit=kill_one)
    assert killed and report.committed == 36 and not report.failed
    key = authority(world).keygen(["doctor", "nurse", "psychiatrist", "lab"])
    assert opened(bulk, key) == world["sources"]
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the tests after this one


def test_revoke_and_update_equal_the_serial_revocation(client: Any, world: dict[str, Any]):
    bulk, serial = new_vault(world, "revoke.bulk"), serial_vault(world, "revoke.serial")
    encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    auth = authority(world)
    before = auth.keygen(["doctor", "lab"])
    report = revoke(client, bulk, "doctor", world["master"])
    assert not report.failed and report.extra["rewritten"] == 24  # lab/ and notes/ mention doctor
    state = AuthorityState(register_path_for(world["master"]))
    Vault(serial, state=state).revoke("doctor", auth)
    assert header_policies(bulk) == header_policies(serial)
    assert Vault(bulk, state=state).pending(auth) == []
    assert opened(bulk, before) == {}  # the revoked key opens no rewritten header
    after = Vault(bulk, state=state).issue_key(auth, ["doctor", "lab", "nurse"])
    assert set(opened(bulk, after)) == {n for n in world["sources"] if not n.startswith("psy/")}
    again = update(client, bulk, world["master"])
    assert again.extra.get("rewritten", 0) == 0 and not again.failed
    second = revoke(client, bulk, "doctor", world["master"])  # a new revocation, not a resume
    assert second.extra["rewritten"] == 24 and Vault(bulk, state=state).versions(auth)["doctor"] == 2


def test_lazy_revocation_finished_by_bulk_update(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "lazy.vault")
    encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    auth = authority(world)
    state = AuthorityState(register_path_for(world["master"]))
    Vault(bulk, state=state).revoke("nurse", auth, lazy=True)
    assert len(Vault(bulk, state=state).pending(auth)) == 12
    report = update(client, bulk, world["master"])
    assert report.extra["rewritten"] == 12 and Vault(bulk, state=state).pending(auth) == []


def test_an_altered_row_fails_alone(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "altered.vault")
    encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    vault = Vault(bulk)
    victim = next(r for r in vault.catalog.rows() if isinstance(r, Row) and r.name.startswith("notes/"))
    vault.catalog.db.execute("UPDATE files SET policy = 'doctor or psychiatrist' WHERE id = ?", (victim.id,))
    vault.catalog.db.commit()
    report = revoke(client, bulk, "doctor", world["master"])
    assert [f for f, _ in report.failed] == [victim.id]
    assert "escrow does not open" in report.failed[0][1]
    assert report.extra["rewritten"] == 23


def test_index_answers_every_query_as_a_serial_build(client: Any, world: dict[str, Any]):
    key = SearchKey.generate()
    key.save(world["t"] / "s.key")
    src = world["t"] / "src"
    report = build_index(client, [src], world["t"] / "s.key", world["t"] / "bulk.idx", root=src, segments=3)
    assert report.extra["segments"] == 3 and not report.failed
    serial, _ = SearchIndex.create(world["t"] / "serial.idx", collect([src], root=src), key)
    bulk = SearchIndex(world["t"] / "bulk.idx")
    assert len(bulk.segments) == 3 and sorted(bulk.documents(key)) == sorted(serial.documents(key))
    words = {doc: dict(document_keywords(src / doc)) for doc in world["sources"]}
    from search.fields import document_fields

    fields = {doc: document_fields(json.loads((src / doc).read_text())) for doc in words}
    for query in QUERIES:
        got = bulk.search(query, key).hits
        assert got == serial.search(query, key).hits, query
        assert got == reference_query(query, words, fields), query
    bulk.add({"new": {"cardiology": 1}}, key)  # a bulk-built index takes later updates
    assert any(h.doc_id == "new" for h in SearchIndex(world["t"] / "bulk.idx").search("card", key).hits)


def test_keygen_records_every_key_in_the_register(client: Any, world: dict[str, Any]):
    bulk = new_vault(world, "keys.vault")
    encrypt_files(client, world["t"] / "src", world["public"], world["t"] / "map.json", bulk)
    revoke(client, bulk, "doctor", world["master"])
    holders = [{"name": f"h{i}", "attributes": ["doctor", "lab"] if i % 2 else ["nurse"]} for i in range(6)]
    report = issue_keys(client, world["master"], holders, world["t"] / "keys", vault=bulk)
    assert report.committed == 6 and not report.failed
    register = Register(register_path_for(world["master"]))
    for holder in holders:
        path = world["t"] / "keys" / f"{holder['name']}.key"
        assert path.stat().st_mode & 0o777 == 0o600
        key = read_key(path, expect="user")
        assert register.lookup(key).iid == key.record.meta["iid"]
    doctor = read_key(world["t"] / "keys" / "h1.key")
    assert "lab/r001.json" in opened(bulk, doctor)  # holds doctor's new epoch
    assert not list((world["t"] / "keys").glob(".*.part"))


def test_keygen_refuses_a_bad_attribute_list_before_any_key(client: Any, world: dict[str, Any]):
    """Attribute lists are parsed once per distinct list, still all before any key is issued."""
    holders = [{"name": f"ok{i}", "attributes": ["doctor", "lab"]} for i in range(5)]
    holders.insert(3, {"name": "bad", "attributes": ["doctor", "a b"]})
    with pytest.raises(PolicySyntaxError):
        issue_keys(client, world["master"], holders, world["t"] / "refused")
    assert not (world["t"] / "refused").exists()  # refused before the output was made


def test_nothing_secret_crosses_to_workers_or_back(world: dict[str, Any], tmp_path: Path):
    """Task arguments and results, pickled as Dask sends them, hold no key's secret bytes."""
    auth = authority(world)
    master = read_key(world["master"])
    secrets_ = [escrow_key(master).private_bytes_raw(), master.to_bytes()]
    task = issue_module.KeygenTask(str(world["master"]), None, str(world["public"]),
                                   fingerprint(auth.public_key), str(tmp_path), {},
                                   [{"name": "x", "attributes": ["doctor"]}])
    sent, back = pickle.dumps(task), pickle.dumps(issue_module.issue_batch(task))
    written = read_key(next(tmp_path.glob(".x.key.*.part")))
    parts = written.to_bytes()[40:80]  # inside the group elements
    for blob in (sent, back):
        assert not any(s in blob for s in secrets_) and parts not in blob
    with pytest.raises(TypeError):
        pickle.dumps(master)  # keys refuse pickling: a mistake fails loudly


def test_another_jobs_journal_and_an_uncovered_file_are_refused(client: Any, world: dict[str, Any]):
    out = world["t"] / "refused"
    with pytest.raises(BulkError, match="covers no rule for lab/"):
        encrypt_files(client, world["t"] / "src", world["public"],
                      PolicyMap((("psy/*", "psychiatrist"),), None), out)
    journal = world["t"] / "one.journal"
    encrypt_files(client, world["t"] / "src", world["public"], PolicyMap((), "nurse"), out, journal)
    with pytest.raises(BulkError, match="journal of another job"):
        encrypt_files(client, world["t"] / "src", world["public"], PolicyMap((), "doctor"), out, journal)


def test_without_dask_a_clear_error_names_the_extra(monkeypatch: pytest.MonkeyPatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "distributed"
                        else real(name, *a))
    with pytest.raises(MissingExtra, match=r'pip install "abe-health\[scale\]"'):
        with connect(workers=0):
            pass


def test_importing_the_toolkit_does_not_import_dask():
    code = ("import sys, abe_health, abe_health.cli, abe_health.bulk; "
            "assert not {'dask', 'distributed'} & set(sys.modules), sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
