"""Policy and attribute text: `Policy.parse`, its canonical text, LSSS and evaluation, and
`parse_attribute` / `parse_attributes`.

Oracle: a text that parses has a canonical form that parses to the same tree and prints the
same (a round trip), its LSSS compiles, and the original and the re-parsed policy agree on a few
key attribute sets; an attribute that parses round-trips the same way. Otherwise the only
accepted outcome is a typed error (PolicySyntaxError)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from abe_health.policy import Policy, parse_attribute, parse_attributes
from tests.fuzz import mutate
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult

KEY_SETS = [["doctor", "cardiology"], ["nurse", "ward = 3"], ["age = 30", "doctor@hospitalA"],
            ["valid_until = 2026-12-31", "family@patient", "a", "b"]]


class PolicySurface(Surface):
    name = "policy"
    weight = 20

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if rng.random() < 0.6:
            return mutate.policy_edit(rng, data)
        return mutate.generic(rng, data)

    def setup(self, scratch_root: Path) -> Any:
        return [parse_attributes(k) for k in KEY_SETS]

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        text = data.decode("utf-8", errors="surrogateescape")
        policy = attempt(Policy.parse, text)
        if policy is not None:
            canonical = str(policy)
            again = Policy.parse(canonical)
            if str(again) != canonical or again.tree != policy.tree:
                raise WrongResult("policy-roundtrip", f"{canonical[:80]!r} -> {str(again)[:80]!r}")
            lsss = attempt(lambda: policy.lsss)
            if lsss is not None and len(lsss.rho) != lsss.n_rows:
                raise WrongResult("policy-lsss-shape")
            for key in state:
                if policy.is_satisfied_by(key) != again.is_satisfied_by(key):
                    raise WrongResult("policy-evaluation", canonical[:80])
        attribute = attempt(parse_attribute, text)
        if attribute is not None:
            again_attr = parse_attribute(str(attribute))
            if again_attr != attribute or str(again_attr) != str(attribute):
                raise WrongResult("attribute-roundtrip", f"{str(attribute)[:80]!r}")
            attempt(lambda: parse_attributes([text]).labels)
