"""RW15 multi-authority ABE and the PHR model: authorities, GIDs, collusion, break-glass."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health import MultiAuthorityRecipient, decrypt, encrypt
from abe_health.errors import InvalidKey, PolicyNotSatisfied
from abe_health.keys import Key, load_key
from abe_health.ma import Authority
from abe_health.phr import PolicyMap, decrypt_record, encrypt_record
from abe_health.policy import Attribute, KeyAttributes, Policy

TODAY = dt.date(2026, 11, 22)


@pytest.fixture(scope="module")
def world():
    names = ["hospitalA", "university", "insurer", "patient", "ER"]
    return {name: Authority.setup(name) for name in names}


def pks(world, *names):
    return [world[n].public_key for n in (names or world)]


def test_cross_authority_policy(world):
    policy = "doctor@hospitalA and researcher@university"
    blob = encrypt(b"cohort data", None,
                   MultiAuthorityRecipient(policy, pks(world, "hospitalA", "university")))
    alice = [world["hospitalA"].keygen("alice", ["doctor"]),
             world["university"].keygen("alice", ["researcher"])]
    assert decrypt(blob, None, alice) == b"cohort data"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, alice[:1])
    # the same attribute name from an authority the policy does not name is useless
    impostor = [world["hospitalA"].keygen("carol", ["doctor"]),
                world["insurer"].keygen("carol", ["researcher"])]
    assert impostor[1].record.meta["attributes"] == ["researcher@insurer"]
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, impostor)


def test_keys_of_two_gids_do_not_combine(world):
    policy = "doctor@hospitalA and researcher@university"
    scheme = world["hospitalA"].public_key.scheme
    k, ct = scheme.encapsulate({n: world[n].public_key.record for n in ("hospitalA", "university")},
                               Policy.parse(policy))
    alice = world["hospitalA"].keygen("alice", ["doctor"])
    bob = world["university"].keygen("bob", ["researcher"])
    with pytest.raises(InvalidKey, match="different users"):
        scheme.decapsulate([alice.record, bob.record], ct)
    forged = dataclasses.replace(bob.record, meta={**bob.record.meta, "gid": "alice"})
    assert scheme.decapsulate([alice.record, forged], ct) != k
    honest = world["university"].keygen("alice", ["researcher"])
    assert scheme.decapsulate([alice.record, honest.record], ct) == k


def test_an_authority_cannot_decrypt_what_needs_another(world):
    """hospitalA's secret key alone: refused for its foreign attributes, and a forged component
    for another authority's attribute does not decrypt."""
    hospital = world["hospitalA"]
    policy = Policy.parse("doctor@hospitalA and researcher@university")
    scheme = hospital.public_key.scheme
    k, ct = scheme.encapsulate({n: world[n].public_key.record for n in ("hospitalA", "university")},
                               policy)
    with pytest.raises(InvalidKey, match="cannot issue"):
        hospital.keygen("mallory", ["researcher@university"])
    # a malicious hospitalA computes the university's component with its own secrets
    own = scheme.keygen(hospital.public_key.record, hospital.secret_key.record, "mallory",
                        KeyAttributes((Attribute("doctor", None, "hospitalA"),
                                       Attribute("researcher", None, "hospitalA"))))
    parts = {"K": dict(own["K"]), "Kp": dict(own["Kp"])}
    parts["K"]["researcher@university"] = parts["K"].pop("researcher@hospitalA")
    parts["Kp"]["researcher@university"] = parts["Kp"].pop("researcher@hospitalA")
    forged = dataclasses.replace(own, parts=parts)
    assert scheme.decapsulate([forged], ct) != k


def test_policy_must_name_known_authorities(world):
    with pytest.raises(InvalidKey, match="needs the public key of authority university"):
        MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                pks(world, "hospitalA")).encapsulate()
    with pytest.raises(InvalidKey, match="names the authority of every attribute"):
        MultiAuthorityRecipient("doctor and nurse@hospitalA", pks(world, "hospitalA")).encapsulate()


def test_expiring_emergency_keys(world):
    policy = f"emergency >= {TODAY.isoformat()}@ER"
    blob = encrypt(b"allergies: penicillin", None, MultiAuthorityRecipient(policy, pks(world, "ER")))
    fresh = world["ER"].keygen("dr-er", [f"emergency = {TODAY + dt.timedelta(2)}"])
    on_the_day = world["ER"].keygen("dr-er2", [f"emergency = {TODAY}"])
    expired = world["ER"].keygen("dr-er3", [f"emergency = {TODAY - dt.timedelta(1)}"])
    assert decrypt(blob, None, fresh) == b"allergies: penicillin"
    assert decrypt(blob, None, on_the_day) == b"allergies: penicillin"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, None, expired)


def test_keys_round_trip(world):
    key = world["patient"].keygen("gp-1", ["gp"])
    again = load_key(key.to_bytes(armor=True))
    assert isinstance(again, Key) and again.record.parts == key.record.parts
    assert again.record.meta["gid"] == "gp-1"
    assert load_key(world["patient"].public_key.to_bytes()).record.meta["authority"] == "patient"


POLICY_MAP = {
    "sections": {
        "profile": "doctor@hospitalA or nurse@hospitalA or family@patient",
        "medications": "doctor@hospitalA or nurse@hospitalA",
        "lab_results": "doctor@hospitalA or (researcher@university and consent@patient)",
        "mental_health": "psychiatrist@hospitalA or gp@patient",
        "billing": "claims@insurer",
    },
    "default": "doctor@hospitalA",
    "emergency": ["profile", "medications"],
}
RECORD = {
    "profile": {"name": "P-17", "blood": "A+"},
    "medications": ["warfarin"],
    "lab_results": {"inr": 2.4},
    "mental_health": "notes",
    "billing": {"code": "I48"},
    "genomics": "BRCA2 negative",  # no entry: the default policy applies
}
ROLES = {
    "doctor": ([("hospitalA", ["doctor"])],
               {"profile", "medications", "lab_results", "genomics"}),
    "researcher": ([("university", ["researcher"]), ("patient", ["consent"])], {"lab_results"}),
    "family": ([("patient", ["family"])], {"profile"}),
    "emergency": ([("ER", [f"emergency = {TODAY + dt.timedelta(1)}"])], {"profile", "medications"}),
    "expired emergency": ([("ER", [f"emergency = {TODAY - dt.timedelta(1)}"])], set()),
    "insurer": ([("insurer", ["claims"])], {"billing"}),
}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_phr_sections_by_role(world, role):
    blob = encrypt_record(RECORD, PolicyMap.from_json(POLICY_MAP), pks(world), today=TODAY)
    grants, expected = ROLES[role]
    keys = [world[auth].keygen(f"user-{role}", attrs) for auth, attrs in grants]
    visible, closed = decrypt_record(blob, keys)
    assert set(visible) == expected
    assert set(closed) == set(RECORD) - expected
    for name in expected:
        assert visible[name] == RECORD[name]
    for why in closed.values():
        assert "do not satisfy policy" in why


def test_policy_map_errors():
    from abe_health.errors import PolicySyntaxError

    with pytest.raises(PolicySyntaxError, match="column"):
        PolicyMap.from_json({"sections": {"a": "doctor@A and"}})
    with pytest.raises(PolicySyntaxError, match="no policy for section"):
        PolicyMap.from_json({"sections": {"a": "x@A"}}).policy_for("b", TODAY)
    with pytest.raises(PolicySyntaxError, match="list of section names"):
        PolicyMap.from_json({"sections": {}, "emergency": "profile"})


@settings(max_examples=10)
@given(data=st.data())
def test_random_two_authority_policies(world, data):
    names = [f"{a}@{auth}" for a in ("x", "y", "z") for auth in ("hospitalA", "university")]
    leaves = data.draw(st.lists(st.sampled_from(names), min_size=2, max_size=5))
    k = data.draw(st.integers(1, len(leaves)))
    policy = f"{k} of ({', '.join(leaves)})" if len(leaves) > 1 else leaves[0]
    held = data.draw(st.sets(st.sampled_from(names)))
    keys = [world[auth].keygen("h", [n for n in held if n.endswith("@" + auth)])
            for auth in ("hospitalA", "university") if any(n.endswith("@" + auth) for n in held)]
    blob = encrypt(b"m", None, MultiAuthorityRecipient(policy, pks(world, "hospitalA", "university")))
    satisfied = sum(1 for leaf in leaves if leaf in held) >= k
    if satisfied:
        assert decrypt(blob, None, keys) == b"m"
    else:
        with pytest.raises((PolicyNotSatisfied, InvalidKey)):
            decrypt(blob, None, keys)


# -- RW15 expiry: attributes of one GID accumulate, so the expiry is the attribute's own value ------


def merged(*keys: Key) -> Key:
    """One key file holding the components of several keys of one GID (what a holder can make:
    RW15 binds components only through H(GID), so these combine by design)."""
    first = keys[0].record
    parts: dict[str, dict] = {"K": {}, "Kp": {}}
    for key in keys:
        parts["K"].update(key.record["K"])
        parts["Kp"].update(key.record["Kp"])
    return Key(keys[0].scheme, dataclasses.replace(first, parts=parts))


def bit_mixing_dates(target: int) -> tuple[int, int]:
    """Two values below `target` whose bits together include every bit of `target` (so a
    bag-of-bits encoding would let their union satisfy `>= target`): target minus each of its two
    lowest set bits."""
    low = target & -target
    second = (target - low) & -(target - low)
    return target - low, target - second


def day(n: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=n)


def test_rw15_refuses_a_key_wide_valid_until(world):
    with pytest.raises(InvalidKey, match="emergency = "):
        world["ER"].keygen("dr-x", ["emergency", f"valid_until = {TODAY}"])
    with pytest.raises(InvalidKey, match="accumulate"):
        world["hospitalA"].keygen("dr-x", ["valid_until@hospitalA"])


def test_break_glass_clause_tests_the_dated_emergency_attribute():
    pmap = PolicyMap.from_json(POLICY_MAP)
    assert pmap.policy_for("profile", TODAY) == \
        "doctor@hospitalA or nurse@hospitalA or family@patient or emergency >= 2026-11-22@ER"
    assert pmap.policy_for("billing", TODAY) == "claims@insurer"


def test_two_expired_emergency_keys_merged_do_not_open_break_glass(world):
    days = (TODAY - dt.date(1970, 1, 1)).days
    d1, d2 = bit_mixing_dates(days)
    assert day(d1) < TODAY and day(d2) < TODAY
    keys = [world["ER"].keygen("eve", [f"emergency = {day(d)}"]) for d in (d1, d2)]
    blob = encrypt_record(RECORD, PolicyMap.from_json(POLICY_MAP), pks(world), today=TODAY)
    for attempt in ([merged(*keys)], keys):
        visible, closed = decrypt_record(blob, attempt)
        assert visible == {}
        assert set(closed) == set(RECORD)


def test_expired_emergency_key_and_fresh_key_without_emergency(world):
    expired = world["ER"].keygen("finn", [f"emergency = {TODAY - dt.timedelta(1)}"])
    fresh = world["ER"].keygen("finn", ["paramedic", f"triage = {TODAY + dt.timedelta(90)}"])
    blob = encrypt_record(RECORD, PolicyMap.from_json(POLICY_MAP), pks(world), today=TODAY)
    for attempt in ([merged(expired, fresh)], [expired, fresh]):
        visible, _ = decrypt_record(blob, attempt)
        assert visible == {}


def test_old_and_renewed_emergency_keys_do_not_combine_into_a_later_date(tmp_path):
    from abe_health.register import Register
    from abe_health.revocation import renew

    er = Authority.setup("ER", register=Register.create(tmp_path / "ER.register.sqlite"))
    today = dt.date.today()
    # the first day at least 260 days ahead whose number has bits 8 and 9 set: the renewed key
    # (target - 256) and the old one (target - 512) then hold, between them, every bit of it
    target = next(n for n in range((today - day(0)).days + 260, 1 << 20) if n & 0x300 == 0x300)
    new_day, old_day = bit_mixing_dates(target) if target & 0xFF == 0 else (target - 256, target - 512)
    assert (day(target) - day(new_day)).days >= 200 and day(new_day) >= today
    old = er.keygen("gus", [f"emergency = {day(old_day)}"], expiring=["emergency"])
    renewed = renew(er, old, day(new_day))
    assert renewed.record.meta["attributes"] == [f"emergency = {day(new_day)}@ER"]
    blob = encrypt(b"later", None, MultiAuthorityRecipient(f"emergency >= {day(target)}@ER", [er.public_key]))
    for attempt in ([merged(old, renewed)], [old, renewed]):
        with pytest.raises(PolicyNotSatisfied):
            decrypt(blob, None, attempt)
    now = encrypt(b"now", None, MultiAuthorityRecipient(f"emergency >= {today}@ER", [er.public_key]))
    assert decrypt(now, None, merged(old, renewed)) == b"now"


@settings(max_examples=25)
@given(data=st.data())
def test_merged_numeric_keys_open_exactly_what_one_of_them_opens(world, data):
    """Keys of one GID with values a and b of one numeric attribute, from separate issuances and
    merged into one key, open a comparison iff a or b alone satisfies it."""
    width = data.draw(st.integers(1, 12), label="width")
    top = (1 << width) - 1
    a = data.draw(st.integers(0, top), label="a")
    b = data.draw(st.integers(0, top), label="b")
    op = data.draw(st.sampled_from(["<", "<=", ">", ">=", "=="]), label="op")
    c = data.draw(st.integers(0, top), label="c")
    if (op == "<" and c == 0) or (op == ">" and c == top):
        return  # no value satisfies it: refused when parsed
    authority = world["university"]
    scheme = authority.public_key.scheme
    widths = {"level": width}
    ka, kb = (scheme.keygen(authority.public_key.record, authority.secret_key.record, "hal",
                            KeyAttributes((Attribute("level", str(v), "university"),), widths))
              for v in (a, b))
    key = merged(Key(scheme, ka), Key(scheme, kb))
    policy = Policy.parse(f"level {op} {c}@university", widths)
    k, ct = scheme.encapsulate({"university": authority.public_key.record}, policy)
    holds = {"<": a < c or b < c, "<=": min(a, b) <= c, ">": max(a, b) > c,
             ">=": max(a, b) >= c, "==": c in (a, b)}[op]
    if holds:
        assert scheme.decapsulate([key.record], ct) == k
    else:
        with pytest.raises(PolicyNotSatisfied):
            scheme.decapsulate([key.record], ct)


def test_expiry_forgeries_through_the_cli(tmp_path):
    import json

    from click.testing import CliRunner

    from abe_health.cli import main
    from abe_health.keys import read_key

    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert "Traceback" not in result.output
        return result

    auth = tmp_path / "auth"
    for name in ("hospitalA", "ER"):
        assert run("authority", "setup", name, "-o", auth).exit_code == 0
    result = run("authority", "keygen", "-m", auth / "ER.key", "--gid", "eve", "-a", "emergency",
                 "-a", f"valid_until = {TODAY}", "-o", tmp_path / "no.key")
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert "emergency = " in result.output and not (tmp_path / "no.key").exists()
    today = dt.date.today()
    d1, d2 = bit_mixing_dates((today - day(0)).days)
    for i, d in enumerate((d1, d2)):
        assert run("authority", "keygen", "-m", auth / "ER.key", "--gid", "eve", "-a",
                   f"emergency = {day(d)}", "-o", tmp_path / f"eve{i}.key").exit_code == 0
    assert run("authority", "keygen", "-m", auth / "ER.key", "--gid", "eve", "-a", "paramedic",
               "-a", f"triage = {today + dt.timedelta(30)}", "-o", tmp_path / "eve-fresh.key"
               ).exit_code == 0
    merged(read_key(tmp_path / "eve0.key"), read_key(tmp_path / "eve1.key")).save(tmp_path / "m.key")
    (tmp_path / "rec.json").write_text(json.dumps({"profile": {"blood": "A+"}, "notes": "x"}))
    (tmp_path / "map.json").write_text(json.dumps({
        "sections": {"profile": "doctor@hospitalA", "notes": "doctor@hospitalA"},
        "emergency": ["profile"]}))
    assert run("phr", "encrypt", tmp_path / "rec.json", "--policies", tmp_path / "map.json",
               "--authorities", auth, "-o", tmp_path / "rec.phr").exit_code == 0
    for keys in (["m.key"], ["eve0.key", "eve1.key"], ["eve1.key", "eve-fresh.key"]):
        args = [a for k in keys for a in ("-i", tmp_path / k)]
        result = run("phr", "decrypt", tmp_path / "rec.phr", *args)
        assert result.exit_code == 1, keys
        assert "error: none of the 2 sections opens with these keys" in result.output
    # old + renewed: the renewal is what the register holds, with the new day
    target = next(n for n in range((today - day(0)).days + 260, 1 << 20) if n & 0x300 == 0x300)
    new_day, old_day = target - 256, target - 512
    assert run("authority", "keygen", "-m", auth / "ER.key", "--gid", "gus", "-a",
               f"emergency = {day(old_day)}", "--expiring", "emergency",
               "-o", tmp_path / "gus-old.key").exit_code == 0
    assert run("renew", "-m", auth / "ER.key", "-i", tmp_path / "gus-old.key", "--until",
               day(new_day), "-o", tmp_path / "gus-new.key").exit_code == 0
    (tmp_path / "x").write_bytes(b"later")
    assert run("encrypt", "--authority", auth / "ER.pub", "-p", f"emergency >= {day(target)}@ER",
               "-o", tmp_path / "x.abe", tmp_path / "x").exit_code == 0
    result = run("decrypt", "-i", tmp_path / "gus-old.key", "-i", tmp_path / "gus-new.key",
                 "-o", tmp_path / "x.out", tmp_path / "x.abe")
    assert result.exit_code == 1 and result.output.startswith("error: ")
    assert not (tmp_path / "x.out").exists()
