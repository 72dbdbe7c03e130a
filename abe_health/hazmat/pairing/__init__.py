"""Pairing groups behind one interface; schemes ask this module for a group, never a backend.

`get_group("mcl")` (the default, BLS12-381) or `get_group("charm", "BN254")`; `group_from_id`
re-opens the group named in a key or ciphertext header. Backends import lazily, so a missing
optional backend costs nothing until it is asked for.
"""

from __future__ import annotations

import importlib
from functools import cache

from ...errors import BackendUnavailable
from .base import KINDS, Element, GroupKind, PairingGroup

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "KINDS",
    "Element",
    "GroupKind",
    "PairingGroup",
    "available_backends",
    "get_group",
    "group_from_id",
]

#: backend name -> (module, default curve)
BACKENDS: dict[str, tuple[str, str]] = {
    "mcl": ("abe_health.hazmat.pairing.mcl", "BLS12-381"),
    "charm": ("abe_health.hazmat.pairing.charm", "BN254"),
}
DEFAULT_BACKEND = "mcl"


@cache
def get_group(backend: str = DEFAULT_BACKEND, curve: str | None = None) -> PairingGroup:
    """The (cached) group of `backend` on `curve` (the backend's default curve if None)."""
    if backend not in BACKENDS:
        raise BackendUnavailable(
            f"unknown pairing backend {backend!r}; known: {', '.join(sorted(BACKENDS))}"
        )
    module_name, default_curve = BACKENDS[backend]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(f"pairing backend {backend!r} is not installed: {exc}") from exc
    if backend == "mcl":
        group: PairingGroup = module.GROUP
        if curve not in (None, group.curve):
            raise BackendUnavailable(f"the mcl backend offers {group.curve} only, not {curve!r}")
        return group
    charm: PairingGroup = module.CharmGroup(curve or default_curve)
    return charm


def group_from_id(group_id: str) -> PairingGroup:
    """Open the group named by an id such as ``mcl:BLS12-381`` (as written in headers)."""
    backend, sep, curve = group_id.partition(":")
    if not sep or not curve:
        raise BackendUnavailable(f"malformed group id {group_id!r}; expected BACKEND:CURVE")
    return get_group(backend, curve)


def available_backends() -> list[str]:
    """Names of the backends that import on this machine."""
    names = []
    for name in BACKENDS:
        try:
            get_group(name)
        except BackendUnavailable:
            continue
        names.append(name)
    return names
