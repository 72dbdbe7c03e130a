"""`.phr` records: `abe_health.phr.open_record` and `record_id` with a reader's RW15 keys.

Oracle: every section shown is exactly the corpus record's section of that name for the record
id that opened (ids and names are bound to the sections by the envelope context); closed
sections have a text reason. Anything else is refused with a typed error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from abe_health.keys import load_key
from abe_health.phr import open_record, record_id
from tests.fuzz import mutate, world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult


class PhrSurface(Surface):
    name = "phr"
    weight = 8

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if rng.random() < 0.6:
            edited = mutate.cbor_edit(rng, data)
            if edited is not None:
                return edited
        return mutate.generic(rng, data)

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()
        return {"keys": [load_key(k) for k in ctx["ma"]["reader"]], "records": ctx["plain"]["phr"]}

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        attempt(record_id, data)
        opened = attempt(open_record, data, state["keys"])
        if opened is None:
            return
        record = state["records"].get(opened.record_id)
        if opened.visible and record is None:
            raise WrongResult("phr-unknown-record", repr(opened.record_id)[:60])
        for name, value in opened.visible.items():
            if name not in record or not world.same_json(record[name], value):
                raise WrongResult("phr-section-content", repr(name)[:60])
        if not all(isinstance(v, str) for v in opened.closed.values()):
            raise WrongResult("phr-closed-reason")
