"""Personal health records shared across domains (the model of Li, Yu, Zheng, Ren, Lou, "Scalable
and Secure Sharing of Personal Health Records in Cloud Computing Using Attribute-Based
Encryption", IEEE TPDS 2013), over RW15 multi-authority ABE.

- Public domain: institutions run authorities (`hospitalA`, `university`, `insurer`) and issue
  role attributes to professionals.
- Personal domain: the patient runs an authority of their own and issues `family`, `friend`,
  `gp` to people they know.
- A record is a JSON object of sections (`profile`, `medications`, `lab_results`, ...); each
  section is encrypted under its own policy from a policy map. A reader gets the sections their
  keys open and, for every other section, the reason it stayed closed.
- Emergency (break-glass) access: sections listed under "emergency" also admit
  `emergency >= TODAY@ER`, TODAY being the day of encryption. The emergency authority issues
  `emergency = LAST_DAY`: in RW15 the attributes of one GID accumulate across issuances, so the
  expiry is the value of the attribute itself, never a separate `valid_until` (see
  `abe_health.ma`), and an expired key, alone or merged with others, fails.

The `.phr` file (version 2) is the CBOR map

    {"v": 2, "type": "abe-health/phr", "id": RECORD_ID, "nonce": 16 random bytes,
     "sections": {NAME: .abe file bytes, ...}}

and section NAME is encrypted with the envelope context (`abe_health.envelope`)

    SHA-256("abe-health/v2/phr-section\\x00" | lp(id) | nonce | lp(NAME) | u32(n) | lp(N_1) ... lp(N_n))

where N_1..N_n are all section names of the record sorted by their UTF-8 bytes, lp(x) is the
UTF-8 bytes of x prefixed with their length (u32, big-endian). A section opens only under the
record id, encryption (nonce), name and section list it was written for: a section moved to
another record (or from another encryption of the same record id), two sections swapped or
renamed, a section dropped, duplicated or planted all fail with InvalidCiphertext, for every
section the reader can open. The record id is chosen by the writer (default: random) and is
authenticated by every section that opens; `expect_id` refuses another record outright.

What this does not give: authorship. Encryption needs only public keys, so whoever holds them
(the cloud included) can write a whole new record under any id; binding proves that the sections
belong together, not who wrote them. Nor does it detect the replacement of a whole record by an
older version of itself. Version-1 records (sections not bound to their record) are refused.

Policy map (JSON): {"sections": {"profile": "POLICY", ...}, "default": "POLICY or null",
"emergency": ["profile", ...], "emergency_authority": "ER"}.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from .encryption import decrypt, encrypt
from .errors import AbeError, InvalidCiphertext, PolicyNotSatisfied, PolicySyntaxError
from .keys import Key
from .policy import Policy
from .recipients import MultiAuthorityRecipient

PHR_TYPE = "abe-health/phr"
VERSION = 2
CONTEXT_LABEL = b"abe-health/v2/phr-section\x00"
NONCE = 16
#: the longest record id or section name accepted (they are printed, so also no control chars)
MAX_NAME = 256
#: the most sections a record may have (each costs a decryption attempt when opened)
MAX_SECTIONS = 256
#: the numeric attribute break-glass clauses test
EMERGENCY = "emergency"
V1_MESSAGE = ("this is a version-1 .phr record, whose sections are not bound to their record "
              "(a section moved from another record would be shown as this one's); open it with "
              "the abe-health version that wrote it and encrypt the JSON record again, which "
              "writes version 2")


class RecordInputError(AbeError, ValueError):
    """A record or policy map file that cannot be read, is not UTF-8 JSON, or has the wrong shape."""


def _read_json(path: str | os.PathLike[str], what: str) -> Any:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise RecordInputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RecordInputError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordInputError(f"{what} {path} is not JSON: {exc}") from None
    except RecursionError:
        raise RecordInputError(f"{what} {path} is nested too deeply") from None


def load_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A PHR record (a non-empty JSON object of sections) from a UTF-8 JSON file."""
    data = _read_json(path, "record")
    if not isinstance(data, dict) or not data:
        raise RecordInputError(f"record {path}: a PHR record is a non-empty JSON object of sections")
    return data


@dataclass(frozen=True)
class PolicyMap:
    """Which policy protects each section of a record, and which sections allow break-glass."""

    sections: Mapping[str, str]
    default: str | None = None
    emergency: frozenset[str] = field(default_factory=frozenset)
    emergency_authority: str = "ER"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyMap:
        if not isinstance(data, Mapping):
            raise PolicySyntaxError("policy map: expected a JSON object")
        sections = data.get("sections", {})
        if not isinstance(sections, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in sections.items()):
            raise PolicySyntaxError("policy map: 'sections' must map section names to policy texts")
        default = data.get("default")
        if default is not None and not isinstance(default, str):
            raise PolicySyntaxError("policy map: 'default' must be a policy text or null")
        emergency = data.get("emergency", [])
        if not isinstance(emergency, list) or not all(isinstance(e, str) for e in emergency):
            raise PolicySyntaxError("policy map: 'emergency' must be a list of section names")
        authority = data.get("emergency_authority", "ER")
        if not isinstance(authority, str):
            raise PolicySyntaxError("policy map: 'emergency_authority' must be an authority name")
        pmap = cls(dict(sections), default, frozenset(emergency), authority)
        for section in pmap.sections:
            pmap.policy_for(section, dt.date(2000, 1, 1))  # every policy parses now, not mid-record
        return pmap

    @classmethod
    def load(cls, path: str | Path) -> PolicyMap:
        """Read a policy map file (RecordInputError if unreadable or not UTF-8 JSON)."""
        return cls.from_json(_read_json(path, "policy map"))

    def policy_for(self, section: str, today: dt.date) -> str:
        """The policy text of a section on the day of encryption (break-glass clause included:
        `(<section policy>) or (emergency >= TODAY@ER)`)."""
        base = self.sections.get(section, self.default)
        if base is None:
            raise PolicySyntaxError(f"policy map has no policy for section {section!r} and no default")
        text = str(Policy.parse(base))
        if section in self.emergency:
            text = f"({text}) or ({EMERGENCY} >= {today.isoformat()}@{self.emergency_authority})"
        return str(Policy.parse(text))


def _lp(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def section_context(record_id: str, nonce: bytes, section: str, names: Iterable[str]) -> bytes:
    """The envelope context of section `section` of a record with these section names (see the
    module docstring): binds the section to its record, its encryption, its name and its siblings."""
    ordered = sorted(names, key=lambda n: n.encode("utf-8"))
    parts = [CONTEXT_LABEL, _lp(record_id), nonce, _lp(section), struct.pack(">I", len(ordered))]
    parts += [_lp(n) for n in ordered]
    return hashlib.sha256(b"".join(parts)).digest()


def _check_name(text: Any, what: str, error: type[AbeError]) -> str:
    if not isinstance(text, str) or not 0 < len(text) <= MAX_NAME \
            or any(not ch.isprintable() for ch in text):
        raise error(f"{what} must be 1..{MAX_NAME} printable characters")
    return text


def encrypt_record(record: Mapping[str, Any], pmap: PolicyMap, authorities: Iterable[Key],
                   today: dt.date | None = None, record_id: str | None = None) -> bytes:
    """Encrypt each section of a record under its policy, bound to the record (id `record_id`,
    default random) and to its list of sections; returns the `.phr` bytes."""
    if not isinstance(record, Mapping) or not record:
        raise RecordInputError("a PHR record is a non-empty JSON object of sections")
    if len(record) > MAX_SECTIONS:
        raise RecordInputError(f"a PHR record has at most {MAX_SECTIONS} sections")
    record_id = secrets.token_hex(16) if record_id is None else record_id
    _check_name(record_id, "a record id", RecordInputError)
    for name in record:
        _check_name(name, f"section name {name!r}", RecordInputError)
    today = today or dt.date.today()
    pks = list(authorities)
    nonce = os.urandom(NONCE)
    sections = {}
    for name, value in record.items():
        body = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        recipient = MultiAuthorityRecipient(pmap.policy_for(name, today), pks)
        sections[name] = encrypt(body, None, recipient,
                                 context=section_context(record_id, nonce, name, record))
    return cbor2.dumps({"v": VERSION, "type": PHR_TYPE, "id": record_id, "nonce": nonce,
                        "sections": sections})


@dataclass(frozen=True)
class OpenedRecord:
    """What a reader gets from a record: its id, the sections their keys open, and why the
    others stayed closed."""

    record_id: str
    visible: dict[str, Any]
    closed: dict[str, str]


def _parse(blob: bytes) -> tuple[str, bytes, dict[str, bytes]]:
    try:
        data = cbor2.loads(blob)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("not a .phr record (bytes are not CBOR)") from None
    if not isinstance(data, dict) or data.get("type") != PHR_TYPE:
        raise InvalidCiphertext("not a .phr record")
    if data.get("v") == 1:
        raise InvalidCiphertext(V1_MESSAGE, case="phr-v1")
    if data.get("v") != VERSION:
        version = data.get("v")
        shown = repr(version) if type(version) is int and 0 <= version < 1000 else "unknown"
        raise InvalidCiphertext(f"unsupported .phr version {shown} (this is version {VERSION})")
    record_id = _check_name(data.get("id"), "the record id", InvalidCiphertext)
    nonce, sections = data.get("nonce"), data.get("sections")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE:
        raise InvalidCiphertext("malformed .phr record (nonce)")
    if not isinstance(sections, dict) or not sections:
        raise InvalidCiphertext("malformed .phr record (no sections)")
    if len(sections) > MAX_SECTIONS:
        raise InvalidCiphertext(f"malformed .phr record (over {MAX_SECTIONS} sections)")
    for name, sealed in sections.items():
        _check_name(name, "a section name", InvalidCiphertext)
        if not isinstance(sealed, bytes):
            raise InvalidCiphertext("malformed .phr section")
    return record_id, nonce, sections


def record_id(blob: bytes) -> str:
    """The id a `.phr` record claims (authenticated only by its sections opening)."""
    return _parse(blob)[0]


def open_record(blob: bytes, keys: Iterable[Key], expect_id: str | None = None) -> OpenedRecord:
    """Open every section the keys satisfy. InvalidCiphertext if the record is not this record
    (`expect_id`), or if any section that opens was not written for this record, this name and
    these sibling sections (moved, swapped, renamed, dropped, duplicated or planted)."""
    rid, nonce, sections = _parse(blob)
    if expect_id is not None and rid != expect_id:
        raise InvalidCiphertext(f"this is record {rid!r}, not the expected {expect_id!r}")
    keys = list(keys)
    visible: dict[str, Any] = {}
    closed: dict[str, str] = {}
    for name, sealed in sections.items():
        try:
            plain = decrypt(sealed, None, *keys, context=section_context(rid, nonce, name, sections))
        except PolicyNotSatisfied as exc:
            closed[name] = str(exc)
            continue
        except InvalidCiphertext:
            raise InvalidCiphertext(
                f"record {rid!r} was altered: section {name!r} was not written for this record "
                "under this name with these sections (moved from another record, renamed, or "
                "sections were added or removed)") from None
        except AbeError as exc:
            closed[name] = str(exc)
            continue
        try:
            visible[name] = json.loads(plain.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise InvalidCiphertext(f"record {rid!r}: section {name!r} is not JSON") from None
    return OpenedRecord(rid, visible, closed)


def decrypt_record(blob: bytes, keys: Iterable[Key], expect_id: str | None = None
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    """(sections the keys open, {section: why it stayed closed}); see `open_record`."""
    opened = open_record(blob, keys, expect_id)
    return opened.visible, opened.closed
