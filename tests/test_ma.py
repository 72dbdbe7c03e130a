"""RW15 multi-authority ABE and the PHR model: authorities, GIDs, collusion, break-glass."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health.api import decrypt
from abe_health.errors import InvalidKey, PolicyNotSatisfied
from abe_health.keys import Key, load_key
from abe_health.ma import Authority, ma_encrypt
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
    blob = ma_encrypt(b"cohort data", policy, pks(world, "hospitalA", "university"))
    alice = [world["hospitalA"].keygen("alice", ["doctor"]),
             world["university"].keygen("alice", ["researcher"])]
    assert decrypt(blob, alice) == b"cohort data"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, alice[:1])
    # the same attribute name from an authority the policy does not name is useless
    impostor = [world["hospitalA"].keygen("carol", ["doctor"]),
                world["insurer"].keygen("carol", ["researcher"])]
    assert impostor[1].record.meta["attributes"] == ["researcher@insurer"]
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, impostor)


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
        ma_encrypt(b"x", "doctor@hospitalA and researcher@university", pks(world, "hospitalA"))
    with pytest.raises(InvalidKey, match="names the authority of every attribute"):
        ma_encrypt(b"x", "doctor and nurse@hospitalA", pks(world, "hospitalA"))


def test_expiring_emergency_keys(world):
    policy = f"emergency@ER and valid_until >= {TODAY.isoformat()}@ER"
    blob = ma_encrypt(b"allergies: penicillin", policy, pks(world, "ER"))
    fresh = world["ER"].keygen("dr-er", ["emergency", f"valid_until = {TODAY + dt.timedelta(2)}"])
    on_the_day = world["ER"].keygen("dr-er2", ["emergency", f"valid_until = {TODAY}"])
    expired = world["ER"].keygen("dr-er3", ["emergency", f"valid_until = {TODAY - dt.timedelta(1)}"])
    assert decrypt(blob, [fresh]) == b"allergies: penicillin"
    assert decrypt(blob, [on_the_day]) == b"allergies: penicillin"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(blob, [expired])


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
    "emergency": ([("ER", ["emergency", f"valid_until = {TODAY + dt.timedelta(1)}"])],
                  {"profile", "medications"}),
    "expired emergency": ([("ER", ["emergency", f"valid_until = {TODAY - dt.timedelta(1)}"])], set()),
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
    blob = ma_encrypt(b"m", policy, pks(world, "hospitalA", "university"))
    satisfied = sum(1 for leaf in leaves if leaf in held) >= k
    if satisfied:
        assert decrypt(blob, keys) == b"m"
    else:
        with pytest.raises((PolicyNotSatisfied, InvalidKey)):
            decrypt(blob, keys)
