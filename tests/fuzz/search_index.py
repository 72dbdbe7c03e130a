"""Search index directories: manifest, segments (meta.cbor, the `.npy` arrays, filters.bin,
leaves.bin), the ABE-sealed search key and the owner's signature. Calls: `SearchIndex(path)`,
`documents`, `search` for several patterns with the right key, and `open_search_key` with a
reader key and the pinned owner key.

Oracle: soundness. Every document listed is a corpus document; every hit is a corpus document
and each keyword given for it is one of that document's keywords that matches the pattern; an
opened search key is the owner's. (Completeness is not checked: the server that stores the
index may withhold results, see docs/leakage.md.) Anything else is refused with a SearchError
or AbeError."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from abe_health.keys import load_key
from abe_health.owner import OwnerPublicKey, open_search_key
from search import SearchIndex, SearchKey
from search.text import matches, parse_pattern
from tests.fuzz import world
from tests.fuzz.base import Surface, attempt
from tests.fuzz.bundles import mutate_bundle, write_bundle
from tests.fuzz.engine import WrongResult


class SearchSurface(Surface):
    name = "search"
    weight = 14

    def mutate(self, rng: random.Random, seeds: list[bytes]) -> tuple[bytes, str]:
        return mutate_bundle(rng, seeds)

    def setup(self, scratch_root: Path) -> Any:
        ctx = world.context()
        return {"key": SearchKey.from_bytes(ctx["search"]["key"]), "docs": ctx["search"]["docs"],
                "patterns": world.PATTERNS, "owner": OwnerPublicKey.from_bytes(ctx["owner"]["public"]),
                "reader": load_key(ctx["schemes"]["fame"]["user"])}

    def check(self, state: Any, data: bytes, scratch: Path) -> None:
        root = scratch / "index"
        write_bundle(data, root)
        index = SearchIndex(root)
        key: SearchKey = state["key"]
        docs: dict[str, dict[str, int]] = state["docs"]
        listed = attempt(index.documents, key)
        if listed is not None and not set(listed) <= set(docs):
            raise WrongResult("search-documents")
        for pattern in state["patterns"]:
            result = attempt(index.search, pattern, key)
            if result is None:
                continue
            body, start, end = parse_pattern(pattern)
            for hit in result.hits:
                if hit.doc_id not in docs:
                    raise WrongResult("search-unknown-document", pattern)
                for word in hit.keywords:
                    if word not in docs[hit.doc_id] or not matches(body, start, end, word):
                        raise WrongResult("search-wrong-keyword", pattern)
        opened = attempt(open_search_key, index, state["reader"], state["owner"])
        if opened is not None and opened.fingerprint != key.fingerprint:
            raise WrongResult("search-key-not-the-owners")
