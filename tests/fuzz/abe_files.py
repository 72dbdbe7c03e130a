"""`.abe` files, binary and armored, of every scheme: `abe_health.decrypt` with the corpus's
reader keys, and `abe_health.inspect`.

Oracle: a file that decrypts gives the plaintext of a corpus seed (the envelope authenticates
everything, so a mutant may only ever open to its seed's plaintext); `inspect` returns its
fields with sane types and sizes. Anything else is refused with a typed error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from abe_health import decrypt, inspect
from abe_health.keys import load_key
from tests.fuzz import mutate, world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult


class AbeSurface(Surface):
    name = "abe"
    weight = 15

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if data.startswith(b"-----BEGIN") and rng.random() < 0.6:
            return mutate.armor_edit(rng, data, mutate.generic)
        if data.startswith(b"ABE2") and len(data) > 8 and rng.random() < 0.5:
            # edit the header's CBOR core in place and fix its length field
            n = int.from_bytes(data[4:8], "big")
            edited = mutate.cbor_edit(rng, data[8 : 8 + n])
            if edited is not None:
                core, how = edited
                return data[:4] + len(core).to_bytes(4, "big") + core + data[8 + n :], f"core-{how}"
        return mutate.generic(rng, data)

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()
        users = [load_key(entry["user"]) for entry in ctx["schemes"].values()]
        holder = [load_key(k) for k in ctx["ma"]["reader"]]
        return {"identities": [*users, holder], "plains": set(ctx["plain"]["abe"])}

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        plain = attempt(decrypt, data, None, *state["identities"])
        if plain is not None and plain not in state["plains"]:
            raise WrongResult("abe-content", f"{len(plain)} bytes")
        path = scratch / "file.abe"
        path.write_bytes(data)
        info = attempt(inspect, path)
        if info is not None:
            for field in ("header_bytes", "payload_bytes", "plaintext_bytes", "chunks", "chunk_size"):
                if not isinstance(info[field], int) or info[field] < 0:
                    raise WrongResult("inspect-fields", field)
            if not isinstance(info["scheme"], str) or not isinstance(info["group"], str):
                raise WrongResult("inspect-fields", "scheme")
