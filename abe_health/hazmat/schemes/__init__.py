"""ABE schemes as KEMs over the pairing layer, one module each, one interface (`Scheme`).

`get_scheme("fame")` returns the scheme on the default group; `SCHEMES` lists them all.
"""

from __future__ import annotations

from typing import Any

from ...errors import InvalidKey
from ..pairing import PairingGroup, get_group
from .base import Record, Scheme, SchemeBase, decode_record, group_of
from .bsw07 import BSW07
from .fame import FameCP, FameKP
from .rw13 import RW13
from .rw15 import RW15
from .waters11 import Waters11

SCHEMES: dict[str, type[Scheme]] = {cls.name: cls for cls in (FameCP, FameKP, BSW07, Waters11)}
#: every scheme whose records can be loaded, multi-authority ones and RW13 (the online/offline
#: scheme of `abe_health.devices`) included
ALL_SCHEMES: dict[str, type[SchemeBase]] = {**SCHEMES, RW15.name: RW15, RW13.name: RW13}
DEFAULT_SCHEME = "fame"

__all__ = ["ALL_SCHEMES", "DEFAULT_SCHEME", "RW13", "RW15", "SCHEMES", "Record", "Scheme", "SchemeBase",
           "decode_record", "get_scheme", "group_of"]

_instances: dict[tuple[str, str], SchemeBase] = {}


def get_scheme(name: str = DEFAULT_SCHEME, group: PairingGroup | None = None) -> Any:
    """The (cached, so its hash cache persists) scheme `name` over `group` (default: mcl)."""
    if name not in ALL_SCHEMES:
        raise InvalidKey(f"unknown scheme {name!r}; known: {', '.join(sorted(ALL_SCHEMES))}")
    group = group or get_group()
    key = (name, group.id)
    if key not in _instances:
        _instances[key] = ALL_SCHEMES[name](group)
    return _instances[key]
