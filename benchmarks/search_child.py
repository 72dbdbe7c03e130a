"""One size of the `search` suite, in child processes so that each phase's peak RSS is its own.

`python -m benchmarks.search_child build N DIR OUT.json` streams a generated corpus of about N
distinct keywords into `SearchIndex.create(DIR/salted, ...)` (and, up to 100k keywords, the
unsalted baseline into DIR/unsalted) and records build time, CPU time, bytes on disk and peak
RSS (VmHWM); `python -m benchmarks.search_child query N DIR QUICK|FULL OUT.json` regenerates the
same keywords and times queries by pattern length beside a plaintext substring scan of them.

The corpus (`corpus`): keywords are Debian's word lists (hunspell-en-med, wamerican-insane:
about 650k distinct words) in a shuffled order, then synthetic blends (the first 3-8 characters
of one real word and the last 3-8 of another) up to N, so substrings, lengths and n-grams are
those of English words, but there are no Zipfian frequencies: every keyword is in 1 to 3
documents (tf 1 to 5), documents hold about 20 keywords, and each block of 100,000 keywords has
its own documents (real text has a few words in almost every document and half its vocabulary
in one). Everything is drawn from seeded generators, a block at a time, so the corpus streams.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from search import SearchIndex, SearchKey
from search.build import build_segment
from search.format import Manifest, new_index_id, write_manifest
from search.text import MAX_KEYWORD, normalize

from .envelope import peak_rss_mb

SOURCES = [Path("/usr/share/hunspell/en_med_glut.dic"), Path("/usr/share/dict/american-english-insane")]
#: keywords per block of the corpus (each block has its own documents)
BLOCK = 100_000


def base_words(seed: int = 7) -> tuple[list[str], str]:
    """The real words (shuffled), and where they came from."""
    rng = random.Random(seed)
    words: list[str] = []
    seen: set[str] = set()
    used = []
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
    return words, " + ".join(used) if used else "synthetic"


def keyword_blocks(n: int, base: list[str]) -> Iterator[list[str]]:
    """About n keywords, BLOCK at a time: the real words, then blends (a blend that equals a
    real word is skipped; two equal blends are rare and counted once by the index)."""
    real = set(base)
    for start in range(0, n, BLOCK):
        stop = min(n, start + BLOCK)
        block = base[start:stop]
        rng = random.Random(start)
        while len(block) < stop - start:
            a, b = rng.choice(base), rng.choice(base)
            w = a[: rng.randint(3, 8)] + b[-rng.randint(3, 8) :]
            if len(w) <= MAX_KEYWORD and w not in real:
                block.append(w)
        yield block


def words_of(n: int) -> tuple[list[str], str]:
    """All keywords of the corpus of size n (for the query phase), and the source note."""
    base, source = base_words()
    words = [w for block in keyword_blocks(n, base) for w in block]
    return words, source if len(base) >= n else f"{source} + synthetic blends"


def word_list(n: int) -> tuple[list[str], str]:
    """n distinct keywords of the corpus (for suites that build their own documents)."""
    words, source = words_of(n)
    return list(dict.fromkeys(words)), source


def corpus(n: int, base: list[str]) -> Iterator[tuple[str, Counter[str]]]:
    """The documents, streamed: each keyword of a block in 1 to 3 of the block's documents (a
    tenth as many as keywords), tf 1 to 5; about 20 keywords a document."""
    for number, block in enumerate(keyword_blocks(n, base)):
        rng = random.Random(-1 - number)
        n_docs = max(10, len(block) // 10)
        docs: list[Counter[str]] = [Counter() for _ in range(n_docs)]
        for w in block:
            for d in {rng.randrange(n_docs) for _ in range(rng.randint(1, 3))}:
                docs[d][w] = rng.randint(1, 5)
        for d, counts in enumerate(docs):
            yield f"doc{number:04d}-{d:06d}", counts


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


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build(n: int, folder: Path) -> dict[str, object]:
    """Stream the corpus into a new index; the numbers of the build phase."""
    base, _ = base_words()
    key = SearchKey.generate()
    key.save(folder / "search.key")
    out: dict[str, object] = {"target_keywords": n, "corpus_rss_mb": _rss_mb()}
    postings = 0

    def counted() -> Iterator[tuple[str, Counter[str]]]:
        nonlocal postings
        for doc, counts in corpus(n, base):
            postings += len(counts)
            yield doc, counts

    cpu0, start = time.process_time(), time.perf_counter()
    _, stats = SearchIndex.create(folder / "salted", counted(), key)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    out["peak_rss_mb"] = peak_rss_mb()
    generating = time.process_time()  # the corpus generator's own share of that CPU time
    for _ in corpus(n, base):
        pass
    generating = time.process_time() - generating
    out.update({"corpus_cpu_s": generating,
                "keywords_per_index_cpu_s": stats.keywords / max(1e-9, cpu - generating)})
    on_disk = sum(f.stat().st_size for f in (folder / "salted").rglob("*") if f.is_file())
    out.update({"keywords": stats.keywords, "documents": stats.documents, "postings": postings,
                "segments": stats.segments, "build_s": wall, "build_cpu_s": cpu,
                "keywords_per_s": stats.keywords / wall, "keywords_per_cpu_s": stats.keywords / cpu,
                "bytes_per_keyword": on_disk / stats.keywords, "bytes_on_disk": on_disk,
                "insertions_per_keyword": stats.substrings / stats.keywords})
    if n <= 100_000:
        start = time.perf_counter()
        build_segment(corpus(n, base), key, folder / "unsalted" / "seg-0001", salted=False)
        out["unsalted_build_s"] = time.perf_counter() - start
        index_id = new_index_id()
        write_manifest(folder / "unsalted", Manifest(index_id, ["seg-0001"], None, key.check_value(index_id)))
    return out


def query(n: int, folder: Path, quick: bool) -> dict[str, object]:
    """Time queries over the index the build phase left in `folder`."""
    rng = random.Random(n)
    words, source = words_of(n)
    key = SearchKey.load(folder / "search.key")
    index = SearchIndex(folder / "salted")
    unsalted = SearchIndex(folder / "unsalted") if (folder / "unsalted").exists() else None
    out: dict[str, object] = {"source": source}
    queries = []
    count = 30 if quick else 150
    for length in (3, 4, 6, 8):
        pats = patterns(words, length, count, rng)
        for p in pats[:5]:
            index.search(p, key)  # warm the page cache and the session
        row: dict[str, float] = {"pattern_length": length}
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
            "query_p90_ms": times[int(0.9 * (len(times) - 1))],
            "query_p95_ms": times[int(0.95 * (len(times) - 1))],
            "query_max_ms": times[-1],
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
        row["p90_over_scan"] = row["query_p90_ms"] / row["plaintext_scan_median_ms"]
        if unsalted is not None:
            ut = []
            for p in pats:
                t0 = time.perf_counter()
                unsalted.search(p, key)
                ut.append((time.perf_counter() - t0) * 1e3)
            row["unsalted_query_median_ms"] = statistics.median(ut)
        queries.append(row)
    out["queries"] = queries
    out["multi"] = multi_term(index, key, words, rng, 20 if quick or n >= 1_000_000 else 80)
    out["query_peak_rss_mb"] = peak_rss_mb()
    return out


if __name__ == "__main__":
    phase, size, where = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    result = build(size, where) if phase == "build" else query(size, where, sys.argv[4] == "quick")
    Path(sys.argv[-1]).write_text(json.dumps(result))
    os._exit(0)  # skip tearing down large heaps
