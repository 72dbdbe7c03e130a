"""The registry of surfaces: name -> surface (one module each)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.fuzz.abe_files import AbeSurface
from tests.fuzz.armor_text import ArmorSurface
from tests.fuzz.base import Surface
from tests.fuzz.key_files import KeySurface
from tests.fuzz.owner_files import OwnerSurface
from tests.fuzz.phr_records import PhrSurface
from tests.fuzz.policy_text import PolicySurface
from tests.fuzz.search_index import SearchSurface
from tests.fuzz.vault_catalog import VaultSurface

SURFACES: dict[str, Surface] = {s.name: s for s in (
    PolicySurface(), ArmorSurface(), KeySurface(), AbeSurface(), PhrSurface(), SearchSurface(),
    VaultSurface(), OwnerSurface())}


class SelfTest(Surface):
    """Not a real surface: inputs that hang or blow up on purpose, to test the watchdog."""

    name = "selftest"

    def seeds(self) -> list[bytes]:
        return [b"ok"]

    def setup(self, scratch_root: Path) -> Any:
        return None

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        if data == b"hang":
            time.sleep(600)
        elif data == b"blowup":
            bytearray(1 << 40)
        elif data == b"rss":
            block = bytearray(200 << 20)
            block[:: 4096] = b"x" * len(block[:: 4096])


#: surfaces the engine knows but campaigns do not run
HIDDEN: dict[str, Surface] = {"selftest": SelfTest()}
ALL: dict[str, Surface] = {**SURFACES, **HIDDEN}
