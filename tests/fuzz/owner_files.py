"""Owner files: `OwnerPublicKey.from_bytes`, `OwnerKey.from_bytes`, `decode_signed` with
verification under the pinned owner key, and `SearchKey.from_bytes` (search.key).

Oracle: a key that loads re-encodes to an equal key; a signature file that verifies under the
pinned owner key carries exactly the statement the owner signed. Every input goes to every
parser; refusals are typed (InvalidKey, InvalidSignature, InvalidSearchKey)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abe_health.owner import OwnerKey, OwnerPublicKey, decode_signed
from search import SearchKey
from tests.fuzz import world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult


class OwnerSurface(Surface):
    name = "owner"
    weight = 6

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()
        signature = dict(world.seeds("owner"))["signature"]
        return {"owner": OwnerPublicKey.from_bytes(ctx["owner"]["public"]),
                "statement": decode_signed(signature)[0]}

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        public = attempt(OwnerPublicKey.from_bytes, data)
        if public is not None and OwnerPublicKey.from_bytes(public.to_bytes()) != public:
            raise WrongResult("owner-public-roundtrip")
        private = attempt(OwnerKey.from_bytes, data)
        if private is not None and OwnerKey.from_bytes(private.to_bytes()) != private:
            raise WrongResult("owner-key-roundtrip")
        signed = attempt(decode_signed, data)
        if signed is not None:
            statement, signature = signed
            if _verifies(state["owner"], statement, signature) and statement != state["statement"]:
                raise WrongResult("owner-signature-statement")
        key = attempt(SearchKey.from_bytes, data)
        if key is not None and SearchKey.from_bytes(key.to_bytes()) != key:
            raise WrongResult("search-key-roundtrip")


def _verifies(owner: OwnerPublicKey, statement: Any, signature: bytes) -> bool:
    return attempt(lambda: owner.verify(statement, signature) or True) is True
