"""The FHIR policy map: which ABE policy protects each resource of a Bundle.

A map is a JSON object (docs/fhir.md has the full description):

    {"resources": {"Patient/123": POLICY, ...},          explicit resource (type/id)
     "labels":    {"R": POLICY, "PSY": POLICY, "http://example.org/cs|X": POLICY, ...},
     "types":     {"Observation:laboratory": POLICY, "Observation": POLICY, "Claim": POLICY, ...},
     "default":   POLICY or null,
     "emergency_authority": "ER"}

where POLICY is a policy text, or {"policy": TEXT, "break_glass": true} to also admit an
emergency key (`emergency >= TODAY@ER`, or `emergency >= TODAY` under a single authority).

A resource's policy is chosen, in this order, by:

1. its explicit id (`resources["Type/id"]`);
2. its HL7 security labels (`meta.security`): a bare key is a confidentiality code (`U L M N R V`,
   system v3-Confidentiality) or an ActCode sensitivity code (`PSY`, `HIV`, `ETH`, `SUD`, ...,
   system v3-ActCode); `system|code` names any other label. Every label of the resource that the
   map names applies, joined with AND: a resource labelled both `R` and `PSY` is readable only
   by whoever satisfies both policies;
3. its type: `Type:category` for each category code the resource carries (Observation,
   Condition, CarePlan, ... `category`), joined with AND when several match, else `Type`;
4. `default`; without one, a resource no rule covers is refused (InvalidPolicyMap naming it).

Break-glass applies when every rule that chose the policy allows it. Errors name the entry
(`types["Observation:laboratory"]: column 9: ...`); the map is validated when it is loaded, so a
bad policy never surfaces half-way through a bundle.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AbeError, InvalidPolicyMap
from ..policy import Policy

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY_CODES = frozenset("ULMNRV")
#: the numeric attribute a break-glass clause tests (its value is the key's last day)
EMERGENCY = "emergency"
SECTIONS = ("resources", "labels", "types")
TOP_LEVEL = frozenset({*SECTIONS, "default", "emergency_authority"})

_TYPE = r"[A-Z][A-Za-z]{0,63}"
_RESOURCE_KEY = re.compile(rf"{_TYPE}/[A-Za-z0-9\-.]{{1,64}}")
_TYPE_KEY = re.compile(rf"{_TYPE}(:[^\s:|]{{1,64}})?")
_BARE_LABEL = re.compile(r"[A-Z][A-Z0-9_\-]{0,63}")
_AUTHORITY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}")


@dataclass(frozen=True)
class Rule:
    """One entry of the map: where it is (`types["Claim"]`), its policy, and break-glass."""

    where: str
    policy: str
    break_glass: bool = False


@dataclass(frozen=True)
class Choice:
    """The policy chosen for one resource, and the rules that chose it."""

    policy: str
    rules: tuple[Rule, ...]

    @property
    def where(self) -> str:
        return " and ".join(r.where for r in self.rules)


def _label_key(key: str) -> tuple[str, str]:
    """(system, code) of a label key: a bare code or `system|code`."""
    if "|" in key:
        system, _, code = key.partition("|")
        if not system or not code or "|" in code:
            raise ValueError("a label is a bare code (R, PSY) or system|code")
        return system, code
    if not _BARE_LABEL.fullmatch(key):
        raise ValueError("a bare label is an upper-case code such as R or PSY (or give system|code)")
    return (CONFIDENTIALITY if key in CONFIDENTIALITY_CODES else ACT_CODE), key


def _where(section: str, key: str) -> str:
    return f"{section}[{json.dumps(key, ensure_ascii=False)}]"


def _rule(section: str, key: Any, value: Any) -> Rule:
    where = _where(section, str(key))
    if not isinstance(key, str):
        raise InvalidPolicyMap(f"policy map: {where}: keys are text")
    pattern = {"resources": _RESOURCE_KEY, "types": _TYPE_KEY}.get(section)
    if pattern is not None and not pattern.fullmatch(key):
        shape = "Type/id" if section == "resources" else "Type or Type:category"
        raise InvalidPolicyMap(f"policy map: {where}: expected {shape}")
    if section == "labels":
        try:
            _label_key(key)
        except ValueError as exc:
            raise InvalidPolicyMap(f"policy map: {where}: {exc}") from None
    break_glass = False
    if isinstance(value, Mapping):
        extra = set(value) - {"policy", "break_glass"}
        if extra:
            raise InvalidPolicyMap(f"policy map: {where}: unknown field {sorted(extra)[0]!r} "
                                   "(a rule has 'policy' and 'break_glass')")
        break_glass = value.get("break_glass", False)
        if not isinstance(break_glass, bool):
            raise InvalidPolicyMap(f"policy map: {where}: 'break_glass' is true or false")
        value = value.get("policy")
    if not isinstance(value, str):
        raise InvalidPolicyMap(f"policy map: {where}: expected a policy text or "
                               '{"policy": TEXT, "break_glass": true}')
    try:
        text = str(Policy.parse(value))
    except AbeError as exc:
        raise InvalidPolicyMap(f"policy map: {where}: {exc}") from None
    return Rule(where, text, break_glass)


def _codings(value: Any) -> list[Mapping[str, Any]]:
    """The codings of a CodeableConcept or a list of them (anything else: none)."""
    concepts = value if isinstance(value, list) else [value]
    out = []
    for concept in concepts:
        if isinstance(concept, Mapping) and isinstance(concept.get("coding"), list):
            out += [c for c in concept["coding"] if isinstance(c, Mapping)]
    return out


@dataclass(frozen=True)
class FhirPolicyMap:
    """A validated policy map (see the module docstring); `choose` evaluates it for a resource."""

    resources: Mapping[str, Rule] = field(default_factory=dict)
    labels: Mapping[tuple[str, str], Rule] = field(default_factory=dict)
    types: Mapping[str, Rule] = field(default_factory=dict)
    default: Rule | None = None
    emergency_authority: str = "ER"

    @classmethod
    def from_json(cls, data: Any) -> FhirPolicyMap:
        """Validate a parsed JSON map; InvalidPolicyMap names the first bad entry."""
        if not isinstance(data, Mapping):
            raise InvalidPolicyMap("policy map: expected a JSON object")
        unknown = sorted(str(k) for k in set(data) - TOP_LEVEL)
        if unknown:
            raise InvalidPolicyMap(f"policy map: unknown field {unknown[0]!r} (expected "
                                   f"{', '.join(sorted(TOP_LEVEL))})")
        sections: dict[str, dict[str, Rule]] = {}
        for section in SECTIONS:
            entries = data.get(section, {})
            if not isinstance(entries, Mapping):
                raise InvalidPolicyMap(f"policy map: {section!r} maps keys to policies")
            sections[section] = {k: _rule(section, k, v) for k, v in entries.items()}
        default = data.get("default")
        default_rule = None if default is None else _rule("default", "", default)
        if default_rule is not None:
            default_rule = Rule("default", default_rule.policy, default_rule.break_glass)
        authority = data.get("emergency_authority", "ER")
        if not isinstance(authority, str) or not _AUTHORITY.fullmatch(authority):
            raise InvalidPolicyMap("policy map: 'emergency_authority' is an authority name")
        if not any(sections.values()) and default_rule is None:
            raise InvalidPolicyMap("policy map: no rule and no default: it protects nothing")
        labels = {_label_key(k): rule for k, rule in sections["labels"].items()}
        return cls(sections["resources"], labels, sections["types"], default_rule, authority)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FhirPolicyMap:
        """Read and validate a map file (UTF-8 JSON)."""
        try:
            text = Path(path).read_bytes().decode("utf-8")
            data = json.loads(text)
        except OSError as exc:
            raise InvalidPolicyMap(f"cannot read policy map {path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise InvalidPolicyMap(f"policy map {path} is not UTF-8 text (byte {exc.start})") from None
        except (json.JSONDecodeError, RecursionError) as exc:
            raise InvalidPolicyMap(f"policy map {path} is not JSON: {exc}") from None
        return cls.from_json(data)

    def rules_for(self, resource: Mapping[str, Any]) -> tuple[Rule, ...]:
        """The rules that choose a resource's policy, by the precedence of the module docstring
        (empty when none applies and there is no default)."""
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if isinstance(rid, str) and f"{rtype}/{rid}" in self.resources:
            return (self.resources[f"{rtype}/{rid}"],)
        meta = resource.get("meta")
        security = meta.get("security") if isinstance(meta, Mapping) else None
        if isinstance(security, list):
            codes = [(c.get("system"), c.get("code")) for c in security if isinstance(c, Mapping)]
            found = {self.labels[(s, c)] for s, c in codes
                     if isinstance(s, str) and isinstance(c, str) and (s, c) in self.labels}
            if found:
                return tuple(sorted(found, key=lambda r: r.where))
        categories = {c.get("code") for c in _codings(resource.get("category"))}
        by_category = {self.types[f"{rtype}:{code}"] for code in categories
                       if isinstance(code, str) and f"{rtype}:{code}" in self.types}
        if by_category:
            return tuple(sorted(by_category, key=lambda r: r.where))
        if isinstance(rtype, str) and rtype in self.types:
            return (self.types[rtype],)
        return () if self.default is None else (self.default,)

    def choose(self, resource: Mapping[str, Any], today: dt.date, multi_authority: bool) -> Choice:
        """The canonical policy text protecting `resource` on the day of encryption, break-glass
        clause included; InvalidPolicyMap when no rule applies and there is no default."""
        rules = self.rules_for(resource)
        if not rules:
            raise InvalidPolicyMap(f"policy map has no rule for {describe(resource)} and no default")
        glass = all(r.break_glass for r in rules)
        where = f"@{self.emergency_authority}" if multi_authority else ""
        return Choice(combine(tuple(sorted({r.policy for r in rules})), glass, today, where), rules)


@functools.lru_cache(maxsize=1024)
def combine(texts: tuple[str, ...], break_glass: bool, today: dt.date, authority: str) -> str:
    """The canonical AND of policy texts, with the break-glass clause `emergency >= TODAY`
    (`authority` is `@ER` or empty) when asked; cached, since a bundle repeats a few rules."""
    text = texts[0] if len(texts) == 1 else " and ".join(f"({t})" for t in texts)
    if break_glass:
        text = f"({text}) or ({EMERGENCY} >= {today.isoformat()}{authority})"
    return str(Policy.parse(text))


def describe(resource: Mapping[str, Any]) -> str:
    """`Type/id` of a resource, for messages (`Type` alone when it has no id)."""
    rtype = resource.get("resourceType")
    rid = resource.get("id")
    name = rtype if isinstance(rtype, str) else "a resource without resourceType"
    return (f"{name}/{rid}" if isinstance(rid, str) else name)[:160]
