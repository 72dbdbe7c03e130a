"""Command line of the benchmark suites: `python -m benchmarks SUITE [--quick] [--out DIR]`."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from .report import Report, to_markdown, write

#: suite name -> module with a `run(quick: bool) -> Report`
SUITES = {"primitives": "benchmarks.primitives", "abe": "benchmarks.abe", "search": "benchmarks.search",
          "revocation": "benchmarks.revocation", "fhir": "benchmarks.fhir",
          "cloud": "benchmarks.cloud", "devices": "benchmarks.devices",
          "compare": "benchmarks.compare", "scale": "benchmarks.scale"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suite", choices=sorted(SUITES), help="which suite to run")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and sizes: minutes, not hours")
    parser.add_argument("--out", type=Path, default=Path("bench-results"),
                        help="output directory (default: bench-results)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    Report.partial = args.out / args.suite / "results.partial.json"
    sys.stderr.write(f"{args.suite}: partial results go to {Report.partial}\n")
    report = importlib.import_module(SUITES[args.suite]).run(args.quick)
    paths = write(report, args.out, args.quick)
    sys.stdout.write(to_markdown(report))
    sys.stdout.write(f"\n{args.suite}: {time.perf_counter() - start:.1f} s; wrote "
                     + ", ".join(str(p) for p in paths) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
