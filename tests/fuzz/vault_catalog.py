"""Vault directories: catalog.sqlite, the signed vault.manifest and the stored headers and
bodies. Calls, with a real authority (public and master key, its own AuthorityState): open the
vault, `list`, `manifest`, `versions`, `pending`, `get` of every listed file with a reader key,
and `get(..., authority=)` (which rewrites a pending header first).

Oracle: every file that `get` returns is exactly the plaintext stored under that id; every
listed row has the catalog's types; pending ids are listed ids. Anything else is refused with a
typed error (VaultError for the catalog and manifest)."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

from abe_health import ABE
from abe_health.keys import load_key
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState
from tests.fuzz import world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.bundles import mutate_bundle, write_bundle
from tests.fuzz.engine import WrongResult


class VaultSurface(Surface):
    name = "vault"
    weight = 12

    def mutate(self, rng: random.Random, seeds: list[bytes]) -> tuple[bytes, str]:
        return mutate_bundle(rng, seeds)

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()["vault"]
        return {"public": load_key(ctx["public"]), "master": load_key(ctx["master"]),
                "user": load_key(ctx["user"]), "state": ctx["state"], "plain": ctx["plain"]}

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        root = scratch / world.VAULT_NAME
        write_bundle(data, root)
        (scratch / "state.db").write_bytes(state["state"])
        authority_state = AuthorityState(scratch / "state.db")
        authority = ABE(state["public"], state["master"])
        vault = Vault(root, state=authority_state, name=world.VAULT_NAME)
        try:
            self._exercise(state, vault, authority)
        finally:
            vault.close()
            authority_state.close()

    def _exercise(self, state: Any, vault: Vault, authority: ABE) -> None:
        plain: dict[str, bytes] = state["plain"]
        listing = attempt(vault.list) or []
        ids = []
        for row in listing:
            file_id, name, policy, size = row
            if not (isinstance(file_id, str) and isinstance(name, str) and isinstance(policy, str)
                    and isinstance(size, int)):
                raise WrongResult("vault-list-types")
            ids.append(file_id)
        attempt(vault.manifest, state["public"])
        attempt(vault.versions, authority)
        pending = attempt(vault.pending, authority)
        if pending is not None and not set(pending) <= set(ids):
            raise WrongResult("vault-pending-ids")
        for file_id in ids:
            for kwargs in ({}, {"authority": authority}):
                out = io.BytesIO()
                header = attempt(vault.get, file_id, state["user"], out, **kwargs)
                if header is not None and out.getvalue() != plain.get(file_id):
                    raise WrongResult("vault-get-content", file_id)
