"""Suite `search`: the PASS-tree index at growing keyword counts (child process per size).

Build time and rate, on-disk bytes per keyword, peak RSS; query latency (median, p95; server
and client parts) by pattern length, nodes visited, matching keywords and the Bloom
false-positive rate before the client's check; beside a plaintext substring scan of the same
keywords and (up to 100k) an unsalted filter tree built from the same data in the same run.
Queries of two terms (AND, OR) beside the slower of their single terms, and the bytes a
searcher downloads; then authorized search over owners x policy groups and the cost of
re-keying a group (`search_auth`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from . import search_auth
from .report import Report


def run(quick: bool) -> Report:
    sizes = [2_000, 10_000] if quick else [10_000, 100_000, 1_000_000]
    report = Report("search", ["keywords", "pattern_length", "query_median_ms", "query_p95_ms",
                               "server_median_ms", "client_median_ms", "nodes_visited_median",
                               "matching_keywords_median", "false_positive_rate",
                               "plaintext_scan_median_ms", "unsalted_query_median_ms"])
    builds = []
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        for n in sizes:
            out = Path(tmp) / f"{n}.json"
            subprocess.run([sys.executable, "-m", "benchmarks.search_child", str(n),  # noqa: S603
                            "quick" if quick else "full", str(out)], check=True, timeout=3600)
            result = json.loads(out.read_text())
            builds.append({k: v for k, v in result.items() if k != "queries"})
            for row in result["queries"]:
                report.add(keywords=n, **row)
    report.extra["builds"] = builds
    for b in builds:
        unsalted = (f"; unsalted baseline build {b['unsalted_build_s']:.1f} s"
                    if "unsalted_build_s" in b else "")
        report.notes.append(
            f"{b['keywords']:,} keywords ({b['source']}), {b['documents']:,} documents: build "
            f"{b['build_s']:.1f} s = {b['keywords_per_s']:,.0f} keywords/s, "
            f"{b['bytes_per_keyword']:.0f} bytes/keyword on disk, peak RSS {b['peak_rss_mb']:.0f} MB"
            + unsalted)
    for b in builds:
        m = b.get("multi")
        if m:
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
    report.plots.append({"title": "plaintext scan by pattern length (median ms)", "x": "pattern_length",
                         "y": "plaintext_scan_median_ms", "series": "keywords",
                         "file": "search_scan.png", "logy": "1"})
    return report
