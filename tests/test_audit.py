"""The audit trail: any edited, deleted, inserted or reordered byte or entry is found; checkpoints
are signed; the CLI reports the first bad line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health.cloud.audit import AuditLog, entries, load_verify_key, new_signing_key, verify


def _log(path, n=12, every=5):
    key = Ed25519PrivateKey.generate()
    log = AuditLog(path, key, checkpoint_every=every)
    for i in range(n):
        log.append(f"alice#{i:016x}", "PUT /v1/objects/{kind}/{name}", f"/v1/objects/abe/r{i}",
                   "201", 100 + i)
    log.checkpoint()
    return key.public_key()


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    path = tmp_path_factory.mktemp("audit") / "audit.log"
    public = _log(path)
    return path.read_bytes(), public


def test_an_intact_log_verifies_with_its_checkpoints(signed, tmp_path):
    data, public = signed
    (tmp_path / "a.log").write_bytes(data)
    verdict = verify(tmp_path / "a.log", public)
    assert verdict.ok and verdict.entries == 15 and verdict.checkpoint == 14
    assert not verify(tmp_path / "a.log", Ed25519PrivateKey.generate().public_key()).ok


@settings(max_examples=300)
@given(data=st.data())
def test_any_edited_byte_is_found(signed, tmp_path_factory, data):
    raw, public = signed
    position = data.draw(st.integers(0, len(raw) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != raw[position]))
    edited = bytearray(raw)
    edited[position] = value
    path = tmp_path_factory.mktemp("edit") / "audit.log"
    path.write_bytes(bytes(edited))
    verdict = verify(path, public)
    assert not verdict.ok
    line = raw[:position].count(b"\n") + 1
    assert verdict.line <= line + 1  # the edited line (or the one it was merged into)


def _lines(raw: bytes) -> list[bytes]:
    return raw.splitlines(keepends=True)


@pytest.mark.parametrize("change", ["delete", "swap", "duplicate", "truncate-line"])
def test_deleted_reordered_and_inserted_entries_are_found(signed, tmp_path, change):
    raw, public = signed
    lines = _lines(raw)
    if change == "delete":
        del lines[4]
    elif change == "swap":
        lines[3], lines[4] = lines[4], lines[3]
    elif change == "duplicate":
        lines.insert(5, lines[4])
    else:
        lines[-1] = lines[-1][:-10]
    (tmp_path / "x.log").write_bytes(b"".join(lines))
    verdict = verify(tmp_path / "x.log", public)
    assert not verdict.ok
    expected = {"delete": 5, "swap": 4, "duplicate": 6, "truncate-line": len(lines)}
    assert verdict.line == expected[change]


def test_a_rewritten_chain_fails_at_its_checkpoint(signed, tmp_path):
    """Someone who edits an entry and recomputes every hash after it cannot re-sign."""
    from abe_health.cloud.audit import canonical, entry_hash

    raw, public = signed
    rows = [json.loads(line) for line in _lines(raw)]
    rows[2]["result"] = "200"
    prev = rows[1]["hash"]
    for row in rows[2:]:
        row["prev"] = prev
        row["hash"] = entry_hash(row)
        prev = row["hash"]
    (tmp_path / "r.log").write_text("".join(canonical(r) + "\n" for r in rows))
    assert verify(tmp_path / "r.log").ok  # the chain alone is consistent again...
    verdict = verify(tmp_path / "r.log", public)
    assert not verdict.ok and "checkpoint" in verdict.problem  # ...the signature is not


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path, Ed25519PrivateKey.generate())
    log.append("a", "x")
    with open(path, "ab") as handle:
        handle.write(b'{"action":"half')  # a crash in the middle of a write
    log.append("b", "y")
    assert verify(path).ok and [e["principal"] for e in entries(path)] == ["a", "b"]


@settings(max_examples=40, deadline=None)
@given(order=st.lists(st.sampled_from("ab"), min_size=1, max_size=12))
def test_two_writers_interleaved_keep_one_chain(tmp_path_factory, order):
    """A log remembers where its own last write ended; the other writer's appends in between
    (the CLI creating a token while the server runs) must be read back, not chained over."""
    path = tmp_path_factory.mktemp("two") / "audit.log"
    key = Ed25519PrivateKey.generate()
    logs = {"a": AuditLog(path, key), "b": AuditLog(path, key)}
    for i, who in enumerate(order):
        logs[who].append(who, "x", str(i))
    logs[order[-1]].checkpoint()
    assert verify(path, key.public_key()).ok
    assert [e["object"] for e in entries(path)][:-1] == [str(i) for i in range(len(order))]


def test_a_log_replaced_under_a_writer_is_read_again(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(path, Ed25519PrivateKey.generate())
    log.append("a", "x")
    log.append("b", "y")
    other = tmp_path / "other.log"
    AuditLog(other).append("c", "z")
    other.replace(path)  # a new file (inode) whose last entry is c
    log.append("d", "w")
    assert verify(path).ok and [e["principal"] for e in entries(path)] == ["c", "d"]


def test_an_entry_edited_in_place_under_a_writer_is_still_found(tmp_path):
    """The writer skips reading its own last entry back while the file keeps its inode and
    size; an edit of the same length meanwhile is then chained over, not hidden: the chain
    breaks at the edited entry."""
    path = tmp_path / "audit.log"
    key = Ed25519PrivateKey.generate()
    log = AuditLog(path, key)
    log.append("alice", "GET /x", "/x", "200")
    log.append("bob", "GET /y", "/y", "200")
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"principal":"bob"', b'"principal":"eve"'))  # same length
    log.append("carol", "GET /z", "/z", "200")
    log.checkpoint()
    verdict = verify(path, key.public_key())
    assert not verdict.ok and verdict.line == 2


def test_cli_verify_and_show(tmp_path):
    key = new_signing_key(tmp_path)
    log = AuditLog(tmp_path / "audit.log", key, checkpoint_every=3)
    for i in range(5):
        log.append(f"p{i % 2}#{i:016x}", "GET", f"/v1/objects/phr/r{i}", "200", i,
                   time=f"2026-05-0{i + 1}T00:00:00+00:00")
    cli = [sys.executable, "-m", "abe_health.cli", "audit"]
    ok = subprocess.run([*cli, "verify", str(tmp_path / "audit.log"), "--public-key",
                         str(tmp_path / "audit.pub")], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("ok: 6 entries")
    shown = subprocess.run([*cli, "show", str(tmp_path / "audit.log"), "--principal", "p1",
                            "--since", "2026-05-03", "--json"], capture_output=True, text=True)
    assert [json.loads(x)["object"] for x in shown.stdout.splitlines()] == ["/v1/objects/phr/r3"]
    data = bytearray((tmp_path / "audit.log").read_bytes())
    data[300] ^= 0x01
    (tmp_path / "audit.log").write_bytes(bytes(data))
    bad = subprocess.run([*cli, "verify", str(tmp_path / "audit.log"), "--public-key",
                          str(tmp_path / "audit.pub")], capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.startswith(f"error: {tmp_path / 'audit.log'}: line ")
    assert (tmp_path / "audit.key").stat().st_mode & 0o777 == 0o600
    assert load_verify_key(tmp_path / "audit.pub") is not None
