"""Encrypt a FHIR Bundle resource by resource: one ABE encapsulation per distinct policy, each
resource AEAD-encrypted on its own under a key derived from its class key and its place
(container.py has the layout, docs/fhir.md the format and what it reveals)."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from typing import Any

import cbor2

from ..encryption import encrypt
from ..errors import AbeError, InvalidBundle, InvalidKey, InvalidPolicyMap
from ..keys import Key, PublicKey
from ..policy import Policy
from ..recipients import MultiAuthorityRecipient, PolicyRecipient, Recipient
from .container import (
    KEY,
    MAX_ENTRIES,
    NONCE,
    Container,
    StoredClass,
    check_id,
    class_context,
    entry_info,
    pad,
    resource_key,
    seal,
    seal_entry,
    seal_key,
)
from .model import validate_bundle
from .policymap import Choice, FhirPolicyMap
from .references import reference_index, reference_strings


def is_multi_authority(authorities: list[Key]) -> bool:
    """True for several multi-authority (rw15) public keys, False for one single-authority CP
    public key; InvalidKey for anything else."""
    if not authorities:
        raise InvalidKey("encrypting a bundle needs the authorities' public keys")
    for key in authorities:
        if not isinstance(key, PublicKey):
            raise InvalidKey(f"encrypting a bundle needs public keys, got a {key.kind} key")
    if all(k.scheme.name == "rw15" for k in authorities):
        return True
    if len(authorities) == 1 and getattr(authorities[0].scheme, "policy_in", None) == "ciphertext":
        return False
    raise InvalidKey("a bundle is encrypted under one single-authority CP public key, or under "
                     "multi-authority (rw15) public keys")


@functools.lru_cache(maxsize=256)
def _parsed(text: str, widths: tuple[tuple[str, int], ...]) -> Policy:
    """A parsed policy (its LSSS compiled once): a map's classes repeat across bundles."""
    return Policy.parse(text, dict(widths))


def _recipient(policy: str, authorities: list[Key], multi: bool) -> Recipient:
    if multi:
        return MultiAuthorityRecipient(_parsed(policy, ()), authorities)
    widths = authorities[0].record.meta.get("widths", {})
    items = tuple(sorted(widths.items())) if isinstance(widths, dict) else ()
    return PolicyRecipient(authorities[0], _parsed(policy, items))


def _entries(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InvalidBundle("the bundle has no entries to encrypt")
    if len(entries) > MAX_ENTRIES:
        raise InvalidBundle(f"a bundle has at most {MAX_ENTRIES} entries")
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidBundle(f"entry {i} holds no resource")
        if "id" in resource and not isinstance(resource["id"], str):
            raise InvalidBundle(f"entry {i}: the resource id is not text")
    return entries


def choose_policies(bundle: Mapping[str, Any], pmap: FhirPolicyMap, today: dt.date,
                    multi_authority: bool) -> list[Choice]:
    """The policy of every entry of `bundle`, in entry order (the map evaluated; also what a
    search index groups documents by)."""
    return [pmap.choose(e["resource"], today, multi_authority) for e in _entries(bundle)]


def encrypt_bundle(bundle: Mapping[str, Any], pmap: FhirPolicyMap, authorities: Iterable[Key], *,
                   today: dt.date | None = None, bundle_id: str | None = None,
                   validate: bool = True) -> bytes:
    """Encrypt a FHIR Bundle under the policies `pmap` chooses, for the authorities' public
    keys (one single-authority CP key, or multi-authority keys); returns the container bytes.

    `bundle_id` (default: the Bundle's own `id`, else 32 random hex digits) is stored in clear
    and bound into every class and entry; `today` dates break-glass clauses. With `validate`
    (the default) the bundle must be valid FHIR R4 (needs the `fhir` extra)."""
    if validate:
        validate_bundle(bundle)
    entries = _entries(bundle)
    keys = list(authorities)
    multi = is_multi_authority(keys)
    today = today or dt.date.today()
    own_id = bundle.get("id")
    bundle_id = bundle_id or (own_id if isinstance(own_id, str) else secrets.token_hex(16))
    check_id(bundle_id, InvalidBundle)
    choices = choose_policies(bundle, pmap, today, multi)
    by_policy: dict[str, list[int]] = {}
    for position, choice in enumerate(choices):
        by_policy.setdefault(choice.policy, []).append(position)
    policies = sorted(by_policy)
    class_of = {p: c for c, policy in enumerate(policies) for p in by_policy[policy]}
    index = reference_index(entries)
    nonce = os.urandom(NONCE)
    shell = {k: v for k, v in bundle.items() if k != "entry"}
    shuffle = secrets.SystemRandom().shuffle
    built: list[tuple[bytes, StoredClass]] = []
    for c, policy in enumerate(policies):
        positions = list(by_policy[policy])
        shuffle(positions)  # the stored order says nothing about the bundle's order
        class_key = secrets.token_bytes(KEY)
        toc = [[p, entries[p]["resource"]["resourceType"], entries[p]["resource"].get("id")]
               for p in positions]
        table = pad(cbor2.dumps({"key": class_key, "shell": shell, "toc": toc}))
        where = " / ".join(sorted({choices[p].where for p in positions}))
        try:
            abe = encrypt(table, None, _recipient(policy, keys, multi),
                          context=class_context(bundle_id, nonce, c, len(policies)))
        except InvalidKey as exc:
            raise InvalidPolicyMap(f"policy map: {where}: {exc}") from None
        except AbeError as exc:
            raise InvalidPolicyMap(f"policy map: {where}: policy \"{policy}\": {exc}") from None
        sealed = []
        for slot, p in enumerate(positions):
            resource = entries[p]["resource"]
            text = json.dumps(entries[p], ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            refs = {ref: class_of[index[ref]] for ref in reference_strings(text) if ref in index}
            info = entry_info(bundle_id, nonce, c, slot, p,
                              resource_key(resource["resourceType"], resource.get("id")))
            sealed.append(seal_entry(class_key, nonce, info, cbor2.dumps([p, text.encode(), refs])))
        built.append((class_key, StoredClass(abe, sealed, b"")))
    unsealed = Container(bundle_id, nonce, [s for _, s in built])
    digest = unsealed.digest()
    classes = [StoredClass(s.abe, s.entries, seal(seal_key(k, bundle_id, nonce, c), digest))
               for c, (k, s) in enumerate(built)]
    return Container(bundle_id, nonce, classes).to_bytes()
