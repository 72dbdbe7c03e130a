"""One size of the `search` suite, in its own process so that its peak RSS is its own.

`python -m benchmarks.search_child N QUICK OUT.json`: builds a salted index (and, up to 100k
keywords, the unsalted baseline) over N keywords from Debian's word lists (hunspell-en-med,
wamerican-insane; synthetic words fill up to N), then times queries by pattern length beside a
plaintext substring scan of the same keyword list.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from search import SearchIndex, SearchKey
from search.build import build_segment
from search.format import Manifest, load_segment, new_index_id, write_manifest
from search.text import MAX_KEYWORD, normalize

SOURCES = [Path("/usr/share/hunspell/en_med_glut.dic"), Path("/usr/share/dict/american-english-insane")]


def word_list(n: int, seed: int = 7) -> tuple[list[str], str]:
    """n distinct keywords: the real lists first, then synthetic blends of real words."""
    rng = random.Random(seed)
    words, seen, used = [], set(), []
    for src in SOURCES:
        if not src.exists():
            continue
        used.append(src.name)
        for line in src.read_text(encoding="utf-8", errors="replace").splitlines():
            w = normalize(line.split("/")[0].strip())
            if w and w.isalnum() and len(w) <= MAX_KEYWORD and w not in seen:
                seen.add(w)
                words.append(w)
    if not words:  # no word lists installed: pronounceable synthetic words
        syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
        while len(words) < 2000:
            w = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 5)))
            if w not in seen:
                seen.add(w)
                words.append(w)
    rng.shuffle(words)
    base = list(words)
    while len(words) < n:
        a, b = rng.choice(base), rng.choice(base)
        w = a[: rng.randint(3, 8)] + b[-rng.randint(3, 8) :]
        if w not in seen and len(w) <= MAX_KEYWORD:
            seen.add(w)
            words.append(w)
    source = " + ".join(used) if used else "synthetic"
    return words[:n], source if len(base) >= n else f"{source} + synthetic blends"


def documents(words: list[str], rng: random.Random) -> dict[str, Counter[str]]:
    """Synthetic postings: n/10 documents, each keyword in 1 to 3 of them with tf 1..5."""
    n_docs = max(10, len(words) // 10)
    docs: dict[str, Counter[str]] = {}
    for w in words:
        for d in {rng.randrange(n_docs) for _ in range(rng.randint(1, 3))}:
            docs.setdefault(f"doc{d:07d}", Counter())[w] = rng.randint(1, 5)
    return docs


def patterns(words: list[str], length: int, count: int, rng: random.Random) -> list[str]:
    out = []
    candidates = [w for w in words if len(w) >= length]
    while len(out) < count and candidates:
        w = rng.choice(candidates)
        i = rng.randint(0, len(w) - length)
        body = w[i : i + length]
        kind = rng.random()
        out.append("^" + body if i == 0 and kind < 0.3 else body)
    return out


def scan(words: list[str], pattern: str) -> int:
    """The plaintext baseline: test every keyword."""
    start = pattern.startswith("^")
    body = pattern.lstrip("^")
    return sum(1 for w in words if (w.startswith(body) if start else body in w))


def _median_query_ms(index: SearchIndex, key: SearchKey, query: str, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        index.search(query, key)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def multi_term(index: SearchIndex, key: SearchKey, words: list[str], rng: random.Random,
               count: int) -> dict[str, float]:
    """Two-term AND and OR of 4-character patterns beside the slower of their single terms
    (each query timed as the median of 3 runs, in the same process), and the sealed bytes a
    searcher downloads per query."""
    pairs = list(zip(patterns(words, 4, count, rng), patterns(words, 4, count, rng), strict=True))
    and_ratio, or_ratio, single, both, downloaded = [], [], [], [], []
    for a, b in pairs:
        slower = max(_median_query_ms(index, key, a), _median_query_ms(index, key, b))
        t_and = _median_query_ms(index, key, f"{a} AND {b}")
        t_or = _median_query_ms(index, key, f"{a} OR {b}")
        single.append(slower)
        both.append(t_and)
        and_ratio.append(t_and / slower)
        or_ratio.append(t_or / slower)
        downloaded.append(index.search(a, key).stats.bytes_returned)
    return {"pairs": len(pairs), "slower_single_median_ms": statistics.median(single),
            "and_median_ms": statistics.median(both),
            "and_over_slower_single_median": statistics.median(and_ratio),
            "or_over_slower_single_median": statistics.median(or_ratio),
            "bytes_per_single_query_median": statistics.median(downloaded)}


def run(n: int, quick: bool) -> dict[str, object]:
    rng = random.Random(n)
    words, source = word_list(n)
    docs = documents(words, rng)
    key = SearchKey.generate()
    out: dict[str, object] = {"keywords": n, "documents": len(docs), "source": source}
    with tempfile.TemporaryDirectory(prefix="pass-bench-") as tmp:
        start = time.perf_counter()
        index, _stats = SearchIndex.create(Path(tmp) / "salted", docs, key)
        out["build_s"] = time.perf_counter() - start
        out["keywords_per_s"] = n / out["build_s"]
        on_disk = sum(f.stat().st_size for f in (Path(tmp) / "salted").rglob("*") if f.is_file())
        out["bytes_per_keyword"] = on_disk / n
        out["peak_rss_mb_after_build"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        unsalted = None
        if n <= 100_000:
            start = time.perf_counter()
            build_segment(docs, key, Path(tmp) / "unsalted" / "seg-0001", salted=False)
            out["unsalted_build_s"] = time.perf_counter() - start
            index_id = new_index_id()
            write_manifest(Path(tmp) / "unsalted",
                           Manifest(index_id, ["seg-0001"], None, key.check_value(index_id)))
            unsalted = SearchIndex(Path(tmp) / "unsalted")
            assert load_segment(Path(tmp) / "unsalted" / "seg-0001")
        queries = []
        for length in (3, 4, 6, 8):
            pats = patterns(words, length, 30 if quick else 150, rng)
            for p in pats[:5]:
                index.search(p, key)  # warm the page cache and tables
            row = {"pattern_length": length}
            times, server, client, visited, returned, fps, results = [], [], [], [], [], [], []
            for p in pats:
                t0 = time.perf_counter()
                r = index.search(p, key)
                times.append((time.perf_counter() - t0) * 1e3)
                server.append(r.stats.server_ms)
                client.append(r.stats.client_ms)
                visited.append(r.stats.nodes_visited)
                returned.append(r.stats.leaves_returned)
                fps.append(r.stats.false_positives)
                results.append(r.stats.leaves_returned - r.stats.false_positives)
            times.sort()
            row.update({
                "query_median_ms": statistics.median(times),
                "query_p95_ms": times[int(0.95 * (len(times) - 1))],
                "server_median_ms": statistics.median(server),
                "client_median_ms": statistics.median(client),
                "nodes_visited_median": statistics.median(visited),
                "matching_keywords_median": statistics.median(results),
                "false_positive_rate": sum(fps) / max(1, sum(returned)),
            })
            scans = []
            for p in pats[: 20 if n >= 500_000 else len(pats)]:
                t0 = time.perf_counter()
                scan(words, p)
                scans.append((time.perf_counter() - t0) * 1e3)
            row["plaintext_scan_median_ms"] = statistics.median(scans)
            if unsalted is not None:
                ut = []
                for p in pats:
                    t0 = time.perf_counter()
                    unsalted.search(p, key)
                    ut.append((time.perf_counter() - t0) * 1e3)
                row["unsalted_query_median_ms"] = statistics.median(ut)
            queries.append(row)
        out["queries"] = queries
        out["multi"] = multi_term(index, key, words, rng, 20 if quick else 80)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


if __name__ == "__main__":
    result = run(int(sys.argv[1]), sys.argv[2] == "quick")
    Path(sys.argv[3]).write_text(json.dumps(result))
    os._exit(0)  # skip tearing down large heaps
