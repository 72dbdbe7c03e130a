"""The device commands end to end: `key blind`, `transform`, `decrypt --retrieval-key`,
`precompute` and `encrypt --pool`; failures are one `error:` line and a non-zero status."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from abe_health.cli import main
from abe_health.cli.errors import EXIT_NOT_SATISFIED, EXIT_USAGE


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def one_error(result: Result, status: int = 1, mentions: str = "") -> str:
    assert result.exit_code == status, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert mentions in lines[0], (mentions, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = tmp_path_factory.mktemp("devices")
    ok(run("setup", "-o", t / "h"))
    ok(run("keygen", "-m", t / "h" / "master.key", "-a", "doctor", "-a", "cardiology", "-o", t / "alice.key"))
    ok(run("keygen", "-m", t / "h" / "master.key", "-a", "nurse", "-o", t / "nurse.key"))
    (t / "rec.json").write_text('{"hr": 72, "ecg": "sinus rhythm"}')
    ok(run("encrypt", "-k", t / "h" / "public.key", "-p", "doctor and cardiology", "-o", t / "rec.abe",
           t / "rec.json"))
    return t


def test_blind_transform_retrieve_round_trip(world: Path):
    t = world
    ok(run("key", "blind", "-i", t / "alice.key", "--transformation-key", t / "alice.tk",
           "--retrieval-key", t / "alice.rk"))
    for name in ("alice.tk", "alice.rk"):
        assert os.stat(t / name).st_mode & 0o777 == 0o600
    ok(run("transform", "-t", t / "alice.tk", "-o", t / "rec.abt", t / "rec.abe"))
    ok(run("decrypt", "--retrieval-key", t / "alice.rk", "-o", t / "opened.json", t / "rec.abt"))
    assert (t / "opened.json").read_text() == (t / "rec.json").read_text()
    out = ok(run("decrypt", "--retrieval-key", t / "alice.rk", t / "rec.abt"))
    assert out.stdout == (t / "rec.json").read_text()
    shown = ok(run("inspect", t / "rec.abt")).stdout
    assert "kind: transformed file" in shown and "header_bytes: 548" in shown


def test_rw15_holder_blinds_its_keys_together(tmp_path: Path):
    t = tmp_path
    ok(run("authority", "setup", "hospitalA", "-o", t / "ma"))
    ok(run("authority", "setup", "university", "-o", t / "ma"))
    for name, attr in (("hospitalA", "doctor"), ("university", "researcher")):
        ok(run("authority", "keygen", "-m", t / "ma" / f"{name}.key", "--gid", "alice", "-a", attr,
               "-o", t / f"alice-{name}.key"))
    (t / "c.csv").write_text("id,hba1c\n1,6.1\n")
    ok(run("encrypt", "--authority", t / "ma" / "hospitalA.pub", "--authority", t / "ma" / "university.pub",
           "-p", "doctor@hospitalA and researcher@university", "-o", t / "c.abe", t / "c.csv"))
    ok(run("key", "blind", "-i", t / "alice-hospitalA.key", "-i", t / "alice-university.key",
           "--transformation-key", t / "a.tk", "--retrieval-key", t / "a.rk"))
    ok(run("transform", "-t", t / "a.tk", "-o", t / "c.abt", t / "c.abe"))
    ok(run("decrypt", "--retrieval-key", t / "a.rk", "-o", t / "c.out", t / "c.abt"))
    assert (t / "c.out").read_text() == (t / "c.csv").read_text()


def test_device_failures_are_one_error_line(world: Path):
    t = world
    ok(run("key", "blind", "-i", t / "nurse.key", "--transformation-key", t / "nurse.tk",
           "--retrieval-key", t / "nurse.rk"))
    one_error(run("transform", "-t", t / "nurse.tk", "-o", t / "x.abt", t / "rec.abe"), EXIT_NOT_SATISFIED)
    assert not (t / "x.abt").exists()
    ok(run("key", "blind", "-i", t / "alice.key", "--transformation-key", t / "a2.tk",
           "--retrieval-key", t / "a2.rk"))
    ok(run("transform", "-t", t / "a2.tk", "-o", t / "a2.abt", t / "rec.abe"))
    one_error(run("decrypt", "--retrieval-key", t / "nurse.rk", "-o", t / "y", t / "a2.abt"),
              mentions="transformation key")
    one_error(run("decrypt", "--retrieval-key", t / "a2.rk", "-o", t / "y", t / "rec.abe"),
              mentions="not a transformed one")
    data = bytearray((t / "a2.abt").read_bytes())
    data[100] ^= 1
    (t / "bad.abt").write_bytes(bytes(data))
    one_error(run("decrypt", "--retrieval-key", t / "a2.rk", "-o", t / "y", t / "bad.abt"))
    assert not (t / "y").exists()
    one_error(run("decrypt", "--retrieval-key", t / "a2.rk", "-i", t / "alice.key", t / "rec.abe"),
              EXIT_USAGE)
    one_error(run("key", "blind", "-i", t / "alice.key", "--transformation-key", t / "same",
                  "--retrieval-key", t / "same"), EXIT_USAGE)
    one_error(run("transform", "-t", t / "alice.key", "-o", t / "z", t / "rec.abe"),
              mentions="not an abe-health/transformation-key file")


def test_fixed_policy_pool_round_trip_and_exhaustion(world: Path):
    t = world
    ok(run("precompute", "-k", t / "h" / "public.key", "-p", "doctor and cardiology", "--count", "2",
           "--pool-key", t / "dev.key", "-o", t / "dev.pool"))
    assert os.stat(t / "dev.key").st_mode & 0o777 == 0o600
    for i in (1, 2):
        ok(run("encrypt", "--pool", t / "dev.pool", "--pool-key", t / "dev.key", "-o", t / f"r{i}.abe",
               t / "rec.json"))
        ok(run("decrypt", "-i", t / "alice.key", "-o", t / f"r{i}.json", t / f"r{i}.abe"))
        assert (t / f"r{i}.json").read_text() == (t / "rec.json").read_text()
    one_error(run("encrypt", "--pool", t / "dev.pool", "--pool-key", t / "dev.key", "-o", t / "r3.abe",
                  t / "rec.json"), mentions="exhausted")
    assert not (t / "r3.abe").exists()
    one_error(run("encrypt", "--pool", t / "dev.pool", "-k", t / "h" / "public.key", "-o", t / "r4.abe",
                  t / "rec.json"), EXIT_USAGE)
    one_error(run("encrypt", "--pool", t / "dev.pool", "-o", t / "r4.abe", t / "rec.json"), EXIT_USAGE,
              mentions="--pool-key")


def test_online_offline_pool_with_an_rw13_authority(tmp_path: Path):
    t = tmp_path
    ok(run("setup", "--scheme", "rw13", "-o", t / "wearable"))
    ok(run("keygen", "-m", t / "wearable" / "master.key", "-a", "doctor", "-a", "ward = 3",
           "-o", t / "alice.key"))
    (t / "hr.json").write_text('{"hr": 88}')
    ok(run("precompute", "-k", t / "wearable" / "public.key", "--count", "2", "--rows", "3",
           "--pool-key", t / "k", "-o", t / "p"))
    ok(run("encrypt", "--pool", t / "p", "--pool-key", t / "k", "-p", "doctor and ward = 3",
           "-o", t / "hr.abe", t / "hr.json"))
    ok(run("decrypt", "-i", t / "alice.key", "-o", t / "hr.out", t / "hr.abe"))
    assert (t / "hr.out").read_text() == (t / "hr.json").read_text()
    one_error(run("encrypt", "--pool", t / "p", "--pool-key", t / "k", "-p", "a and b",
                  "-o", t / "x.abe", t / "hr.json"), mentions="exhausted")
    one_error(run("encrypt", "--pool", t / "p", "--pool-key", t / "p", "-p", "a", "-o", t / "x.abe",
                  t / "hr.json"), mentions="pool-key")
