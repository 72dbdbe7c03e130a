"""Search over FHIR bundles, authorized per resource: each resource is a document of the
collection group of the policy that protects it in the encrypted bundle.

`index_bundle` evaluates the same policy map as `encrypt_bundle` (`choose_policies`), turns the
bundle into documents (`bundle_documents`: id `BUNDLE/Type/id`, display words, code tokens,
names, dates, and range fields), and adds each policy class's documents to the collection
group of that policy (`abe_health.collection`). A searcher's keys open exactly the groups whose
policies they satisfy, so a search never shows a resource id, count or match to a user whose
keys could not open that resource in the encrypted bundle.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..collection import Collection
from ..errors import InvalidBundle
from ..keys import Key
from .documents import bundle_documents, document_id
from .encrypt import choose_policies, is_multi_authority
from .policymap import FhirPolicyMap


def documents_by_policy(bundle: Mapping[str, Any], pmap: FhirPolicyMap, bundle_id: str,
                        multi_authority: bool, today: dt.date | None = None
                        ) -> dict[str, dict[str, Counter[str]]]:
    """{policy: {document id: keywords}}: the bundle's search documents grouped by the policy
    the map chooses for each resource (as `encrypt_bundle` does for the same `today`)."""
    choices = choose_policies(bundle, pmap, today or dt.date.today(), multi_authority)
    docs = bundle_documents(bundle, bundle_id)
    policy_of: dict[str, str] = {}
    for position, (entry, choice) in enumerate(zip(bundle["entry"], choices, strict=True)):
        doc = document_id(bundle_id, position, entry["resource"])
        if policy_of.setdefault(doc, choice.policy) != choice.policy:
            raise InvalidBundle(f"{doc} appears twice with different policies; give each resource "
                                "its own id")
    grouped: dict[str, dict[str, Counter[str]]] = {}
    for doc, policy in policy_of.items():
        if docs.get(doc):
            grouped.setdefault(policy, {})[doc] = docs[doc]
    return grouped


def index_bundle(collection: Collection, bundle: Mapping[str, Any], pmap: FhirPolicyMap,
                 authorities: Iterable[Key], bundle_id: str, today: dt.date | None = None,
                 versions: Mapping[str, int] | None = None, replace: bool = False) -> dict[str, int]:
    """Add a bundle's resources to `collection`, each in the group of its policy; returns how
    many documents went to each policy. `replace` re-indexes a bundle indexed before."""
    keys = list(authorities)
    multi = is_multi_authority(keys)
    sealing: Key | list[Key] = keys if multi else keys[0]
    grouped = documents_by_policy(bundle, pmap, bundle_id, multi, today)
    for policy, docs in sorted(grouped.items()):
        collection.add(docs, policy, sealing, versions, replace_existing=replace)
    return {policy: len(docs) for policy, docs in grouped.items()}
