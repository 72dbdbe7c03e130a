"""RW15 multi-authority ABE and the PHR model: authorities, GIDs, collusion, break-glass."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health import MultiAuthorityRecipient, decrypt, encrypt
from abe_health.errors import InvalidKey, PolicyNotSatisfied, PolicySyntaxError
from abe_health.keys import Key, load_key
from abe_health.ma import Authority
from abe_health.phr import PolicyMap, decrypt_record, encrypt_record
from abe_health.policy import And, Attribute, Comparison, KeyAttributes, Or, Policy, Threshold

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
    assert result.exit_code == 3 and result.output.startswith("error: ")  # 3: not satisfied
    assert not (tmp_path / "x.out").exists()


# -- RW15 ranges: two comparisons on one attribute must hold for ONE issuance's value ----------


def _ward_keys(world, gid: str, *values: int) -> list[Key]:
    return [world["hospitalA"].keygen(gid, ["nurse", f"ward = {v}"]) for v in values]


@pytest.mark.parametrize("policy", [
    "nurse@hospitalA and ward >= 3@hospitalA and ward <= 5@hospitalA",
    "ward <= 5@hospitalA and nurse@hospitalA and ward >= 3@hospitalA",
    "nurse@hospitalA and ward in 3..5@hospitalA",
    "nurse@hospitalA and 2 of (ward >= 3@hospitalA, ward <= 5@hospitalA)",
])
def test_merged_ward_keys_do_not_satisfy_a_range_neither_holds(world, policy):
    """Break F2: keys of one GID with ward = 2 and ward = 7 satisfied `ward >= 3 and ward <= 5`
    together (7 for one side, 2 for the other). One label of one key must now certify the range."""
    blob = encrypt(b"ward 3-5 rota", None, MultiAuthorityRecipient(policy, pks(world, "hospitalA")))
    two, seven = _ward_keys(world, "alice", 2, 7)
    for attempt in ([two, seven], [merged(two, seven)], [two], [seven]):
        with pytest.raises(PolicyNotSatisfied):
            decrypt(blob, None, attempt)
    (four,) = _ward_keys(world, "alice", 4)
    assert decrypt(blob, None, four) == b"ward 3-5 rota"
    assert decrypt(blob, None, merged(two, four, seven)) == b"ward 3-5 rota"


def test_merged_emergency_keys_do_not_satisfy_a_date_range_neither_holds(world):
    june = dt.date(2026, 6, 1), dt.date(2026, 6, 30)
    keys = [world["ER"].keygen("eve", [f"emergency = {d}"])
            for d in (june[0] - dt.timedelta(1), june[1] + dt.timedelta(1))]
    for policy in (f"emergency >= {june[0]}@ER and emergency <= {june[1]}@ER",
                   f"emergency in {june[0]}..{june[1]}@ER"):
        blob = encrypt(b"june", None, MultiAuthorityRecipient(policy, pks(world, "ER")))
        for attempt in (keys, [merged(*keys)], keys[:1], keys[1:]):
            with pytest.raises(PolicyNotSatisfied):
                decrypt(blob, None, attempt)
        inside = world["ER"].keygen("eve", [f"emergency = {june[1]}"])
        assert decrypt(blob, None, [keys[0], inside]) == b"june"


@pytest.mark.parametrize("policy", [
    "(ward >= 3@hospitalA or doctor@hospitalA) and ward <= 5@hospitalA",
    "2 of (ward >= 3@hospitalA, ward <= 5@hospitalA, nurse@hospitalA)",
    "ward = 3@hospitalA and ward >= 2@hospitalA",
    "ward < 3@hospitalA and ward > 5@hospitalA",
])
def test_rw15_refuses_shapes_merged_keys_could_split(world, policy):
    """What the compiler cannot merge into one exact set, RW15 refuses to encrypt under, naming
    the attribute (the single-authority schemes, whose keys never pool, keep these shapes)."""
    with pytest.raises(PolicySyntaxError, match="ward@hospitalA"):
        encrypt(b"m", None, MultiAuthorityRecipient(policy, pks(world, "hospitalA")))


@st.composite
def _level_comparisons(draw, width: int) -> Comparison:
    """A comparison or range on level@university that some value of `width` bits satisfies."""
    top = (1 << width) - 1
    lo, hi = sorted((draw(st.integers(0, top)), draw(st.integers(0, top))))
    op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "in"]))
    if op == "in":
        return Comparison("level", "in", lo, False, "university", width, hi)
    if (op == "<" and hi == 0) or (op == ">" and hi == top):
        op = "=="
    return Comparison("level", op, hi, False, "university", width)


def _level_trees(width: int) -> st.SearchStrategy:
    def gates(sub: st.SearchStrategy) -> st.SearchStrategy:
        kids = st.lists(sub, min_size=2, max_size=3)
        return st.one_of(kids.map(lambda cs: And(tuple(cs))), kids.map(lambda cs: Or(tuple(cs))),
                         kids.flatmap(lambda cs: st.integers(1, len(cs)).map(
                             lambda k: Threshold(k, tuple(cs)))))

    return st.recursive(_level_comparisons(width), gates, max_leaves=6)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_merged_numeric_keys_open_exactly_what_one_of_them_opens_for_any_policy(world, data):
    """Random policies over one numeric attribute (comparisons and ranges under AND, OR and
    thresholds), through RW15: keys of one GID with values a and b, merged into one key, open
    the ciphertext iff a alone or b alone satisfies the policy (plain evaluation), and each key
    alone opens it iff its value does. Policies RW15 refuses (a part under an AND or threshold no
    single value satisfies) are refused when encrypting."""
    width = data.draw(st.integers(1, 5), label="width")
    tree = data.draw(_level_trees(width), label="tree")
    a, b = (data.draw(st.integers(0, (1 << width) - 1), label=n) for n in ("a", "b"))
    authority = world["university"]
    scheme = authority.public_key.scheme
    widths = {"level": width}
    policy = Policy(tree)
    try:
        k, ct = scheme.encapsulate({"university": authority.public_key.record}, policy)
    except PolicySyntaxError as exc:
        assert "can never be satisfied by one value" in str(exc)
        return
    attributes = {v: KeyAttributes((Attribute("level", str(v), "university"),), widths) for v in (a, b)}
    ka, kb = (Key(scheme, scheme.keygen(authority.public_key.record, authority.secret_key.record,
                                        "hal", attributes[v])) for v in (a, b))
    alone = {v: policy.is_satisfied_by(attributes[v]) for v in (a, b)}
    for keys, expected in (([merged(ka, kb).record], alone[a] or alone[b]),
                           ([ka.record], alone[a]), ([kb.record], alone[b])):
        if expected:
            assert scheme.decapsulate(keys, ct) == k
        else:
            with pytest.raises(PolicyNotSatisfied):
                scheme.decapsulate(keys, ct)


def test_range_break_through_the_cli(tmp_path):
    """The reproduction of break F2, command by command."""
    from click.testing import CliRunner

    from abe_health.cli import main
    from abe_health.keys import read_key

    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert "Traceback" not in result.output
        return result

    auth = tmp_path / "auth"
    assert run("authority", "setup", "H", "-o", auth).exit_code == 0
    for name, ward in (("a1", 2), ("a2", 7)):
        assert run("authority", "keygen", "-m", auth / "H.key", "--gid", "alice", "-a", "nurse",
                   "-a", f"ward = {ward}", "-o", tmp_path / f"{name}.key").exit_code == 0
    merged(read_key(tmp_path / "a1.key"), read_key(tmp_path / "a2.key")).save(tmp_path / "m.key")
    (tmp_path / "rec.json").write_text('{"rota": "3-5"}')
    for i, policy in enumerate(("nurse@H and ward >= 3@H and ward <= 5@H", "nurse@H and ward in 3..5@H")):
        rec = tmp_path / f"rec{i}.abe"
        assert run("encrypt", "--authority", auth / "H.pub", "-p", policy, "-o", rec,
                   tmp_path / "rec.json").exit_code == 0
        for keys in (["a1.key", "a2.key"], ["m.key"]):
            result = run("decrypt", *[a for k in keys for a in ("-i", tmp_path / k)], rec)
            assert result.exit_code != 0 and "do not satisfy" in result.output, result.output
    result = run("encrypt", "--authority", auth / "H.pub", "-p",
                 "(ward >= 3@H or doctor@H) and ward <= 5@H", "-o", tmp_path / "no.abe",
                 tmp_path / "rec.json")
    assert result.exit_code == 1 and "ward@H is constrained twice" in result.output
    assert "ward in LO..HI" in result.output and not (tmp_path / "no.abe").exists()
