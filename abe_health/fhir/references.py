"""References between the entries of a Bundle: which reference strings name an entry of the
same bundle, and where each Reference element sits in a resource (a FHIRPath), so a reader can
mark the ones whose target was withheld."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


def reference_index(entries: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Reference string -> position of the entry it names: the entry's `fullUrl`, and
    `Type/id` (relative references, also the tail of an absolute `fullUrl`)."""
    index: dict[str, int] = {}
    for position, entry in enumerate(entries):
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            index.setdefault(full_url, position)
        resource = entry.get("resource")
        if isinstance(resource, Mapping):
            rtype, rid = resource.get("resourceType"), resource.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                index.setdefault(f"{rtype}/{rid}", position)
    return index


_REFERENCE = re.compile(r'"reference":("(?:[^"\\]|\\.)*")')


def reference_strings(compact_json: str) -> set[str]:
    """Every `reference` string of a resource, read from its compact JSON text (separators
    `,` and `:`, as the encryptor writes it): a key inside a string value has its quotes
    escaped, so only real keys match. Much faster than walking the parsed resource."""
    return {json.loads(m) for m in _REFERENCE.findall(compact_json)}


def references(resource: Any, root: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(FHIRPath, element) of every Reference element (an object with a text `reference`) in a
    resource, depth first in document order; iterative, so deep JSON cannot exhaust the stack."""
    stack: list[tuple[str, Any]] = [(root, resource)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            if isinstance(value.get("reference"), str) and path:
                yield path, value
            children = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()
                        if isinstance(v, (dict, list))]
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(value)
                                   if isinstance(v, (dict, list))]))
