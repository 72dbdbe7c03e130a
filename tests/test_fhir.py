"""FHIR bundles end to end: every Synthea fixture round-trips for every role, the visible set is
the policy map evaluated in plain Python (also under hypothesis over random maps and role sets),
decrypted bundles validate with the FHIR R4 models, references to withheld resources are kept
and marked, and bad input gives typed errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abe_health import CPABE
from abe_health.errors import InvalidBundle, InvalidKey, InvalidPolicyMap, MissingExtra, PolicyNotSatisfied
from abe_health.fhir import (
    FhirPolicyMap,
    decrypt_bundle,
    describe_container,
    encrypt_bundle,
    load_bundle,
    validate_bundle,
)
from abe_health.fhir.decrypt import MASKED, REDACTED
from abe_health.fhir.policymap import ACT_CODE, CONFIDENTIALITY
from abe_health.ma import Authority
from abe_health.policy import Policy, parse_attributes

DATA = Path(__file__).parent / "data" / "fhir"
FIXTURES = sorted(DATA.glob("*.json"))
TODAY = dt.date(2026, 11, 22)
DAY = dt.timedelta(1)
MAP = {
    "labels": {"PSY": "psychiatrist@H", "R": "doctor@H and senior@H"},
    "types": {
        "Observation:laboratory": "doctor@H or (researcher@U and consent@P)",
        "Observation": "doctor@H",
        "Condition": {"policy": "doctor@H", "break_glass": True},
        "Patient": {"policy": "doctor@H or psychiatrist@H", "break_glass": True},
        "Immunization": {"policy": "doctor@H or nurse@H", "break_glass": True},
        "Claim": "billing@H",
        "ExplanationOfBenefit": "billing@H",
    },
    "default": "doctor@H or psychiatrist@H",
}
#: role -> [(authority, attributes)], all under one GID
ROLES = {
    "gp": [("H", ["doctor"])],
    "psychiatrist": [("H", ["psychiatrist"])],
    "researcher with consent": [("U", ["researcher"]), ("P", ["consent"])],
    "billing": [("H", ["billing"])],
    "emergency, valid": [("ER", [f"emergency = {TODAY + DAY}"])],
    "emergency, expired": [("ER", [f"emergency = {TODAY - DAY}"])],
    "senior gp": [("H", ["doctor", "senior"])],
}


def labelled(bundle: dict) -> dict:
    """The fixture with an HL7 sensitivity label PSY on its first Condition and confidentiality R
    on its first Observation (Synthea writes none)."""
    bundle = copy.deepcopy(bundle)
    kinds = {"Condition": {"system": ACT_CODE, "code": "PSY"},
             "Observation": {"system": CONFIDENTIALITY, "code": "R"}}
    for entry in bundle["entry"]:
        label = kinds.pop(entry["resource"]["resourceType"], None)
        if label is not None:
            entry["resource"].setdefault("meta", {}).setdefault("security", []).append(label)
    return bundle


def role_attributes(role: str) -> list[str]:
    return [f"{attr.replace(' = ', ' = ', 1)}@{auth}" for auth, attrs in ROLES[role] for attr in attrs]


def expected_visible(bundle: dict, pmap: FhirPolicyMap, attributes: list[str], multi: bool) -> list[int]:
    """Positions the policy map admits `attributes` to, by plain boolean evaluation."""
    held = parse_attributes(attributes)
    return [i for i, e in enumerate(bundle["entry"])
            if Policy.parse(pmap.choose(e["resource"], TODAY, multi).policy).is_satisfied_by(held)]


def strip_marks(value):
    """A decrypted resource with the masked-reference marks removed (to compare with the input)."""
    if isinstance(value, dict):
        out = {k: strip_marks(v) for k, v in value.items()}
        if "extension" in out:
            out["extension"] = [x for x in out["extension"] if x != MASKED]
            if not out["extension"]:
                del out["extension"]
        return out
    if isinstance(value, list):
        return [strip_marks(v) for v in value]
    return value


@pytest.fixture(scope="module")
def world():
    auth = {name: Authority.setup(name) for name in ("H", "U", "P", "ER")}
    pmap = FhirPolicyMap.from_json(MAP)
    pks = [a.public_key for a in auth.values()]
    bundles = {p.stem: labelled(load_bundle(p)) for p in FIXTURES}
    blobs = {name: encrypt_bundle(b, pmap, pks, today=TODAY, bundle_id=name) for name, b in bundles.items()}
    keys = {role: [auth[a].keygen(role, attrs) for a, attrs in grants] for role, grants in ROLES.items()}
    return {"auth": auth, "pmap": pmap, "bundles": bundles, "blobs": blobs, "keys": keys}


def test_fixtures_are_the_three_synthea_bundles():
    assert [p.stem for p in FIXTURES] == ["Bibi254", "Cris921", "Hipolito984"]
    for path in FIXTURES:
        validate_bundle(load_bundle(path))


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("name", [p.stem for p in FIXTURES])
def test_every_fixture_round_trips_for_every_role(world, name, role):
    bundle, blob, pmap = world["bundles"][name], world["blobs"][name], world["pmap"]
    expected = expected_visible(bundle, pmap, role_attributes(role), multi=True)
    if not expected:
        with pytest.raises(PolicyNotSatisfied, match="no class"):
            decrypt_bundle(blob, *world["keys"][role])
        return
    opened = decrypt_bundle(blob, *world["keys"][role], expect_id=name)  # validates the result
    entries = opened.bundle["entry"]
    visible = entries[:opened.readable]
    assert [strip_marks(e) for e in visible] == [bundle["entry"][i] for i in expected]
    assert opened.readable + opened.withheld_entries == len(bundle["entry"])
    assert opened.bundle["type"] == "batch" and len(entries) == opened.readable  # no outcome entry
    security = opened.bundle.get("meta", {}).get("security", [])
    assert (REDACTED in security) == bool(opened.withheld)
    if opened.withheld:
        issues = opened.outcome["issue"]
        assert all(i["code"] == "suppressed" for i in issues)
        assert len(issues) == len(opened.withheld) + len(opened.masked)


def test_roles_see_what_the_story_says(world):
    """The demo's story on one fixture: exact resource types each role reads."""
    blob = world["blobs"]["Bibi254"]

    def kinds(role):
        opened = decrypt_bundle(blob, *world["keys"][role], validate=False)
        return sorted({e["resource"]["resourceType"] for e in opened.bundle["entry"][:opened.readable]})

    assert "Claim" not in kinds("gp") and "Condition" in kinds("gp")
    assert kinds("billing") == ["Claim", "ExplanationOfBenefit"]
    assert kinds("researcher with consent") == ["Observation"]
    assert kinds("emergency, valid") == ["Condition", "Immunization", "Patient"]
    psy = decrypt_bundle(blob, *world["keys"]["psychiatrist"], validate=False)
    assert any(s.get("code") == "PSY" for e in psy.bundle["entry"][:psy.readable]
               for s in e["resource"].get("meta", {}).get("security", []))


def test_references_to_withheld_resources_are_kept_and_marked(world):
    opened = decrypt_bundle(world["blobs"]["Bibi254"], *world["keys"]["billing"])
    assert opened.masked, "claims name the patient, whom billing does not see"
    bundle = opened.bundle
    for mark in opened.masked:
        assert mark.path.startswith(f"Bundle.entry[{mark.entry}].resource.")
        element = bundle["entry"][mark.entry]["resource"]
        for step in mark.path.split(".")[3:]:
            name, _, index = step.partition("[")
            element = element[name] if not index else element[name][int(index[:-1])]
        assert element["reference"] == mark.reference and MASKED in element["extension"]
    expressions = [i.get("expression") for i in opened.outcome["issue"] if "expression" in i]
    assert expressions == [[m.path] for m in opened.masked]


def test_the_outcome_is_an_entry_where_fhir_allows(world):
    auth = world["auth"]
    bundle = copy.deepcopy(world["bundles"]["Cris921"])
    bundle["type"] = "collection"
    for entry in bundle["entry"]:
        del entry["request"]
    blob = encrypt_bundle(bundle, world["pmap"], [a.public_key for a in auth.values()], today=TODAY)
    opened = decrypt_bundle(blob, *world["keys"]["gp"])
    last = opened.bundle["entry"][-1]
    assert last["resource"] == opened.outcome and last["fullUrl"] == f"urn:uuid:{opened.outcome['id']}"
    assert decrypt_bundle(blob, *world["keys"]["gp"]).bundle == opened.bundle  # deterministic


def test_one_encapsulation_per_distinct_policy(world):
    pmap = world["pmap"]
    for name, bundle in world["bundles"].items():
        info = describe_container(world["blobs"][name])
        policies = {pmap.choose(e["resource"], TODAY, True).policy for e in bundle["entry"]}
        assert sorted(c["policy"] for c in info["classes"]) == sorted(policies)
        assert info["entries"] == len(bundle["entry"])


# -- the policy map ---------------------------------------------------------------------------
BAD_MAPS = [
    ([], "expected a JSON object"),
    ({"typo": {}}, "unknown field 'typo'"),
    ({"types": {"Condition": "doctor and"}}, r'types\["Condition"\]: column'),
    ({"types": {"condition": "doctor"}}, r'types\["condition"\]: expected Type'),
    ({"resources": {"Patient": "doctor"}}, r'resources\["Patient"\]: expected Type/id'),
    ({"labels": {"psy": "doctor"}}, r'labels\["psy"\]: a bare label'),
    ({"labels": {"|X": "doctor"}}, r'labels\["\|X"\]'),
    ({"types": {"Claim": 7}}, r'types\["Claim"\]: expected a policy text'),
    ({"types": {"Claim": {"policy": "a", "glass": True}}}, "unknown field 'glass'"),
    ({"types": {"Claim": {"policy": "a", "break_glass": "yes"}}}, "break_glass"),
    ({"default": "not x"}, "default"),
    ({"emergency_authority": "E R", "default": "a"}, "emergency_authority"),
    ({}, "protects nothing"),
]


@pytest.mark.parametrize(("data", "message"), BAD_MAPS)
def test_bad_maps_are_refused_naming_the_entry(data, message):
    with pytest.raises(InvalidPolicyMap, match=message):
        FhirPolicyMap.from_json(data)


def test_precedence_id_then_labels_then_category_then_type_then_default():
    pmap = FhirPolicyMap.from_json({
        "resources": {"Observation/special": "id"},
        "labels": {"PSY": "psy", "HIV": "hiv", "R": "restricted"},
        "types": {"Observation:laboratory": "lab", "Observation:vital-signs": "vitals",
                  "Observation": "obs"},
        "default": "fallback"})

    def chosen(**resource):
        return pmap.choose({"resourceType": "Observation", **resource}, TODAY, False).policy

    lab = [{"coding": [{"code": "laboratory"}]}]
    both = [{"coding": [{"code": "laboratory"}, {"code": "vital-signs"}]}]
    psy = {"security": [{"system": ACT_CODE, "code": "PSY"}]}
    assert chosen(id="special", meta=psy, category=lab) == "id"
    assert chosen(id="x", meta=psy, category=lab) == "psy"
    two = {"security": [{"system": ACT_CODE, "code": "PSY"}, {"system": ACT_CODE, "code": "HIV"},
                        {"system": CONFIDENTIALITY, "code": "R"}]}
    assert chosen(meta=two) == "hiv and psy and restricted"
    assert chosen(meta={"security": [{"code": "PSY"}]}, category=lab) == "lab"  # no system: no label
    assert chosen(category=both) == "lab and vitals"
    assert chosen() == "obs"
    assert pmap.choose({"resourceType": "Claim"}, TODAY, False).policy == "fallback"
    with pytest.raises(InvalidPolicyMap, match="no rule for Claim/c1 and no default"):
        FhirPolicyMap.from_json({"types": {"Patient": "a"}}).choose(
            {"resourceType": "Claim", "id": "c1"}, TODAY, False)


def test_break_glass_applies_only_when_every_chosen_rule_allows_it():
    pmap = FhirPolicyMap.from_json({
        "labels": {"PSY": {"policy": "psy", "break_glass": True}, "HIV": "hiv"},
        "default": {"policy": "doctor", "break_glass": True}, "emergency_authority": "ER"})
    plain = {"resourceType": "Patient"}
    assert pmap.choose(plain, TODAY, True).policy == "doctor or emergency >= 2026-11-22@ER"
    assert pmap.choose(plain, TODAY, False).policy == "doctor or emergency >= 2026-11-22"
    both = {"resourceType": "Patient", "meta": {"security": [
        {"system": ACT_CODE, "code": "PSY"}, {"system": ACT_CODE, "code": "HIV"}]}}
    assert pmap.choose(both, TODAY, True).policy == "hiv and psy"


def test_policy_errors_found_at_encryption_name_the_entry(world):
    pmap = FhirPolicyMap.from_json({"types": {"Claim": "doctor"}, "default": "doctor@H"})
    with pytest.raises(InvalidPolicyMap, match=r'types\["Claim"\].*name@authority'):
        encrypt_bundle(world["bundles"]["Cris921"], pmap, [a.public_key for a in world["auth"].values()])


def test_bad_inputs_give_typed_errors(world, tmp_path):
    hospital = CPABE.setup()
    pmap = FhirPolicyMap.from_json({"default": "doctor"})
    with pytest.raises(InvalidBundle, match="no entries"):
        encrypt_bundle({"resourceType": "Bundle", "type": "batch"}, pmap, [hospital.public_key])
    with pytest.raises(InvalidBundle, match=r"not a valid FHIR R4 Bundle: entry\.0\.resource\.gender"):
        encrypt_bundle({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "gender": 5}}]}, pmap, [hospital.public_key])
    with pytest.raises(InvalidKey, match="public keys"):
        encrypt_bundle(world["bundles"]["Cris921"], pmap, [hospital.keygen(["doctor"])])
    with pytest.raises(InvalidKey):
        encrypt_bundle(world["bundles"]["Cris921"], pmap,
                       [hospital.public_key, world["auth"]["H"].public_key])
    (tmp_path / "x.json").write_text("[1]")
    with pytest.raises(InvalidBundle, match="not a FHIR Bundle"):
        load_bundle(tmp_path / "x.json")
    (tmp_path / "y.json").write_bytes(b"\xff")
    with pytest.raises(InvalidBundle, match="not UTF-8"):
        load_bundle(tmp_path / "y.json")
    with pytest.raises(InvalidBundle, match="cannot read"):
        load_bundle(tmp_path / "missing.json")


def test_without_the_fhir_extra_the_error_names_it(monkeypatch):
    import importlib

    real = importlib.import_module

    def no_fhir(name, *args):
        if name.startswith("fhir.resources"):
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_fhir)
    with pytest.raises(MissingExtra, match=r'pip install "abe-health\[fhir\]"'):
        validate_bundle({"resourceType": "Bundle", "type": "collection"})


# -- the visible set equals the map in plain Python, over random maps and roles (FAME) -------
ATTRS = ["a", "b", "c", "d"]
policy_texts = st.one_of(
    st.sampled_from(ATTRS),
    st.tuples(st.sampled_from(ATTRS), st.sampled_from(["and", "or"]), st.sampled_from(ATTRS)).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}" if t[0] != t[2] else t[0]))
rules = st.one_of(policy_texts, st.builds(lambda p, g: {"policy": p, "break_glass": g},
                                          policy_texts, st.booleans()))
KINDS = ["Patient", "Condition", "Observation", "Immunization", "Claim"]
LABELS = ["R", "V", "PSY", "HIV", "ETH", "SUD"]
maps = st.fixed_dictionaries({}, optional={
    "resources": st.dictionaries(st.sampled_from(["Patient/r0", "Observation/r2", "Claim/r4"]), rules,
                                 max_size=2),
    "labels": st.dictionaries(st.sampled_from(LABELS), rules, max_size=3),
    "types": st.dictionaries(st.sampled_from([*KINDS, "Observation:laboratory", "Condition:x"]), rules,
                             max_size=4),
    "default": rules,
})
resources = st.lists(st.tuples(st.sampled_from(KINDS), st.lists(st.sampled_from(LABELS), max_size=2),
                               st.sampled_from([None, "laboratory", "x"])), min_size=1, max_size=8)
roles = st.lists(st.frozensets(st.sampled_from([*ATTRS, "emergency"])), min_size=1, max_size=3)


def make_bundle(spec) -> dict:
    entries = []
    for i, (kind, labels, category) in enumerate(spec):
        resource = {"resourceType": kind, "id": f"r{i}"}
        if labels:
            resource["meta"] = {"security": [
                {"system": CONFIDENTIALITY if len(code) == 1 else ACT_CODE, "code": code} for code in labels]}
        if category:
            resource["category"] = [{"coding": [{"code": category}]}]
        if i:
            resource["subject"] = {"reference": "Patient/r0"}
        entries.append({"fullUrl": f"urn:uuid:r{i}", "resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def reference_visible(data: dict, bundle: dict, attrs: frozenset[str]) -> list[int]:
    """The map's precedence written out again, independently of FhirPolicyMap."""
    held = parse_attributes(sorted(a for a in attrs if a != "emergency"))
    emergency = "emergency" in attrs

    def rule(value):
        return (value, False) if isinstance(value, str) else (value["policy"], value["break_glass"])

    out = []
    for i, entry in enumerate(bundle["entry"]):
        r = entry["resource"]
        key = f"{r['resourceType']}/{r['id']}"
        codes = [s["code"] for s in r.get("meta", {}).get("security", [])]
        cats = [c["code"] for cc in r.get("category", []) for c in cc["coding"]]
        if key in data.get("resources", {}):
            chosen = [rule(data["resources"][key])]
        elif [c for c in codes if c in data.get("labels", {})]:
            chosen = [rule(data["labels"][c]) for c in codes if c in data.get("labels", {})]
        elif [c for c in cats if f"{r['resourceType']}:{c}" in data.get("types", {})]:
            chosen = [rule(data["types"][f"{r['resourceType']}:{c}"]) for c in cats
                      if f"{r['resourceType']}:{c}" in data.get("types", {})]
        elif r["resourceType"] in data.get("types", {}):
            chosen = [rule(data["types"][r["resourceType"]])]
        elif "default" in data:
            chosen = [rule(data["default"])]
        else:
            return []
        ok = all(Policy.parse(p).is_satisfied_by(held) for p, _ in chosen)
        if ok or (emergency and all(g for _, g in chosen)):
            out.append(i)
    return out


@pytest.fixture(scope="module")
def fame():
    return CPABE.setup()


@settings(max_examples=12, deadline=None)
@given(data=maps, spec=resources, role_sets=roles)
def test_visible_set_equals_the_map_in_plain_python(fame, data, spec, role_sets):
    bundle = make_bundle(spec)
    try:
        pmap = FhirPolicyMap.from_json(data)
    except InvalidPolicyMap:
        assert not any(data.get(k) for k in ("resources", "labels", "types")) and "default" not in data
        return
    uncovered = not reference_visible(data, bundle, frozenset(ATTRS)) and "default" not in data
    try:
        blob = encrypt_bundle(bundle, pmap, [fame.public_key], today=TODAY, validate=False)
    except InvalidPolicyMap as exc:
        assert "no rule for" in str(exc) and uncovered
        return
    for attrs in role_sets:
        key_attrs = sorted(a for a in attrs if a != "emergency")
        if "emergency" in attrs:
            key_attrs.append(f"emergency = {TODAY + DAY}")
        expected = reference_visible(data, bundle, attrs)
        if not key_attrs or not expected:
            if key_attrs:
                with pytest.raises(PolicyNotSatisfied):
                    decrypt_bundle(blob, fame.keygen(key_attrs), validate=False)
            continue
        opened = decrypt_bundle(blob, fame.keygen(key_attrs), validate=False)
        got = [int(e["resource"]["id"][1:]) for e in opened.bundle["entry"][:opened.readable]]
        assert got == expected


def test_readme_style_cli_round_trip(tmp_path, world):
    """The CLI over a fixture: encrypt with the multi-authority public keys, decrypt as the GP."""
    from click.testing import CliRunner

    from abe_health.cli import main

    for name, a in world["auth"].items():
        a.public_key.save(tmp_path / f"{name}.pub")
    world["keys"]["gp"][0].save(tmp_path / "gp.key")
    (tmp_path / "map.json").write_text(json.dumps(MAP))
    runner = CliRunner()
    result = runner.invoke(main, ["fhir", "encrypt", str(FIXTURES[0]),
                                  "--policies", str(tmp_path / "map.json"), "--authorities", str(tmp_path),
                                  "-o", str(tmp_path / "b.enc"),
                                  "--bundle-id", "bibi"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["fhir", "decrypt", str(tmp_path / "b.enc"), "-i", str(tmp_path / "gp.key"),
                                  "-o", str(tmp_path / "out.json"), "--outcome", str(tmp_path / "oo.json"),
                                  "--expect-id", "bibi"])
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "out.json").read_text())
    validate_bundle(out)
    assert json.loads((tmp_path / "oo.json").read_text())["resourceType"] == "OperationOutcome"
    assert "withheld: 26 resources under policy \"billing@H\"" in result.output


@pytest.mark.parametrize(("args", "status", "message"), [
    (["fhir", "decrypt", "{enc}", "-i", "{pub}"], 1, "expected a user key"),
    (["fhir", "decrypt", "{junk}", "-i", "{key}"], 1, "not an encrypted FHIR bundle"),
    (["fhir", "decrypt", "{enc}", "-i", "{other}"], 3, "no class of bundle"),
    (["fhir", "decrypt", "{enc}", "-i", "{key}", "--expect-id", "other"], 1, "not the expected"),
    (["fhir", "encrypt", "{bundle}", "--policies", "{badmap}", "--authority", "{pub}", "-o", "{out}"],
     1, "policy map: types"),
    (["fhir", "encrypt", "{junk}", "--policies", "{map}", "--authority", "{pub}", "-o", "{out}"],
     1, "not UTF-8"),
    (["fhir", "encrypt", "{bundle}", "--policies", "{map}", "-o", "{out}"], 2, "public keys"),
])
def test_cli_errors_are_one_line_and_a_status(tmp_path, args, status, message):
    from click.testing import CliRunner

    from abe_health.cli import main

    hospital = CPABE.setup()
    paths = {"pub": tmp_path / "public.key", "key": tmp_path / "u.key", "other": tmp_path / "o.key",
             "enc": tmp_path / "b.enc", "junk": tmp_path / "junk", "bundle": tmp_path / "b.json",
             "map": tmp_path / "map.json", "badmap": tmp_path / "bad.json", "out": tmp_path / "o.enc"}
    hospital.public_key.save(paths["pub"])
    hospital.keygen(["doctor"]).save(paths["key"])
    hospital.keygen(["nurse"]).save(paths["other"])
    paths["junk"].write_bytes(b"\xff\x00junk")
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p"}}]}
    paths["bundle"].write_text(json.dumps(bundle))
    paths["map"].write_text('{"default": "doctor"}')
    paths["badmap"].write_text('{"types": {"Claim": "doctor and"}}')
    paths["enc"].write_bytes(encrypt_bundle(bundle, FhirPolicyMap.from_json({"default": "doctor"}),
                                            [hospital.public_key], bundle_id="b"))
    result = CliRunner().invoke(main, [a.format(**{k: str(v) for k, v in paths.items()}) for a in args])
    assert result.exit_code == status, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.output
