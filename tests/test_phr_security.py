""".phr version 2: every section is bound to its record id, its encryption, its name and the
record's list of sections, so a cloud that moves, swaps, renames, drops, duplicates or plants
sections is caught; version 1 is refused; unreadable inputs give typed errors."""

from __future__ import annotations

import datetime as dt
import json

import cbor2
import pytest
from click.testing import CliRunner

from abe_health.cli import main
from abe_health.errors import InvalidCiphertext, PolicySyntaxError
from abe_health.ma import Authority
from abe_health.phr import (
    PolicyMap,
    RecordInputError,
    decrypt_record,
    encrypt_record,
    load_record,
    open_record,
    record_id,
    section_context,
)

TODAY = dt.date(2026, 11, 22)
PMAP = PolicyMap.from_json({
    "sections": {"profile": "doctor@hospitalA or family@patient",
                 "medications": "doctor@hospitalA",
                 "lab_results": "doctor@hospitalA",
                 "billing": "claims@patient"},
    "emergency": ["profile"],
})
RECORD_A = {"profile": {"name": "A"}, "medications": ["warfarin"], "lab_results": {"inr": 2.4},
            "billing": "I48"}
RECORD_B = {"profile": {"name": "B"}, "medications": ["none"], "lab_results": {"inr": 1.0},
            "billing": "Z00"}


@pytest.fixture(scope="module")
def world():
    auth = {name: Authority.setup(name) for name in ("hospitalA", "patient", "ER")}
    pks = [a.public_key for a in auth.values()]
    return {
        "auth": auth,
        "A": encrypt_record(RECORD_A, PMAP, pks, TODAY, record_id="patient-A"),
        "B": encrypt_record(RECORD_B, PMAP, pks, TODAY, record_id="patient-B"),
        "B-again": encrypt_record(RECORD_B, PMAP, pks, TODAY, record_id="patient-B"),
        "doctor": [auth["hospitalA"].keygen("dr", ["doctor"])],
        "family": [auth["patient"].keygen("sis", ["family"])],
    }


def tamper(blob: bytes, change) -> bytes:
    data = cbor2.loads(blob)
    change(data)
    return cbor2.dumps(data)


def sections(blob: bytes) -> dict[str, bytes]:
    return cbor2.loads(blob)["sections"]


def test_genuine_records_open(world):
    opened = open_record(world["B"], world["doctor"], expect_id="patient-B")
    assert opened.record_id == "patient-B" and record_id(world["B"]) == "patient-B"
    assert opened.visible == {k: v for k, v in RECORD_B.items() if k != "billing"}
    assert set(opened.closed) == {"billing"}
    visible, closed = decrypt_record(world["B"], world["family"])
    assert visible == {"profile": {"name": "B"}}
    assert set(closed) == {"medications", "lab_results", "billing"}
    data = cbor2.loads(world["B"])
    assert data["v"] == 2 and data["type"] == "abe-health/phr" and len(data["nonce"]) == 16
    assert set(data) == {"v", "type", "id", "nonce", "sections"}


def test_default_record_ids_are_random(world):
    pks = [a.public_key for a in world["auth"].values()]
    one = encrypt_record({"profile": 1}, PMAP, pks, TODAY)
    two = encrypt_record({"profile": 1}, PMAP, pks, TODAY)
    assert len(record_id(one)) == 32 and record_id(one) != record_id(two)


ATTACKS = {
    "moved from another record": lambda a, b, ba: {**b, "lab_results": a["lab_results"]},
    "moved from another encryption of the same record id": lambda a, b, ba: {
        **b, "lab_results": ba["lab_results"]},
    "swapped within the record": lambda a, b, ba: {**b, "medications": b["lab_results"],
                                                    "lab_results": b["medications"]},
    "renamed": lambda a, b, ba: {**{k: v for k, v in b.items() if k != "lab_results"},
                                 "genomics": b["lab_results"]},
    "dropped": lambda a, b, ba: {k: v for k, v in b.items() if k != "billing"},
    "duplicated": lambda a, b, ba: {**b, "medications": b["lab_results"]},
    "duplicated under a new name": lambda a, b, ba: {**b, "lab_copy": b["lab_results"]},
    "planted from another record": lambda a, b, ba: {**b, "notes": a["lab_results"]},
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_altered_records_are_refused(world, attack):
    altered = tamper(world["B"], lambda d: d.update(
        sections=ATTACKS[attack](sections(world["A"]), d["sections"], sections(world["B-again"]))))
    with pytest.raises(InvalidCiphertext, match="record 'patient-B' was altered"):
        decrypt_record(altered, world["doctor"])


def test_a_changed_record_id_or_nonce_opens_nothing(world):
    relabeled = tamper(world["A"], lambda d: d.update(id="patient-B"))
    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_record(relabeled, world["doctor"], expect_id="patient-B")
    renonced = tamper(world["A"], lambda d: d.update(nonce=bytes(16)))
    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_record(renonced, world["family"])


def test_expect_id(world):
    with pytest.raises(InvalidCiphertext, match="this is record 'patient-A', not the expected 'patient-B'"):
        open_record(world["A"], world["doctor"], expect_id="patient-B")


def test_context_derivation_is_injective_on_its_fields():
    nonce = bytes(16)
    base = section_context("r", nonce, "a", ["a", "b"])
    assert base == section_context("r", nonce, "a", ["b", "a"])  # the list is sorted
    assert len({base, section_context("r", nonce, "b", ["a", "b"]),
                section_context("r", nonce, "a", ["a", "b", "c"]),
                section_context("r", nonce, "a", ["a", "bc"]),
                section_context("r", nonce, "a", ["ab"]),
                section_context("ra", nonce, "", ["a", "b"]),
                section_context("r", bytes(15) + b"\x01", "a", ["a", "b"])}) == 7


def test_version_1_records_are_refused_with_a_way_to_migrate(world):
    v1 = cbor2.dumps({"v": 1, "type": "abe-health/phr", "sections": sections(world["A"]),
                      "policies": {}})
    with pytest.raises(InvalidCiphertext, match=r"version-1 \.phr.*encrypt the JSON record again"):
        decrypt_record(v1, world["doctor"])
    with pytest.raises(InvalidCiphertext, match=r"unsupported \.phr version 3"):
        decrypt_record(tamper(world["A"], lambda d: d.update(v=3)), world["doctor"])


@pytest.mark.parametrize("change", [
    lambda d: d.update(id="\x1b[31mred"),
    lambda d: d.update(id=""),
    lambda d: d.update(id=7),
    lambda d: d.update(nonce=b"short"),
    lambda d: d.update(sections={}),
    lambda d: d.update(sections={"a\nb": b"x"}),
    lambda d: d.update(sections={"a": "not bytes"}),
])
def test_malformed_records_are_refused(world, change):
    with pytest.raises(InvalidCiphertext):
        decrypt_record(tamper(world["A"], change), world["doctor"])


def test_writer_input_checks(world):
    pks = [a.public_key for a in world["auth"].values()]
    with pytest.raises(RecordInputError, match="record id"):
        encrypt_record({"profile": 1}, PMAP, pks, record_id="bad\x00id")
    with pytest.raises(RecordInputError, match="section name"):
        encrypt_record({"x" * 300: 1}, PMAP, pks)
    with pytest.raises(RecordInputError, match="non-empty JSON object"):
        encrypt_record({}, PMAP, pks)


def test_unreadable_records_and_policy_maps_give_typed_errors(tmp_path):
    (tmp_path / "latin1.json").write_bytes('{"name": "Jos\xe9"}'.encode("latin-1"))
    (tmp_path / "broken.json").write_text('{"sections": ')
    (tmp_path / "list.json").write_text("[1, 2]")
    for loader in (load_record, PolicyMap.load):
        with pytest.raises(RecordInputError, match="not UTF-8"):
            loader(tmp_path / "latin1.json")
        with pytest.raises(RecordInputError, match="not JSON"):
            loader(tmp_path / "broken.json")
        with pytest.raises(RecordInputError, match="cannot read") as info:
            loader(tmp_path / "missing.json")
        assert not isinstance(info.value, PolicySyntaxError)
    with pytest.raises(RecordInputError, match="non-empty JSON object"):
        load_record(tmp_path / "list.json")
    with pytest.raises(PolicySyntaxError, match="JSON object"):
        PolicyMap.load(tmp_path / "list.json")


# -- through the command line ----------------------------------------------------------------------


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory):
    t = tmp_path_factory.mktemp("phr")
    auth = t / "auth"
    for name in ("hospitalA", "patient", "ER"):
        assert run("authority", "setup", name, "-o", auth).exit_code == 0
    assert run("authority", "keygen", "-m", auth / "hospitalA.key", "--gid", "dr", "-a", "doctor",
               "-o", t / "dr.key").exit_code == 0
    (t / "map.json").write_text(json.dumps({
        "sections": {"profile": "doctor@hospitalA", "lab_results": "doctor@hospitalA",
                     "billing": "claims@patient"}, "emergency": ["profile"]}))
    for rid, rec in (("patient-A", RECORD_A), ("patient-B", RECORD_B)):
        (t / f"{rid}.json").write_text(json.dumps({k: v for k, v in rec.items() if k != "medications"}))
        result = run("phr", "encrypt", t / f"{rid}.json", "--policies", t / "map.json",
                     "--authorities", auth, "--record-id", rid, "-o", t / f"{rid}.phr")
        assert result.exit_code == 0 and f"record {rid}" in result.output
    return t


def test_cli_decrypt_prints_and_checks_the_record_id(cli_world):
    t = cli_world
    result = run("phr", "decrypt", t / "patient-B.phr", "-i", t / "dr.key", "--expect-id", "patient-B")
    assert result.exit_code == 0
    assert "record patient-B: 2 of 3 sections readable" in result.stderr
    assert json.loads(result.stdout)["lab_results"] == {"inr": 1.0}
    result = run("phr", "decrypt", t / "patient-A.phr", "-i", t / "dr.key", "--expect-id", "patient-B")
    assert result.exit_code == 1
    assert result.output.strip() == \
        "error: this is record 'patient-A', not the expected 'patient-B'"


def test_cli_refuses_a_section_moved_between_records(cli_world):
    t = cli_world
    a, b = cbor2.loads((t / "patient-A.phr").read_bytes()), cbor2.loads((t / "patient-B.phr").read_bytes())
    b["sections"]["lab_results"] = a["sections"]["lab_results"]
    (t / "moved.phr").write_bytes(cbor2.dumps(b))
    result = run("phr", "decrypt", t / "moved.phr", "-i", t / "dr.key", "-o", t / "out.json")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: record 'patient-B' was altered")
    assert not (t / "out.json").exists()


def test_cli_refuses_version_1_and_unreadable_inputs(cli_world):
    t = cli_world
    a = cbor2.loads((t / "patient-A.phr").read_bytes())
    (t / "v1.phr").write_bytes(cbor2.dumps({"v": 1, "type": "abe-health/phr",
                                            "sections": a["sections"], "policies": {}}))
    result = run("phr", "decrypt", t / "v1.phr", "-i", t / "dr.key")
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "version-1" in result.output and "phr encrypt" in result.output
    (t / "latin1.json").write_bytes('{"profile": "Jos\xe9"}'.encode("latin-1"))
    for args in (["phr", "encrypt", t / "latin1.json", "--policies", t / "map.json"],
                 ["phr", "encrypt", t / "patient-A.json", "--policies", t / "latin1.json"],
                 ["phr", "encrypt", t / "patient-A.json", "--policies", t / "missing.json"],
                 ["phr", "encrypt", t / "missing.json", "--policies", t / "map.json"]):
        result = run(*args, "--authorities", t / "auth", "-o", t / "x.phr")
        assert result.exit_code == 1, args
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")
    result = run("phr", "encrypt", t / "patient-A.json", "--policies", t / "map.json",
                 "--authorities", t / "auth", "--record-id", "bad\tid", "-o", t / "x.phr")
    assert result.exit_code == 1 and "record id" in result.output
