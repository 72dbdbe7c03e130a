"""ASCII armor: `abe_health.keys.dearmor` (key files) and the streaming `.abe` armor readers
(`abe_health.armor.open_maybe_armored`, `ArmorReader`).

Oracle: input that does not start with armor passes through unchanged; input whose armor a
strict reference reader decodes (markers of one label, base64 between them, whitespace aside)
yields exactly those bytes when the toolkit's reader accepts it; anything else is refused with
InvalidKey / InvalidCiphertext."""

from __future__ import annotations

import base64
import binascii
import io
import random
import re
from pathlib import Path
from typing import Any

from abe_health.armor import BEGIN, open_maybe_armored
from abe_health.keys import dearmor
from tests.fuzz import mutate
from tests.fuzz.base import Surface, attempt
from tests.fuzz.engine import WrongResult

_REFERENCE = re.compile(rb"\A\s*-----BEGIN ABE ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\s]*?)"
                        rb"-----END ABE \1-----\s*\Z")


def reference(data: bytes) -> tuple[bytes, bytes] | None:
    """(label, inner bytes) of well-formed armor, else None."""
    match = _REFERENCE.match(data)
    if match is None:
        return None
    try:
        return match.group(1), base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        return None


class ArmorSurface(Surface):
    name = "armor"
    weight = 10

    def edit(self, rng: random.Random, data: bytes) -> tuple[bytes, str]:
        if rng.random() < 0.7:
            return mutate.armor_edit(rng, data, mutate.generic)
        return mutate.generic(rng, data)

    def setup(self, scratch_root: Path) -> Any:
        return None

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        ref = reference(data)
        inner = attempt(dearmor, data)
        if inner is not None:
            if not data.lstrip().startswith(b"-----BEGIN ABE "):
                if inner != data:
                    raise WrongResult("dearmor-passthrough")
            elif ref is not None and inner != ref[1]:
                raise WrongResult("dearmor-content", f"label {ref[0]!r}")
        stream = attempt(open_maybe_armored, io.BytesIO(data))
        if stream is None:
            return
        body = attempt(stream.read)
        if body is None:
            return
        if not data.startswith(BEGIN):
            if body != data:
                raise WrongResult("armor-passthrough")
        elif ref is not None and ref[0] == b"FILE" and body != ref[1]:
            raise WrongResult("armor-stream-content")
