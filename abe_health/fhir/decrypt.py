"""Decrypt an encrypted FHIR bundle with one user's keys: a valid FHIR R4 Bundle of the resources
those keys open, references to withheld entries kept but marked, and what was withheld and why.

Marking follows FHIR: the Bundle carries the security label `REDACTED`
(v3-ObservationValue) in `meta.security` when anything was withheld; every Reference element
of an opened resource whose target is an entry of this bundle that stayed closed keeps its
`reference` and `display` and gets the core `data-absent-reason` extension with code `masked`
("not available due to security, privacy or related reasons"); and an OperationOutcome lists
each withheld class and each masked reference (issue code `suppressed`, with the FHIRPath of the
element). It is an entry of the Bundle where FHIR lets an entry stand without a request
(`collection`, `document`, `searchset` with `search.mode = outcome`); a `batch` or
`transaction` entry must carry a request, so there it is returned beside the Bundle.

Integrity: every class a reader opens checks its seal, an HMAC under a key only that class's
readers hold over every stored byte but the seals, so a reader of any class detects any change
anywhere in the container (docs/fhir.md says exactly what, and what a class holder can forge).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2

from ..encryption import open_header
from ..errors import InvalidCiphertext, InvalidKey, PolicyNotSatisfied
from ..hazmat.envelope import open_payload, read_header
from ..identities import Identity, identities_of
from ..keys import Key
from .container import (
    KEY,
    Container,
    class_context,
    entry_info,
    lp,
    open_entry,
    parse,
    resource_key,
    seal_key,
    seal_ok,
    unpad,
)
from .model import validate_bundle
from .references import references

OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
REDACTED = {"system": OBSERVATION_VALUE, "code": "REDACTED", "display": "redacted"}
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
MASKED = {"url": DATA_ABSENT_REASON, "valueCode": "masked"}
#: bundle types whose entries need no request, so an OperationOutcome can be one of them
OUTCOME_IN_BUNDLE = frozenset({"collection", "document", "searchset"})
OUTCOME_LABEL = b"abe-health/v2/fhir-outcome-id\x00"


@dataclass(frozen=True)
class WithheldClass:
    """A policy class the keys did not open: its policy, how many entries, and why."""

    policy: str
    entries: int
    reason: str


@dataclass(frozen=True)
class MaskedReference:
    """A Reference element of an opened resource whose target entry was withheld."""

    entry: int  # index in the returned Bundle's entry list
    path: str  # FHIRPath of the Reference element
    reference: str


@dataclass(frozen=True)
class OpenedBundle:
    """What a reader gets: the bundle id (authenticated by every class that opened), the
    Bundle of opened resources, the withheld classes, the masked references, and the
    OperationOutcome describing both (None when nothing was withheld; also an entry of the
    Bundle when its type allows)."""

    bundle_id: str
    bundle: dict[str, Any]
    withheld: tuple[WithheldClass, ...]
    masked: tuple[MaskedReference, ...]
    outcome: dict[str, Any] | None
    readable: int  # entries opened (the OperationOutcome entry not counted)

    @property
    def withheld_entries(self) -> int:
        return sum(w.entries for w in self.withheld)


@dataclass(frozen=True)
class _Opened:
    """An opened class: its index, key (never printed), the Bundle's fields and its table."""

    index: int
    key: bytes = field(repr=False)
    shell: dict[str, Any]
    toc: list[tuple[int, str, str | None]]


def _altered(bundle_id: str, what: str) -> InvalidCiphertext:
    return InvalidCiphertext(f"bundle {bundle_id!r} was altered: {what}")


def _table(raw: bytes, bundle_id: str, n_entries: int, total: int) -> tuple[bytes, dict[str, Any],
                                                                        list[tuple[int, str, str | None]]]:
    """Key, shell and table of contents of an opened class (authenticated already, so a
    malformed one means a forger holding the class key, or a writer's bug)."""
    try:
        data = cbor2.loads(unpad(raw))
    except InvalidCiphertext:
        raise
    except Exception:  # cbor2 raises several error types for garbage
        raise _altered(bundle_id, "a class table is not CBOR") from None
    if not isinstance(data, dict) or set(data) != {"key", "shell", "toc"}:
        raise _altered(bundle_id, "a malformed class table")
    key, shell, toc = data["key"], data["shell"], data["toc"]
    if not isinstance(key, bytes) or len(key) != KEY or not isinstance(shell, dict) \
            or not isinstance(toc, list) or len(toc) != n_entries:
        raise _altered(bundle_id, "a malformed class table")
    rows = []
    for row in toc:
        if not (isinstance(row, list) and len(row) == 3 and type(row[0]) is int
                and 0 <= row[0] < total and isinstance(row[1], str)
                and (row[2] is None or isinstance(row[2], str))):
            raise _altered(bundle_id, "a malformed class table")
        rows.append((row[0], row[1], row[2]))
    return key, shell, rows


def _open_class(container: Container, index: int,
                identities: list[Identity]) -> _Opened | WithheldClass:
    stored = container.classes[index]
    bid = container.bundle_id
    context = class_context(bid, container.nonce, index, len(container.classes))
    src = io.BytesIO(stored.abe)
    try:
        header = read_header(src)
    except InvalidCiphertext as exc:
        raise _altered(bid, f"class {index}: {exc}") from None
    try:
        dek = open_header(header, identities, context)
    except PolicyNotSatisfied as exc:
        return WithheldClass(header.target, len(stored.entries), str(exc))
    except InvalidCiphertext:
        raise _altered(bid, f"class {index} was not written for this bundle, this place "
                            "and these classes") from None
    except InvalidKey as exc:
        return WithheldClass(header.target, len(stored.entries), str(exc))
    sink = io.BytesIO()
    try:
        open_payload(header, dek, src, sink)
    except InvalidCiphertext as exc:
        raise _altered(bid, f"class {index}: {exc}") from None
    key, shell, toc = _table(sink.getvalue(), bid, len(stored.entries), container.n_entries)
    if not seal_ok(seal_key(key, bid, container.nonce, index), container.digest(), stored.seal):
        raise _altered(bid, "its classes or entries were changed, reordered, removed or added")
    return _Opened(index, key, shell, toc)


def _open_entries(container: Container, opened: _Opened) -> list[tuple[int, dict[str, Any],
                                                                       dict[str, int]]]:
    bid, out = container.bundle_id, []
    for slot, sealed in enumerate(container.classes[opened.index].entries):
        position, rtype, rid = opened.toc[slot]
        info = entry_info(bid, container.nonce, opened.index, slot, position, resource_key(rtype, rid))
        try:
            body = cbor2.loads(open_entry(opened.key, container.nonce, info, sealed))
        except InvalidCiphertext as exc:
            raise _altered(bid, str(exc)) from None
        except Exception:  # cbor2 raises several error types for garbage
            raise _altered(bid, "an entry is not CBOR") from None
        if not (isinstance(body, list) and len(body) == 3 and body[0] == position
                and isinstance(body[1], bytes) and isinstance(body[2], dict)):
            raise _altered(bid, "a malformed entry")
        try:
            entry = json.loads(body[1].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise _altered(bid, "an entry is not JSON") from None
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != rtype \
                or resource.get("id") != rid:
            raise _altered(bid, "an entry is not the resource its class table names")
        refs = body[2]
        if not all(isinstance(k, str) and type(v) is int and 0 <= v < len(container.classes)
                   for k, v in refs.items()):
            raise _altered(bid, "a malformed entry")
        out.append((position, entry, refs))
    return out


def _outcome(container: Container, withheld: Sequence[WithheldClass],
             masked: Sequence[MaskedReference]) -> dict[str, Any]:
    """The OperationOutcome of a decryption; its id is derived from the bundle id and nonce, so
    decrypting twice gives the same Bundle."""
    issues: list[dict[str, Any]] = [
        {"severity": "information", "code": "suppressed",
         "diagnostics": f"{w.entries} entries withheld under policy \"{w.policy}\": {w.reason}"}
        for w in withheld]
    issues += [{"severity": "information", "code": "suppressed",
                "diagnostics": f"reference {m.reference} names an entry of this bundle that was "
                               "withheld",
                "expression": [m.path]} for m in masked]
    digest = hashlib.sha256(OUTCOME_LABEL + lp(container.bundle_id) + container.nonce).digest()
    return {"resourceType": "OperationOutcome", "id": str(uuid.UUID(bytes=digest[:16], version=4)),
            "issue": issues}


def decrypt_bundle(blob: bytes, *identities: Key | Identity | Sequence[Key],
                   expect_id: str | None = None,
                   validate: bool = True) -> OpenedBundle:
    """Open every class the identities (one user's keys: RW15 keys are grouped by GID and never
    pooled across GIDs; single-authority keys are tried one at a time) satisfy.

    InvalidCiphertext if the container is malformed, is not bundle `expect_id`, or was altered
    anywhere (checked by every class that opens); PolicyNotSatisfied if no class opens. With
    `validate` (the default) the Bundle returned is checked against the FHIR R4 models (needs
    the `fhir` extra)."""
    container = parse(blob)
    bid = container.bundle_id
    if expect_id is not None and bid != expect_id:
        raise InvalidCiphertext(f"this is bundle {bid!r}, not the expected {expect_id!r}")
    idents = identities_of(identities)
    if not idents:
        raise InvalidKey("decryption needs at least one identity (a user key)")
    opened: list[_Opened] = []
    withheld: list[WithheldClass] = []
    for index in range(len(container.classes)):
        result = _open_class(container, index, idents)
        (withheld if isinstance(result, WithheldClass) else opened).append(result)  # type: ignore[arg-type]
    if not opened:
        policies = "; ".join(f'"{w.policy}"' for w in withheld)
        raise PolicyNotSatisfied(f"no class of bundle {bid!r} opens with these keys "
                                 f"(policies: {policies})")
    shell = opened[0].shell
    if any(o.shell != shell for o in opened[1:]):
        raise _altered(bid, "its classes disagree on the bundle")
    rows = sorted((row for o in opened for row in _open_entries(container, o)), key=lambda r: r[0])
    if len({r[0] for r in rows}) != len(rows):
        raise _altered(bid, "two entries claim one position")
    open_classes = {o.index for o in opened}
    bundle = copy.deepcopy(shell)
    entries: list[dict[str, Any]] = []
    masked: list[MaskedReference] = []
    for _position, entry, refs in rows:
        i = len(entries)
        if any(target not in open_classes for target in refs.values()):
            for path, element in references(entry["resource"], f"Bundle.entry[{i}].resource"):
                target = refs.get(element["reference"])
                if target is not None and target not in open_classes:
                    element.setdefault("extension", []).append(dict(MASKED))
                    masked.append(MaskedReference(i, path, element["reference"]))
        entries.append(entry)
    outcome = None
    if withheld:
        meta = bundle.setdefault("meta", {})
        if REDACTED not in meta.setdefault("security", []):
            meta["security"].append(dict(REDACTED))
        outcome = _outcome(container, withheld, masked)
        if bundle.get("type") in OUTCOME_IN_BUNDLE:
            extra: dict[str, Any] = {"fullUrl": f"urn:uuid:{outcome['id']}", "resource": outcome}
            if bundle.get("type") == "searchset":
                extra["search"] = {"mode": "outcome"}
            entries.append(extra)
    bundle["entry"] = entries
    if validate:
        validate_bundle(bundle, "the decrypted bundle")
    return OpenedBundle(bid, bundle, tuple(withheld), tuple(masked), outcome, len(rows))
