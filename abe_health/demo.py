"""`abe-health demo`: a short, real run of what the toolkit does so far, on a hospital example.

It parses a PHR access policy, compiles it to an LSSS, and for several staff members shares a
secret exponent s over the policy's rows and tries to rebuild g^s in G1 from the rows their
attributes cover: exactly the step every CP-ABE decryption performs. Then it encrypts a record
under that policy with FAME and lets each of them try to read it, and searches a small encrypted
index of records by substring. Grows with each capability.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2

from search import SearchIndex, SearchKey, keywords

from .authority import CPABE
from .cloud.demo import cloud_story
from .encryption import decrypt, encrypt
from .errors import InvalidCiphertext, PolicyNotSatisfied
from .hazmat.pairing import get_group
from .ma import Authority
from .phr import PolicyMap, decrypt_record, encrypt_record
from .policy import Policy, parse_attributes
from .recipients import PolicyRecipient


def run_demo(echo: Callable[[str], None]) -> None:
    """Print the walk-through through `echo`."""
    group = get_group()
    g, h = group.generator("G1"), group.generator("G2")
    a, b = group.random_zr(), group.random_zr()
    bilinear = group.pair(g**a, h**b) == group.pair(g, h) ** (a * b)
    echo(f"pairing group: {group.id} (order {group.order.bit_length()} bits); "
         f"e(g^a, h^b) == e(g, h)^ab: {bilinear}")

    today = dt.date.today()
    policy = Policy.parse(
        "(doctor and cardiology) or (nurse and ward = 3) "
        f"or (emergency and valid_until >= {today.isoformat()})"
    )
    lsss = policy.lsss
    echo(f"\npolicy: {policy}")
    ranges = sum(1 for label in lsss.rho if label.startswith("valid_until#"))
    echo(f"  LSSS: {lsss.n_rows} rows x {lsss.n_cols} columns "
         f"(the date comparison expands to an OR of {ranges} date-range labels)")

    secret = group.random_zr()
    shares = lsss.shares(secret, group.order)
    target = g**secret
    staff = {
        "Dr. Ada (cardiologist)": ["doctor", "cardiology"],
        "Ben (nurse, ward 3)": ["nurse", "ward = 3"],
        "Cy (nurse, ward 4)": ["nurse", "ward = 4"],
        "Dee (ER, key valid 7 more days)": ["emergency", f"valid_until = {today + dt.timedelta(7)}"],
        "Eve (ER, key expired yesterday)": ["emergency", f"valid_until = {today - dt.timedelta(1)}"],
    }
    echo("\nwho can rebuild g^s from the shares of the rows they hold:")
    for who, attrs in staff.items():
        key = parse_attributes(attrs)
        try:
            omega = lsss.coefficients(key.labels, group.order)
        except PolicyNotSatisfied:
            echo(f"  {who:34} refused: attributes do not satisfy the policy")
            continue
        rebuilt = group.identity("G1")
        for row, weight in omega.items():
            rebuilt = rebuilt * (g ** shares[row]) ** weight
        echo(f"  {who:34} rows {sorted(r + 1 for r in omega)} -> g^s rebuilt: {rebuilt == target}")

    echo("\nthe same policy protecting a record with FAME CP-ABE (a .abe file in memory):")
    hospital = CPABE.setup()
    record = b'{"patient": "P-17", "bp": "120/80", "ecg": "sinus rhythm"}'
    blob = encrypt(record, None, PolicyRecipient(hospital.public_key, policy))
    echo(f"  {len(record)} bytes of JSON -> {len(blob)} bytes of .abe "
         f"(header with {lsss.n_rows} ciphertext rows, then AES-256-GCM)")
    for who, attrs in staff.items():
        try:
            plain = decrypt(blob, None, hospital.keygen(attrs))
            echo(f"  {who:34} reads it: {plain == record}")
        except PolicyNotSatisfied:
            echo(f"  {who:34} refused: PolicyNotSatisfied")

    _phr_story(echo, today)
    _fhir_story(echo, today)
    cloud_story(echo)

    echo("\nencrypted search over three records (PASS tree; the index holds no plaintext):")
    docs = {
        "P-17.json": keywords("atrial fibrillation, cardiology consult, warfarin"),
        "P-23.json": keywords("discarded postcard; cardiac arrest history"),
        "P-31.json": keywords("asthma, salbutamol inhaler"),
    }
    search_key = SearchKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        index, stats = SearchIndex.create(Path(tmp) / "idx", docs, search_key)
        echo(f"  {stats.keywords} keywords, {stats.nodes} tree nodes, "
             f"{stats.filter_bytes + stats.leaf_bytes} bytes")
        for pattern in ("card", "^card", "card$", "^asthma$", "xyz"):
            hits = index.search(pattern, search_key).hits
            found = ", ".join(f"{h.doc_id} ({h.match}: {'/'.join(h.keywords)})" for h in hits)
            echo(f"  {pattern:10} -> {found or 'no match'}")


def _phr_story(echo: Callable[[str], None], today: dt.date) -> None:
    """Several authorities, one patient's record, section by section, and break-glass access.

    In RW15 the attributes one authority issues to one GID accumulate across issuances, so an
    emergency key carries its own last day (`emergency = DATE`) and break-glass clauses test that
    one attribute (`emergency >= TODAY@ER`): expired keys stay expired, even merged."""
    echo("\na personal health record across authorities (RW15 multi-authority ABE):")
    names = ("hospitalA", "university", "patient", "ER")
    auth = {name: Authority.setup(name) for name in names}
    echo(f"  authorities set up independently: {', '.join(names)}")
    pmap = PolicyMap.from_json({
        "sections": {
            "profile": "doctor@hospitalA or family@patient",
            "medications": "doctor@hospitalA",
            "lab_results": "doctor@hospitalA or (researcher@university and consent@patient)",
            "mental_health": "psychiatrist@hospitalA or gp@patient",
        },
        "emergency": ["profile", "medications"],
    })
    record = {"profile": {"name": "P-17", "blood": "A+"}, "medications": ["warfarin 5 mg"],
              "lab_results": {"INR": 2.4}, "mental_health": "sleep: improving"}
    pks = [a.public_key for a in auth.values()]
    blob = encrypt_record(record, pmap, pks, today, record_id="P-17")
    echo(f"  record P-17: {len(record)} sections, each under its own policy and bound to the "
         f"record ({len(blob)} bytes)")
    echo(f"  break-glass clause: {pmap.policy_for('profile', today)}")
    day = dt.timedelta(1)
    readers = {
        "Dr. Ada (doctor@hospitalA)": [("hospitalA", ["doctor"])],
        "Rui (researcher@university + consent@patient)": [("university", ["researcher"]),
                                                          ("patient", ["consent"])],
        "Sam (family@patient)": [("patient", ["family"])],
        "Dee (ER, valid until tomorrow)": [("ER", [f"emergency = {today + day}"])],
        "Eve (ER, expired yesterday)": [("ER", [f"emergency = {today - day}"])],
        "Eve again (two expired keys, merged)": [("ER", [f"emergency = {today - day}"]),
                                                 ("ER", [f"emergency = {today - 40 * day}"])],
    }
    for who, grants in readers.items():
        keys = [auth[a].keygen(who, attrs) for a, attrs in grants]
        visible, closed = decrypt_record(blob, keys)
        shown = ", ".join(sorted(visible)) or "nothing"
        echo(f"  {who:46} reads: {shown}; refused: {len(closed)}")
    other = encrypt_record({"lab_results": {"INR": 1.0}}, pmap, pks, today, record_id="P-42")
    moved = cbor2.loads(blob)
    moved["sections"]["lab_results"] = cbor2.loads(other)["sections"]["lab_results"]
    try:
        decrypt_record(cbor2.dumps(moved), [auth["hospitalA"].keygen("ada", ["doctor"])])
        echo("  P-42's lab results planted into P-17: accepted (this should not happen)")
    except InvalidCiphertext:
        echo("  P-42's lab results planted into P-17: refused, the record was altered")


def _demo_bundle() -> dict[str, Any]:
    """A small Synthea-style patient bundle (synthetic; tests/data/fhir holds three full ones),
    with one condition labelled PSY (psychiatric information sensitivity)."""
    patient = "urn:uuid:9a1b0c2d-0000-4000-8000-000000000017"

    def entry(n: int, resource: dict[str, Any]) -> dict[str, Any]:
        rid = f"9a1b0c2d-0000-4000-8000-{n:012d}"
        return {"fullUrl": f"urn:uuid:{rid}", "resource": {**resource, "id": rid}}

    loinc, snomed = "http://loinc.org", "http://snomed.info/sct"
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        entry(17, {"resourceType": "Patient", "name": [{"family": "Schowalter", "given": ["Bibi"]}],
                   "birthDate": "2008-05-02"}),
        entry(1, {"resourceType": "Condition", "subject": {"reference": patient},
                  "code": {"coding": [{"system": snomed, "code": "840539006", "display": "COVID-19"}]}}),
        entry(2, {"resourceType": "Condition", "subject": {"reference": patient},
                  "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                         "code": "PSY"}]},
                  "code": {"coding": [{"system": snomed, "code": "35489007",
                                       "display": "Depressive disorder"}]}}),
        entry(3, {"resourceType": "Observation", "status": "final", "subject": {"reference": patient},
                  "category": [{"coding": [{"code": "laboratory"}]}],
                  "code": {"coding": [{"system": loinc, "code": "94531-1",
                                       "display": "SARS-CoV-2 RNA panel"}]},
                  "valueCodeableConcept": {"text": "Detected"}}),
        entry(4, {"resourceType": "Observation", "status": "final", "subject": {"reference": patient},
                  "category": [{"coding": [{"code": "vital-signs"}]}],
                  "code": {"coding": [{"system": loinc, "code": "8310-5", "display": "Body temperature"}]},
                  "valueQuantity": {"value": 38.9, "unit": "Cel"}}),
        entry(5, {"resourceType": "Immunization", "status": "completed", "patient": {"reference": patient},
                  "vaccineCode": {"text": "Influenza, seasonal"}, "occurrenceDateTime": "2020-01-10"}),
    ]}


def _fhir_story(echo: Callable[[str], None], today: dt.date) -> None:
    """A FHIR bundle encrypted resource by resource, read by a GP, a psychiatrist, a researcher
    with the patient's consent, and an emergency key that expired yesterday."""
    from . import fhir
    from .fhir.model import available

    echo("\na FHIR R4 bundle encrypted resource by resource (one ABE encapsulation per policy):")
    if not available():
        echo('  skipped: FHIR support needs the extra: pip install "abe-health[fhir]"')
        return
    auth = {name: Authority.setup(name) for name in ("hospitalA", "university", "patient", "ER")}
    pmap = fhir.FhirPolicyMap.from_json({
        "labels": {"PSY": "psychiatrist@hospitalA"},
        "types": {"Observation:laboratory": "gp@hospitalA or (researcher@university and consent@patient)",
                  "Condition": {"policy": "gp@hospitalA", "break_glass": True},
                  "Patient": {"policy": "gp@hospitalA or psychiatrist@hospitalA", "break_glass": True}},
        "default": "gp@hospitalA", "emergency_authority": "ER"})
    bundle = _demo_bundle()
    blob = fhir.encrypt_bundle(bundle, pmap, [a.public_key for a in auth.values()], today=today,
                               bundle_id="P-17")
    shown = fhir.describe_container(blob)
    echo(f"  {len(bundle['entry'])} resources under {len(shown['classes'])} policies, "
         f"{len(blob)} bytes; the cloud sees per policy only the number of resources and their "
         "padded sizes")
    day = dt.timedelta(1)
    readers = {
        "GP (gp@hospitalA)": [("hospitalA", ["gp"])],
        "psychiatrist (psychiatrist@hospitalA)": [("hospitalA", ["psychiatrist"])],
        "researcher + patient's consent": [("university", ["researcher"]), ("patient", ["consent"])],
        "ER key, expired yesterday": [("ER", [f"emergency = {today - day}"])],
        "ER key, valid until tomorrow": [("ER", [f"emergency = {today + day}"])],
    }
    for who, grants in readers.items():
        keys = [auth[a].keygen(who, attrs) for a, attrs in grants]
        try:
            opened = fhir.decrypt_bundle(blob, *keys)
        except PolicyNotSatisfied:
            echo(f"  {who:38} reads nothing: no policy of the bundle admits this key")
            continue
        kinds = [e["resource"]["resourceType"] for e in opened.bundle["entry"][:opened.readable]]
        echo(f"  {who:38} reads {', '.join(kinds)}; withheld {opened.withheld_entries}, "
             f"{len(opened.masked)} references marked (valid FHIR R4 Bundle)")
