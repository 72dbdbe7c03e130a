"""The security review's vault breaks, mounted as described, each now refused cleanly.

The cloud holds the vault directory (files, catalog.sqlite, vault.manifest) and may edit any of
it; a revoked reader may collude with it. Numbers refer to the security issue's list.
"""

from __future__ import annotations

import io
import os
import sqlite3

import cbor2
import pytest
from click.testing import CliRunner

from abe_health.authority import ABE, CPABE
from abe_health.cli import main
from abe_health.errors import InvalidCiphertext, InvalidKey, PolicyNotSatisfied, VaultError
from abe_health.keys import read_key
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def world(tmp_path):
    """An authority (CLI setup), a vault, a doctor, a nurse and a billing clerk, two files."""
    assert run("setup", "-o", tmp_path / "h").exit_code == 0
    master = tmp_path / "h" / "master.key"
    public = tmp_path / "h" / "public.key"
    assert run("vault", "init", tmp_path / "v", "-m", master).exit_code == 0
    for who, attr in (("doc", "doctor"), ("nina", "nurse"), ("bill", "billing")):
        assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", attr,
                   "-o", tmp_path / f"{who}.key").exit_code == 0
    ids = []
    for i, policy in enumerate(("doctor", "doctor or nurse")):
        (tmp_path / f"r{i}.txt").write_bytes(f"record {i}".encode())
        result = run("vault", "add", tmp_path / "v", tmp_path / f"r{i}.txt", "-k", public, "-p", policy)
        assert result.exit_code == 0, result.output
        ids.append(result.output.strip())
    return tmp_path, master, public, ids


def db(tmp_path):
    return sqlite3.connect(tmp_path / "v" / "catalog.sqlite")


def test_3_cloud_cannot_choose_the_policy_of_a_rewrap(world):
    tmp_path, master, _public, ids = world
    with db(tmp_path) as con:
        con.execute("UPDATE files SET policy = 'billing' WHERE id = ?", (ids[0],))
    result = run("revoke", tmp_path / "v", "--attr", "billing", "-m", master)  # an unrelated routine revoke
    assert result.exit_code == 1 and f"file {ids[0]}" in result.output and "escrow" in result.output
    assert "Traceback" not in result.output
    out = run("vault", "get", tmp_path / "v", ids[0], "-i", tmp_path / "bill.key")
    assert out.exit_code == 3 and "record 0" not in out.output
    assert run("vault", "get", tmp_path / "v", ids[0], "-i", tmp_path / "doc.key").output == "record 0"


def test_3_versions_only_move_forward(world):
    """The cloud blanks the versions (or serves the manifest from before a revocation): the
    authority's rewrites and new files stay at the current version."""
    tmp_path, master, public, ids = world
    before = (tmp_path / "v" / "vault.manifest").read_bytes()
    assert run("revoke", tmp_path / "v", "--attr", "nurse", "-m", master).exit_code == 0
    (tmp_path / "v" / "vault.manifest").write_bytes(before)  # replayed, validly signed, older
    assert run("vault", "update", tmp_path / "v", "-m", master).exit_code == 0
    result = run("vault", "get", tmp_path / "v", ids[1], "-i", tmp_path / "nina.key", "-m", master)
    assert result.exit_code == 3 and "record 1" not in result.output
    # the authority restored its own newer manifest at the cloud
    authority = ABE(read_key(public), read_key(master))
    assert Vault(tmp_path / "v").manifest(authority.public_key).versions == {"nurse": 1}
    # an edited manifest (versions blanked, re-encoded) does not verify at all
    outer = cbor2.loads((tmp_path / "v" / "vault.manifest").read_bytes())
    statement = cbor2.loads(outer["statement"])
    statement["versions"] = {}
    outer["statement"] = cbor2.dumps(statement, canonical=True)
    (tmp_path / "v" / "vault.manifest").write_bytes(cbor2.dumps(outer))
    (tmp_path / "r9.txt").write_bytes(b"new")
    result = run("vault", "add", tmp_path / "v", tmp_path / "r9.txt", "-k", public, "-p", "nurse")
    assert result.exit_code == 1 and "signature does not verify" in result.output


def test_4_planted_row_with_the_victims_salt_learns_nothing(world):
    """v1: KEK = HKDF(GT key, catalog salt), zero nonce, one GT key per policy per revocation
    run, so wrap(victim) xor wrap(planted) xor planted DEK = victim DEK."""
    tmp_path, master, public, ids = world
    authority = ABE(read_key(public))
    vault = Vault(tmp_path / "v")
    planted = vault.add(io.BytesIO(b"mine"), "doctor", authority)  # anyone may add
    with db(tmp_path) as con:
        salt = con.execute("SELECT salt FROM files WHERE id = ?", (ids[0],)).fetchone()[0]
        con.execute("UPDATE files SET salt = ? WHERE id = ?", (salt, planted))
    result = run("revoke", tmp_path / "v", "--attr", "doctor", "-m", master)
    assert result.exit_code == 1 and f"file {planted}" in result.output  # its row no longer opens
    heads = [(vault._head(f).read_bytes()) for f in (ids[0],)]
    wrap = heads[0][-92:]
    assert len(set(wrap[:44])) > 1  # a random wrap salt and nonce, not zeros


def test_5_escrow_key_is_pinned(world):
    """The cloud swaps in its own escrow key: writers refuse the manifest."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    tmp_path, _master, public, ids = world
    outer = cbor2.loads((tmp_path / "v" / "vault.manifest").read_bytes())
    statement = cbor2.loads(outer["statement"])
    statement["escrow"] = X25519PrivateKey.generate().public_key().public_bytes_raw()
    outer["statement"] = cbor2.dumps(statement, canonical=True)
    (tmp_path / "v" / "vault.manifest").write_bytes(cbor2.dumps(outer))
    (tmp_path / "x.txt").write_bytes(b"x")
    for args in (("vault", "add", tmp_path / "v", tmp_path / "x.txt", "-k", public, "-p", "doctor"),
                 ("vault", "put", tmp_path / "v", ids[0], tmp_path / "x.txt", "-k", public, "-p", "doctor")):
        result = run(*args)
        assert result.exit_code == 1 and "signature does not verify" in result.output
    # another authority's validly signed manifest is refused too
    other = CPABE.setup()
    Vault(tmp_path / "w" / "v", create_for=other, state=AuthorityState(tmp_path / "w.db")).close()
    (tmp_path / "v" / "vault.manifest").write_bytes((tmp_path / "w" / "v" / "vault.manifest").read_bytes())
    result = run("vault", "add", tmp_path / "v", tmp_path / "x.txt", "-k", public, "-p", "doctor")
    assert result.exit_code == 1 and "does not verify" in result.output


def test_f1_another_vaults_manifest_is_refused(world):
    """Review F1: the cloud put vault B's (older, validly signed) manifest into vault A; a writer
    then encrypted new files at B's versions and the authority's update accepted it."""
    tmp_path, master, public, ids = world
    assert run("vault", "init", tmp_path / "B", "-m", master).exit_code == 0
    assert run("revoke", tmp_path / "v", "--attr", "nurse", "-m", master).exit_code == 0
    (tmp_path / "v" / "vault.manifest").write_bytes((tmp_path / "B" / "vault.manifest").read_bytes())
    (tmp_path / "r2.txt").write_bytes(b"after the revocation")
    result = run("vault", "add", tmp_path / "v", tmp_path / "r2.txt", "-k", public, "-p", "doctor or nurse")
    assert result.exit_code == 1 and "vault 'B'" in result.output
    for args in (("vault", "update", tmp_path / "v", "-m", master),
                 ("vault", "issue", tmp_path / "v", "-m", master, "-a", "nurse", "-o", tmp_path / "n.key"),
                 ("vault", "get", tmp_path / "v", ids[1], "-i", tmp_path / "nina.key", "-m", master)):
        result = run(*args)
        assert result.exit_code == 1 and "vault 'B'" in result.output, args
    # renamed to the other vault's name, its files' escrows (bound to vault A's id) refuse to open
    (tmp_path / "B").rename(tmp_path / "B.old")
    (tmp_path / "v").rename(tmp_path / "B")
    result = run("vault", "update", tmp_path / "B", "-m", master)
    assert result.exit_code == 1 and "escrow does not open" in result.output


def test_the_api_refuses_an_authority_without_state(tmp_path):
    """Review: without its own state the authority would accept a replayed manifest."""
    hospital = CPABE.setup()
    with pytest.raises(VaultError, match="own state"):
        Vault(tmp_path / "v", create_for=hospital)
    state = AuthorityState(tmp_path / "s.db")
    Vault(tmp_path / "v", create_for=hospital, state=state).close()
    with pytest.raises(VaultError, match="own state"):
        Vault(tmp_path / "v").revoke("doctor", hospital)


def test_f4_planted_links_at_temporary_names_are_never_followed(world):
    """Review F4: a header rewrite wrote through a link planted at its predictable temporary
    name. Temporary files are now random and created with O_EXCL | O_NOFOLLOW, relative to the
    directory descriptor opened with the vault, so even a swapped files/ directory is not used."""
    tmp_path, master, _public, ids = world
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"authority's file")
    files = tmp_path / "v" / "files"
    for file_id in ids:
        (files / f".{file_id}.0.head.tmp").symlink_to(victim)
    assert run("revoke", tmp_path / "v", "--attr", "doctor", "-m", master).exit_code == 0
    assert victim.read_bytes() == b"authority's file"
    outside = tmp_path / "outside"
    outside.mkdir()
    authority = ABE(read_key(_public), read_key(master))
    vault = Vault(tmp_path / "v", state=AuthorityState(tmp_path / "h" / "register.sqlite"))
    files.rename(tmp_path / "v" / "files.moved")
    (tmp_path / "v" / "files").symlink_to(outside)
    vault.revoke("nurse", authority)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad_id", ["../../x", "/etc/passwd", "0123456789ABCDEF", "abc", "0" * 15 + "/",
                                    "0123456789abcdef/../../x"])
def test_8_planted_ids_never_escape_the_vault(world, bad_id):
    tmp_path, master, public, ids = world
    with db(tmp_path) as con:
        con.execute("UPDATE files SET id = ? WHERE id = ?", (bad_id, ids[0]))
    (tmp_path / "y.txt").write_bytes(b"y")
    listing = set(os.listdir(tmp_path))
    result = run("revoke", tmp_path / "v", "--attr", "doctor", "-m", master)
    assert result.exit_code == 1 and "invalid file id" in result.output
    assert "Traceback" not in result.output
    # the well-formed file was still revoked and rewritten
    result = run("vault", "get", tmp_path / "v", ids[1], "-i", tmp_path / "doc.key")
    assert result.exit_code == 3
    result = run("vault", "get", tmp_path / "v", bad_id, "-i", tmp_path / "doc.key")
    assert result.exit_code in (1, 2) and "invalid file id" in result.output
    result = run("vault", "put", tmp_path / "v", bad_id, tmp_path / "y.txt", "-k", public, "-p", "doctor")
    assert result.exit_code == 1 and "invalid file id" in result.output
    assert set(os.listdir(tmp_path)) == listing  # nothing written outside the vault


def test_8_symlinks_are_not_followed(world):
    tmp_path, _master, _public, ids = world
    secret = tmp_path / "outside.txt"
    secret.write_bytes(b"not the vault's")
    head = next((tmp_path / "v" / "files").glob(f"{ids[0]}.0.head"))
    head.unlink()
    head.symlink_to(secret)
    result = run("vault", "get", tmp_path / "v", ids[0], "-i", tmp_path / "doc.key")
    assert result.exit_code == 1 and "cannot read" in result.output


def test_8_one_bad_file_does_not_stop_revocation(world):
    tmp_path, master, _public, ids = world
    with db(tmp_path) as con:
        con.execute("UPDATE files SET escrow = zeroblob(80) WHERE id = ?", (ids[0],))
    result = run("revoke", tmp_path / "v", "--attr", "doctor", "-m", master)
    assert result.exit_code == 1 and f"file {ids[0]}" in result.output and "Traceback" not in result.output
    # the other file was rewritten: the old doctor key fails on it
    assert run("vault", "get", tmp_path / "v", ids[1], "-i", tmp_path / "doc.key").exit_code == 3


def test_a_deleted_header_is_rewritten_from_the_escrow(world):
    tmp_path, master, _public, ids = world
    next((tmp_path / "v" / "files").glob(f"{ids[0]}.0.head")).unlink()
    assert run("revoke", tmp_path / "v", "--attr", "doctor", "-m", master).exit_code == 0
    assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", "doctor",
               "-o", tmp_path / "doc2.key").exit_code == 0
    assert run("vault", "get", tmp_path / "v", ids[0], "-i", tmp_path / "doc2.key").output == "record 0"


def test_8_swapped_header_and_body_do_not_open_as_another_file(world):
    tmp_path, _master, _public, ids = world
    files = tmp_path / "v" / "files"
    for part in ("head", "body"):
        a, b = files / f"{ids[0]}.0.{part}", files / f"{ids[1]}.0.{part}"
        data_a, data_b = a.read_bytes(), b.read_bytes()
        a.write_bytes(data_b)
        b.write_bytes(data_a)
    for file_id in ids:
        result = run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "doc.key")
        assert result.exit_code == 1 and "belongs to another file" in result.output


def test_9_epoch_names_cannot_collide_with_user_attributes(world):
    """`revoke --attr icd.v10` revokes the user attribute icd.v10, and a key holding a plain
    `consent.v1` does not survive the revocation of `consent`."""
    tmp_path, master, public, _ids = world
    assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", "coder", "-a", "icd.v10",
               "-o", tmp_path / "coder.key").exit_code == 0
    assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", "consent", "-a", "consent.v1",
               "-o", tmp_path / "c.key").exit_code == 0
    for name, policy in (("icd", "coder and icd.v10"), ("consent", "consent")):
        (tmp_path / f"{name}.txt").write_bytes(name.encode())
        result = run("vault", "add", tmp_path / "v", tmp_path / f"{name}.txt", "-k", public, "-p", policy)
        assert result.exit_code == 0
        file_id = result.output.strip()
        attr = "icd.v10" if name == "icd" else "consent"
        result = run("revoke", tmp_path / "v", "--attr", attr, "-m", master)
        assert result.exit_code == 0 and "1 headers rewritten" in result.output
        key = tmp_path / ("coder.key" if name == "icd" else "c.key")
        result = run("vault", "get", tmp_path / "v", file_id, "-i", key)
        assert result.exit_code == 3 and "do not satisfy" in result.output
    result = run("revoke", tmp_path / "v", "--attr", "consent#v1", "-m", master)
    assert result.exit_code == 1 and "#" in result.output


def test_state_is_the_authoritys_own(tmp_path):
    hospital = CPABE.setup()
    state = AuthorityState(tmp_path / "register.sqlite")
    vault = Vault(tmp_path / "v", create_for=hospital, state=state)
    file_id = vault.add(io.BytesIO(b"x"), "doctor", hospital)
    old = (tmp_path / "v" / "vault.manifest").read_bytes()
    vault.revoke("doctor", hospital)
    (tmp_path / "v" / "vault.manifest").write_bytes(old)
    assert vault.versions(hospital) == {"doctor": 1}
    doc = hospital.keygen(["doctor"])
    with pytest.raises(PolicyNotSatisfied):
        vault.get(file_id, doc, io.BytesIO(), authority=hospital)
    with pytest.raises(InvalidKey):
        vault.revoke("doctor", CPABE(hospital.public_key))
    with pytest.raises((VaultError, InvalidCiphertext)):
        Vault(tmp_path / "v", create_for=hospital)


def test_concurrent_writers_queue_on_the_vault_lock(world):
    """Eight `vault add` processes and a revocation at once: nothing lost, every file readable."""
    import subprocess
    import sys

    tmp_path, master, public, _ids = world
    procs = []
    for i in range(8):
        (tmp_path / f"c{i}.txt").write_bytes(f"concurrent {i}".encode())
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "abe_health.cli", "vault", "add", str(tmp_path / "v"),
             str(tmp_path / f"c{i}.txt"), "-k", str(public), "-p", "nurse"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    procs.append(subprocess.Popen([sys.executable, "-m", "abe_health.cli", "revoke", str(tmp_path / "v"),
                                   "--attr", "doctor", "-m", str(master)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outputs]
    new_ids = [o[0].decode().strip() for o in outputs[:8]]
    assert len(set(new_ids)) == 8
    for i, file_id in enumerate(new_ids):
        result = run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "nina.key")
        assert result.output == f"concurrent {i}"


def test_f7_untrusted_text_cannot_drive_the_terminal(world):
    """Review F7: a catalog name with escape sequences was printed raw by `vault list`."""
    tmp_path, _master, public, ids = world
    with db(tmp_path) as con:
        con.execute("UPDATE files SET name = ? WHERE id = ?",
                    ("report.pdf\x1b[2K\r\x1b[1Aall files verified OK\x07", ids[0]))
    out = run("vault", "list", tmp_path / "v", "-k", public).output
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "\\x1b[2K\\r\\x1b[1Aall files verified OK\\x07" in out
