"""Frozen vector of the encrypted FHIR bundle format, version 1 (tests/data/fhir/vectors/,
written once by `python tests/test_fhir_vectors.py --regenerate`): today's code must open it
to exactly the Bundle recorded, and refuse its altered copy. A change of the format fails here;
a deliberate change bumps the container's version and only then regenerates the vector."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cbor2
import pytest

from abe_health.errors import InvalidCiphertext, PolicyNotSatisfied
from abe_health.fhir import decrypt_bundle
from abe_health.keys import read_key

VECTORS = Path(__file__).parent / "data" / "fhir" / "vectors"


def test_the_vector_opens_to_the_recorded_bundle():
    blob = (VECTORS / "bundle.fhir").read_bytes()
    expected = json.loads((VECTORS / "expected.json").read_text())
    assert cbor2.loads(blob)["v"] == 1
    opened = decrypt_bundle(blob, read_key(VECTORS / "doctor.key"), expect_id="vector-1")
    assert opened.bundle == expected["doctor"]
    assert hashlib.sha256(blob).hexdigest() == expected["sha256"]


def test_the_vector_withholds_what_it_recorded():
    blob = (VECTORS / "bundle.fhir").read_bytes()
    with pytest.raises(PolicyNotSatisfied):
        decrypt_bundle(blob, read_key(VECTORS / "clerk.key"))


def test_an_altered_vector_is_refused():
    data = cbor2.loads((VECTORS / "bundle.fhir").read_bytes())
    data["classes"][2]["entries"].reverse()  # the two observations
    with pytest.raises(InvalidCiphertext, match="altered"):
        decrypt_bundle(cbor2.dumps(data), read_key(VECTORS / "doctor.key"))


def regenerate() -> None:
    """Write the vector (only for a deliberate format change, with a version bump)."""
    import datetime as dt

    from abe_health import CPABE
    from abe_health.fhir import FhirPolicyMap, encrypt_bundle

    VECTORS.mkdir(parents=True, exist_ok=True)
    hospital = CPABE.setup()
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1",
                                                "name": [{"family": "Vector"}]}},
        {"fullUrl": "urn:uuid:o1", "resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                                                "code": {"text": "heart rate"},
                                                "subject": {"reference": "urn:uuid:p1"}}},
        {"fullUrl": "urn:uuid:o2", "resource": {"resourceType": "Observation", "id": "o2", "status": "final",
                                                "code": {"text": "body weight"},
                                                "subject": {"reference": "urn:uuid:p1"}}},
        {"fullUrl": "urn:uuid:c1", "resource": {"resourceType": "Condition", "id": "c1",
                                                "code": {"text": "asthma"},
                                                "subject": {"reference": "urn:uuid:p1"}}}]}
    pmap = FhirPolicyMap.from_json({"types": {"Observation": "doctor or nurse",
                                              "Patient": {"policy": "admin", "break_glass": True}},
                                    "default": "doctor"})
    blob = encrypt_bundle(bundle, pmap, [hospital.public_key], bundle_id="vector-1",
                          today=dt.date(2026, 1, 1))
    doctor = hospital.keygen(["doctor"])
    doctor.save(VECTORS / "doctor.key")
    hospital.keygen(["clerk"]).save(VECTORS / "clerk.key")
    (VECTORS / "bundle.fhir").write_bytes(blob)
    expected = {"sha256": hashlib.sha256(blob).hexdigest(),
                "doctor": decrypt_bundle(blob, doctor).bundle}
    (VECTORS / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__" and "--regenerate" in sys.argv:
    regenerate()
