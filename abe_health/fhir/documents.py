"""A Bundle's resources as search documents, `{doc_id: {keyword: term frequency}}`, the input
the search index builds from (`search.SearchIndex.create`), so FHIR search can be wired to the
per-policy-class authorization of the search package.

- The document id is the bundle id, "/", and the resource's `Type/id` (`b1/Observation/42`;
  `b1/#7` for the entry at position 7 when its resource has no id).
- Keywords, each NFC-normalized and case-folded as search normalizes text and patterns:
  - the words of display texts: every `display` and `text` string (Coding.display,
    CodeableConcept.text, ...; not the XHTML narrative `text.div`);
  - code tokens `PREFIX:CODE` for codings of the known systems (`snomed:15777000`,
    `loinc:8302-2`, `icd10:e11.9`, `rxnorm:...`, `cvx:140`, ...);
  - names: the words of every HumanName's `given`, `family`, `prefix`, `suffix` and `text`;
  - dates: every date, dateTime or instant value as its day `YYYY-MM-DD`.
  Keywords longer than search's limit (40 characters) are left out, as search does.
- Fields, for range queries (`search.fields`: dyadic prefix keywords the server cannot read):
  `date` for every date in the resource, and each date under its own element name
  (`effectivedatetime`, `birthdate`, ...); `loinc_CODE` (`loinc_8480_6`) for the integral value
  of an Observation, or of one of its components, coded with that LOINC code, so
  `loinc_8480_6 >= 140 AND date >= 2024-01-01` finds high systolic readings of 2024.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from search.fields import FieldValue, field_keywords, field_name, parse_value

#: code systems whose codes become `PREFIX:CODE` keywords
CODE_SYSTEMS = {
    "http://snomed.info/sct": "snomed",
    "http://loinc.org": "loinc",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10",
    "http://hl7.org/fhir/sid/icd-9-cm": "icd9",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "http://hl7.org/fhir/sid/cvx": "cvx",
    "http://www.ama-assn.org/go/cpt": "cpt",
}
NAME_PARTS = ("given", "family", "prefix", "suffix", "text")
#: the longest keyword search indexes (search.text.MAX_KEYWORD)
MAX_KEYWORD = 40
_WORD = re.compile(r"\w+")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?")


def normalize(text: str) -> str:
    """NFC, case-folded, NFC again: search's normalization of keywords and patterns."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def _words(text: str) -> Iterator[str]:
    yield from _WORD.findall(normalize(text))


def _walk(value: Any, key: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(key, value, parent) for every value below `value`, iteratively."""
    stack: list[tuple[str, Any, Any]] = [(key, value, None)]
    while stack:
        k, v, parent = stack.pop()
        yield k, v, parent
        if isinstance(v, dict):
            stack.extend((ck, cv, v) for ck, cv in reversed(list(v.items())))
        elif isinstance(v, list):
            stack.extend((k, cv, parent) for cv in reversed(v))


def _is_name(parent: Any) -> bool:
    """A HumanName: an object with given/family, or the element of a `name` list."""
    return isinstance(parent, Mapping) and ("family" in parent or "given" in parent)


def resource_keywords(resource: Mapping[str, Any]) -> Counter[str]:
    """The keywords of one resource (see the module docstring)."""
    found: Counter[str] = Counter()
    for key, value, parent in _walk(resource):
        if isinstance(value, Mapping):
            system, code = value.get("system"), value.get("code")
            if isinstance(code, str) and isinstance(system, str) and system in CODE_SYSTEMS:
                found[normalize(f"{CODE_SYSTEMS[system]}:{code}")] += 1
            continue
        if not isinstance(value, str):
            continue
        if key in ("display", "text") and not (key == "text" and isinstance(parent, Mapping)
                                               and "div" in parent):
            found.update(_words(value))
        elif key in NAME_PARTS and _is_name(parent):
            found.update(_words(value))
        elif (match := _DATE.fullmatch(value)) is not None:
            found[match.group(1)] += 1
    return Counter({k: n for k, n in found.items() if 0 < len(k) <= MAX_KEYWORD})


def _loinc_values(item: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(loinc_CODE, value) of an Observation or component whose code is a LOINC coding."""
    code, quantity = item.get("code"), item.get("valueQuantity")
    if not isinstance(code, Mapping) or not isinstance(quantity, Mapping) or "value" not in quantity:
        return
    for coding in code.get("coding") or []:
        if isinstance(coding, Mapping) and coding.get("system") == "http://loinc.org" \
                and isinstance(coding.get("code"), str):
            yield "loinc_" + re.sub(r"\W", "_", coding["code"]), quantity["value"]


def resource_fields(resource: Mapping[str, Any]) -> dict[str, set[FieldValue]]:
    """The range fields of one resource (see the module docstring)."""
    out: dict[str, set[FieldValue]] = {}

    def put(name: str | None, raw: Any) -> None:
        value = parse_value(raw)
        if name is not None and value is not None:
            out.setdefault(name, set()).add(value)

    for key, value, _ in _walk(resource):
        if isinstance(value, str) and _DATE.fullmatch(value):
            put("date", value)
            put(field_name(key), value)
    if resource.get("resourceType") == "Observation":
        items = [resource, *(c for c in resource.get("component") or [] if isinstance(c, Mapping))]
        for item in items:
            for name, raw in _loinc_values(item):
                put(field_name(name), raw)
    return out


def document_id(bundle_id: str, position: int, resource: Mapping[str, Any]) -> str:
    """`BUNDLE/Type/id`, or `BUNDLE/#POSITION` for a resource without id."""
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if isinstance(rtype, str) and isinstance(rid, str):
        return f"{bundle_id}/{rtype}/{rid}"
    return f"{bundle_id}/#{position}"


def bundle_documents(bundle: Mapping[str, Any], bundle_id: str) -> dict[str, Counter[str]]:
    """Every resource of `bundle` as a search document (words and range fields), keyed by
    `document_id` (a resource that appears twice under one id contributes to one document)."""
    docs: dict[str, Counter[str]] = {}
    entries = bundle.get("entry")
    for position, entry in enumerate(entries if isinstance(entries, list) else []):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping):
            docs.setdefault(document_id(bundle_id, position, resource), Counter()).update(
                resource_keywords(resource) + field_keywords(resource_fields(resource)))
    return docs
