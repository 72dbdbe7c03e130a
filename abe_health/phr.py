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

Policy map (JSON): {"sections": {"profile": "POLICY", ...}, "default": "POLICY or null",
"emergency": ["profile", ...], "emergency_authority": "ER"}.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2

from .api import decrypt
from .errors import AbeError, InvalidCiphertext, PolicyNotSatisfied, PolicySyntaxError
from .keys import Key
from .ma import ma_encrypt
from .policy import Policy

PHR_TYPE = "abe-health/phr"
#: the numeric attribute break-glass clauses test
EMERGENCY = "emergency"


@dataclass(frozen=True)
class PolicyMap:
    """Which policy protects each section of a record, and which sections allow break-glass."""

    sections: Mapping[str, str]
    default: str | None = None
    emergency: frozenset[str] = field(default_factory=frozenset)
    emergency_authority: str = "ER"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PolicyMap:
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
        pmap = cls(dict(sections), default, frozenset(emergency),
                   str(data.get("emergency_authority", "ER")))
        for section in pmap.sections:
            pmap.policy_for(section, dt.date(2000, 1, 1))  # every policy parses now, not mid-record
        return pmap

    @classmethod
    def load(cls, path: str | Path) -> PolicyMap:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise PolicySyntaxError(f"cannot read policy map {path}: {exc.strerror}") from None
        except json.JSONDecodeError as exc:
            raise PolicySyntaxError(f"policy map {path} is not JSON: {exc}") from None

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


def encrypt_record(record: Mapping[str, Any], pmap: PolicyMap, authorities: Iterable[Key],
                   today: dt.date | None = None) -> bytes:
    """Encrypt each section of a record under its policy; returns the `.phr` bytes."""
    if not isinstance(record, Mapping) or not record:
        raise PolicySyntaxError("a PHR record is a non-empty JSON object of sections")
    today = today or dt.date.today()
    pks = list(authorities)
    sections, policies = {}, {}
    for name, value in record.items():
        policies[name] = pmap.policy_for(name, today)
        body = json.dumps(value, ensure_ascii=False, sort_keys=True).encode()
        sections[name] = ma_encrypt(body, policies[name], pks)
    return cbor2.dumps({"v": 1, "type": PHR_TYPE, "sections": sections, "policies": policies})


def decrypt_record(blob: bytes, keys: Iterable[Key]) -> tuple[dict[str, Any], dict[str, str]]:
    """(sections the keys open, {section: why it stayed closed})."""
    try:
        data = cbor2.loads(blob)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("not a .phr record (bytes are not CBOR)") from None
    if not isinstance(data, dict) or data.get("type") != PHR_TYPE or data.get("v") != 1 \
            or not isinstance(data.get("sections"), dict):
        raise InvalidCiphertext("not a version-1 .phr record")
    keys = list(keys)
    visible: dict[str, Any] = {}
    closed: dict[str, str] = {}
    for name, sealed in data["sections"].items():
        if not isinstance(name, str) or not isinstance(sealed, bytes):
            raise InvalidCiphertext("malformed .phr section")
        try:
            visible[name] = json.loads(decrypt(sealed, keys))
        except PolicyNotSatisfied as exc:
            closed[name] = str(exc)
        except InvalidCiphertext:
            raise
        except AbeError as exc:
            closed[name] = str(exc)
    return visible, closed
