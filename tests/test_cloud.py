"""The cloud as users run it: a real `abe-health serve` process on a free port, spoken to over
HTTP by `Client` and the `abe-health cloud` commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from abe_health import PolicyRecipient, decrypt, encrypt
from abe_health.authority import ABE, CPABE
from abe_health.cloud import BadRequest, Client, Forbidden, NotFound, Unauthorized
from abe_health.cloud.app import ROUTES
from abe_health.cloud.audit import entries, load_verify_key, now, verify
from abe_health.cloud.search import open_remote_search_key, push_index
from abe_health.errors import InvalidKey, PolicyNotSatisfied
from abe_health.ma import Authority
from abe_health.owner import OwnerKey, seal_search_key
from abe_health.phr import PolicyMap, decrypt_record, encrypt_record
from abe_health.revocation.manifest import AuthorityState
from search import SearchIndex, SearchKey, keywords
from search.fields import document_fields, field_keywords
from tests.cloud_server import Server

POLICY = "(doctor and cardiology) or nurse"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("cloud") / "data",
                 ["--max-body", str(4 << 20), "--checkpoint-every", "50"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hospital(tmp_path_factory):
    return CPABE.setup()


def _vault(server, hospital, tmp_path, name):
    state = AuthorityState(tmp_path / f"{name}.state")
    server.client("authority").vault(name, create_for=hospital, state=state).close()
    return state


def test_health_and_openapi_list_every_route(server):
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for route in ROUTES:
        path = route.path.replace(":path}", "}")
        assert route.method.lower() in doc["paths"][path]


def test_objects_of_every_kind_round_trip(server, hospital, tmp_path):
    owner, reader = server.client("owner"), server.client("reader")
    blob = encrypt(b"record", None, PolicyRecipient(hospital.public_key, "doctor"))
    hospital.public_key.save(tmp_path / "public.key")
    ma = Authority.setup("hospitalA")
    pmap = PolicyMap.from_json({"sections": {"profile": "doctor@hospitalA"}})
    phr = encrypt_record({"profile": {"name": "P-1"}}, pmap, [ma.public_key], record_id="P-1")
    objects = {("abe", "rec-1.abe"): blob, ("key", "hospital.pub"): (tmp_path / "public.key").read_bytes(),
               ("phr", "p-1.phr"): phr}
    for (kind, name), data in objects.items():
        owner.put(kind, name, data)
    for (kind, name), data in objects.items():
        assert reader.get(kind, name) == data
        assert (name, len(data)) in reader.list(kind)
    assert decrypt(reader.get("abe", "rec-1.abe"), None, hospital.keygen(["doctor"])) == b"record"
    visible, _ = decrypt_record(reader.get("phr", "p-1.phr"), [ma.keygen("ada", ["doctor"])])
    assert visible == {"profile": {"name": "P-1"}}
    other = Client(server.url, server.token("owner", "mallory"))
    with pytest.raises(Forbidden):
        other.delete("abe", "rec-1.abe")  # only its owner deletes it
    with pytest.raises(Forbidden):
        other.put("abe", "rec-1.abe", b"planted")
    with pytest.raises(Forbidden):
        reader.put("abe", "x.abe", b"readers do not write")
    owner.delete("abe", "rec-1.abe")
    with pytest.raises(NotFound):
        reader.get("abe", "rec-1.abe")


def test_revocation_over_the_wire_rewrites_headers_only(server, hospital, tmp_path):
    state = _vault(server, hospital, tmp_path, "ward")
    owner = server.client("owner").vault("ward")
    authority_vault = server.client("authority").vault("ward", state=state)
    mallory = authority_vault.issue_key(hospital, ["doctor", "cardiology"])
    nina = authority_vault.issue_key(hospital, ["nurse"])
    body = os.urandom(200_000)
    ids = [owner.add(io.BytesIO(body), POLICY, ABE(hospital.public_key), name=f"r{i}") for i in range(8)]
    out = io.BytesIO()
    server.client("reader").vault("ward").get(ids[0], mallory, out)
    assert out.getvalue() == body

    client = server.client("authority")
    started = now()  # entries are appended as requests end: the reader's may come later
    report = client.revoke("ward", "doctor", hospital, state=state)
    assert report.files_updated == 8 and report.failed == []
    moved = client.sent[0] + client.received[0]
    assert moved < len(body)  # eight 200 kB bodies stayed where they were
    during = [e for e in entries(server.data / "audit.log") if e["time"] >= started]
    assert during and not any(".body" in e["object"] for e in during)

    reader = server.client("reader").vault("ward")
    alice = authority_vault.issue_key(hospital, ["doctor", "cardiology"])
    for file_id in ids:
        with pytest.raises(PolicyNotSatisfied):
            reader.get(file_id, mallory, io.BytesIO())
        for key in (alice, nina):
            out = io.BytesIO()
            reader.get(file_id, key, out)
            assert out.getvalue() == body

    lazy = client.revoke("ward", "cardiology", hospital, state=state, lazy=True)
    assert lazy.files_updated == 0
    assert set(authority_vault.pending(hospital)) == set(ids)
    assert len(list(authority_vault.update_pending(hospital))) == 8
    assert authority_vault.pending(hospital) == []


def test_search_equals_the_local_index(server, tmp_path):
    docs = {f"doc-{i}": keywords(text) for i, text in enumerate([
        "cardiomyopathy cardiology follow-up", "cardiac arrest; discarded postcard",
        "asthma salbutamol", "heart failure, cardiology", "Cardio cardio CARDIO"])}
    key = SearchKey.generate()
    local, _ = SearchIndex.create(tmp_path / "idx", docs, key)
    owner = server.client("owner")
    assert push_index(owner, tmp_path / "idx", "records") > 1
    reader = server.client("reader")
    for pattern in ("card", "^card", "logy$", "^asthma$", "o", "xyz", "^cardiology$"):
        for top in (None, 2):
            assert reader.search("records", pattern, key, top).hits == local.search(pattern, key, top).hits
    wrong = SearchKey.generate()
    assert reader.search("records", "card", wrong).hits == local.search("card", wrong).hits == []
    # queries of several terms and field ranges, and removals, exactly as the local index
    local.add({"vitals": keywords("cardiology vitals") + field_keywords(
        document_fields({"bp_systolic": 150, "date": "2024-03-05"}))}, key)
    local.remove(["doc-3"], key)
    assert push_index(owner, tmp_path / "idx", "records") > 1
    for query in ("card AND ^asthma", "card OR salbut", "cardiology bp_systolic >= 140",
                  "date in 2024-01-01..2024-12-31 OR heart", "^heart"):
        assert reader.search("records", query, key).hits == local.search(query, key).hits, query
    assert "doc-3" not in {h.doc_id for h in reader.search("records", "card", key).hits}
    fresh = server.client("reader")  # a client fetches each segment's sealed table once
    sizes = []
    for _ in range(2):
        before = fresh.received[0]
        assert fresh.search("records", "card", key).hits == local.search("card", key).hits
        sizes.append(fresh.received[0] - before)
    assert sizes[1] < sizes[0] and len(fresh.search_tables) == len(local.segments)

    cli = [sys.executable, "-m", "abe_health.cli"]
    env = {**os.environ, "ABE_HEALTH_URL": server.url, "ABE_HEALTH_TOKEN": server.tokens["reader"]}
    key.save(tmp_path / "search.key")
    remote = subprocess.run([*cli, "cloud", "search", "records", "card", "--key",
                             str(tmp_path / "search.key"), "--json"], env=env, capture_output=True,
                            text=True, check=True)
    here = subprocess.run([*cli, "search", str(tmp_path / "idx"), "card", "--key",
                           str(tmp_path / "search.key"), "--json"], capture_output=True, text=True,
                          check=True)
    assert json.loads(remote.stdout)["hits"] == json.loads(here.stdout)["hits"]


def test_a_sealed_search_key_needs_the_owners_signature(server, hospital, tmp_path):
    key, owner_key = SearchKey.generate(), OwnerKey.generate()
    index, _ = SearchIndex.create(tmp_path / "idx", {"d": keywords("cardiology")}, key)
    seal_search_key(index, key, hospital, "doctor", owner_key)
    push_index(server.client("owner"), tmp_path / "idx", "sealed")
    reader = server.client("reader")
    doctor = hospital.keygen(["doctor"])
    opened = open_remote_search_key(reader, "sealed", doctor, owner_key.public_key)
    assert reader.search("sealed", "card", opened).hits[0].doc_id == "d"
    from abe_health.errors import InvalidSignature

    with pytest.raises(InvalidSignature):
        open_remote_search_key(reader, "sealed", doctor, OwnerKey.generate().public_key)


def test_sixteen_concurrent_clients_lose_nothing(server, hospital, tmp_path):
    _vault(server, hospital, tmp_path, "busy")
    key = SearchKey.generate()
    SearchIndex.create(tmp_path / "idx", {"d": keywords("shared words")}, key)
    push_index(server.client("owner"), tmp_path / "idx", "shared")
    results: dict[int, tuple[str, str]] = {}
    failures: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with Client(server.url, server.tokens["owner"]) as client:
                client.put("abe", f"c{n}.bin", f"object {n}".encode() * 100)
                file_id = client.vault("busy").add(io.BytesIO(f"file {n}".encode()), "nurse",
                                                 ABE(hospital.public_key))
                assert client.search("shared", "word", key).hits[0].doc_id == "d"
                results[n] = (f"c{n}.bin", file_id)
        except BaseException as exc:  # collected and raised below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    reader = server.client("reader")
    nurse = hospital.keygen(["nurse"])
    vault = reader.vault("busy")
    listed = {row[0] for row in vault.list()}
    for n, (name, file_id) in results.items():
        assert reader.get("abe", name) == f"object {n}".encode() * 100
        assert file_id in listed
        out = io.BytesIO()
        vault.get(file_id, nurse, out)
        assert out.getvalue() == f"file {n}".encode()


def _altered(token: str) -> str:
    """The token with its last character changed (to one it is not)."""
    return token[:-1] + ("B" if token.endswith("A") else "A")


def test_tokens_wrong_expired_missing_revoked_and_roles(server):
    url = f"{server.url}/v1/whoami"
    expired = server.token("reader", "old", expires=time.time() - 1)
    revoked = server.token("reader", "gone")
    admin = server.client("admin")
    admin.request("DELETE", f"/v1/tokens/{revoked.split('_')[1]}")
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": f"Bearer {expired}"},
                    {"authorization": f"Bearer {revoked}"},
                    {"authorization": f"Bearer {_altered(server.tokens['reader'])}"},
                    {"authorization": f"Basic {server.tokens['reader']}"}):
        answer = httpx.get(url, headers=headers)
        assert answer.status_code == 401 and answer.headers["content-type"] == PROBLEM
        assert answer.json()["type"].endswith("#problem-unauthorized")
    with pytest.raises(Unauthorized):
        Client(server.url, expired).whoami()
    with pytest.raises(Forbidden):
        server.client("reader").json("POST", "/v1/tokens", {"name": "x", "role": "admin"})
    with pytest.raises(Forbidden):  # an admin creates tokens and does nothing else
        server.client("admin").list("abe")
    made = admin.json("POST", "/v1/tokens", {"name": "new", "role": "reader"})
    assert Client(server.url, made["token"]).whoami()["role"] == "reader"
    refused = [e for e in entries(server.data / "audit.log") if e["result"].startswith(("401", "403"))]
    assert len(refused) >= 8  # every refusal is in the audit trail
    assert server.tokens["reader"] not in (server.data / "audit.log").read_text()
    assert server.tokens["reader"] not in server.log_text()


BAD_REQUESTS = [
    ("GET", "/v1/objects/abe/..%2F..%2Fserver.sqlite", None),
    ("GET", "/v1/objects/abe/.hidden", None),
    ("GET", "/v1/objects/../server.sqlite", None),
    ("GET", "/v1/objects/nokind/x", None),
    ("PUT", "/v1/objects/abe/a%00b", b"x"),
    ("GET", "/v1/vaults/..%2Fvaults/manifest", None),
    ("GET", "/v1/vaults/ward/parts/..%2F..%2Fcatalog.sqlite", None),
    ("GET", "/v1/vaults/ward/parts/0123456789abcdef.0.key", None),
    ("GET", "/v1/vaults/ward/catalog/NOTHEX", None),
    ("GET", "/v1/indexes/records/files/..%2F..%2Faudit.key", None),
    ("GET", "/v1/indexes/records/files/seg-0001/../../../audit.key", None),
    ("PUT", "/v1/indexes/records/files/evil.py", b"x"),
    ("POST", "/v1/indexes/records/search", b"\xff\xfe not cbor"),
    ("POST", "/v1/indexes/records/search", b"\xa1\x68trapdoor\x41\x00"),  # 1 byte, not 16
    ("POST", "/v1/indexes/records/search", b"\x9f" * 100_000),  # deeply nested indefinite lists
    ("POST", "/v1/vaults/ward/catalog", b"\x83\x01\x02\x03"),
    ("POST", "/v1/vaults/ward/catalog", b"not cbor at all"),
    ("POST", "/v1/vaults/ward/headers", b"\x81\x82\x63abc\x41\x00"),
    ("PUT", "/v1/vaults/ward/catalog/0123456789abcdef", b"\x89" + b"\x01" * 9),
    ("DELETE", "/v1/tokens/not-an-id", None),
    ("PATCH", "/v1/objects/abe/x", b"x"),
    ("GET", "/nowhere", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_bad_input_is_a_4xx_problem_never_a_500(server, method, path, body):
    role = "admin" if "tokens" in path else "authority" if "headers" in path else "owner"
    answer = httpx.request(method, server.url + path, content=body,
                           headers={"authorization": f"Bearer {server.tokens[role]}"})
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == answer.status_code and "#problem-" in problem["type"]
    assert str(server.data) not in answer.text


def test_malformed_json_and_oversized_bodies(server):
    admin = {"authorization": f"Bearer {server.tokens['admin']}"}
    for body in (b"{", b"[]", b'{"name": 1, "role": "reader"}', b'{"name": "x", "role": "root"}',
                 b'{"name": "x", "role": "reader", "expires_in": -5}', b"[" * 4000):
        answer = httpx.post(f"{server.url}/v1/tokens", content=body, headers=admin)
        assert answer.status_code == 400 and answer.headers["content-type"] == PROBLEM
    owner = server.client("owner")
    with pytest.raises(BadRequest) as info:  # streamed past --max-body: 413, nothing stored
        owner.put("abe", "huge.bin", io.BytesIO(bytes(5 << 20)))
    assert info.value.status == 413
    with pytest.raises(NotFound):
        owner.get("abe", "huge.bin")
    declared = httpx.put(f"{server.url}/v1/objects/abe/big.bin", content=bytes(5 << 20),
                         headers={"authorization": f"Bearer {server.tokens['owner']}"})
    assert declared.status_code == 413
    assert not list((server.data / "objects").rglob("*.tmp"))


def test_streams_keep_every_byte_and_connections_outlive_the_servers_idle_timeout(server):
    """Uploads in several chunks and downloads read in pieces of any size give back the same
    bytes; an aborted upload stores nothing; a connection the server closed while idle (uvicorn
    closes them after 5 s) is replaced, not reported as an error."""
    owner = server.client("owner")
    data = os.urandom((3 << 20) + 12345)  # three 1 MiB chunks and a short last one
    with owner.uploading("/v1/objects/abe/stream.bin") as out:
        for start in range(0, len(data), 70_001):
            out.write(data[start : start + 70_001])
    assert owner.sent[0] >= len(data)
    for piece in (1, 65_552, 1 << 20, -1):
        got = bytearray()
        with owner.download("/v1/objects/abe/stream.bin") as src:
            while block := src.read(piece):
                got += block
                if piece == -1:
                    break
        assert got == data
    with pytest.raises(RuntimeError), owner.uploading("/v1/objects/abe/aborted.bin") as out:
        out.write(data)
        raise RuntimeError("the writer failed")
    with pytest.raises(NotFound):
        owner.get("abe", "aborted.bin")
    assert owner.whoami()["role"] == "owner"
    time.sleep(5.5)  # past uvicorn's keep-alive timeout: the pooled connection is closed
    owner.put("abe", "after-idle.bin", b"still here")  # a stream is never sent twice
    time.sleep(5.5)
    assert owner.get("abe", "after-idle.bin") == b"still here"


_STREAMER = """
import sys
from abe_health.cloud import Client

def hwm():
    return [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]

class Pattern:
    def __init__(self, size):
        self.left, self.block = size, bytes(range(256)) * 4096
    def read(self, n=-1):
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return (self.block * (n // len(self.block) + 1))[:n]

class Count:
    n = 0
    def write(self, data):
        Count.n += len(data)

url, token, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = Client(url, token)
client.put("abe", "warm.bin", Pattern(4 << 20))
client.get("abe", "warm.bin", Count())
before = hwm()
client.put("abe", "big.bin", Pattern(size))
Count.n = 0
client.get("abe", "big.bin", Count())
assert Count.n == size
print(before, hwm())
"""


def _peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_a_large_file_streams_in_constant_memory_on_both_sides(tmp_path):
    """256 MiB up and down through a real server: neither side's peak RSS grows by more than a
    few blocks (it would grow by the file's size if either held it)."""
    srv = Server(tmp_path / "data").start()
    try:
        assert srv.process is not None
        warm = subprocess.run([sys.executable, "-c", _STREAMER, srv.url, srv.tokens["owner"],
                               str(8 << 20)], capture_output=True, text=True, timeout=300)
        assert warm.returncode == 0, warm.stderr
        server_before = _peak_kib(srv.process.pid)
        out = subprocess.run([sys.executable, "-c", _STREAMER, srv.url, srv.tokens["owner"],
                              str(256 << 20)], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        client_before, client_after = (int(x) for x in out.stdout.split())
        assert client_after - client_before < 32 * 1024
        assert _peak_kib(srv.process.pid) - server_before < 32 * 1024
    finally:
        srv.stop()


def test_rate_limit_per_token(tmp_path):
    srv = Server(tmp_path / "data", ["--rate", "2", "--burst", "3"]).start()
    try:
        reader = srv.client("reader")
        codes = [httpx.get(f"{srv.url}/v1/whoami", headers={
            "authorization": f"Bearer {srv.tokens['reader']}"}).status_code for _ in range(8)]
        assert codes[:3] == [200, 200, 200] and 429 in codes
        assert srv.client("owner").whoami()["role"] == "owner"  # other tokens are not slowed
        del reader
    finally:
        srv.stop()


def test_kill_9_during_an_upload_and_a_revocation(tmp_path, hospital):
    srv = Server(tmp_path / "data", ["--rate", "100000", "--burst", "100000"]).start()
    state = AuthorityState(tmp_path / "state")
    try:
        srv.client("authority").vault("v", create_for=hospital, state=state).close()
        owner = srv.client("owner")
        owner.put("abe", "kept.bin", b"kept")
        writer = ABE(hospital.public_key)
        ids = [owner.vault("v").add(io.BytesIO(b"x" * 1000), POLICY, writer) for _ in range(300)]

        def slow() -> object:
            yield b"a" * 100_000
            time.sleep(60)
            yield b"never"

        def upload() -> None:
            try:
                httpx.put(f"{srv.url}/v1/objects/abe/partial.bin", content=slow(), timeout=90,
                          headers={"authorization": f"Bearer {srv.tokens['owner']}"})
            except httpx.HTTPError:
                pass

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        time.sleep(1.0)
        srv.kill()  # mid-upload
        srv.start()
        with pytest.raises(NotFound):
            srv.client("reader").get("abe", "partial.bin")
        assert srv.client("reader").get("abe", "kept.bin") == b"kept"
        assert not [p for p in (srv.data / "objects").rglob("*") if p.name.startswith(".")]

        log = srv.data / "audit.log"
        errors: list[BaseException] = []
        revoker = threading.Thread(target=lambda: _revoke(srv, hospital, tmp_path / "state", errors))
        revoker.start()
        deadline = time.monotonic() + 60
        while "/v1/vaults/v/headers" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.01)
        srv.kill()  # after the first batch of headers, before the second
        revoker.join()
        assert errors, "the revocation should have been cut off"
        srv.start()
        vault = srv.client("authority").vault("v", state=state)
        assert 0 < len(vault.pending(hospital)) < 300, errors  # half done, and known to be
        assert len(list(vault.update_pending(hospital))) > 0 and vault.pending(hospital) == []
        alice = vault.issue_key(hospital, ["doctor", "cardiology"])
        reader = srv.client("reader").vault("v")
        for file_id in ids[::37]:
            out = io.BytesIO()
            reader.get(file_id, alice, out)
            assert out.getvalue() == b"x" * 1000
            with pytest.raises(PolicyNotSatisfied):
                reader.get(file_id, hospital.keygen(["doctor", "cardiology"]), io.BytesIO())
        assert verify(log, load_verify_key(srv.data / "audit.pub")).ok
    finally:
        srv.stop()


def _revoke(srv: Server, hospital: CPABE, state: Path, errors: list[BaseException]) -> None:
    try:  # in a thread of its own: its own connection to the authority's state
        srv.client("authority").revoke("v", "doctor", hospital, state=AuthorityState(state))
    except Exception as exc:  # the server was killed under it
        errors.append(exc)


def test_audit_log_of_the_server_verifies_and_names_every_request(server):
    server.client("reader").whoami()
    log = server.data / "audit.log"
    verdict = verify(log, load_verify_key(server.data / "audit.pub"))
    assert verdict.ok and verdict.entries > 10
    last = list(entries(log))[-1]
    assert {"principal", "action", "object", "result", "time", "bytes"} <= set(last)


def test_cli_round_trip_and_errors(server, hospital, tmp_path):
    cli = [sys.executable, "-m", "abe_health.cli"]
    hospital_dir = tmp_path / "h"
    subprocess.run([*cli, "setup", "-o", str(hospital_dir)], check=True, capture_output=True)
    (tmp_path / "owner.tok").write_text(server.tokens["owner"] + "\n")
    (tmp_path / "auth.tok").write_text(server.tokens["authority"] + "\n")
    env = {**os.environ, "ABE_HEALTH_URL": server.url}

    def run(*args: str, token: str = "owner.tok") -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, "cloud", "--token-file", str(tmp_path / token), *args],
                              env=env, capture_output=True, text=True)

    assert run("vault", "init", "clivault", "-m", str(hospital_dir / "master.key"),
               token="auth.tok").returncode == 0
    (tmp_path / "rec.json").write_text('{"note": "cardiology"}')
    added = run("vault", "add", "clivault", str(tmp_path / "rec.json"), "-k",
                str(hospital_dir / "public.key"), "-p", "doctor")
    assert added.returncode == 0, added.stderr
    refused = run("vault", "init", "other", "-m", str(hospital_dir / "master.key"))
    assert refused.returncode == 1 and refused.stderr.startswith("error: ")
    assert refused.stderr.splitlines()[0] == "error: a token of role owner may not do this"
    assert len(refused.stderr.strip().splitlines()) == 2  # and one hint
    revoked = run("revoke", "clivault", "--attr", "doctor", "-m", str(hospital_dir / "master.key"),
                  token="auth.tok")
    assert revoked.returncode == 0, revoked.stderr
    local_log = hospital_dir / "audit.log"
    assert verify(local_log, load_verify_key(hospital_dir / "public.key")).ok
    assert [e["action"] for e in entries(local_log) if e["action"] != "checkpoint"] == ["setup", "revoke"]
    missing = subprocess.run([*cli, "cloud", "whoami"], env={**env, "ABE_HEALTH_TOKEN": ""},
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "error: give --token-file" in missing.stderr
    bad = subprocess.run([*cli, "cloud", "whoami"], env={**env, "ABE_HEALTH_TOKEN": "abeh_x"},
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.splitlines()[0] == "error: invalid token"
    assert bad.stderr.splitlines()[1].startswith("hint: give a valid token")
    assert Path(local_log).stat().st_size > 0


def test_outsourced_decryption_through_the_service(server, hospital):
    """A holder stores a transformation key; the server transforms a stored header with it (every
    pairing there); the device opens the result with its retrieval key. Keys are per principal,
    revocable, and a key whose attributes do not satisfy the header gets a 403 problem."""
    from abe_health.devices import blind, header_size, retrieve

    alice, bob = hospital.keygen(["doctor", "cardiology"]), hospital.keygen(["nurse"])
    (tk, rk), (bob_tk, _) = blind(alice), blind(bob)
    owner, device, other = server.client("owner"), server.client("reader"), server.client("authority")
    blob = encrypt(b"ECG: sinus rhythm", None, PolicyRecipient(hospital.public_key, "doctor"))
    owner.put("abe", "ecg", blob)
    assert device.put_transform_key("phone", tk) == tk.id
    assert device.put_transform_key("bob-phone", bob_tk) == bob_tk.id
    transformed = device.transform("phone", object="ecg")
    assert len(transformed) < 1024 and b"ECG" not in transformed
    assert retrieve(transformed + blob[header_size(blob):], None, rk) == b"ECG: sinus rhythm"
    with pytest.raises(PolicyNotSatisfied):
        device.transform("bob-phone", object="ecg")
    with pytest.raises(NotFound):  # keys are the principal's own: another token reaches none
        other.transform("phone", object="ecg")
    with pytest.raises(NotFound):
        device.transform("phone", object="no-such-object")
    with pytest.raises(InvalidKey, match="not a transformation key"):
        device.request("PUT", "/v1/transform-keys/junk", content=b"not a key")
    device.delete_transform_key("phone")
    with pytest.raises(NotFound):
        device.transform("phone", object="ecg")
    assert "tk" not in json.dumps(device.json("GET", "/v1/transform-keys"))
