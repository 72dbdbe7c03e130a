"""Suite `search`: the PASS-tree index at growing keyword counts (child processes per size).

Per size, a build child streams a generated corpus (`search_child`: English word lists, then
blends of them) into `SearchIndex.create` and reports build time and rate (per wall second and
per CPU second, so "on one core" can be read off), bytes per keyword on disk, Bloom insertions
per keyword and the build's peak RSS (VmHWM); a query child then reports query latency (median,
p90, p95, worst; server and client parts) by pattern length, nodes visited, matching keywords
and the Bloom false-positive rate before the client's check, beside a plaintext substring scan
of the same keywords and (up to 100k) an unsalted filter tree built from the same data in the
same run. Queries of two terms (AND, OR) beside the slower of their single terms, and the bytes
a searcher downloads; then authorized search over owners x policy groups and the cost of
re-keying a group (`search_auth`).

Sizes: 2k and 10k with --quick, else 10k, 100k, 1M and 10M keywords; the environment variable
ABE_SEARCH_SIZES (comma-separated keyword counts) picks others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import search_auth
from .report import Report


def _child(*args: str) -> dict[str, object]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([sys.executable, "-m", "benchmarks.search_child", *args, out.name],  # noqa: S603
                       check=True, timeout=6 * 3600)
        result: dict[str, object] = json.loads(Path(out.name).read_text())
    return result


def sizes(quick: bool) -> list[int]:
    given = os.environ.get("ABE_SEARCH_SIZES")
    if given:
        return [int(s) for s in given.split(",") if s.strip()]
    return [2_000, 10_000] if quick else [10_000, 100_000, 1_000_000, 10_000_000]


def run(quick: bool) -> Report:
    report = Report("search", ["keywords", "pattern_length", "query_median_ms", "query_p90_ms",
                               "query_p95_ms", "query_max_ms", "server_median_ms",
                               "client_median_ms", "nodes_visited_median",
                               "matching_keywords_median", "false_positive_rate",
                               "plaintext_scan_median_ms", "p90_over_scan",
                               "unsalted_query_median_ms"])
    builds = []
    for n in sizes(quick):
        with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
            built = _child("build", str(n), tmp)
            result = _child("query", str(n), tmp, "quick" if quick else "full")
        rows = result.pop("queries")
        assert isinstance(rows, list)
        builds.append({**built, **result})
        for row in rows:
            report.add(keywords=n, **row)
    report.extra["builds"] = builds
    for b in builds:
        unsalted = (f"; unsalted baseline build {b['unsalted_build_s']:.1f} s"
                    if "unsalted_build_s" in b else "")
        report.notes.append(
            f"{b['keywords']:,} keywords ({b['source']}), {b['documents']:,} documents, "
            f"{b['postings']:,} postings, {b['segments']} segment(s): build {b['build_s']:.1f} s = "
            f"{b['keywords_per_s']:,.0f} keywords/s ({b['keywords_per_cpu_s']:,.0f} per CPU second, "
            f"{b['keywords_per_index_cpu_s']:,.0f} per CPU second of the index alone, without the "
            f"corpus generator's {b['corpus_cpu_s']:.0f} s), "
            f"{b['bytes_per_keyword']:.0f} bytes/keyword on disk, {b['insertions_per_keyword']:.0f} "
            f"Bloom insertions/keyword, build peak RSS {b['peak_rss_mb']:.0f} MB (of which "
            f"{b['corpus_rss_mb']:.0f} MB before the build: interpreter and word lists)" + unsalted)
    for b in builds:
        m = b.get("multi")
        if isinstance(m, dict):
            report.notes.append(
                f"{b['keywords']:,} keywords, two 4-character terms ({m['pairs']} pairs): AND "
                f"{m['and_median_ms']:.2f} ms = {m['and_over_slower_single_median']:.2f}x the slower single "
                f"term ({m['slower_single_median_ms']:.2f} ms; target <= 1.5x), OR "
                f"{m['or_over_slower_single_median']:.2f}x; {m['bytes_per_single_query_median']:,.0f} sealed "
                "bytes downloaded per single-term query (median)")
    auth = search_auth.measure(quick)
    report.extra["authorized"] = auth
    report.notes.extend(search_auth.notes(auth))
    report.plots.append({"title": "query latency by pattern length (median ms)", "x": "pattern_length",
                         "y": "query_median_ms", "series": "keywords", "file": "search_query.png",
                         "logy": "1"})
    report.plots.append({"title": "query latency by pattern length (p90 ms)", "x": "pattern_length",
                         "y": "query_p90_ms", "series": "keywords", "file": "search_query_p90.png",
                         "logy": "1"})
    report.plots.append({"title": "plaintext scan by pattern length (median ms)", "x": "pattern_length",
                         "y": "plaintext_scan_median_ms", "series": "keywords",
                         "file": "search_scan.png", "logy": "1"})
    return report
