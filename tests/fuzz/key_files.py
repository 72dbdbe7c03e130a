"""Key files: `abe_health.load_key` on binary, armored and passphrase-protected keys of every
scheme (FAME CP/KP, BSW07, Waters11, RW15), with and without the passphrase.

Oracle: a key that loads re-encodes to bytes that load to an equal key, describes itself, and
works for its kind: a user key decrypts the corpus probe of its scheme to the probe's plaintext
(or is refused with a typed error), a public key encrypts, a master key yields its public key.
Anything else is refused with InvalidKey (or another AbeError)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from abe_health import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, decrypt, encrypt
from abe_health.keys import Key, MasterKey, PublicKey, UserKey, load_key
from tests.fuzz import mutate, world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult


class KeySurface(Surface):
    name = "keys"
    weight = 15

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if data.startswith(b"-----BEGIN") and rng.random() < 0.5:
            return mutate.armor_edit(rng, data, mutate.generic)
        return mutate.generic(rng, data)

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()
        plains = set(ctx["plain"]["abe"])
        return {"ctx": ctx, "plains": plains, "passphrase": ctx["passphrase"],
                "probes": ctx["probe"],
                "ma_public": [load_key(k) for k in ctx["ma"]["public"].values()],
                "ma_reader": [load_key(k) for k in ctx["ma"]["reader"]]}

    def _use(self, state: dict[str, Any], key: Key) -> None:
        again = load_key(key.to_bytes())
        if again != key or again.to_bytes() != key.to_bytes():
            raise WrongResult("key-roundtrip", key.kind)
        repr(key)
        key.describe()
        _ = key.fingerprint, key.attributes
        scheme = key.scheme.name
        if isinstance(key, UserKey):
            probe = state["probes"].get(scheme)
            if probe is None:
                return
            keys = [key, *state["ma_reader"][1:]] if scheme == "rw15" else [key]
            plain = attempt(decrypt, probe, None, *keys)
            if plain is not None and plain not in state["plains"]:
                raise WrongResult("key-decrypt-content", scheme)
        elif isinstance(key, PublicKey):
            if scheme == "rw15":
                others = [k for k in state["ma_public"]
                          if k.record.meta.get("authority") != key.record.meta.get("authority")]
                attempt(lambda: encrypt(b"x", None, MultiAuthorityRecipient(
                    "doctor@hospitalA or family@patient", [key, *others])))
            elif key.scheme.policy_in == "key":
                attempt(lambda: encrypt(b"x", None, AttributesRecipient(key, ["doctor"])))
            else:
                attempt(lambda: encrypt(b"x", None, PolicyRecipient(key, "doctor or nurse")))
        elif isinstance(key, MasterKey):
            attempt(key.public_key)

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        plain = attempt(load_key, data)
        if plain is not None:
            self._use(state, plain)
        protected = attempt(load_key, data, state["passphrase"])
        if protected is not None:
            self._use(state, protected)
        attempt(load_key, data, "wrong passphrase", expect="user")
