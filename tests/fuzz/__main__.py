"""`python -m tests.fuzz`: run a campaign, replay reproducers, or make the corpus again.

    python -m tests.fuzz --cases 10000                     # every surface, weighted
    python -m tests.fuzz --cases 2000 --surface search     # one surface (repeat --surface for more)
    python -m tests.fuzz --cases 50000 --seed 7 --jobs 2   # two worker processes
    python -m tests.fuzz --replay                          # every saved reproducer
    python -m tests.fuzz --make-corpus                     # new seeds (after a format change)

Exit status 1 when any case failed (traceback, hang, blowup, wrong result, crash).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from tests.fuzz import engine


def main(argv: list[str] | None = None) -> int:
    from tests.fuzz.surfaces import SURFACES

    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000, help="cases in all (default 1000)")
    parser.add_argument("--surface", action="append", choices=sorted(SURFACES),
                        help="only this surface (repeatable; default: all, weighted)")
    parser.add_argument("--seed", type=int, default=0, help="campaign seed (case i is seed:i)")
    parser.add_argument("--start", type=int, default=0, help="first case number (to resume)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a case is a hang")
    parser.add_argument("--max-mib", type=float, default=500.0, help="MiB of growth that is a blowup")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--no-save", action="store_true", help="do not save reproducers")
    parser.add_argument("--json", type=Path, help="write the report as JSON to this file")
    parser.add_argument("--replay", nargs="*", type=Path, metavar="BIN",
                        help="judge saved reproducers again (default: all under tests/fuzz/reproducers)")
    parser.add_argument("--show", type=Path, metavar="BIN",
                        help="run one saved input in this process and print its traceback")
    parser.add_argument("--make-corpus", action="store_true", help="make the corpus again")
    args = parser.parse_args(argv)

    if args.make_corpus:
        from tests.fuzz import world

        world.make()
        print(f"corpus written to {world.CORPUS}")
        return 0
    if args.show is not None:
        import tempfile
        import traceback

        surface = SURFACES[args.show.parent.name]
        state = surface.setup(Path(tempfile.mkdtemp(prefix="abe-fuzz-show-")))
        try:
            surface.check(state, args.show.read_bytes(), Path(tempfile.mkdtemp(prefix="abe-fuzz-case-")))
        except BaseException:
            traceback.print_exc()
            return 1
        print("no failure: the call returned the right content or refused with a typed error")
        return 0
    if args.replay is not None:
        paths = ([(p.parent.name, p) for p in args.replay] if args.replay else engine.reproducers())
        failed = 0
        for path, verdict in engine.replay(paths, args.timeout, args.max_mib):
            mark = "FAIL" if verdict.status == "fail" else verdict.status
            failed += verdict.status == "fail"
            print(f"{mark:8s} {path}  {verdict.kind} {verdict.signature} {verdict.detail}"[:300])
        print(f"{len(paths)} reproducers, {failed} still failing")
        return 1 if failed else 0

    names = args.surface or sorted(SURFACES)
    cases = engine.generate(names, args.cases, args.seed, args.start)
    report = engine.run(cases, names, args.timeout, args.max_mib, args.jobs, save=not args.no_save,
                        log=sys.stderr, label=f"seed {args.seed}")
    print(report.summary())
    print(f"machine: {platform.machine()}, {platform.system()} {platform.release()}, "
          f"Python {platform.python_version()}, jobs {args.jobs}")
    if args.json:
        args.json.write_text(json.dumps({
            "cases": dict(report.cases), "ok": dict(report.ok), "refused": dict(report.refused),
            "failures": {s: dict(c) for s, c in report.failures.items()},
            "signatures": [[s, k, sig, n, report.examples[(s, k, sig)]]
                           for (s, k, sig), n in report.signatures.items()],
            "seconds": report.seconds, "seed": args.seed, "start": args.start,
            "timeout": args.timeout, "max_mib": args.max_mib, "jobs": args.jobs}, indent=1))
    return 1 if report.total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
