"""The issuance register: renewal re-issues what the authority recorded, never what a key file
says; edited, foreign, unknown, withdrawn and superseded keys are refused; the register itself
is append-only, versioned and private."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import sqlite3
import stat

import pytest
from click.testing import CliRunner

from abe_health import MultiAuthorityRecipient, PolicyRecipient, decrypt, encrypt
from abe_health.authority import CPABE, KPABE
from abe_health.cli import main
from abe_health.derived import fingerprint
from abe_health.errors import InvalidKey, PolicyNotSatisfied
from abe_health.keys import Key, read_key
from abe_health.ma import Authority
from abe_health.register import (
    NotRenewable,
    Register,
    RegisterError,
    dated_attributes,
    key_digest,
    register_path_for,
)
from abe_health.revocation import renew
from abe_health.revocation.expiry import renewal_moves

TODAY = dt.date.today()
LATER = TODAY + dt.timedelta(30)


def edited(key: Key, **meta) -> Key:
    """The key with its metadata edited (what any holder can do to a key file)."""
    new_meta = {k: v for k, v in {**key.record.meta, **meta}.items() if v is not None}
    return Key(key.scheme, dataclasses.replace(key.record, meta=new_meta))


def merged(*keys: Key) -> Key:
    """One RW15 key file holding the components of several keys of one GID (what a holder can
    make: RW15 binds components only through H(GID))."""
    parts: dict[str, dict] = {"K": {}, "Kp": {}}
    for key in keys:
        parts["K"].update(key.record["K"])
        parts["Kp"].update(key.record["Kp"])
    return Key(keys[0].scheme, dataclasses.replace(keys[0].record, parts=parts))


@pytest.fixture
def hospital(tmp_path):
    return CPABE.setup(register=Register.create(tmp_path / "register.sqlite"))


@pytest.fixture
def authorities(tmp_path):
    return {name: Authority.setup(name, register=Register.create(tmp_path / f"{name}.register.sqlite"))
            for name in ("hospitalA", "university")}


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def assert_cli_error(result, *fragments, status=1):
    """One `error:` line (and at most one `hint:` line after it), exit `status`."""
    assert result.exit_code == status, result.output
    lines = result.output.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[0].startswith("error: "), result.output
    assert len(lines) == 1 or lines[1].startswith("hint: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


# -- the register file -----------------------------------------------------------------------------


def test_register_paths():
    assert register_path_for("/a/b/master.key") == register_path_for("/a/b/master.key").with_name(
        "register.sqlite")
    assert str(register_path_for("/a/b/master.key")) == "/a/b/register.sqlite"
    assert str(register_path_for("/a/auth/ER.key")) == "/a/auth/ER.register.sqlite"
    assert str(register_path_for("auth/odd.secret")) == "auth/odd.secret.register.sqlite"


def test_register_is_private_wal_and_append_only(tmp_path, hospital):
    hospital.keygen(["nurse"])
    path = hospital.register.path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    for sql in ("UPDATE issuances SET attributes = '[\"psychiatrist\"]'",
                "DELETE FROM issuances",
                "INSERT OR REPLACE INTO issuances SELECT * FROM issuances"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)
    for leftover in ("-wal", "-shm"):
        side = path.with_name(path.name + leftover)
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) == 0o600
    db.close()
    assert [row.attributes for row in hospital.register.issuances()] == [("nurse",)]


def test_other_tables_may_share_the_file(hospital):
    with hospital.register.connect() as db:
        db.execute("CREATE TABLE vault_versions (label TEXT PRIMARY KEY, version INTEGER)")
        db.execute("INSERT INTO vault_versions VALUES ('nurse', 1)")
        db.execute("UPDATE vault_versions SET version = 2")
        db.execute("INSERT INTO register_meta VALUES ('vault_versions.schema', '1')")
    again = Register(hospital.register.path)
    assert again.issuances() == []
    assert repr(again) == f"Register({str(hospital.register.path)!r})"


def test_register_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(RegisterError, match=r"no issuance register at .*missing"):
        Register(tmp_path / "missing.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not a database at all, just some bytes" * 100)
    with pytest.raises(RegisterError, match=r"garbage\.sqlite"):
        Register(garbage)
    with pytest.raises(RegisterError, match=r"garbage\.sqlite"):
        Register.create(garbage)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(RegisterError, match="not an issuance register"):
        Register(other)
    with pytest.raises(RegisterError, match="not an issuance register"):
        Register.create(other)  # a foreign database is never written into
    interrupted = tmp_path / "interrupted.sqlite"
    interrupted.write_bytes(b"")  # created, then the process died before the schema
    assert Register.create(interrupted).issuances() == []
    future = Register.create(tmp_path / "future.sqlite")
    with future.connect() as db:
        db.execute("UPDATE register_meta SET value = '99' WHERE name = 'schema'")
    with pytest.raises(RegisterError, match="schema '99'"):
        Register(future.path)
    with pytest.raises(RegisterError, match="cannot create"):
        Register.create(tmp_path / "no-such-dir" / "register.sqlite")


def test_keygen_records_every_issuance(tmp_path, hospital, authorities):
    key = hospital.keygen(["nurse", "ward = 3", f"valid_until = {LATER}"])
    (row,) = hospital.register.issuances()
    assert key.record.meta["iid"] == row.iid and len(row.iid) == 32
    assert row.event == "issued" and row.scheme == "fame" and row.gid is None
    assert row.authority == fingerprint(hospital.public_key)
    assert row.attributes == ("nurse", "ward = 3", f"valid_until = {LATER}")
    assert row.valid_until == LATER.isoformat() and row.dates == {"valid_until": LATER.isoformat()}
    assert row.key_digest == key_digest(key) and row.renewed_from is None
    assert row.expiring == ("valid_until",)
    mk = authorities["hospitalA"].keygen("bob", ["doctor", f"oncall = {LATER}"], expiring=["oncall"])
    (mrow,) = authorities["hospitalA"].register.issuances()
    assert (mrow.gid, mrow.attributes, mrow.valid_until) == (
        "bob", ("doctor@hospitalA", f"oncall = {LATER}@hospitalA"), LATER.isoformat())
    assert mrow.expiring == ("oncall@hospitalA",)
    assert mk.record.meta["iid"] == mrow.iid
    kp = KPABE.setup(register=Register.create(tmp_path / "kp.sqlite"))
    kp_key = kp.keygen(policy="lab and cardiology")
    (kp_row,) = kp.register.issuances()
    assert kp_row.policy == "lab and cardiology" and kp_row.attributes is None
    assert kp_row.expiring == ()
    with pytest.raises(NotRenewable, match="KP-ABE"):
        renew(kp, kp_key, LATER)


# -- A: renewal trusts the register, not the key file ----------------------------------------------


def test_genuine_renewal_ignores_the_key_files_metadata(hospital, authorities):
    old = hospital.keygen(["nurse", f"valid_until = {TODAY - dt.timedelta(1)}"])
    stripped = edited(old, attributes=None, iid=None, pk=None, widths=None)
    new = renew(hospital, stripped, LATER)
    assert new.record.meta["attributes"] == ["nurse", f"valid_until = {LATER}"]
    rows = hospital.register.issuances()
    assert rows[-1].renewed_from == old.record.meta["iid"] and rows[-1].iid == new.record.meta["iid"]
    ward = PolicyRecipient(hospital.public_key, f"nurse and valid_until >= {TODAY}")
    blob = encrypt(b"ward notes", None, ward)
    assert decrypt(blob, None, new) == b"ward notes"
    h = authorities["hospitalA"]
    mold = h.keygen("bob", [f"oncall = {TODAY}", "nurse"], expiring=["oncall"])
    mnew = renew(h, edited(mold, gid=None, attributes=None, iid=None, authority=None), LATER)
    assert mnew.record.meta["gid"] == "bob"
    assert mnew.record.meta["attributes"] == [f"oncall = {LATER}@hospitalA", "nurse@hospitalA"]
    assert h.register.lookup(mnew).expiring == ("oncall@hospitalA",)  # carried to the renewal


def test_edited_attributes_are_refused(hospital):
    nurse = hospital.keygen(["nurse", f"valid_until = {TODAY}"])
    forged = edited(nurse, attributes=["psychiatrist", f"valid_until = {TODAY}"])
    with pytest.raises(NotRenewable, match="edited: its attributes"):
        renew(hospital, forged, LATER)
    assert len(hospital.register.issuances()) == 1


def test_edited_gid_is_refused(authorities):
    """bob's university key was issued to GID bob-u; renewed under bob it would pool with his
    hospitalA key for GID bob."""
    uni = authorities["university"]
    bob_u = uni.keygen("bob-u", ["researcher", f"project = {TODAY}"], expiring=["project"])
    with pytest.raises(NotRenewable, match="edited: its gid"):
        renew(uni, edited(bob_u, gid="bob"), LATER)
    with pytest.raises(NotRenewable, match="edited: it names another authority"):
        renew(uni, edited(bob_u, authority="hospitalA"), LATER)
    # with the GID removed instead, the renewal still goes to the register's bob-u
    assert renew(uni, edited(bob_u, gid=None), LATER).record.meta["gid"] == "bob-u"


def test_edited_iid_is_refused(hospital):
    first = hospital.keygen(["nurse", f"valid_until = {TODAY}"])
    second = hospital.keygen(["psychiatrist", f"valid_until = {TODAY}"])
    with pytest.raises(NotRenewable, match="edited: its iid"):
        renew(hospital, edited(first, iid=second.record.meta["iid"]), LATER)
    with pytest.raises(NotRenewable, match="edited: its iid"):
        renew(hospital, edited(first, iid="0" * 32), LATER)


def test_keys_of_another_authority_are_refused(tmp_path, hospital, authorities):
    other = CPABE.setup(register=hospital.register)  # even sharing the register file
    foreign = other.keygen(["nurse", f"valid_until = {TODAY}"])
    with pytest.raises(NotRenewable, match="issued by another authority"):
        renew(hospital, foreign, LATER)
    separate = CPABE.setup(register=Register.create(tmp_path / "separate.sqlite"))
    with pytest.raises(NotRenewable, match="not in the issuance register"):
        renew(hospital, separate.keygen(["nurse"]), LATER)
    uni_key = authorities["university"].keygen("bob", [f"project = {TODAY}"])
    with pytest.raises(NotRenewable, match="not in the issuance register"):
        renew(authorities["hospitalA"], uni_key, LATER)


def test_unknown_and_altered_keys_are_refused(hospital, authorities):
    unregistered = CPABE(hospital.public_key, hospital.master_key).keygen(["nurse"])
    with pytest.raises(NotRenewable, match="not in the issuance register"):
        renew(hospital, unregistered, LATER)
    h = authorities["hospitalA"]
    a = h.keygen("eve", [f"oncall = {TODAY}"])
    b = h.keygen("eve", ["nurse"])
    parts = {"K": {**a.record["K"], **b.record["K"]}, "Kp": {**a.record["Kp"], **b.record["Kp"]}}
    pooled = Key(a.scheme, dataclasses.replace(a.record, parts=parts))
    with pytest.raises(NotRenewable, match="not in the issuance register"):
        renew(h, pooled, LATER)


def test_withdrawn_holders_and_issuances_are_not_renewed(hospital, authorities):
    h = authorities["hospitalA"]
    fp = fingerprint(h.public_key)
    old = h.keygen("mallory", [f"oncall = {TODAY}"], expiring=["oncall"])
    h.register.withdraw(fp, gid="mallory", reason="left the hospital")
    with pytest.raises(NotRenewable, match="withdrawn"):
        renew(h, old, LATER)
    # a new issuance after the withdrawal
    readmitted = h.keygen("mallory", [f"oncall = {TODAY}"], expiring=["oncall"])
    assert renew(h, readmitted, LATER).record.meta["gid"] == "mallory"
    cp_old = hospital.keygen(["nurse", f"valid_until = {TODAY}"])
    cp_new = renew(hospital, cp_old, LATER)
    hospital.register.withdraw(fingerprint(hospital.public_key), iid=cp_old.record.meta["iid"])
    with pytest.raises(NotRenewable, match="withdrawn"):
        renew(hospital, cp_new, LATER)  # the lineage is withdrawn
    with pytest.raises(NotRenewable, match="no key to GID"):
        h.register.withdraw(fp, gid="nobody")
    with pytest.raises(NotRenewable, match="not issued by this authority"):
        h.register.withdraw(fingerprint(hospital.public_key), iid=old.record.meta["iid"])
    with pytest.raises(InvalidKey, match="either"):
        h.register.withdraw(fp, iid=old.record.meta["iid"], gid="mallory")
    assert [r.event for r in h.register.issuances()].count("withdrawn") == 1


def test_a_key_is_renewed_once(hospital):
    old = hospital.keygen(["nurse", f"valid_until = {TODAY}"])
    renew(hospital, old, LATER)
    with pytest.raises(NotRenewable, match="already renewed"):
        renew(hospital, old, LATER)
    # the register enforces it in the transaction that appends, not only in the check before
    late = hospital.keygen(["nurse"])
    with pytest.raises(NotRenewable, match="already renewed"):
        hospital.register.record(late, fingerprint(hospital.public_key),
                                 renewed_from=old.record.meta["iid"])
    with hospital.register.connect() as db:
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO issuances (iid, event, authority, scheme, attributes, key_digest, "
                       "recorded_at, renewed_from) VALUES ('x', 'issued', 'a', 'fame', '[]', x'00', "
                       "'now', ?)", (old.record.meta["iid"],))


def test_renewal_needs_the_register(hospital):
    key = hospital.keygen(["nurse"])
    with pytest.raises(InvalidKey, match="issuance register"):
        renew(CPABE(hospital.public_key, hospital.master_key), key, LATER)
    with pytest.raises(InvalidKey, match="issuance register"):
        CPABE(hospital.public_key, hospital.master_key).keygen(["nurse"], renewed_from="x")


def test_multi_authority_renewal_stays_within_its_register(authorities):
    """A renewed multi-authority key is still one GID's; the same GID at another authority is
    another register's business."""
    h, u = authorities["hospitalA"], authorities["university"]
    hk = h.keygen("alice", ["doctor", f"oncall = {TODAY}"], expiring=["oncall"])
    uk = u.keygen("alice", ["researcher"])
    renewed = renew(h, hk, LATER)
    cohort = MultiAuthorityRecipient(f"doctor@hospitalA and oncall >= {LATER}@hospitalA and "
                                     "researcher@university", [h.public_key, u.public_key])
    blob = encrypt(b"cohort", None, cohort)
    assert decrypt(blob, None, renewed, uk) == b"cohort"


# -- the same attacks through the command line -----------------------------------------------------


@pytest.fixture
def cli_world(tmp_path):
    assert run("setup", "-o", tmp_path / "h").exit_code == 0
    assert (tmp_path / "h" / "register.sqlite").exists()
    for name in ("hospitalA", "university"):
        assert run("authority", "setup", name, "-o", tmp_path / "auth").exit_code == 0
        assert (tmp_path / "auth" / f"{name}.register.sqlite").exists()
    return tmp_path


def test_cli_renewal_refuses_edited_and_foreign_keys(cli_world):
    t = cli_world
    old_day = (TODAY - dt.timedelta(3)).isoformat()
    result = run("keygen", "-m", t / "h" / "master.key", "-a", "nurse", "-a",
                 f"valid_until = {old_day}", "-o", t / "nurse.key")
    assert result.exit_code == 0 and "issuance " in result.output
    nurse = read_key(t / "nurse.key")
    edited(nurse, attributes=["psychiatrist", f"valid_until = {old_day}"]).save(t / "forged.key")
    renew_args = ["renew", "-m", t / "h" / "master.key", "--until", LATER, "-o", t / "new.key"]
    assert_cli_error(run(*renew_args[:3], "-i", t / "forged.key", *renew_args[3:]), "edited")
    edited(nurse, iid="f" * 32).save(t / "forged-iid.key")
    assert_cli_error(run(*renew_args[:3], "-i", t / "forged-iid.key", *renew_args[3:]), "edited")
    assert not (t / "new.key").exists()
    assert run("setup", "-o", t / "h2").exit_code == 0
    assert run("keygen", "-m", t / "h2" / "master.key", "-a", "nurse", "-o", t / "h2.key").exit_code == 0
    assert_cli_error(run(*renew_args[:3], "-i", t / "h2.key", *renew_args[3:]),
                     "not in the issuance register")
    # the genuine key, its metadata stripped: renewed with the register's attributes
    edited(nurse, attributes=None, iid=None).save(t / "stripped.key")
    assert run(*renew_args[:3], "-i", t / "stripped.key", *renew_args[3:]).exit_code == 0
    assert read_key(t / "new.key").record.meta["attributes"] == ["nurse", f"valid_until = {LATER}"]


def test_cli_renewal_of_multi_authority_keys(cli_world):
    t = cli_world
    auth = t / "auth"
    assert run("authority", "keygen", "-m", auth / "university.key", "--gid", "bob-u", "-a",
               "researcher", "-a", f"project = {TODAY}", "--expiring", "project",
               "-o", t / "bob-u.key").exit_code == 0
    edited(read_key(t / "bob-u.key"), gid="bob").save(t / "bob-forged.key")
    args = ["-m", auth / "university.key", "--until", LATER, "-o", t / "bob-new.key"]
    assert_cli_error(run("renew", "-i", t / "bob-forged.key", *args), "edited: its gid")
    assert_cli_error(run("renew", "-m", auth / "hospitalA.key", "-i", t / "bob-u.key", "--until",
                         LATER, "-o", t / "x.key"), "not in the issuance register")
    assert run("withdraw", "-m", auth / "university.key", "--gid", "bob-u",
               "--reason", "project ended").exit_code == 0
    assert_cli_error(run("renew", "-i", t / "bob-u.key", *args), "withdrawn")
    assert not (t / "bob-new.key").exists()
    assert run("authority", "keygen", "-m", auth / "university.key", "--gid", "cy", "-a",
               f"project = {TODAY}", "--expiring", "project", "-o", t / "cy.key").exit_code == 0
    assert run("withdraw", "-m", auth / "university.key", "-i", t / "cy.key").exit_code == 0
    assert_cli_error(run("renew", "-m", auth / "university.key", "-i", t / "cy.key", "--until",
                         LATER, "-o", t / "cy-new.key"), "withdrawn")
    assert run("withdraw", "-m", auth / "university.key").exit_code == 2


def test_cli_renewal_needs_a_register(cli_world):
    t = cli_world
    assert run("keygen", "-m", t / "h" / "master.key", "-a", "nurse", "-o", t / "k.key").exit_code == 0
    assert_cli_error(run("renew", "-m", t / "h" / "master.key", "-i", t / "k.key", "--until", LATER,
                         "-o", t / "n.key", "--register", t / "nowhere.sqlite"),
                     "no issuance register at", "nowhere.sqlite")
    (t / "bad.sqlite").write_bytes(b"\x00" * 4096)
    assert_cli_error(run("renew", "-m", t / "h" / "master.key", "-i", t / "k.key", "--until", LATER,
                         "-o", t / "n.key", "--register", t / "bad.sqlite"), "bad.sqlite")
    # an explicit register is used by keygen and renew alike
    assert run("keygen", "-m", t / "h" / "master.key", "-a", "nurse", "-o", t / "k2.key",
               "--register", t / "alt.sqlite").exit_code == 0
    assert run("renew", "-m", t / "h" / "master.key", "-i", t / "k2.key", "--until", LATER,
               "-o", t / "n2.key", "--register", t / "alt.sqlite").exit_code == 0


# -- F3: renewal moves only what the authority recorded as expiring --------------------------------

BORN = "1980-04-02"
ADULTS_BORN_BEFORE = "2008-08-01"  # `born >= ADULTS_BORN_BEFORE` admits minors only


def test_renewal_keeps_dates_that_are_not_expiries(tmp_path):
    """F3: `born = 1980-04-02` is a fact, not an expiry. Renewal used to re-date every dated
    attribute of an RW15 key, giving bob `born = <renewal day>` and opening minors-only files."""
    h = Authority.setup("H", register=Register.create(tmp_path / "H.register.sqlite"))
    staff_until, until = TODAY + dt.timedelta(30), TODAY + dt.timedelta(365)
    bob = h.keygen("bob", [f"staff = {staff_until}", f"born = {BORN}"], expiring=["staff"])
    minors = MultiAuthorityRecipient(f"staff >= {TODAY}@H and born >= {ADULTS_BORN_BEFORE}@H",
                                     [h.public_key])
    blob = encrypt(b"paediatric ward", None, minors)
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, bob)
    bob2 = renew(h, bob, until)
    assert bob2.record.meta["attributes"] == [f"staff = {until}@H", f"born = {BORN}@H"]
    for attempt in ([bob2], [bob, bob2], [merged(bob, bob2)]):
        with pytest.raises(PolicyNotSatisfied):
            decrypt(blob, None, *attempt)
    later = TODAY + dt.timedelta(200)
    staff_only = encrypt(b"rota", None, MultiAuthorityRecipient(f"staff >= {later}@H", [h.public_key]))
    assert decrypt(staff_only, None, bob2) == b"rota"  # the expiry did move
    before, after = h.register.lookup(bob), h.register.lookup(bob2)
    assert after.expiring == ("staff@H",) and after.renewed_from == before.iid
    assert renewal_moves(before, after) == [("staff@H", staff_until.isoformat(), until.isoformat())]
    bob3 = renew(h, bob2, until + dt.timedelta(1))  # the lineage keeps its expiring attributes
    assert bob3.record.meta["attributes"] == [f"staff = {until + dt.timedelta(1)}@H", f"born = {BORN}@H"]


def test_renewal_without_expiring_attributes_is_refused(tmp_path):
    h = Authority.setup("H", register=Register.create(tmp_path / "H.register.sqlite"))
    bob = h.keygen("bob", [f"staff = {LATER}", f"born = {BORN}"])  # no expiring: nothing moves
    assert h.register.lookup(bob).expiring == ()
    with pytest.raises(NotRenewable, match="no expiring attribute"):
        renew(h, bob, LATER + dt.timedelta(1))
    assert len(h.register.issuances()) == 1


def test_expiring_attributes_are_checked_at_keygen(tmp_path):
    h = Authority.setup("H", register=Register.create(tmp_path / "H.register.sqlite"))
    attrs = ["doctor", "ward = 3", f"emergency = {LATER}"]
    for names, message in ((["doctor"], "'doctor' has no date value"),
                           (["ward"], "'ward' has no date value"),
                           (["nurse"], "'nurse' is not among the attributes issued"),
                           ([f"emergency = {LATER}"], "not a value"),
                           (["emergency@ER"], "belongs to authority ER"),
                           (["emergency and doctor"], "not an attribute name")):
        with pytest.raises(InvalidKey, match=message):
            h.keygen("bob", attrs, expiring=names)
    with pytest.raises(InvalidKey, match="no date value"):  # refused without a register too
        Authority(h.public_key, h.secret_key).keygen("bob", attrs, expiring=["ward"])
    assert h.register.issuances() == []  # nothing was recorded
    for names in (["emergency"], ["emergency@H"], "emergency", ["emergency", "emergency@H"]):
        key = h.keygen("bob", attrs, expiring=names)
        assert h.register.lookup(key).expiring == ("emergency@H",)


def test_cp_renewal_replaces_only_valid_until(hospital):
    key = hospital.keygen(["nurse", f"born = {BORN}", f"valid_until = {TODAY}"])
    assert hospital.register.lookup(key).expiring == ("valid_until",)
    new = renew(hospital, key, LATER)
    assert new.record.meta["attributes"] == ["nurse", f"born = {BORN}", f"valid_until = {LATER}"]
    undated = hospital.keygen(["nurse"])  # a CP key without an expiry gets one (only narrower)
    assert hospital.register.lookup(undated).expiring == ()
    renewed = renew(hospital, undated, LATER)
    assert renewed.record.meta["attributes"] == ["nurse", f"valid_until = {LATER}"]
    assert renewal_moves(hospital.register.lookup(undated), hospital.register.lookup(renewed)) == [
        ("valid_until", None, LATER.isoformat())]
    fp = fingerprint(hospital.public_key)
    plain = CPABE(hospital.public_key, hospital.master_key)
    with pytest.raises(InvalidKey, match="valid_until attribute only"):
        hospital.register.record(plain.keygen(["nurse", f"born = {BORN}"]), fp, expiring=["born"])
    with pytest.raises(InvalidKey, match="no valid_until date"):
        hospital.register.record(plain.keygen(["nurse"]), fp, expiring=["valid_until"])


def test_cli_reproduction_of_f3(tmp_path):
    """The attacker review's reproduction, through the command line."""
    auth = tmp_path / "auth"
    assert run("authority", "setup", "H", "-o", auth).exit_code == 0
    staff_until, until = TODAY + dt.timedelta(30), TODAY + dt.timedelta(365)
    keygen = ["authority", "keygen", "-m", auth / "H.key", "--gid", "bob",
              "-a", f"staff = {staff_until}", "-a", f"born = {BORN}"]
    result = run(*keygen, "--expiring", "staff", "-o", tmp_path / "bob.key")
    assert result.exit_code == 0 and "expiring: staff@H" in result.output
    (tmp_path / "notes").write_bytes(b"paediatric ward")
    assert run("encrypt", "--authority", auth / "H.pub", "-p",
               f"staff >= {TODAY}@H and born >= {ADULTS_BORN_BEFORE}@H",
               "-o", tmp_path / "notes.abe", tmp_path / "notes").exit_code == 0
    assert_cli_error(run("decrypt", "-i", tmp_path / "bob.key", "-o", tmp_path / "out",
                         tmp_path / "notes.abe"), status=3)
    result = run("renew", "-m", auth / "H.key", "-i", tmp_path / "bob.key", "--until", until,
                 "-o", tmp_path / "bob2.key")
    assert result.exit_code == 0, result.output
    assert f"moved: staff@H {staff_until} -> {until}; every other attribute as issued" in result.output
    assert read_key(tmp_path / "bob2.key").record.meta["attributes"] == [
        f"staff = {until}@H", f"born = {BORN}@H"]
    for keys in (["bob2.key"], ["bob.key", "bob2.key"]):
        args = [a for k in keys for a in ("-i", tmp_path / k)]
        assert_cli_error(run("decrypt", *args, "-o", tmp_path / "out", tmp_path / "notes.abe"), status=3)
    assert not (tmp_path / "out").exists()
    # without --expiring the key says it is not renewable, and renew refuses it
    result = run(*keygen, "-o", tmp_path / "plain.key")
    assert result.exit_code == 0 and "no expiring attribute: not renewable" in result.output
    assert_cli_error(run("renew", "-m", auth / "H.key", "-i", tmp_path / "plain.key", "--until",
                         until, "-o", tmp_path / "plain2.key"), "no expiring attribute")
    # an expiring attribute without a date value is refused at keygen, and no key is written
    assert_cli_error(run("authority", "keygen", "-m", auth / "H.key", "--gid", "bob", "-a", "doctor",
                         "--expiring", "doctor", "-o", tmp_path / "no.key"), "no date value")
    assert not (tmp_path / "no.key").exists()
    assert "--expiring NAME" in run("authority", "keygen", "--help").output


# -- registers of schema 1 (before expiring attributes were recorded) ------------------------------

SCHEMA_V1 = """
CREATE TABLE register_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE issuances (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    iid          TEXT NOT NULL UNIQUE,
    event        TEXT NOT NULL CHECK (event IN ('issued', 'withdrawn')),
    authority    TEXT NOT NULL,
    scheme       TEXT NOT NULL,
    gid          TEXT,
    attributes   TEXT,
    policy       TEXT,
    valid_until  TEXT,
    dates        TEXT,
    key_digest   BLOB UNIQUE,
    recorded_at  TEXT NOT NULL,
    renewed_from TEXT REFERENCES issuances(iid),
    withdraws    TEXT REFERENCES issuances(iid),
    reason       TEXT,
    CHECK ((event = 'issued' AND key_digest IS NOT NULL AND withdraws IS NULL
            AND (attributes IS NOT NULL OR policy IS NOT NULL))
        OR (event = 'withdrawn' AND key_digest IS NULL AND renewed_from IS NULL
            AND (withdraws IS NOT NULL OR gid IS NOT NULL)))
);
CREATE UNIQUE INDEX issuances_renewed_once ON issuances(renewed_from)
    WHERE renewed_from IS NOT NULL;
CREATE INDEX issuances_holder ON issuances(authority, gid);
CREATE INDEX issuances_withdraws ON issuances(withdraws);
CREATE TRIGGER issuances_no_update BEFORE UPDATE ON issuances
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only'); END;
CREATE TRIGGER issuances_no_delete BEFORE DELETE ON issuances
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only'); END;
CREATE TRIGGER issuances_no_replace BEFORE INSERT ON issuances
    WHEN EXISTS (SELECT 1 FROM issuances WHERE seq = NEW.seq OR iid = NEW.iid
                 OR key_digest = NEW.key_digest OR renewed_from = NEW.renewed_from)
    BEGIN SELECT RAISE(ABORT, 'the issuance register is append-only: the row repeats another');
    END;
INSERT INTO register_meta VALUES ('schema', '1');
"""
V1_COLUMNS = ("seq, iid, event, authority, scheme, gid, attributes, policy, valid_until, dates, "
              "key_digest, recorded_at, renewed_from, withdraws, reason")


def v1_register(path, rows):
    """A register as abe-health wrote it before schema 2: the v1 schema, its rows as v1 wrote
    them (`rows`: (iid, key or None, authority fingerprint, extra columns)), and a table of
    someone else's sharing the file."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA_V1)
    for iid, key, fp, extra in rows:
        meta = key.record.meta if key is not None else {}
        attributes = meta.get("attributes")
        dates = dated_attributes(attributes or [])
        db.execute("INSERT INTO issuances (iid, event, authority, scheme, gid, attributes, dates, "
                   "valid_until, key_digest, recorded_at, withdraws) VALUES "
                   "(?, ?, ?, ?, ?, ?, ?, ?, ?, '2025-01-01T00:00:00+00:00', ?)",
                   (iid, extra.get("event", "issued"), fp, extra.get("scheme", key and key.scheme.name),
                    extra.get("gid", meta.get("gid")),
                    json.dumps(attributes) if attributes is not None else None,
                    json.dumps(dates), max(dates.values(), default=None),
                    key_digest(key) if key is not None else None, extra.get("withdraws")))
    db.execute("CREATE TABLE vault_versions (label TEXT PRIMARY KEY, version INTEGER)")
    db.execute("INSERT INTO vault_versions VALUES ('nurse', 3)")
    db.commit()
    db.close()


def test_schema_1_register_is_upgraded_in_place(tmp_path):
    cp = CPABE.setup()
    er = Authority.setup("ER")
    cp_fp, er_fp = fingerprint(cp.public_key), fingerprint(er.public_key)
    nurse = cp.keygen(["nurse", f"valid_until = {TODAY}"])
    dee = er.keygen("dee", [f"emergency = {TODAY}", f"born = {BORN}"])
    eve = er.keygen("eve", [f"emergency = {TODAY}"])
    path = tmp_path / "ER.register.sqlite"
    v1_register(path, [("a" * 32, nurse, cp_fp, {}), ("b" * 32, dee, er_fp, {}),
                       ("c" * 32, eve, er_fp, {}),
                       ("d" * 32, None, er_fp, {"event": "withdrawn", "scheme": "rw15", "gid": "eve"})])
    with contextlib.closing(sqlite3.connect(path)) as db:
        old_rows = db.execute(f"SELECT {V1_COLUMNS} FROM issuances ORDER BY seq").fetchall()

    register = Register(path)
    assert register.upgraded_from == 1
    assert Register(path).upgraded_from is None  # once
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM register_meta WHERE name = 'schema'").fetchone() == ("2",)
        assert db.execute(f"SELECT {V1_COLUMNS} FROM issuances ORDER BY seq").fetchall() == old_rows
        assert db.execute("SELECT * FROM vault_versions").fetchall() == [("nurse", 3)]
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE issuances SET expiring = '[\"born@ER\"]'")  # still append-only
    assert [row.expiring for row in register.issuances()] == [None] * 4  # not recorded

    # RW15 issuances of schema 1 are not renewed: nothing says which dates are expiries
    er = Authority(er.public_key, er.secret_key, register=register)
    with pytest.raises(NotRenewable, match="recorded before the register kept which attributes"):
        renew(er, dee, LATER)
    with pytest.raises(NotRenewable, match="withdrawn"):
        renew(er, eve, LATER)  # the withdrawal recorded under schema 1 still holds
    # CP issuances renew as before (valid_until only); new issuances record expiring attributes
    cp = CPABE(cp.public_key, cp.master_key, register=register)
    assert renew(cp, nurse, LATER).record.meta["attributes"] == ["nurse", f"valid_until = {LATER}"]
    dee2 = er.keygen("dee", [f"emergency = {TODAY}", f"born = {BORN}"], expiring=["emergency"])
    assert renew(er, dee2, LATER).record.meta["attributes"] == [
        f"emergency = {LATER}@ER", f"born = {BORN}@ER"]


def test_schema_1_register_through_the_cli(tmp_path):
    auth = tmp_path / "auth"
    assert run("authority", "setup", "ER", "-o", auth).exit_code == 0
    er = Authority(read_key(auth / "ER.pub"), read_key(auth / "ER.key"))
    old = er.keygen("dee", [f"emergency = {TODAY}"])
    old.save(tmp_path / "old.key")
    path = auth / "ER.register.sqlite"
    path.unlink()
    v1_register(path, [("b" * 32, old, fingerprint(er.public_key), {})])
    result = run("renew", "-m", auth / "ER.key", "-i", tmp_path / "old.key", "--until", LATER,
                 "-o", tmp_path / "new.key")
    assert result.exit_code == 1 and not (tmp_path / "new.key").exists()
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("note: upgraded issuance register") and "--expiring" in lines[0]
    assert lines[1].startswith("error: ") and "recorded before the register kept" in lines[1]
    result = run("authority", "keygen", "-m", auth / "ER.key", "--gid", "dee", "-a",
                 f"emergency = {TODAY}", "--expiring", "emergency", "-o", tmp_path / "dee.key")
    assert result.exit_code == 0 and "note:" not in result.output  # upgraded once
    assert run("renew", "-m", auth / "ER.key", "-i", tmp_path / "dee.key", "--until", LATER,
               "-o", tmp_path / "new.key").exit_code == 0


def test_a_schema_1_register_that_cannot_be_upgraded_is_refused(tmp_path):
    """The upgrade is one transaction: when it fails, the register is left as it was (schema 1)
    and the error says what happens and who can do it."""
    path = tmp_path / "register.sqlite"
    v1_register(path, [])
    with contextlib.closing(sqlite3.connect(path)) as db:  # a column the upgrade then cannot add
        db.execute("ALTER TABLE issuances ADD COLUMN expiring TEXT")
        db.commit()
    with pytest.raises(RegisterError, match=r"cannot upgrade .*register\.sqlite from schema 1 to 2 "
                                            r".*by a user that can write it"):
        Register(path)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT value FROM register_meta WHERE name = 'schema'").fetchone() == ("1",)
