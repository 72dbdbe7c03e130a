"""Attacks on encrypted FHIR bundles: the cloud reorders, drops, swaps, plants, splices and
flips; key holders pool keys or forge within their own class. Each test mounts the attack on
the stored bytes and checks what docs/fhir.md ("Integrity: what a reader detects") promises."""

from __future__ import annotations

import datetime as dt

import cbor2
import pytest

from abe_health import CPABE
from abe_health.errors import AbeError, InvalidCiphertext, PolicyNotSatisfied
from abe_health.fhir import FhirPolicyMap, decrypt_bundle, describe_container, encrypt_bundle
from abe_health.fhir.container import (
    Container,
    StoredClass,
    entry_info,
    open_entry,
    parse,
    resource_key,
    seal,
    seal_entry,
    seal_key,
)
from abe_health.ma import Authority

TODAY = dt.date(2026, 11, 22)
PMAP = FhirPolicyMap.from_json({
    "types": {"Condition": "doctor", "Observation": "doctor or nurse", "Claim": "billing"},
    "default": "doctor or nurse",
})


def small_bundle(tag: str = "a") -> dict:
    patient = {"resourceType": "Patient", "id": f"p-{tag}", "name": [{"family": "Doe", "given": [tag]}]}
    entries = [{"fullUrl": f"urn:uuid:p-{tag}", "resource": patient}]
    for i in range(3):
        entries.append({"fullUrl": f"urn:uuid:c{i}-{tag}", "resource": {
            "resourceType": "Condition", "id": f"c{i}-{tag}", "subject": {"reference": f"urn:uuid:p-{tag}"},
            "code": {"text": f"condition {i}"}}})
        entries.append({"fullUrl": f"urn:uuid:o{i}-{tag}", "resource": {
            "resourceType": "Observation", "id": f"o{i}-{tag}", "status": "final",
            "code": {"text": f"observation {i}"}, "subject": {"reference": f"urn:uuid:p-{tag}"}}})
    entries.append({"fullUrl": f"urn:uuid:claim-{tag}", "resource": {
        "resourceType": "Claim", "id": f"claim-{tag}", "status": "active", "use": "claim",
        "created": "2020-01-01", "patient": {"reference": f"urn:uuid:p-{tag}"},
        "provider": {"display": "x"}, "priority": {"text": "normal"},
        "type": {"text": "institutional"}, "insurance": [{"sequence": 1, "focal": True,
                                                          "coverage": {"display": "none"}}]}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@pytest.fixture(scope="module")
def world():
    hospital = CPABE.setup()
    pks = [hospital.public_key]
    a = encrypt_bundle(small_bundle("a"), PMAP, pks, bundle_id="bundle-a", today=TODAY)
    return {
        "hospital": hospital,
        "a": a,
        "a-again": encrypt_bundle(small_bundle("a"), PMAP, pks, bundle_id="bundle-a", today=TODAY),
        "b": encrypt_bundle(small_bundle("b"), PMAP, pks, bundle_id="bundle-b", today=TODAY),
        "doctor": hospital.keygen(["doctor"]),
        "nurse": hospital.keygen(["nurse"]),
        "billing": hospital.keygen(["billing"]),
    }


def edit(blob: bytes, change) -> bytes:
    data = cbor2.loads(blob)
    change(data)
    return cbor2.dumps(data)


def class_of(blob: bytes, policy: str) -> int:
    """Index of the class whose policy is exactly `policy` (the map's texts are canonical)."""
    return next(i for i, c in enumerate(describe_container(blob)["classes"]) if c["policy"] == policy)


def test_classes_are_stored_in_policy_order(world):
    assert [c["policy"] for c in describe_container(world["a"])["classes"]] == [
        "billing", "doctor", "doctor or nurse"]


def test_genuine_bundles_open(world):
    opened = decrypt_bundle(world["a"], world["doctor"], expect_id="bundle-a")
    kinds = [e["resource"]["resourceType"] for e in opened.bundle["entry"]]
    assert kinds[:-1] == [e["resource"]["resourceType"] for e in small_bundle("a")["entry"][:-1]]
    assert kinds[-1] == "OperationOutcome"  # the claim is withheld
    assert [w.policy for w in opened.withheld] == ["billing"]


ATTACKS = {
    "two entries of one class swapped": lambda d, o, r: d["classes"][2]["entries"].reverse(),
    "classes reordered": lambda d, o, r: d["classes"].reverse(),
    "an entry moved to another class": lambda d, o, r: d["classes"][1]["entries"].append(
        d["classes"][2]["entries"].pop()),
    "an entry dropped": lambda d, o, r: d["classes"][2]["entries"].pop(),
    "the only entry of the billing class duplicated": lambda d, o, r: d["classes"][0].update(
        entries=d["classes"][0]["entries"] * 2),
    "an entry of the doctor class dropped": lambda d, o, r: d["classes"][1]["entries"].pop(),
    "an entry duplicated": lambda d, o, r: d["classes"][1]["entries"].append(
        d["classes"][1]["entries"][0]),
    "a whole class dropped": lambda d, o, r: d["classes"].pop(0),
    "an entry planted from another bundle": lambda d, o, r: d["classes"][1]["entries"].append(
        o["classes"][1]["entries"][0]),
    "an entry replaced from another encryption of the same bundle id": lambda d, o, r: d[
        "classes"][1]["entries"].__setitem__(0, r["classes"][1]["entries"][0]),
    "a class replaced from another encryption of the same bundle id": lambda d, o, r: d[
        "classes"].__setitem__(1, r["classes"][1]),
    "a class planted from another bundle": lambda d, o, r: d["classes"].append(o["classes"][0]),
    "the bundle id changed": lambda d, o, r: d.update(id="bundle-b"),
    "the nonce changed": lambda d, o, r: d.update(nonce=bytes(16)),
    "an unreadable class's header replaced": lambda d, o, r: d["classes"][0].update(
        abe=o["classes"][0]["abe"]),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("reader", ["doctor", "nurse", "billing"])
def test_altered_bundles_are_refused_by_every_reader(world, attack, reader):
    """Every reader, whatever classes it opens, refuses every structural change anywhere."""
    other, again = cbor2.loads(world["b"]), cbor2.loads(world["a-again"])
    altered = edit(world["a"], lambda d: ATTACKS[attack](d, other, again))
    if (attack, reader) == ("a whole class dropped", "billing"):
        # the only class billing opens is gone: nothing authenticates anything for it, and it
        # is told that nothing opens (docs/fhir.md: a reader who opens no class learns nothing)
        with pytest.raises(PolicyNotSatisfied, match="no class"):
            decrypt_bundle(altered, world[reader])
        return
    with pytest.raises(InvalidCiphertext, match=r"altered|not written"):
        decrypt_bundle(altered, world[reader])


def test_a_flip_in_an_entry_the_reader_cannot_open_is_detected(world):
    billing = class_of(world["a"], "billing")

    def flip(d):
        sealed = bytearray(d["classes"][billing]["entries"][0])
        sealed[-1] ^= 1
        d["classes"][billing]["entries"][0] = bytes(sealed)

    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_bundle(edit(world["a"], flip), world["doctor"])


def test_another_class_seal_is_checked_only_by_that_class_readers(world):
    """A seal is an HMAC under its class's key: a doctor cannot check the billing seal, so a
    flipped billing seal denies service to billing readers only (docs/fhir.md)."""
    billing = class_of(world["a"], "billing")
    altered = edit(world["a"], lambda d: d["classes"][billing].update(seal=bytes(32)))
    genuine = decrypt_bundle(world["a"], world["doctor"]).bundle
    assert decrypt_bundle(altered, world["doctor"]).bundle == genuine
    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_bundle(altered, world["billing"])


def test_every_byte_flip_is_refused_or_changes_nothing(world):
    """A flip anywhere either makes the reader refuse, or leaves exactly what it reads (only the
    seals of classes it cannot open are not its to check)."""
    genuine = decrypt_bundle(world["a"], world["nurse"], validate=False).bundle
    blob = world["a"]
    for i in range(0, len(blob), 11):
        flipped = bytearray(blob)
        flipped[i] ^= 0x40
        try:
            got = decrypt_bundle(bytes(flipped), world["nurse"], validate=False).bundle
        except AbeError:
            continue
        assert got == genuine, f"byte {i}"


def test_truncated_and_appended_containers_are_refused(world):
    for cut in (1, 10, len(world["a"]) // 2, len(world["a"]) - 1):
        with pytest.raises(InvalidCiphertext):
            decrypt_bundle(world["a"][:cut], world["doctor"])
    with pytest.raises(InvalidCiphertext):
        decrypt_bundle(world["a"] + b"\x00", world["doctor"])


def test_expect_id(world):
    with pytest.raises(InvalidCiphertext, match="this is bundle 'bundle-a', not the expected 'bundle-b'"):
        decrypt_bundle(world["a"], world["doctor"], expect_id="bundle-b")


def test_a_class_key_holder_cannot_change_what_readers_of_other_classes_see(world):
    """A nurse (who opens `doctor or nurse`) with the cloud's help rewrites an Observation and
    re-seals her class: doctors, who open other classes too, detect it; a reader who opens only
    that class does not (the class key is shared by its readers: docs/fhir.md)."""
    import io

    from abe_health.encryption import open_header
    from abe_health.fhir.container import class_context, unpad
    from abe_health.hazmat.envelope import open_payload, read_header
    from abe_health.identities import identities_of

    c = parse(world["a"])
    target = class_of(world["a"], "doctor or nurse")
    stored = c.classes[target]
    src = io.BytesIO(stored.abe)
    header = read_header(src)
    dek = open_header(header, identities_of([world["nurse"]]),
                      class_context(c.bundle_id, c.nonce, target, len(c.classes)))
    out = io.BytesIO()
    open_payload(header, dek, src, out)
    table = cbor2.loads(unpad(out.getvalue()))
    key, toc = table["key"], table["toc"]
    slot = next(i for i, row in enumerate(toc) if row[1] == "Observation")  # slots are shuffled
    position, rtype, rid = toc[slot]
    info = entry_info(c.bundle_id, c.nonce, target, slot, position, resource_key(rtype, rid))
    body = cbor2.loads(open_entry(key, c.nonce, info, stored.entries[slot]))
    body[1] = body[1].replace(b"final", b"amended")
    entries = list(stored.entries)
    entries[slot] = seal_entry(key, c.nonce, info, cbor2.dumps(body))
    classes = list(c.classes)
    classes[target] = StoredClass(stored.abe, entries, stored.seal)
    forged = Container(c.bundle_id, c.nonce, classes)
    classes[target] = StoredClass(stored.abe, entries,
                                  seal(seal_key(key, c.bundle_id, c.nonce, target), forged.digest()))
    forged_blob = Container(c.bundle_id, c.nonce, classes).to_bytes()
    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_bundle(forged_blob, world["doctor"])
    seen = decrypt_bundle(forged_blob, world["nurse"], validate=False).bundle
    assert any(e["resource"].get("status") == "amended" for e in seen["entry"])


def test_single_authority_keys_of_two_users_are_not_pooled():
    hospital = CPABE.setup()
    pmap = FhirPolicyMap.from_json({"default": "doctor and cardiology"})
    blob = encrypt_bundle(small_bundle(), pmap, [hospital.public_key], validate=False)
    with pytest.raises(PolicyNotSatisfied):
        decrypt_bundle(blob, hospital.keygen(["doctor"]), hospital.keygen(["cardiology"]),
                       validate=False)
    assert decrypt_bundle(blob, hospital.keygen(["doctor", "cardiology"]), validate=False).bundle


def test_multi_authority_keys_of_two_gids_are_not_pooled():
    auth = {name: Authority.setup(name) for name in ("H", "U")}
    pmap = FhirPolicyMap.from_json({"default": "doctor@H and researcher@U"})
    blob = encrypt_bundle(small_bundle(), pmap, [a.public_key for a in auth.values()], validate=False)
    with pytest.raises(PolicyNotSatisfied):
        decrypt_bundle(blob, auth["H"].keygen("alice", ["doctor"]), auth["U"].keygen("bob", ["researcher"]),
                       validate=False)
    opened = decrypt_bundle(blob, auth["H"].keygen("alice", ["doctor"]),
                            auth["U"].keygen("alice", ["researcher"]), validate=False)
    assert len(opened.bundle["entry"]) == len(small_bundle()["entry"])


def test_expired_emergency_keys_stay_expired_even_merged():
    auth = {name: Authority.setup(name) for name in ("H", "ER")}
    pmap = FhirPolicyMap.from_json({"types": {"Patient": {"policy": "doctor@H", "break_glass": True}},
                                    "default": "doctor@H"})
    blob = encrypt_bundle(small_bundle(), pmap, [a.public_key for a in auth.values()], today=TODAY,
                          validate=False)
    day = dt.timedelta(1)
    fresh = auth["ER"].keygen("er", [f"emergency = {TODAY + day}"])
    opened = decrypt_bundle(blob, fresh, validate=False)
    assert [e["resource"]["resourceType"] for e in opened.bundle["entry"]] == ["Patient", "OperationOutcome"]
    old = [auth["ER"].keygen("eve", [f"emergency = {TODAY - day}"]),
           auth["ER"].keygen("eve", [f"emergency = {TODAY - 40 * day}"])]
    with pytest.raises(PolicyNotSatisfied):
        decrypt_bundle(blob, *old, validate=False)
