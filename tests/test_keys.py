"""Key files: versioned CBOR, armor, 0600 secrets, passphrase protection, typed refusals."""

from __future__ import annotations

import os
import stat

import cbor2
import pytest

from abe_health import PolicyRecipient, encrypt
from abe_health import keys as keys_mod
from abe_health.authority import CPABE
from abe_health.errors import InvalidKey
from abe_health.keys import armor_bytes, dearmor, load_key, read_key


@pytest.fixture(scope="module")
def abe():
    return CPABE.setup()


@pytest.fixture
def fast_scrypt(monkeypatch):
    monkeypatch.setattr(keys_mod, "SCRYPT_N", 2**10)


def test_round_trip_binary_and_armor(abe):
    user = abe.keygen(["doctor", "ward = 3"])
    for key in (abe.public_key, abe.master_key, user):
        for armor in (False, True):
            again = load_key(key.to_bytes(armor=armor))
            assert again.kind == key.kind and again.record.parts == key.record.parts
    text = user.to_bytes(armor=True).decode()
    assert text.startswith("-----BEGIN ABE USER KEY-----\n")
    assert text.rstrip().endswith("-----END ABE USER KEY-----")
    assert all(len(line) <= 64 for line in text.splitlines())


def test_self_describing_cbor(abe):
    data = cbor2.loads(abe.public_key.to_bytes())
    assert data["v"] == 2 and data["type"] == "abe-health/public"
    assert data["scheme"] == "fame" and data["group"] == "mcl:BLS12-381"
    assert set(data["parts"]) == {"H", "T"}


def test_secret_files_are_0600_and_public_0644(abe, tmp_path):
    old = os.umask(0o022)
    try:
        abe.public_key.save(tmp_path / "public.key")
        abe.master_key.save(tmp_path / "master.key")
        abe.keygen(["doctor"]).save(tmp_path / "user.key", armor=True)
    finally:
        os.umask(old)
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)  # noqa: E731
    assert mode("master.key") == 0o600
    assert mode("user.key") == 0o600
    assert mode("public.key") == 0o644
    assert read_key(tmp_path / "user.key", expect="user").kind == "user"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key", "public.key", "user.key"]


def test_passphrase_protection(abe, tmp_path, fast_scrypt):
    path = tmp_path / "master.key"
    abe.master_key.save(path, passphrase="correct horse")
    raw = path.read_bytes()
    assert cbor2.loads(raw)["type"] == "abe-health/protected-key"
    assert abe.master_key.to_bytes() not in raw
    with pytest.raises(InvalidKey, match="protected by a passphrase"):
        read_key(path)
    with pytest.raises(InvalidKey, match="wrong passphrase"):
        read_key(path, passphrase="wrong")
    assert read_key(path, passphrase="correct horse").record.parts == abe.master_key.record.parts
    tampered = cbor2.loads(raw)
    tampered["ct"] = tampered["ct"][:-1] + bytes([tampered["ct"][-1] ^ 1])
    with pytest.raises(InvalidKey, match="wrong passphrase, or the protected key file was altered"):
        load_key(cbor2.dumps(tampered), passphrase="correct horse")
    tampered = cbor2.loads(raw)
    tampered["n"] = 2**40
    with pytest.raises(InvalidKey, match="unsupported key protection parameters"):
        load_key(cbor2.dumps(tampered), passphrase="correct horse")


def test_expected_kind_and_garbage(abe, tmp_path):
    with pytest.raises(InvalidKey, match="expected a user key, got a public key"):
        load_key(abe.public_key.to_bytes(), expect="user")
    with pytest.raises(InvalidKey, match=r"not CBOR|not an abe-health key"):
        load_key(b"\xff\x00garbage")
    with pytest.raises(InvalidKey, match="not an abe-health key"):
        load_key(cbor2.dumps([1, 2, 3]))
    data = abe.public_key.to_bytes()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidKey):
            load_key(data[:cut])
    future = cbor2.loads(data)
    future["v"] = 3
    with pytest.raises(InvalidKey, match="unsupported format version 3"):
        load_key(cbor2.dumps(future))
    future["v"] = 1
    with pytest.raises(InvalidKey, match=r"version-1 key .*re-issue"):
        load_key(cbor2.dumps(future))
    with pytest.raises(InvalidKey, match="cannot read key file"):
        read_key(tmp_path / "missing.key")
    blob = encrypt(b"x", None, PolicyRecipient(abe.public_key, "doctor"))
    with pytest.raises(InvalidKey):
        load_key(blob)


def test_armor_errors():
    assert dearmor(b"\x00binary") == b"\x00binary"
    armored = armor_bytes(b"hello", "USER KEY")
    assert dearmor(armored) == b"hello"
    with pytest.raises(InvalidKey, match="malformed ASCII armor"):
        dearmor(armored.replace(b"END ABE USER", b"END ABE PUBLIC"))
    with pytest.raises(InvalidKey, match="malformed base64"):
        dearmor(b"-----BEGIN ABE USER KEY-----\n!!!\n-----END ABE USER KEY-----\n")


def test_master_key_of_another_scheme_is_refused(abe):
    bsw = CPABE.setup("bsw07")
    with pytest.raises(InvalidKey, match="does not belong"):
        CPABE(abe.public_key, bsw.master_key)
    with pytest.raises(InvalidKey, match="needs the master key"):
        CPABE(abe.public_key).keygen(["doctor"])
    with pytest.raises(InvalidKey, match="attributes"):
        abe.keygen(policy="doctor")


def test_mismatched_master_and_public_key_is_refused(tmp_path):
    """keygen -m A/master.key -k B/public.key once wrote a useless key; now it is refused."""
    from click.testing import CliRunner

    from abe_health.authority import ABE
    from abe_health.cli import main
    from abe_health.ma import Authority

    a, b = CPABE.setup(), CPABE.setup()
    with pytest.raises(InvalidKey, match="does not belong to public key"):
        ABE(b.public_key, a.master_key)
    x, y = Authority.setup("X"), Authority.setup("X")
    with pytest.raises(InvalidKey, match="does not belong to public key"):
        Authority(y.public_key, x.secret_key)
    runner = CliRunner()
    for name in ("A", "B"):
        assert runner.invoke(main, ["setup", "-o", str(tmp_path / name)]).exit_code == 0
    result = runner.invoke(main, ["keygen", "-m", str(tmp_path / "A" / "master.key"), "-k",
                                  str(tmp_path / "B" / "public.key"), "-a", "doctor",
                                  "-o", str(tmp_path / "u.key")])
    assert result.exit_code == 1 and "does not belong to public key" in result.output
    assert not (tmp_path / "u.key").exists()


def test_secret_keys_never_print_or_pickle_their_secrets():
    """Review F6: repr of a master key printed its exponents."""
    import copy
    import pickle

    from abe_health import Authority, MasterKey, PublicKey, UserKey

    hospital = CPABE.setup()
    alice = hospital.keygen(["doctor", "cardiology"])
    er = Authority.setup("ER")
    secrets_seen = [str(x) for x in hospital.master_key.record.parts["a"]]
    secrets_seen += [str(er.secret_key.record.parts["alpha"]), str(er.secret_key.record.parts["y"])]
    for key in (hospital.master_key, alice, er.secret_key, hospital.public_key):
        text = repr(key) + str(key) + f"{key}"
        assert all(s[:12] not in text for s in secrets_seen)
        assert "parts" not in text and key.fingerprint in text
        with pytest.raises(TypeError, match="not pickled"):
            pickle.dumps(key)
        assert copy.deepcopy(key) is key
    assert isinstance(hospital.master_key, MasterKey) and isinstance(alice, UserKey)
    assert isinstance(hospital.public_key, PublicKey)
    assert hospital.master_key.public_key() == hospital.public_key
    assert repr(alice) == f"UserKey(scheme='fame', fingerprint='{alice.fingerprint}', " \
                          "attributes=['doctor', 'cardiology'])"
    other = hospital.keygen(["doctor", "cardiology"])
    assert alice == load_key(alice.to_bytes()) and alice != other
