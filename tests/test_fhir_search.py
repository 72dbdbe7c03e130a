"""FHIR search authorized per resource: for every Synthea fixture and every role, a search
returns exactly what a plaintext scan returns over the resources that role's keys open in the
encrypted bundle (by actually decrypting it), and nothing of the others."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from abe_health.collection import Collection, open_collection, searcher
from abe_health.errors import PolicyNotSatisfied
from abe_health.fhir import FhirPolicyMap, bundle_documents, decrypt_bundle, encrypt_bundle
from abe_health.fhir.documents import document_id, resource_fields
from abe_health.fhir.search import documents_by_policy, index_bundle
from abe_health.ma import Authority
from abe_health.owner import OwnerKey
from search.query import reference_query
from tests.test_fhir import FIXTURES, MAP, ROLES, TODAY, labelled, load_bundle

QUERIES = ["^diab", "loinc:8302-2", "^body AND height", "date >= 2021-01-01", "loinc_8480_6 >= 120",
           "(^prediabetes OR ^hypertension) AND date in 2015-01-01..2030-12-31", "^glucose OR ^hemoglobin",
           "ms"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    auth = {name: Authority.setup(name) for name in ("H", "U", "P", "ER")}
    pmap = FhirPolicyMap.from_json(MAP)
    pks = [a.public_key for a in auth.values()]
    owner = OwnerKey.generate()
    path = tmp_path_factory.mktemp("fhir") / "records"
    coll = Collection.create(path, owner)
    bundles = {p.stem: labelled(load_bundle(p)) for p in FIXTURES}
    for name, bundle in bundles.items():
        index_bundle(coll, bundle, pmap, pks, name, today=TODAY)
    keys = {role: [auth[a].keygen(role, attrs) for a, attrs in grants] for role, grants in ROLES.items()}
    blobs = {name: encrypt_bundle(b, pmap, pks, today=TODAY, bundle_id=name) for name, b in bundles.items()}
    return {"path": path, "owner": owner, "bundles": bundles, "keys": keys, "blobs": blobs, "pmap": pmap,
            "coll": coll}


def opened_ids(indexed, role: str) -> set[str]:
    """The document ids of every resource the role's keys open, by decrypting the bundles."""
    out = set()
    for name, blob in indexed["blobs"].items():
        try:
            opened = decrypt_bundle(blob, *indexed["keys"][role], validate=False)
        except PolicyNotSatisfied:  # opens nothing
            continue
        entries = indexed["bundles"][name]["entry"]
        ids = {(e["resource"]["resourceType"], e["resource"].get("id")): i for i, e in enumerate(entries)}
        for entry in opened.bundle["entry"][: opened.readable]:
            resource = entry["resource"]
            at = ids.get((resource["resourceType"], resource.get("id")))
            if at is not None:
                out.add(document_id(name, at, resource))
    return out


@pytest.mark.parametrize("role", sorted(ROLES))
def test_search_equals_a_plaintext_scan_of_what_the_role_opens(indexed, role):
    keys = indexed["keys"][role]
    visible = opened_ids(indexed, role)
    words, fields = {}, {}
    for name, bundle in indexed["bundles"].items():
        docs = bundle_documents(bundle, name)
        for position, entry in enumerate(bundle["entry"]):
            doc = document_id(name, position, entry["resource"])
            if doc in visible and docs.get(doc):
                words["records/" + doc] = docs[doc]
                fields.setdefault("records/" + doc, {}).update(resource_fields(entry["resource"]))
    if not visible:  # keys that open no resource open no group either
        assert open_collection(indexed["path"], keys, [indexed["owner"].public_key]).held == []
        return
    session = searcher([open_collection(indexed["path"], keys, [indexed["owner"].public_key])], keys)
    for query in QUERIES:
        result = session.search(query)
        assert result.hits == reference_query(query, words, fields), (role, query)
        assert {h.doc_id for h in result.hits} <= set(words)


def test_groups_follow_the_encryption_classes(indexed):
    """Each bundle's documents land in the groups of exactly the policies its container uses."""
    for name, bundle in indexed["bundles"].items():
        grouped = documents_by_policy(bundle, indexed["pmap"], name, True, TODAY)
        policies = {g.policy for g in indexed["coll"].groups}
        assert set(grouped) <= policies
        nonempty = [d for d in bundle_documents(bundle, name).values() if d]
        assert sum(len(d) for d in grouped.values()) == len(nonempty)


def test_cli_fhir_index_and_search(tmp_path):
    cli = [sys.executable, "-m", "abe_health.cli"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*cli, *args], capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done

    run("setup", "-o", "hosp")
    run("owner", "keygen", "-o", "own")
    run("keygen", "-m", "hosp/master.key", "-a", "doctor", "-o", "doctor.key")
    run("keygen", "-m", "hosp/master.key", "-a", "billing", "-o", "billing.key")
    (tmp_path / "map.json").write_text(json.dumps({"types": {"Claim": "billing"}, "default": "doctor"}))
    bundle = FIXTURES[0]
    run("fhir", "index", str(bundle), "--policies", "map.json", "--authority", "hosp/public.key",
        "-c", "records", "--owner-key", "own/owner.key", "--bundle-id", "b1")
    found = run("fhir", "search", "records", "date >= 1900-01-01", "-i", "doctor.key", "--owner",
                "own/owner.pub", "--json", "--top", "1000")
    hits = json.loads(found.stdout)["hits"]
    assert hits and all(h["document"].startswith("records/b1/") for h in hits)
    assert not any("/Claim/" in h["document"] for h in hits)
    claims = run("fhir", "search", "records", "^claim OR date >= 1900-01-01", "-i", "billing.key",
                 "--owner", "own/owner.pub", "--json", "--top", "1000")
    assert {h["document"].split("/")[2] for h in json.loads(claims.stdout)["hits"]} == {"Claim"}


def test_dates_are_the_encryption_day(indexed):
    """Break-glass clauses are dated by `today`: indexing with the same day as encryption puts
    each resource in the group of the very policy its container class has."""
    bundle = next(iter(indexed["bundles"].values()))
    later = documents_by_policy(bundle, indexed["pmap"], "x", True, TODAY + dt.timedelta(days=1))
    same = documents_by_policy(bundle, indexed["pmap"], "x", True, TODAY)
    assert set(later) != set(same)  # the emergency clause names the day
