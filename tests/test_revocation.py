"""Expiring access: keys die after valid_until and work on it; renewal (from the authority's
issuance register) restores access."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from abe_health import MultiAuthorityRecipient, PolicyRecipient, decrypt, encrypt
from abe_health.authority import CPABE
from abe_health.cli import main
from abe_health.errors import InvalidKey, PolicyNotSatisfied
from abe_health.keys import read_key
from abe_health.ma import Authority
from abe_health.register import NotRenewable, Register
from abe_health.revocation import renew

TODAY = dt.date.today()


def test_expiry_boundary_and_renewal(tmp_path):
    hospital = CPABE.setup(register=Register.create(tmp_path / "register.sqlite"))
    policy = f"nurse and valid_until >= {TODAY.isoformat()}"
    blob = encrypt(b"ward 3 notes", None, PolicyRecipient(hospital.public_key, policy))
    on_the_day = hospital.keygen(["nurse", f"valid_until = {TODAY}"])
    day_before = hospital.keygen(["nurse", f"valid_until = {TODAY - dt.timedelta(1)}"])
    assert decrypt(blob, None, on_the_day) == b"ward 3 notes"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, day_before)
    with pytest.raises(InvalidKey, match="in the past"):
        renew(hospital, day_before, TODAY - dt.timedelta(2))
    renewed = renew(hospital, day_before, TODAY + dt.timedelta(7))
    assert renewed.record.meta["attributes"] == ["nurse", f"valid_until = {TODAY + dt.timedelta(7)}"]
    assert decrypt(blob, None, renewed) == b"ward 3 notes"
    with pytest.raises(InvalidKey, match="issuance register"):
        renew(CPABE(hospital.public_key, hospital.master_key), renewed, TODAY)


def test_emergency_key_renewal_multi_authority(tmp_path):
    er = Authority.setup("ER", register=Register.create(tmp_path / "ER.register.sqlite"))
    blob = encrypt(b"allergies", None, MultiAuthorityRecipient(f"emergency >= {TODAY}@ER", [er.public_key]))
    old = er.keygen("dr-er", [f"emergency = {TODAY - dt.timedelta(1)}", "triage"],
                    expiring=["emergency"])
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, old)
    fresh = renew(er, old, TODAY + dt.timedelta(1))
    assert fresh.record.meta["gid"] == "dr-er"
    assert fresh.record.meta["attributes"] == [f"emergency = {TODAY + dt.timedelta(1)}@ER", "triage@ER"]
    assert decrypt(blob, None, fresh) == b"allergies"
    other = Authority.setup("other", register=Register.create(tmp_path / "other.register.sqlite"))
    with pytest.raises(NotRenewable, match="not in the issuance register"):
        renew(other, fresh, TODAY)
    undated = er.keygen("dr-er", ["triage"])
    with pytest.raises(NotRenewable, match="no expiring attribute"):
        renew(er, undated, TODAY)


def test_renew_cli(tmp_path):
    runner = CliRunner()
    assert runner.invoke(main, ["setup", "-o", str(tmp_path / "h")]).exit_code == 0
    old_date = (TODAY - dt.timedelta(3)).isoformat()
    result = runner.invoke(main, ["keygen", "-m", str(tmp_path / "h" / "master.key"), "-a", "nurse",
                                  "-a", f"valid_until = {old_date}", "-o", str(tmp_path / "old.key")])
    assert result.exit_code == 0, result.output
    until = (TODAY + dt.timedelta(30)).isoformat()
    result = runner.invoke(main, ["renew", "-m", str(tmp_path / "h" / "master.key"),
                                  "-i", str(tmp_path / "old.key"), "--until", until,
                                  "-o", str(tmp_path / "new.key")])
    assert result.exit_code == 0, result.output
    assert read_key(tmp_path / "new.key").record.meta["attributes"] == ["nurse", f"valid_until = {until}"]
    result = runner.invoke(main, ["renew", "-m", str(tmp_path / "h" / "master.key"),
                                  "-i", str(tmp_path / "old.key"), "--until", until,
                                  "-o", str(tmp_path / "again.key")])
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "already renewed" in result.output and "Traceback" not in result.output
