"""The encrypt/decrypt CLI end to end, as a person at a terminal uses it."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner

from abe_health.cli import main


@pytest.fixture
def authority(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["setup", "-o", str(tmp_path / "auth")])
    assert result.exit_code == 0, result.output
    return tmp_path / "auth"


def run(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def keygen(authority, out, *attrs):
    flags = [x for a in attrs for x in ("-a", a)]
    result = run("keygen", "-m", authority / "master.key", *flags, "-o", out)
    assert result.exit_code == 0, result.output
    return out


def test_setup_writes_keys_with_modes_and_refuses_overwrite(authority):
    assert stat.S_IMODE((authority / "master.key").stat().st_mode) == 0o600
    result = run("setup", "-o", authority)
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {authority}/master.key exists; use --force to replace it " \
                                    "(old keys stop working)"


def test_file_round_trip_and_refusal(authority, tmp_path):
    alice = keygen(authority, tmp_path / "alice.key", "doctor", "cardiology")
    bob = keygen(authority, tmp_path / "bob.key", "nurse", "ward = 2")
    assert stat.S_IMODE(alice.stat().st_mode) == 0o600
    plain = tmp_path / "rec.json"
    plain.write_text('{"bp": "120/80"}')
    policy = "(doctor and cardiology) or (nurse and ward >= 3)"
    result = run("encrypt", "-k", authority / "public.key", "-p", policy, "-o", tmp_path / "rec.abe", plain)
    assert result.exit_code == 0, result.output
    result = run("decrypt", "-i", alice, "-o", tmp_path / "out.json", tmp_path / "rec.abe")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.json").read_text() == plain.read_text()
    result = run("decrypt", "-i", bob, "-o", tmp_path / "bob.json", tmp_path / "rec.abe")
    assert result.exit_code == 3  # policy not satisfied
    assert result.output.strip() == f'error: key attributes do not satisfy policy "{policy}"'
    assert not (tmp_path / "bob.json").exists()


def test_stdin_stdout(authority, tmp_path):
    alice = keygen(authority, tmp_path / "alice.key", "doctor")
    enc = CliRunner().invoke(main, ["encrypt", "-k", str(authority / "public.key"), "-p", "doctor"],
                             input=b"from stdin")
    assert enc.exit_code == 0
    assert enc.stdout_bytes.startswith(b"ABE2")
    dec = CliRunner().invoke(main, ["decrypt", "-i", str(alice), "-"], input=enc.stdout_bytes)
    assert dec.exit_code == 0
    assert dec.stdout_bytes == b"from stdin"
    bad = CliRunner().invoke(main, ["decrypt", "-i", str(alice)], input=enc.stdout_bytes[:-3])
    assert bad.exit_code == 1
    assert bad.stdout_bytes == b""  # no unauthenticated plaintext reaches stdout
    assert "error:" in bad.stderr


def test_kp_cli(tmp_path):
    assert run("setup", "--scheme", "fame-kp", "-o", tmp_path / "kp").exit_code == 0
    result = run("keygen", "-m", tmp_path / "kp" / "master.key", "--policy", "lab and cardiology",
                 "-o", tmp_path / "lab.key")
    assert result.exit_code == 0, result.output
    (tmp_path / "ecg.txt").write_bytes(b"ecg")
    result = run("encrypt", "-k", tmp_path / "kp" / "public.key", "-a", "lab", "-a", "cardiology",
                 "-o", tmp_path / "ecg.abe", tmp_path / "ecg.txt")
    assert result.exit_code == 0, result.output
    result = run("decrypt", "-i", tmp_path / "lab.key", "-o", tmp_path / "out", tmp_path / "ecg.abe")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").read_bytes() == b"ecg"
    result = run("encrypt", "-k", tmp_path / "kp" / "public.key", "-p", "lab", tmp_path / "ecg.txt")
    assert result.exit_code == 2
    assert "encrypts under attributes" in result.output


def test_inspect(authority, tmp_path):
    alice = keygen(authority, tmp_path / "alice.key", "doctor")
    (tmp_path / "a").write_bytes(b"x" * 70000)
    run("encrypt", "-k", authority / "public.key", "-p", "doctor or nurse", "-o", tmp_path / "a.abe",
        tmp_path / "a")
    info = json.loads(run("inspect", "--json", tmp_path / "a.abe").output)
    assert info["scheme"] == "fame" and info["policy"] == "doctor or nurse"
    assert info["plaintext_bytes"] == 70000 and info["chunks"] == 2
    text = run("inspect", alice).output
    assert "kind: user key" in text and "attributes: doctor" in text
    assert "sk" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decrypt", "-i", "{tmp}/no.key", "{tmp}/nothing.abe"], "cannot read key file"),
        (["encrypt", "-k", "{auth}/public.key", "-p", "a", "{tmp}/nothing"],
         "nothing: No such file or directory"),
        (["decrypt", "-i", "{auth}/public.key", "{auth}/public.key"], "expected a user key"),
        (["encrypt", "-k", "{auth}/master.key", "-p", "a", "{auth}/public.key"], "expected a public key"),
        (["encrypt", "-k", "{auth}/public.key", "-p", "a and", "{auth}/public.key"], "column 6"),
        (["keygen", "-m", "{auth}/public.key", "-a", "x", "-o", "{tmp}/k"], "expected a master key"),
        (["keygen", "-m", "{auth}/master.key", "-a", "x = ", "-o", "{tmp}/k"], "expected a value"),
        (["inspect", "{tmp}/garbage"], "not CBOR"),
        (["setup", "-o", "{tmp}/x", "--width", "age"], "NAME=BITS"),
    ],
)
def test_errors_are_one_line(authority, tmp_path, args, message):
    (tmp_path / "garbage").write_bytes(b"\xffnot a key")
    result = run(*[a.format(auth=authority, tmp=tmp_path) for a in args])
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), lines


def test_passphrase_file(tmp_path, monkeypatch):
    from abe_health import keys as keys_mod

    monkeypatch.setattr(keys_mod, "SCRYPT_N", 2**10)
    (tmp_path / "pw").write_text("s3cret\n")
    assert run("setup", "-o", tmp_path / "a", "--passphrase-file", tmp_path / "pw").exit_code == 0
    result = run("keygen", "-m", tmp_path / "a" / "master.key", "-a", "x", "-o", tmp_path / "k")
    assert result.exit_code == 1 and "passphrase" in result.output
    result = run("keygen", "-m", tmp_path / "a" / "master.key", "-a", "x", "-o", tmp_path / "k",
                 "--passphrase-file", tmp_path / "pw")
    assert result.exit_code == 0, result.output


def test_armored_encrypt_decrypt_and_inspect(authority, tmp_path):
    alice = keygen(authority, tmp_path / "alice.key", "doctor")
    (tmp_path / "a").write_bytes(b"armored record" * 100)
    result = run("encrypt", "--armor", "-k", authority / "public.key", "-p", "doctor",
                 "-o", tmp_path / "a.abe.asc", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.abe.asc").read_bytes().startswith(b"-----BEGIN ABE FILE-----\n")
    info = json.loads(run("inspect", "--json", tmp_path / "a.abe.asc").output)
    assert info["plaintext_bytes"] == 1400
    result = run("decrypt", "-i", alice, "-o", tmp_path / "out", tmp_path / "a.abe.asc")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out").read_bytes() == b"armored record" * 100


def test_search_cli_with_key_and_with_abe_identity(authority, tmp_path):
    recs = tmp_path / "recs"
    recs.mkdir()
    (recs / "a.json").write_text('{"notes": "Cardiology consult, atrial fibrillation"}')
    (recs / "b.txt").write_text("Discarded postcard, heart heart")
    assert run("index", "keygen", "-o", tmp_path / "s.key").exit_code == 0
    assert run("owner", "keygen", "-o", tmp_path / "own").exit_code == 0
    owner = tmp_path / "own" / "owner.pub"
    result = run("index", "build", recs, "--root", recs, "--key", tmp_path / "s.key", "-o", tmp_path / "idx",
                 "--policy", "doctor", "-k", authority / "public.key",
                 "--owner-key", tmp_path / "own" / "owner.key")
    assert result.exit_code == 0, result.output
    result = run("search", tmp_path / "idx", "card", "--key", tmp_path / "s.key")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("  1. a.json  (prefix")
    data = json.loads(run("search", tmp_path / "idx", "^heart$", "--key", tmp_path / "s.key",
                          "--json").output)
    assert [h["document"] for h in data["hits"]] == ["b.txt"]
    doctor = keygen(authority, tmp_path / "doctor.key", "doctor")
    nurse = keygen(authority, tmp_path / "nurse.key", "nurse")
    result = run("search", tmp_path / "idx", "fib", "-i", doctor, "--owner", owner)
    assert result.exit_code == 0 and "a.json" in result.output
    result = run("search", tmp_path / "idx", "fib", "-i", nurse, "--owner", owner)
    assert result.exit_code == 3
    assert result.output.strip() == 'error: key attributes do not satisfy policy "doctor"'
    assert run("index", "keygen", "-o", tmp_path / "other.key").exit_code == 0
    result = run("search", tmp_path / "idx", "card", "--key", tmp_path / "other.key")
    assert result.exit_code == 1 and "did not build" in result.output
    (recs / "c.txt").write_text("new cardiomyopathy note")
    result = run("index", "add", tmp_path / "idx", recs / "c.txt", "--key", tmp_path / "s.key")
    assert result.exit_code == 0, result.output
    assert "c.txt" in run("search", tmp_path / "idx", "myopath", "--key", tmp_path / "s.key").output
    result = run("search", tmp_path / "idx", "^$", "--key", tmp_path / "s.key")
    assert result.exit_code == 1 and "empty pattern" in result.output
    result = run("search", tmp_path / "nowhere", "x", "--key", tmp_path / "s.key")
    assert result.exit_code == 1 and "not an index" in result.output


def test_multi_authority_and_phr_cli(tmp_path):
    auth = tmp_path / "auth"
    for name in ("hospitalA", "university", "ER"):
        assert run("authority", "setup", name, "-o", auth).exit_code == 0
    assert (auth / "global.params").exists()
    assert stat.S_IMODE((auth / "hospitalA.key").stat().st_mode) == 0o600
    result = run("authority", "setup", "hospitalA", "-o", auth)
    assert result.exit_code == 1 and result.output.startswith("error: ")
    for gid, name, attr in (("alice", "hospitalA", "doctor"), ("alice", "university", "researcher"),
                            ("bob", "university", "researcher")):
        result = run("authority", "keygen", "-m", auth / f"{name}.key", "--gid", gid, "-a", attr,
                     "-o", tmp_path / f"{gid}-{name}.key")
        assert result.exit_code == 0, result.output
    (tmp_path / "x").write_bytes(b"cohort")
    result = run("encrypt", "--authority", auth / "hospitalA.pub", "--authority", auth / "university.pub",
                 "-p", "doctor@hospitalA and researcher@university", "-o", tmp_path / "x.abe", tmp_path / "x")
    assert result.exit_code == 0, result.output
    result = run("decrypt", "-i", tmp_path / "alice-hospitalA.key", "-i", tmp_path / "alice-university.key",
                 "-o", tmp_path / "x.out", tmp_path / "x.abe")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x.out").read_bytes() == b"cohort"
    result = run("decrypt", "-i", tmp_path / "alice-hospitalA.key", "-i", tmp_path / "bob-university.key",
                 tmp_path / "x.abe")
    assert result.exit_code == 3 and "no identity opened this file" in result.output
    result = run("encrypt", "-k", auth / "hospitalA.pub", "--authority", auth / "ER.pub", "-p", "a@ER",
                 tmp_path / "x")
    assert result.exit_code == 2
    (tmp_path / "rec.json").write_text(json.dumps({"profile": {"blood": "A+"}, "billing": "I48"}))
    (tmp_path / "map.json").write_text(json.dumps({
        "sections": {"profile": "doctor@hospitalA", "billing": "researcher@university"},
        "emergency": ["profile"]}))
    result = run("phr", "encrypt", tmp_path / "rec.json", "--policies", tmp_path / "map.json",
                 "--authorities", auth, "-o", tmp_path / "rec.phr")
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["phr", "decrypt", str(tmp_path / "rec.phr"),
                                       "-i", str(tmp_path / "alice-hospitalA.key")])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"profile": {"blood": "A+"}}
    assert "not readable: billing" in result.stderr
    result = run("authority", "keygen", "-m", auth / "ER.key", "--gid", "er1",
                 "-a", "emergency = 2000-01-01", "-o", tmp_path / "er-old.key")
    assert result.exit_code == 0
    result = run("phr", "decrypt", tmp_path / "rec.phr", "-i", tmp_path / "er-old.key")
    assert result.exit_code == 1
    assert "error: none of the 2 sections opens with these keys" in result.output


def test_multi_authority_keys_are_refused_where_single_authority_keys_go(tmp_path):
    assert run("authority", "setup", "hospitalA", "-o", tmp_path / "auth").exit_code == 0
    (tmp_path / "x").write_bytes(b"x")
    result = run("encrypt", "-k", tmp_path / "auth" / "hospitalA.pub", "-p", "doctor@hospitalA",
                 tmp_path / "x")
    assert result.exit_code == 1 and "MultiAuthorityRecipient" in result.output
    assert "Traceback" not in result.output


def test_a_killed_decrypt_leaves_no_plaintext(authority, tmp_path):
    """kill -9 in the middle of `decrypt -o OUT`: where the OS has unnamed temporary files
    (O_TMPFILE, linked into place only when complete) no file holding plaintext ever has a name
    in OUT's directory, during the run or after the kill."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from abe_health import fileio

    out = tmp_path / "out"
    out.mkdir()
    if not fileio._unnamed_available(out):
        pytest.skip("this file system has no linkable O_TMPFILE: the named .tmp fallback is used")
    alice = keygen(authority, tmp_path / "alice.key", "doctor")
    plain = tmp_path / "big.txt"
    plain.write_bytes(b"PLAINTEXT-MARKER " * (4 << 16))  # 4.25 MiB
    result = run("encrypt", "-k", authority / "public.key", "-p", "doctor", "-o", tmp_path / "big.abe", plain)
    assert result.exit_code == 0, result.output
    blob = (tmp_path / "big.abe").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "abe_health.cli", "decrypt", "-i", str(alice),
                             "-o", str(out / "rec.txt"), "-"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(blob[: len(blob) // 2])  # returns once all but a pipe buffer is read
    proc.stdin.flush()
    time.sleep(0.5)
    assert list(out.iterdir()) == []  # half the plaintext is written, under no name
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert list(out.iterdir()) == []
