"""Suite `fhir`: FHIR bundles encrypted resource by resource (one ABE encapsulation per distinct
policy, each resource AEAD-sealed on its own), on the Synthea bundles of tests/data/fhir and a
100-resource bundle made from one of them, under multi-authority (RW15) policies: six distinct
policies per bundle, read by a GP who opens five of them.

Per bundle and method: encrypt and decrypt time (per bundle and per resource) and bytes of
overhead per resource (stored bytes minus the entries' JSON, over the resources), beside

- "one policy for the whole bundle": the bundle's JSON as one `.abe` under one policy;
- "one encapsulation per resource": each entry its own `.abe` under its own policy (what the
  `.phr` format does per section), the GP decrypting each (closed ones fail at the policy check);

and the targets of the issue, measured in the same run: encryption within the time of one
encapsulation per class + 10 % (`encrypt_vs_encaps`, target <= 1.10), decryption within twice one
decapsulation per class the reader opens (`decrypt_vs_decaps`, target <= 2). Encapsulations are
timed alone (`recipient.encapsulate()`), decapsulations as parsing one class's `.abe` header and
unwrapping it (`read_header`, `identity.unwrap()`: what decrypting any stored ABE ciphertext
does, header validation included); FHIR model validation is timed apart (`validate_ms`) and left
out of the ratios.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from abe_health import MultiAuthorityRecipient, decrypt, encrypt
from abe_health.errors import PolicyNotSatisfied
from abe_health.fhir import FhirPolicyMap, choose_policies, decrypt_bundle, encrypt_bundle, validate_bundle
from abe_health.fhir.container import class_context, parse
from abe_health.hazmat.envelope import read_header
from abe_health.identities import Holder
from abe_health.ma import Authority

from .report import Report, median_ms

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "fhir"
TODAY = dt.date(2026, 11, 22)
#: six distinct policies over the Synthea resource types
MAP = {
    "types": {
        "Condition": {"policy": "doctor@H", "break_glass": True},
        "Observation:laboratory": "doctor@H or (researcher@U and consent@P)",
        "Observation:vital-signs": "doctor@H or (nurse@H and ward = 3@H)",
        "Immunization": "doctor@H or nurse@H or pharmacist@H",
        "Claim": "billing@H",
        "ExplanationOfBenefit": "billing@H",
    },
    "default": "doctor@H or nurse@H",
}


def hundred(bundle: dict[str, Any]) -> dict[str, Any]:
    """Exactly 100 resources: the bundle's, topped up with copies of its observations and
    immunizations under new ids."""
    out = copy.deepcopy(bundle)
    extra = [e for e in bundle["entry"] if e["resource"]["resourceType"] in ("Observation", "Immunization")]
    i = 0
    while len(out["entry"]) < 100:
        entry = copy.deepcopy(extra[i % len(extra)])
        entry["resource"]["id"] = f"copy-{i}"
        entry["fullUrl"] = f"urn:uuid:copy-{i}"
        out["entry"].append(entry)
        i += 1
    return out


def _bundles(quick: bool) -> dict[str, dict[str, Any]]:
    found = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DATA.glob("*.json"))}
    if not found:
        raise SystemExit(f"no Synthea bundles in {DATA}")
    first = next(iter(found.values()))
    chosen = {"100 resources": hundred(first)}
    return chosen if quick else {**chosen, **found}


def _compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _decaps_ms(blob: bytes, reader: Holder, repeat: int) -> float:
    """One `.abe` header opened per class the reader opens (parsed, then unwrapped: what any
    ABE decryption of a stored ciphertext does), summed."""
    container = parse(blob)
    total = 0.0
    for index, stored in enumerate(container.classes):
        context = class_context(container.bundle_id, container.nonce, index, len(container.classes))
        try:
            reader.unwrap(read_header(io.BytesIO(stored.abe)), context)
        except PolicyNotSatisfied:
            continue
        total += median_ms(lambda s=stored, c=context: reader.unwrap(read_header(io.BytesIO(s.abe)), c),
                           repeat)
    return total


def _measure(report: Report, name: str, bundle: dict[str, Any], pmap: FhirPolicyMap, pks: list[Any],
             reader: Holder, repeat: int) -> None:
    n = len(bundle["entry"])
    texts = [_compact(e) for e in bundle["entry"]]
    plain = sum(map(len, texts))
    choices = choose_policies(bundle, pmap, TODAY, True)
    recipients = {c.policy: MultiAuthorityRecipient(c.policy, pks) for c in choices}
    blob = encrypt_bundle(bundle, pmap, pks, today=TODAY, bundle_id=name, validate=False)
    enc_ms = median_ms(lambda: encrypt_bundle(bundle, pmap, pks, today=TODAY, bundle_id=name,
                                              validate=False), repeat)
    dec_ms = median_ms(lambda: decrypt_bundle(blob, reader, validate=False), repeat)
    opened = decrypt_bundle(blob, reader, validate=False)
    validate_ms = median_ms(lambda: validate_bundle(opened.bundle), repeat)
    encaps_ms = sum(median_ms(r.encapsulate, repeat) for r in recipients.values())
    decaps_ms = _decaps_ms(blob, reader, repeat)
    whole_text = _compact(bundle)
    whole_recipient = MultiAuthorityRecipient(str(MAP["default"]), pks)
    whole = encrypt(whole_text, None, whole_recipient)
    whole_enc = median_ms(lambda: encrypt(whole_text, None, whole_recipient), repeat)
    whole_dec = median_ms(lambda: decrypt(whole, None, reader), repeat)

    def per_resource() -> list[bytes]:
        return [encrypt(t, None, recipients[c.policy]) for t, c in zip(texts, choices, strict=True)]

    files = per_resource()

    def per_resource_open() -> None:
        for f in files:
            try:
                decrypt(f, None, reader)
            except PolicyNotSatisfied:
                pass

    each_enc = median_ms(per_resource, max(1, repeat // 2))
    each_dec = median_ms(per_resource_open, max(1, repeat // 2))
    common = {"bundle": name, "resources": n, "policies": len(recipients)}
    report.add(**common, method="per-policy classes (ours)", encrypt_ms=enc_ms, decrypt_ms=dec_ms,
               encrypt_per_resource_ms=enc_ms / n, decrypt_per_resource_ms=dec_ms / n,
               overhead_bytes_per_resource=(len(blob) - plain) / n, encrypt_vs_ours=1.0,
               decrypt_vs_ours=1.0, encrypt_vs_encaps=enc_ms / encaps_ms,
               decrypt_vs_decaps=dec_ms / decaps_ms, validate_ms=validate_ms,
               encaps_ms=encaps_ms, decaps_ms=decaps_ms, readable=opened.readable)
    report.add(**common, method="one policy for the whole bundle", encrypt_ms=whole_enc,
               decrypt_ms=whole_dec, encrypt_per_resource_ms=whole_enc / n,
               decrypt_per_resource_ms=whole_dec / n,
               overhead_bytes_per_resource=(len(whole) - len(whole_text)) / n,
               encrypt_vs_ours=whole_enc / enc_ms, decrypt_vs_ours=whole_dec / dec_ms)
    report.add(**common, method="one encapsulation per resource", encrypt_ms=each_enc,
               decrypt_ms=each_dec, encrypt_per_resource_ms=each_enc / n,
               decrypt_per_resource_ms=each_dec / n,
               overhead_bytes_per_resource=(sum(map(len, files)) - plain) / n,
               encrypt_vs_ours=each_enc / enc_ms, decrypt_vs_ours=each_dec / dec_ms)


def run(quick: bool) -> Report:
    report = Report("fhir", ["bundle", "resources", "policies", "method", "encrypt_ms", "decrypt_ms",
                             "encrypt_per_resource_ms", "decrypt_per_resource_ms",
                             "overhead_bytes_per_resource", "encrypt_vs_ours", "decrypt_vs_ours",
                             "encrypt_vs_encaps", "decrypt_vs_decaps", "validate_ms"])
    repeat = 3 if quick else 7
    auth = {name: Authority.setup(name) for name in ("H", "U", "P", "ER")}
    pks = [a.public_key for a in auth.values()]
    pmap = FhirPolicyMap.from_json(MAP)
    gp = Holder(auth["H"].keygen("gp", ["doctor"]))
    for name, bundle in _bundles(quick).items():
        _measure(report, name, bundle, pmap, pks, gp, repeat)
    report.notes.append(
        "targets (issue 12): encrypt_vs_encaps <= 1.10 (a bundle's encryption within one "
        "encapsulation per distinct policy + 10 %), decrypt_vs_decaps <= 2 (a reader's decryption "
        "within twice one decapsulation per policy it opens, a decapsulation counted as parsing "
        "and opening one `.abe` header); *_vs_ours is the baseline's time over ours (above 1: "
        "ours is faster)")
    report.notes.append(
        "the whole-bundle baseline gives the GP everything (one policy cannot withhold the "
        "claims), so it is a cost floor, not an alternative; validation with the FHIR R4 models "
        "(validate_ms) is excluded from the ratios")
    return report
