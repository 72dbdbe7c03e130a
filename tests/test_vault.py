"""Revocation by header re-encapsulation in the vault: eager, lazy, resumable, body untouched."""

from __future__ import annotations

import io

import pytest

from abe_health.api import CPABE
from abe_health.errors import PolicyNotSatisfied
from abe_health.revocation import Vault
from abe_health.revocation.versions import apply_versions

POLICY = "(doctor and cardiology) or nurse"


@pytest.fixture
def setting(tmp_path):
    hospital = CPABE.setup()
    vault = Vault(tmp_path / "vault", create_for=hospital)
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
    assert vault.pending() == []


def test_lazy_revocation_applies_at_first_read(setting):
    hospital, vault, keys, files = setting
    report = vault.revoke("doctor", hospital, lazy=True)
    assert report.files_updated == 0 and set(vault.pending()) == set(files[:6])
    # read through the vault service (which holds the authority): the header is rewritten first
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], keys["mallory"], authority=hospital)
    assert files[0] not in vault.pending()
    assert len(vault.pending()) == 5
    assert sorted(vault.update_pending(hospital)) == sorted(files[1:6])
    assert vault.pending() == []


def test_interrupted_revocation_resumes(setting, monkeypatch):
    from abe_health.revocation import vault as vault_module

    hospital, vault, keys, files = setting
    original = Vault._new_head
    calls = {"n": 0}

    def flaky(self, file_id, authority):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed between two files")
        return original(self, file_id, authority)

    monkeypatch.setattr(vault_module, "BATCH", 2)
    monkeypatch.setattr(Vault, "_new_head", flaky)
    with pytest.raises(KeyboardInterrupt):
        vault.revoke("doctor", hospital)
    monkeypatch.setattr(Vault, "_new_head", original)
    assert not list((vault.path / "files").glob(".*.tmp"))  # no temporary file left behind
    alice = vault.issue_key(hospital, ["doctor", "cardiology"])
    for f in files[:6]:  # every file stays readable by someone entitled, old or new version
        assert read(vault, f, keys["nina"]).startswith(b"record")
        done = f not in vault.pending()
        assert read(vault, f, alice if done else keys["alice"]).startswith(b"record")
    assert 0 < len(vault.pending()) < 6
    list(vault.update_pending(hospital))
    assert vault.pending() == []
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
    assert str(apply_versions(hospital.policy(POLICY), vault.versions())) == \
        "(doctor and doctor.v2 and cardiology) or nurse"


def test_vault_errors(tmp_path):
    from abe_health.errors import InvalidCiphertext

    with pytest.raises(InvalidCiphertext, match="not a vault"):
        Vault(tmp_path / "nothing")
    hospital = CPABE.setup()
    vault = Vault(tmp_path / "v", create_for=hospital)
    with pytest.raises(InvalidCiphertext, match="no file"):
        read(vault, "missing", hospital.keygen(["x"]))


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
    assert f"{file_id}*" in run("vault", "list", tmp_path / "v").output
    result = run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "mallory.key", "-m", master)
    assert result.exit_code == 1 and "do not satisfy policy" in result.output
    assert run("vault", "get", tmp_path / "v", file_id, "-i", tmp_path / "nina.key").output == "ward notes"
    assert run("vault", "update", tmp_path / "v", "-m", master).exit_code == 0
    assert f"{file_id}*" not in run("vault", "list", tmp_path / "v").output
    assert run("revoke", tmp_path / "v", "--attr", "nurse", "-m", master, "--rotate").exit_code == 0
    assert f"{file_id} R" in run("vault", "list", tmp_path / "v").output
    (tmp_path / "r2.txt").write_bytes(b"rewritten")
    assert run("vault", "put", tmp_path / "v", file_id, tmp_path / "r2.txt", "-k",
               tmp_path / "h" / "public.key").exit_code == 0
    assert f"{file_id} R" not in run("vault", "list", tmp_path / "v").output
    nurse = tmp_path / "nurse2.key"
    assert run("vault", "issue", tmp_path / "v", "-m", master, "-a", "nurse", "-o", nurse).exit_code == 0
    assert run("vault", "get", tmp_path / "v", file_id, "-i", nurse).output == "rewritten"


def test_rotate_replaces_the_data_key_at_the_next_write(setting):
    hospital, vault, keys, files = setting
    vault.revoke("doctor", hospital, rotate=True)
    assert vault.rotations() == sorted(files[:6])
    old_body = vault._body(files[0]).read_bytes()
    vault.put(files[0], io.BytesIO(b"new content"), CPABE(hospital.public_key))  # writers need no master
    assert vault._gen(files[0]) == 1 and not list(vault.path.glob("files/" + files[0] + ".0.*"))
    assert vault._body(files[0]).read_bytes() != old_body
    assert files[0] not in vault.rotations() and len(vault.rotations()) == 5
    alice = vault.issue_key(hospital, ["doctor", "cardiology"])
    assert read(vault, files[0], alice) == b"new content"
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], keys["mallory"])
    vault.revoke("doctor", hospital)  # later revocations still rewrite the new generation's header
    with pytest.raises(PolicyNotSatisfied):
        read(vault, files[0], alice)


def test_vault_refuses_kp_schemes(tmp_path):
    from abe_health.api import KPABE
    from abe_health.errors import InvalidKey

    cp = CPABE.setup()
    vault = Vault(tmp_path / "v", create_for=cp)
    with pytest.raises(InvalidKey, match="KP-ABE"):
        vault.add(io.BytesIO(b"x"), "doctor", KPABE.setup())
