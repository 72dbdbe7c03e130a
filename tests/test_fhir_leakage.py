"""docs/fhir.md, "What the container reveals", one test per sentence: what anyone without a key
sees is exactly `describe_container`, and nothing of the resources themselves."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import re
from collections import Counter
from pathlib import Path

import cbor2
import pytest

from abe_health.fhir import FhirPolicyMap, decrypt_bundle, describe_container, encrypt_bundle
from abe_health.fhir.container import bucket
from abe_health.hazmat.envelope import read_header
from abe_health.ma import Authority

DATA = Path(__file__).parent / "data" / "fhir"
MAP = {"labels": {"PSY": "psychiatrist@H"},
       "types": {"Observation": "doctor@H or nurse@H", "Claim": "billing@H",
                 "ExplanationOfBenefit": "billing@H"},
       "default": "doctor@H"}


@pytest.fixture(scope="module")
def world():
    auth = {name: Authority.setup(name) for name in ("H", "P")}
    bundle = json.loads((DATA / "Hipolito984.json").read_text())
    bundle = copy.deepcopy(bundle)
    bundle["entry"][5]["resource"]["meta"] = {"security": [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]}
    blob = encrypt_bundle(bundle, FhirPolicyMap.from_json(MAP), [a.public_key for a in auth.values()],
                          bundle_id="hipolito")
    return {"auth": auth, "bundle": bundle, "blob": blob}


def test_the_stored_fields_are_exactly_these(world):
    data = cbor2.loads(world["blob"])
    assert set(data) == {"v", "type", "id", "nonce", "classes"}
    assert all(set(c) == {"abe", "entries", "seal"} for c in data["classes"])
    assert data["id"] == "hipolito" and len(data["nonce"]) == 16


def test_describe_container_is_what_anyone_sees(world):
    info = describe_container(world["blob"])
    assert info["id"] == "hipolito" and info["entries"] == len(world["bundle"]["entry"])
    assert [c["policy"] for c in info["classes"]] == ["billing@H", "doctor@H", "doctor@H or nurse@H",
                                                      "psychiatrist@H"]
    pmap = FhirPolicyMap.from_json(MAP)
    chosen = Counter(pmap.choose(e["resource"], dt.date.today(), True).policy
                     for e in world["bundle"]["entry"])
    assert {c["policy"]: c["entries"] for c in info["classes"]} == chosen
    assert all(c["authorities"] == ["H", "P"] and c["scheme"] == "rw15" for c in info["classes"])


def test_no_resource_type_id_reference_label_code_or_date_is_in_clear(world):
    blob = world["blob"]
    text = json.dumps(world["bundle"])
    secrets = set()
    for entry in world["bundle"]["entry"]:
        resource = entry["resource"]
        secrets |= {resource["resourceType"], resource["id"], entry["fullUrl"]}
    secrets |= set(re.findall(r'"code": "([^"]{3,})"', text))  # codes and labels
    secrets |= set(re.findall(r'"(\d{4}-\d{2}-\d{2})', text))  # dates
    secrets |= {"PSY", "urn:uuid:"}
    fields = list(_clear_fields(cbor2.loads(blob)))
    for secret in sorted(secrets):
        if len(secret) >= 8:
            assert secret.encode() not in blob, secret
        else:  # a short string turns up in kilobytes of ciphertext by chance: look where clear text would be
            assert not any(secret.encode() in field for field in fields), secret


def _clear_fields(value):
    """Every text string and map key of the container, and every byte string short enough to be
    a name or a label rather than a ciphertext (headers, payloads and seals are longer)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _clear_fields(key)
            yield from _clear_fields(item)
    elif isinstance(value, list):
        for item in value:
            yield from _clear_fields(item)
    elif isinstance(value, str):
        yield value.encode()
    elif isinstance(value, bytes) and len(value) <= 64:
        yield value


def test_lengths_are_known_only_up_to_their_bucket(world):
    info = describe_container(world["blob"])
    for c in info["classes"]:
        for size in c["entry_bytes"]:
            padded = size - 28  # AEAD nonce and tag
            assert padded == bucket(padded) and padded >= 256
    for stored in cbor2.loads(world["blob"])["classes"]:
        header = read_header(io.BytesIO(stored["abe"]))
        payload = len(stored["abe"]) - header.size
        table = payload - 16 * max(1, -(-payload // (header.chunk + 16)))
        assert table == bucket(table)


def test_entries_are_stored_in_a_random_order(world):
    """The order inside a class is a random permutation of the bundle's order (an attacker
    who sees the stored order learns nothing of the bundle's)."""
    opened = decrypt_bundle(world["blob"], world["auth"]["H"].keygen("dr", ["doctor"]), validate=False)
    assert opened.readable > 10
    from abe_health.fhir.container import parse
    from abe_health.fhir.decrypt import _open_class
    from abe_health.identities import identities_of

    container = parse(world["blob"])
    doctor = _open_class(container, 1, identities_of([world["auth"]["H"].keygen("dr", ["doctor"])]))
    positions = [row[0] for row in doctor.toc]  # type: ignore[union-attr]
    assert len(positions) > 10 and positions != sorted(positions)


def test_two_encryptions_share_no_nonce_or_ciphertext(world):
    auth = world["auth"]
    again = encrypt_bundle(world["bundle"], FhirPolicyMap.from_json(MAP),
                           [a.public_key for a in auth.values()], bundle_id="hipolito")
    one, two = cbor2.loads(world["blob"]), cbor2.loads(again)
    assert one["nonce"] != two["nonce"]
    first = {e[:12] for c in one["classes"] for e in c["entries"]}
    second = {e[:12] for c in two["classes"] for e in c["entries"]}
    assert len(first) == describe_container(world["blob"])["entries"] and not first & second
