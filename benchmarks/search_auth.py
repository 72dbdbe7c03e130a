"""Part of suite `search`: authorized search over collections (owners x policy groups).

Measured in one process, side by side: a query over one group alone; the same query over
OWNERS x GROUPS groups of which the searcher holds one per owner (stand-ins to the rest);
a plaintext scan of the keywords the searcher may see; the sealed bytes it downloads; and the
cost of re-keying one group per keyword (revoking search capability), beside building it.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from abe_health import CPABE
from abe_health.collection import Collection, open_collection, search_collections, searcher
from abe_health.owner import OwnerKey
from search import SearchIndex, Source
from search.engine import Searcher

from .search_child import patterns, word_list

OWNERS = 10
GROUPS = 10


def _docs(words: list[str], rng: random.Random, prefix: str) -> dict[str, Counter[str]]:
    n_docs = max(5, len(words) // 10)
    docs: dict[str, Counter[str]] = {}
    for w in words:
        docs.setdefault(f"{prefix}doc{rng.randrange(n_docs):06d}", Counter())[w] = rng.randint(1, 5)
    return docs


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(quick: bool) -> dict[str, Any]:
    per_group = 300 if quick else 3_000
    rekey_keywords = 3_000 if quick else 30_000
    rng = random.Random(11)
    words, source = word_list(OWNERS * GROUPS * per_group + rekey_keywords)
    authority = CPABE.setup()
    searcher_key = authority.keygen(attributes=["attr0"])
    out: dict[str, Any] = {"owners": OWNERS, "groups_per_owner": GROUPS, "keywords_per_group": per_group,
                           "source": source}
    with tempfile.TemporaryDirectory(prefix="auth-bench-") as tmp:
        opened, visible = [], []
        t0 = time.perf_counter()
        for o in range(OWNERS):
            owner = OwnerKey.generate()
            coll = Collection.create(Path(tmp) / f"owner{o}", owner)
            for g in range(GROUPS):
                start = (o * GROUPS + g) * per_group
                group_words = words[start : start + per_group]
                coll.add(_docs(group_words, rng, f"g{g}/"), f"attr{g}", authority.public_key)
                if g == 0:
                    visible.extend(group_words)
            opened.append(open_collection(Path(tmp) / f"owner{o}", [searcher_key], [owner.public_key]))
        out["setup_s"] = time.perf_counter() - t0
        one = next(s for s in opened[0].sources if s.key is not None)
        alone = Searcher([Source(one.index, one.key)])
        together = searcher(opened, [searcher_key])
        queries = patterns(visible, 4, 10 if quick else 40, rng)
        for q in queries[:3]:  # warm both
            alone.search(q)
            together.search(q)
        single, everything, cold, ratios, scans, downloaded = [], [], [], [], [], []
        for q in queries:
            a = _median_ms(lambda q=q: alone.search(q), 3)
            b = _median_ms(lambda q=q: together.search(q), 3)
            single.append(a)
            everything.append(b)
            ratios.append(b / a)
            cold.append(_median_ms(lambda q=q: search_collections(q, opened, [searcher_key]), 3))
            downloaded.append(together.search(q).stats.bytes_returned)
            body = q.lstrip("^")
            scans.append(_median_ms(lambda body=body: sum(1 for w in visible if body in w), 3))
        out.update({
            "queries": len(queries),
            "one_group_median_ms": statistics.median(single),
            "all_groups_median_ms": statistics.median(everything),
            "all_over_one_median": statistics.median(ratios),
            "all_groups_fresh_searcher_median_ms": statistics.median(cold),
            "plaintext_scan_of_visible_median_ms": statistics.median(scans),
            "bytes_downloaded_median": statistics.median(downloaded),
        })
        owner = OwnerKey.generate()
        coll = Collection.create(Path(tmp) / "rekey", owner)
        rekey_words = words[-rekey_keywords:]
        t0 = time.perf_counter()
        coll.add(_docs(rekey_words, rng, ""), "attr0", authority.public_key)
        build_s = time.perf_counter() - t0
        stats = coll.rekey(authority.public_key, {}, only=[coll.groups[0].id])
        out.update({
            "rekey_keywords": stats.keywords,
            "rekey_s": stats.seconds,
            "rekey_us_per_keyword": stats.seconds / stats.keywords * 1e6,
            "build_us_per_keyword": build_s / len(rekey_words) * 1e6,
        })
        reopened = SearchIndex(Path(tmp) / "rekey" / coll.groups[0].dir)
        out["rekeyed_index_keywords"] = sum(s.levels[0] for s in reopened.segments)
    return out


def notes(result: dict[str, Any]) -> list[str]:
    return [
        f"authorized search, {result['owners']} owners x {result['groups_per_owner']} groups of "
        f"{result['keywords_per_group']:,} keywords ({result['source']}); the searcher holds one group "
        f"per owner: a query over all {result['owners'] * result['groups_per_owner']} groups takes "
        f"{result['all_groups_median_ms']:.1f} ms (median) = {result['all_over_one_median']:.1f}x one group "
        f"alone ({result['one_group_median_ms']:.2f} ms; target <= 10x), both with a warm Searcher "
        f"(a fresh one per call: {result['all_groups_fresh_searcher_median_ms']:.1f} ms); plaintext scan "
        f"of the visible keywords {result['plaintext_scan_of_visible_median_ms']:.2f} ms; "
        f"{result['bytes_downloaded_median']:,.0f} sealed bytes downloaded per query",
        f"re-keying a group of {result['rekey_keywords']:,} keywords (revoking search capability): "
        f"{result['rekey_s']:.2f} s = {result['rekey_us_per_keyword']:.0f} us per keyword (building it: "
        f"{result['build_us_per_keyword']:.0f} us per keyword, ABE sealing included)",
    ]
