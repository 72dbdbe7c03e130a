"""FHIR-native personal health records: a FHIR R4 Bundle encrypted resource by resource.

A policy map (`FhirPolicyMap`) chooses each resource's ABE policy by explicit id, HL7 security
labels, resource type (Observation by category) and default; `encrypt_bundle` makes one ABE
encapsulation per distinct policy and seals each resource on its own under a key derived from
its class key and its place; `decrypt_bundle` opens what one user's keys satisfy and returns a
valid FHIR Bundle, references to withheld entries marked as FHIR specifies, and what was
withheld and why. `bundle_documents` turns a bundle into search documents.

>>> from abe_health import CPABE
>>> hospital = CPABE.setup()
>>> pmap = FhirPolicyMap.from_json({"types": {"Condition": "doctor"}, "default": "doctor or nurse"})
>>> bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
...     {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
...     {"resource": {"resourceType": "Condition", "id": "c1", "subject": {"reference": "urn:uuid:p1"}}}]}
>>> blob = encrypt_bundle(bundle, pmap, [hospital.public_key], validate=False)
>>> opened = decrypt_bundle(blob, hospital.keygen(["nurse"]), validate=False)
>>> [e["resource"]["resourceType"] for e in opened.bundle["entry"]]
['Patient', 'OperationOutcome']
>>> opened.withheld[0].policy, opened.withheld[0].entries
('doctor', 1)

The container format and exactly what it reveals are in docs/fhir.md.
"""

from .container import TYPE, VERSION
from .decrypt import MaskedReference, OpenedBundle, WithheldClass, decrypt_bundle
from .documents import bundle_documents, document_id, resource_keywords
from .encrypt import choose_policies, encrypt_bundle
from .inspect import describe_container
from .model import load_bundle, validate_bundle
from .policymap import Choice, FhirPolicyMap, Rule

__all__ = [
    "TYPE",
    "VERSION",
    "Choice",
    "FhirPolicyMap",
    "MaskedReference",
    "OpenedBundle",
    "Rule",
    "WithheldClass",
    "bundle_documents",
    "choose_policies",
    "decrypt_bundle",
    "describe_container",
    "document_id",
    "encrypt_bundle",
    "load_bundle",
    "resource_keywords",
    "validate_bundle",
]
