"""HAZARDOUS MATERIALS: keys are issued through `CPABE.keygen` and friends instead.

A key subject holding exactly a given set of labels, bit and prefix labels included, bypassing
the rule that a user holds one value per numeric attribute: how an authority derives a key that
opens a given policy (for example to re-encrypt a header in a benchmark baseline). A key made
this way can hold labels no user key ever would.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..policy import KeyAttributes


def key_attributes_of_labels(labels: Iterable[str]) -> KeyAttributes:
    """A subject holding exactly these labels."""
    subject = KeyAttributes(())
    subject.__dict__["labels"] = frozenset(labels)
    return subject
