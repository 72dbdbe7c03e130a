"""Everything an encrypted FHIR bundle shows without a key: exactly what the cloud storing it
learns (docs/fhir.md, "What the container reveals"; tests/test_fhir_leakage.py keeps the two
equal)."""

from __future__ import annotations

import io
from typing import Any

from ..hazmat.envelope import read_header
from .container import parse


def describe_container(blob: bytes) -> dict[str, Any]:
    """The bundle id, and per class its scheme, policy, authorities, `.abe` size, number of
    entries and each sealed entry's size (its padded length + 28)."""
    container = parse(blob)
    classes = []
    for stored in container.classes:
        header = read_header(io.BytesIO(stored.abe))
        meta = header.ciphertext.meta
        classes.append({
            "scheme": header.scheme.name,
            "policy": header.target,
            "authorities": list(meta.get("authorities", [])) or [meta.get("pk")],
            "class_bytes": len(stored.abe),
            "entries": len(stored.entries),
            "entry_bytes": [len(e) for e in stored.entries],
        })
    return {"id": container.bundle_id, "bytes": len(blob), "entries": container.n_entries,
            "classes": classes}
