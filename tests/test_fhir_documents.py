"""A bundle's resources as search documents (the input FHIR search will index): ids, display
words, code tokens, names and dates, normalized as search normalizes."""

from __future__ import annotations

import json
from pathlib import Path

from abe_health.fhir import bundle_documents, document_id, resource_keywords
from search.text import MAX_KEYWORD, normalize

DATA = Path(__file__).parent / "data" / "fhir"

CONDITION = {
    "resourceType": "Condition", "id": "c1",
    "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">narrative</div>"},
    "code": {"coding": [{"system": "http://snomed.info/sct", "code": "15777000", "display": "Prediabetes"},
                        {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9",
                         "display": "Type 2 diabetes mellitus without complications"}],
             "text": "Prediabetes"},
    "subject": {"reference": "Patient/p1", "display": "Ádám Ωmega"},
    "onsetDateTime": "2020-03-06T20:20:23-08:00",
    "recordedDate": "2020-03-07",
}
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1999-12-31",
           "name": [{"use": "official", "family": "Schowalter414", "given": ["Bibi254", "ÉVA"],
                     "prefix": ["Ms."]}]}
OBSERVATION = {"resourceType": "Observation", "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2",
                                    "display": "Body Height"}]},
               "issued": "2020-03-06T20:20:23.175-08:00"}


def test_condition_keywords():
    words = resource_keywords(CONDITION)
    assert words["snomed:15777000"] == 1 and words["icd10:e11.9"] == 1
    assert words["prediabetes"] == 2  # the coding's display and the concept's text
    assert {"type", "2", "diabetes", "mellitus", "without", "complications"} <= set(words)
    assert words["2020-03-06"] == 1 and words["2020-03-07"] == 1
    assert "narrative" not in words and "div" not in words  # the XHTML narrative is not indexed
    assert {"ádám", "ωmega"} <= set(words)  # reference display texts are display texts


def test_names_dates_and_codes_are_normalized():
    words = resource_keywords(PATIENT)
    assert {"schowalter414", "bibi254", "éva", "ms"} <= set(words)
    assert words["1999-12-31"] == 1 and "official" not in words
    observation = resource_keywords(OBSERVATION)
    assert observation["loinc:8302-2"] == 1 and observation["2020-03-06"] == 1
    assert {"body", "height"} <= set(observation) and "final" not in observation


def test_every_keyword_is_already_in_search_normal_form():
    for path in sorted(DATA.glob("*.json")):
        bundle = json.loads(path.read_text())
        for words in bundle_documents(bundle, path.stem).values():
            for word in words:
                assert normalize(word) == word and 0 < len(word) <= MAX_KEYWORD


def test_document_ids_are_bundle_id_and_resource_id():
    bundle = {"resourceType": "Bundle", "entry": [{"resource": PATIENT}, {"resource": CONDITION},
                                                  {"resource": OBSERVATION}]}
    docs = bundle_documents(bundle, "b1")
    assert list(docs) == ["b1/Patient/p1", "b1/Condition/c1", "b1/#2"]
    assert document_id("b1", 0, PATIENT) == "b1/Patient/p1"


def test_synthea_bundle_documents():
    bundle = json.loads((DATA / "Bibi254.json").read_text())
    docs = bundle_documents(bundle, "bibi")
    assert len(docs) == len(bundle["entry"])
    covid = [d for d, words in docs.items() if words.get("snomed:840539006")]
    kinds = {d.split("/")[1] for d in covid}  # the condition, and what names it as a reason
    assert kinds == {"Condition", "CareTeam", "Claim", "ExplanationOfBenefit"}
    lab = [d for d, words in docs.items() if words.get("loinc:94531-1")]
    assert lab and all(d.startswith(("bibi/Observation/", "bibi/DiagnosticReport/")) for d in lab)
    patient = docs["bibi/Patient/475d72ca-91c7-7211-97e3-f000af33fc04"]
    assert patient["bibi254"] >= 1 and patient["schowalter414"] >= 1
