"""Revocation by header re-encapsulation in the vault: eager, lazy, resumable, body untouched."""

from __future__ import annotations

import io

import pytest

from abe_health import decrypt
from abe_health.authority import CPABE
from abe_health.errors import PolicyNotSatisfied
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState
from abe_health.revocation.versions import apply_versions

POLICY = "(doctor and cardiology) or nurse"


@pytest.fixture
def setting(tmp_path):
    hospital = CPABE.setup()
    vault = Vault(tmp_path / "vault", create_for=hospital, state=AuthorityState(tmp_path / "state.db"))
    keys = {
        "mallory": vault.issue_key(hospital, ["doctor", "cardiology"]),
        "alice": vault.issue_key(hospital, ["doctor", "cardiology"]),
        "nina": vault.issue_key(hospital, ["nurse"]),
    }
    files = [vault.add(io.BytesIO(f"record {i}".encode() * 500), POLICY, hospital, name=f"r{i}")
             for i in range(6)]
    files.append(vault.add(io.BytesIO(b"unrelated"), "nurse", hospital, name="other"))
    yield hospital, vault, keys, files
    vault.close()


def read(vault, file_id, key, authority=None):
    out = io.BytesIO()
    vault.get(file_id, key, out, authority)
    return out.getvalue()


def bodies(vault, files):
    return {f: vault._body(f).read_bytes() for f in files}


def test_eager_revocation(setting):
    hospital, vault, keys, files = setting
    assert read(vault, files[0], keys["mallory"]).startswith(b"record 0")
    before = bodies(vault, files)
    report = vault.revoke("doctor", hospital)
    assert (report.label, report.version, report.files_updated) == ("doctor", 1, 6)
    assert bodies(vault, files) == before  # no payload byte was rewritten
    assert report.bytes_written < sum(len(b) for b in before.values())
    alice = vault.issue_key(hospital, ["doctor", "cardiology"])  # re-keyed: she keeps the attribute
    for f in files[:6]:
        with pytest.raises(PolicyNotSatisfied):
            read(vault, f, keys["mallory"])
        assert read(vault, f, alice).startswith(b"record")
        assert read(vault, f, keys["nina"]).startswith(b"record")  # nurses were not affected
    new = vault.add(io.BytesIO(b"after"), POLICY, hospital)
    with pytest.raises(PolicyNotSatisfied):
        read(vault, new, keys["mallory"])
    assert read(vault, new, alice) == b"after"
    assert vault.pending(hospital) == []


def test_lazy_revocation_applies_at_first_read(setting):
    hospital, vault, keys, files = setting
    report = vault.revoke("doctor", hospital, lazy=True)
    assert report.files_updated == 0 and set(vault.pending(hospital)) == set(files[:6])
    # read through the vault service (which holds the authority): the header is rewritten first
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], keys["mallory"], authority=hospital)
    assert files[0] not in vault.pending(hospital)
    assert len(vault.pending(hospital)) == 5
    assert sorted(vault.update_pending(hospital)) == sorted(files[1:6])
    assert vault.pending(hospital) == []


def test_interrupted_revocation_resumes(setting, monkeypatch):
    from abe_health.revocation import vault as vault_module

    hospital, vault, keys, files = setting
    original = Vault._new_head
    calls = {"n": 0}

    def flaky(self, authority, manifest, file_id):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed between two files")
        return original(self, authority, manifest, file_id)

    monkeypatch.setattr(vault_module, "BATCH", 2)
    monkeypatch.setattr(Vault, "_new_head", flaky)
    with pytest.raises(KeyboardInterrupt):
        vault.revoke("doctor", hospital)
    monkeypatch.setattr(Vault, "_new_head", original)
    assert not list((vault.path / "files").glob(".*.tmp"))  # no temporary file left behind
    alice = vault.issue_key(hospital, ["doctor", "cardiology"])
    for f in files[:6]:  # every file stays readable by someone entitled, old or new version
        assert read(vault, f, keys["nina"]).startswith(b"record")
        done = f not in vault.pending(hospital)
        assert read(vault, f, alice if done else keys["alice"]).startswith(b"record")
    assert 0 < len(vault.pending(hospital)) < 6
    list(vault.update_pending(hospital))
    assert vault.pending(hospital) == []
    for f in files[:6]:
        with pytest.raises(PolicyNotSatisfied):
            read(vault, f, keys["mallory"])
        assert read(vault, f, alice).startswith(b"record")


def test_second_revocation_bumps_again(setting):
    hospital, vault, _keys, files = setting
    vault.revoke("doctor", hospital)
    v1 = vault.issue_key(hospital, ["doctor", "cardiology"])
    vault.revoke("doctor", hospital)
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], v1)
    v2 = vault.issue_key(hospital, ["doctor", "cardiology"])
    assert read(vault, files[0], v2).startswith(b"record 0")
    assert str(apply_versions(hospital.policy(POLICY), vault.versions(hospital))) == \
        "(doctor and doctor#v2 and cardiology) or nurse"


def test_vault_errors(tmp_path):
    from abe_health.errors import VaultError

    with pytest.raises(VaultError, match="not a vault"):
        Vault(tmp_path / "nothing")
    hospital = CPABE.setup()
    vault = Vault(tmp_path / "v", create_for=hospital, state=AuthorityState(tmp_path / "state.db"))
    with pytest.raises(VaultError, match="invalid file id"):
        read(vault, "missing", hospital.keygen(["x"]))
    with pytest.raises(VaultError, match="no file"):
        read(vault, "0123456789abcdef", hospital.keygen(["x"]))


def test_vault_cli(tmp_path):
    from click.testing import CliRunner

    from abe_health.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    assert run("setup", "-o", tmp_path / "h").exit_code == 0
    master = tmp_path / "h" / "master.key"
    assert run("vault", "init", tmp_path / "v", "-m", master).exit_code == 0
    for who, attrs in (("mallory", ["doctor"]), ("nina", ["nurse"])):
        flags = [x for a in attrs for x in ("-a", a)]
        assert run("vault", "issue", tmp_path / "v", "-m", master, *flags, "-o", tmp_path / f"{who}.key"
                   ).exit_code == 0
    (tmp_path / "r.txt").write_bytes(b"ward notes")
    result = run("vault", "add", tmp_path / "v", tmp_path / "r.txt", "-k", tmp_path / "h" / "public.key",
                 "-p", "doctor or nurse")
    assert result.exit_code == 0, result.output
    file_id = result.output.strip()
    assert run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "mallory.key").output == \
        "ward notes"
    result = run("revoke", tmp_path / "v", "--attr", "doctor", "--user", "mallory", "-m", master, "--lazy")
    assert result.exit_code == 0 and "version 1" in result.output
    public = tmp_path / "h" / "public.key"
    assert f"{file_id}*" in run("vault", "list", tmp_path / "v", "-k", public).output
    result = run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "mallory.key", "-m", master)
    assert result.exit_code == 3 and "do not satisfy policy" in result.output
    assert run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "nina.key").output == "ward notes"
    assert run("vault", "update", tmp_path / "v", "-m", master).exit_code == 0
    assert f"{file_id}*" not in run("vault", "list", tmp_path / "v", "-k", public).output
    assert run("revoke", tmp_path / "v", "--attr", "nurse", "-m", master, "--rotate").exit_code == 0
    (tmp_path / "r2.txt").write_bytes(b"rewritten")
    assert run("vault", "put", tmp_path / "v", file_id, tmp_path / "r2.txt", "-k", public).exit_code == 2
    assert run("vault", "put", tmp_path / "v", file_id, tmp_path / "r2.txt", "-k", public,
               "-p", "doctor or nurse").exit_code == 0
    nurse = tmp_path / "nurse2.key"
    assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", "nurse", "-o", nurse).exit_code == 0
    assert run("vault", "get", tmp_path / "v", file_id, "-i", nurse).output == "rewritten"


def test_rotate_re_encrypts_what_the_revoked_reader_could_read(setting):
    """Without rotation a revoked reader who kept a file's old header (or DEK) still opens its
    body; `revoke(rotate=True)` re-encrypts every affected body under a fresh DEK now."""
    hospital, vault, keys, files = setting
    kept_head = vault._head(files[0]).read_bytes()  # what the revoked reader (or the cloud) kept
    old_body = vault._body(files[0]).read_bytes()
    report = vault.revoke("doctor", hospital, rotate=True)
    assert report.files_updated == 6 and report.failed == []
    assert vault.catalog.row(files[0]).gen == 1 and not list(vault.path.glob("files/" + files[0] + ".0.*"))
    new_body = vault._body(files[0]).read_bytes()
    assert new_body != old_body
    from abe_health.errors import InvalidCiphertext
    from abe_health.revocation.vault import file_context

    vault_id = vault.manifest(hospital.public_key).vault
    stale = io.BytesIO(kept_head + new_body)  # the old header opens the old DEK: not the new body
    with pytest.raises(InvalidCiphertext):
        decrypt(stale, io.BytesIO(), keys["mallory"], context=file_context(vault_id, files[0], 0))
    alice = vault.issue_key(hospital, ["doctor", "cardiology"])
    for f in files[:6]:
        assert read(vault, f, alice).startswith(b"record")
        with pytest.raises(PolicyNotSatisfied):
            read(vault, f, keys["mallory"])
    vault.put(files[0], io.BytesIO(b"new content"), CPABE(hospital.public_key), POLICY)  # no master
    assert read(vault, files[0], alice) == b"new content"
    vault.revoke("doctor", hospital)  # later revocations still rewrite the new generation's header
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], alice)


def test_vault_refuses_kp_schemes(tmp_path):
    from abe_health.authority import KPABE
    from abe_health.errors import InvalidKey

    with pytest.raises(InvalidKey, match="KP-ABE"):
        Vault(tmp_path / "kp", create_for=KPABE.setup(), state=AuthorityState(tmp_path / "s.db"))
