"""The campaign runner: worker processes under a watchdog, the verdict of each case, reproducers.

Why child processes: a case that hangs or eats memory must not take the campaign down, and
must be caught at a known bound. Each worker is a spawned process that imports the toolkit,
loads the corpus once, then sets RLIMIT_AS to its current address space plus `max_mib`; the
parent sends it one case at a time and waits `timeout` seconds (plus a grace period) for the
verdict. A worker that does not answer is killed (a hang; `faulthandler` dumped its stack just
before, which names the loop); a worker that dies is a crash. A `MemoryError` (the rlimit
refused an allocation) or a peak RSS that grew by more than `max_mib` is a blowup.

Verdicts: "ok" (right content), "refused" (a typed toolkit error), or a failure of one of the
kinds "traceback", "hang", "blowup", "wrong", "crash", each with a signature (exception type
and innermost toolkit frame) that groups failures of one root cause.
"""

from __future__ import annotations

import faulthandler
import itertools
import multiprocessing as mp
import os
import random
import re
import resource
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REPRODUCERS = HERE / "reproducers"
FAILURE_KINDS = ("traceback", "hang", "blowup", "wrong", "crash")
_PROJECT = ("abe_health", "search")


class WrongResult(AssertionError):
    """Raised by an oracle: the call returned without error but with content that is not right."""

    def __init__(self, check: str, detail: str = "") -> None:
        super().__init__(f"{check}: {detail}" if detail else check)
        self.check = check


@dataclass(frozen=True)
class Verdict:
    """What one case came to."""

    status: str  # "ok", "refused" or "fail"
    kind: str = ""  # for failures: one of FAILURE_KINDS
    signature: str = ""
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    """Counts of a campaign (or a replay), by surface, and the failures by kind and signature."""

    cases: Counter[str] = field(default_factory=Counter)
    ok: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    failures: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    signatures: dict[tuple[str, str, str], int] = field(default_factory=Counter)
    examples: dict[tuple[str, str, str], str] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, surface: str, verdict: Verdict, where: str = "") -> None:
        self.cases[surface] += 1
        if verdict.status == "ok":
            self.ok[surface] += 1
        elif verdict.status == "refused":
            self.refused[surface] += 1
        else:
            self.failures[surface][verdict.kind] += 1
            key = (surface, verdict.kind, verdict.signature)
            self.signatures[key] += 1
            self.examples.setdefault(key, where or verdict.detail)

    @property
    def total_failures(self) -> int:
        return sum(sum(c.values()) for c in self.failures.values())

    def table(self) -> str:
        """A markdown table: cases, ok, refused and failures per kind, per surface."""
        head = ["surface", "cases", "ok", "refused", *FAILURE_KINDS]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        total: Counter[str] = Counter()
        for surface in sorted(self.cases):
            row = [self.cases[surface], self.ok[surface], self.refused[surface],
                   *(self.failures[surface][k] for k in FAILURE_KINDS)]
            for name, value in zip(head[1:], row, strict=True):
                total[name] += value
            lines.append(f"| {surface} | " + " | ".join(str(v) for v in row) + " |")
        lines.append("| **total** | " + " | ".join(str(total[n]) for n in head[1:]) + " |")
        return "\n".join(lines)

    def summary(self) -> str:
        out = [self.table(), "", f"time: {self.seconds:.0f} s"]
        if self.signatures:
            out.append("")
            out.append("failures by signature:")
            for (surface, kind, sig), n in sorted(self.signatures.items(), key=lambda x: -x[1]):
                out.append(f"  {n:6d}  {surface:8s} {kind:9s} {sig}  ({self.examples[(surface, kind, sig)]})")
        return "\n".join(out)

    def merge(self, other: Report) -> None:
        self.cases.update(other.cases)
        self.ok.update(other.ok)
        self.refused.update(other.refused)
        for s, c in other.failures.items():
            self.failures[s].update(c)
        for k, n in other.signatures.items():
            self.signatures[k] = self.signatures.get(k, 0) + n
        for k, v in other.examples.items():
            self.examples.setdefault(k, v)


# ---------------------------------------------------------------------------------------------
# signatures


def _relative(filename: str) -> str | None:
    """`abe_health/...` or `search/...` for a toolkit file, else None."""
    parts = Path(filename).parts
    for i, part in enumerate(parts):
        if part in _PROJECT and i + 1 < len(parts):
            return "/".join(parts[i:])
    return None


def signature_of(exc: BaseException) -> str:
    """Exception type and the innermost toolkit frame (`IndexError@search/server.py:40`)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = "?"
    for frame in reversed(frames):
        rel = _relative(frame.filename)
        if rel is not None:
            where = f"{rel}:{frame.lineno}"
            break
    else:
        if frames:
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
    return f"{type(exc).__name__}@{where}"


def hang_signature(dump: str) -> str:
    """The innermost toolkit frame of a faulthandler dump (most recent call first)."""
    for match in re.finditer(r'File "([^"]+)", line (\d+)', dump):
        rel = _relative(match.group(1))
        if rel is not None:
            return f"hang@{rel}:{match.group(2)}"
    return "hang@?"


def file_name(signature: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", signature).strip("_")[:120]


def _memory_error(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


# ---------------------------------------------------------------------------------------------
# the worker


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vm_size() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _judge(surface: Any, state: Any, data: bytes, scratch: Path, typed: tuple[type, ...],
           timeout: float, max_mib: float, base_rss: float) -> tuple[Verdict, bool]:
    """Run one case; (verdict, whether the worker must be replaced afterwards)."""
    from tests.fuzz.base import REFUSALS

    REFUSALS[0] = 0
    start = time.perf_counter()
    verdict: Verdict
    try:
        surface.check(state, data, scratch)
        verdict = Verdict("refused" if REFUSALS[0] else "ok")
    except WrongResult as exc:
        verdict = Verdict("fail", "wrong", f"wrong-{exc.check}", str(exc)[:300])
    except MemoryError as exc:
        verdict = Verdict("fail", "blowup", "blowup-" + signature_of(exc), "MemoryError")
    except RecursionError as exc:
        verdict = Verdict("fail", "traceback", signature_of(exc), "RecursionError")
    except typed as exc:
        if _memory_error(exc):
            verdict = Verdict("fail", "blowup", "blowup-" + signature_of(exc.__context__ or exc),
                              f"{type(exc).__name__} after a MemoryError")
        else:
            verdict = Verdict("refused", detail=type(exc).__name__)
    except Exception as exc:
        verdict = Verdict("fail", "traceback", signature_of(exc), f"{type(exc).__name__}: {exc}"[:300])
    seconds = time.perf_counter() - start
    replace = False
    if verdict.status != "fail" and seconds > timeout:
        verdict = Verdict("fail", "hang", "hang-slow", f"took {seconds:.1f} s")
    grown = _peak_rss_mib() - base_rss
    if grown > max_mib:
        replace = True
        if verdict.status != "fail":
            verdict = Verdict("fail", "blowup", "blowup-rss", f"peak RSS grew by {grown:.0f} MiB")
    return Verdict(verdict.status, verdict.kind, verdict.signature, verdict.detail, seconds), replace


def worker_main(conn: Connection, names: list[str], timeout: float, max_mib: float, dump: str) -> None:
    """Load the surfaces, cap the address space, then judge cases until told to stop."""
    sys.path.insert(0, str(ROOT))
    from abe_health.errors import AbeError
    from search.errors import SearchError
    from tests.fuzz.surfaces import ALL as SURFACES

    typed = (AbeError, SearchError)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.setrecursionlimit(10_000)
    scratch_root = Path(tempfile.mkdtemp(prefix="abe-fuzz-"))
    states = {name: SURFACES[name].setup(scratch_root) for name in names}
    limit = _vm_size() + int(max_mib * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    base_rss = _peak_rss_mib()
    dump_file = open(dump, "w")
    conn.send(("ready", os.getpid()))
    counter = itertools.count()
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        name, data = message
        scratch = scratch_root / f"case-{next(counter)}"
        scratch.mkdir()
        dump_file.seek(0)
        dump_file.truncate()
        faulthandler.dump_traceback_later(timeout, exit=False, file=dump_file)
        try:
            verdict, replace = _judge(SURFACES[name], states[name], data, scratch, typed, timeout,
                                      max_mib, base_rss)
        finally:
            faulthandler.cancel_dump_traceback_later()
        _remove(scratch)
        conn.send((verdict, replace))
        if replace:
            return


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


class Worker:
    """A worker process and its pipe; `judge` runs one case under the watchdog."""

    def __init__(self, names: list[str], timeout: float, max_mib: float) -> None:
        self.names, self.timeout, self.max_mib = names, timeout, max_mib
        self.dump = tempfile.NamedTemporaryFile(prefix="abe-fuzz-dump-", suffix=".txt", delete=False)
        self.dump.close()
        self.proc: Any = None
        self.conn: Connection | None = None

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        env_backup = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                      "MALLOC_ARENA_MAX")}
        os.environ.update({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"})
        try:
            self.proc = ctx.Process(target=worker_main, args=(child, self.names, self.timeout,
                                                              self.max_mib, self.dump.name), daemon=True)
            self.proc.start()
        finally:
            for k, v in env_backup.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.conn = parent
        if not parent.poll(120):
            raise RuntimeError("fuzz worker did not start")
        parent.recv()

    def _kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.join()
        if self.conn is not None:
            self.conn.close()
        self.proc = self.conn = None

    def judge(self, surface: str, data: bytes) -> Verdict:
        if self.proc is None:
            self._start()
        assert self.conn is not None
        self.conn.send((surface, data))
        start = time.perf_counter()
        try:
            if self.conn.poll(self.timeout + 5):
                verdict, replace = self.conn.recv()
                if replace:
                    self._kill()
                if verdict.kind == "hang":
                    verdict = Verdict("fail", "hang", hang_signature(Path(self.dump.name).read_text()),
                                      verdict.detail, verdict.seconds)
                return verdict  # type: ignore[no-any-return]
        except (EOFError, OSError):
            code = self.proc.exitcode if self.proc is not None else None
            self._kill()
            return Verdict("fail", "crash", f"crash-exit-{code}", "the worker process died",
                           time.perf_counter() - start)
        dump = Path(self.dump.name).read_text()
        self._kill()
        return Verdict("fail", "hang", hang_signature(dump), f"no answer in {self.timeout:.0f} s",
                       time.perf_counter() - start)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.send(None)
                self.proc.join(5)
            except OSError:
                pass
        self._kill()
        os.unlink(self.dump.name)


# ---------------------------------------------------------------------------------------------
# campaigns


@dataclass(frozen=True)
class Case:
    number: int
    surface: str
    data: bytes
    how: str


def schedule(names: list[str], weights: dict[str, int]) -> list[str]:
    """One period of the weighted round robin that spreads cases over surfaces."""
    period = []
    for name in names:
        period += [name] * max(1, weights.get(name, 1))
    random.Random(0).shuffle(period)
    return period


def generate(names: list[str], cases: int, seed: int, start: int = 0) -> Iterator[Case]:
    """The campaign's cases: case i is fully determined by (seed, i)."""
    from tests.fuzz.surfaces import SURFACES

    period = schedule(names, {n: SURFACES[n].weight for n in names})
    seeds = {n: SURFACES[n].seeds() for n in names}
    for i in range(start, start + cases):
        name = period[i % len(period)]
        rng = random.Random(f"{seed}:{i}")
        try:
            data, how = SURFACES[name].mutate(rng, seeds[name])
        except Exception as exc:  # a mutator bug must not stop the campaign
            data, how = rng.choice(seeds[name]), f"seed (mutator failed: {type(exc).__name__})"
        yield Case(i, name, data, how)


def save_reproducer(surface: str, verdict: Verdict, data: bytes, what: str,
                    directory: Path = REPRODUCERS) -> Path | None:
    """Save the first input of each (surface, signature) with a one-line description."""
    folder = directory / surface
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{file_name(verdict.signature)}.bin"
    if path.exists():
        return None
    path.write_bytes(data)
    line = f"{verdict.kind} {verdict.signature}: {verdict.detail} [{what}]".replace("\n", " ")
    path.with_suffix(".txt").write_text(line[:400] + "\n")
    return path


def run(cases: Iterable[Case], names: list[str], timeout: float, max_mib: float, jobs: int = 1,
        save: bool = True, log: Any = None, label: str = "") -> Report:
    """Judge every case with `jobs` workers in parallel; save reproducers of failures."""
    report = Report()
    lock = threading.Lock()
    source = iter(cases)
    start = time.perf_counter()
    done = itertools.count(1)

    def loop() -> None:
        worker = Worker(names, timeout, max_mib)
        try:
            while True:
                with lock:
                    case = next(source, None)
                if case is None:
                    return
                verdict = worker.judge(case.surface, case.data)
                what = f"{case.how}; {label} case {case.number}"
                with lock:
                    report.add(case.surface, verdict, what)
                    if verdict.status == "fail" and save:
                        saved = save_reproducer(case.surface, verdict, case.data, what)
                        if saved is not None and log is not None:
                            print(f"new failure {verdict.kind} {verdict.signature} -> {saved}", file=log)
                    n = next(done)
                    if log is not None and n % 1000 == 0:
                        rate = n / (time.perf_counter() - start)
                        print(f"{n} cases, {report.total_failures} failures, {rate:.0f} cases/s",
                              file=log, flush=True)
        finally:
            worker.close()

    threads = [threading.Thread(target=loop) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.seconds = time.perf_counter() - start
    return report


def reproducers(directory: Path = REPRODUCERS) -> list[tuple[str, Path]]:
    """(surface, path) of every saved reproducer."""
    return [(p.parent.name, p) for p in sorted(directory.glob("*/*.bin"))]


def replay(paths: list[tuple[str, Path]], timeout: float, max_mib: float) -> list[tuple[Path, Verdict]]:
    """Judge saved inputs again (one worker per surface set)."""
    names = sorted({s for s, _ in paths})
    worker = Worker(names, timeout, max_mib)
    try:
        return [(p, worker.judge(s, p.read_bytes())) for s, p in paths]
    finally:
        worker.close()

