"""Suite `scale`: bulk work on a Dask LocalCluster of 1 and 2 worker processes (one thread
each), and a model of 8, 64 and 512 workers from what was measured.

Four jobs of `abe_health.bulk`, each timed end to end through its public function (planning,
the journal, tasks, the driver's commits): `encrypt` (small files into a vault), `revoke`
(every header of that vault re-encapsulated), `index` (the files' keywords) and `keygen` (user
keys recorded in the register). Each job is the same at 1 and 2 workers, so the ratio is the
cluster's alone: in particular the index is built as INDEX_SEGMENTS segments at both (one per
worker at 2; segments repeat the keywords their documents share, so a job of one segment per
worker would do less work at 1 worker than at 2). Beside them, the serial `index build` (one
segment, in this process, with its own threads) shows what segmenting costs.

What is measured is the steady state of a running cluster, and what it costs to get there: both
clusters are up for the whole run, and each first runs one small job of every kind, not timed
(every worker imports the toolkit and loads the keys, as in a long job). The fixed cost of a job
(planning, the journal, the first round trips, the last commit, the end's sweep) is the median
time of three jobs of two items at each worker count; the steady throughput is a run's items
over its time beyond that. Before every timed run the machine's dirty data is written out
(`os.sync`, not timed): the workers sync a batch with `os.sync`, which would otherwise also
flush what the run before wrote. Each job then runs at 1, 2, 2, 1 (the full run: 1, 2, 2, 1, 1,
2) workers, each run on a fresh target, so every pair of consecutive runs gives a ratio from two
runs seconds apart, pairs in both orders; the median of the pairs' ratios is the result, every
pair's ratio in the notes. The machine is shared: with every run go the load averages, the CPU
seconds of the driver (with the local schedulers) and of the workers, and what the rest of the
machine used meanwhile (busy time in /proc/stat less ours: other people's jobs, which may be
invisible from here, and the kernel's own work), and the hypervisor's steal.
The per-task overhead of the scheduler is measured with no-op tasks. The model splits a job's
time per item into what the workers share and what the driver does alone (from the 1-worker
run of median time):

    seconds per item (W workers) = c / W + (o + k) / b + p
    c: compute per item (the 1-worker run's time, less its commits and task overheads)
    o: scheduler round trip per task (no-op tasks); k: the driver's commit per task (measured in
       the runs: catalog transaction, renames, syncs); b: items per task (the batch size a large
       job gets); p: the driver's planning per item (listing, policies, journal)

so the throughput it predicts for W workers is 1 / that. The notes compare the model with the
2-worker measurement and say which term dominates at 512 workers. For the index, the model
keeps the measured job's compute per keyword: more segments than INDEX_SEGMENTS would repeat
shared keywords in more of them, so it is optimistic there.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from abe_health.authority import CPABE
from abe_health.bulk import build_index, connect, encrypt_files, issue_keys, revoke
from abe_health.bulk.encrypt import BATCH_FILES
from abe_health.bulk.issue import BATCH_KEYS
from abe_health.bulk.revoke import BATCH_HEADERS
from abe_health.bulk.runner import BulkReport
from abe_health.bulk.sources import PolicyMap
from abe_health.register import register_path_for
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState
from search import SearchIndex, SearchKey, collect

from .report import Report

WORKERS = (1, 2)
#: segments of the bulk index at every worker count (one per worker at the largest)
INDEX_SEGMENTS = max(WORKERS)
MODELLED = (8, 64, 512)
WORDS = ("cardiology cardiac asthma wheeze diabetes insulin fracture ward cardiomyopathy "
         "hypertension penicillin allergy angina arrhythmia bronchitis dermatitis").split()


def _noop(x: int) -> int:
    return x


def _sources(root: Path, files: int, size: int) -> None:
    for i in range(files):
        folder = root / f"d{i % 8}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(f"{WORDS[(i + j) % len(WORDS)]}{(i * 31 + j) % 997}" for j in range(40))
        body = json.dumps({"note": words, "bp": 90 + i % 90}) + "\n"
        (folder / f"r{i:06d}.json").write_text(body + " " * max(0, size - len(body)))


def _overhead_ms(client: Any, tasks: int) -> float:
    """Milliseconds per no-op task, submitted and gathered as a job does."""
    client.gather(client.map(_noop, range(8), pure=False))
    start = time.perf_counter()
    client.gather(client.map(_noop, range(tasks), pure=False))
    return (time.perf_counter() - start) * 1e3 / tasks


def _warm(client: Any, base: Path, public: Path, master: Path, search_key: Path,
          authority: CPABE, workers: int) -> None:
    """A first small job of every kind on a new cluster, not timed: every worker imports the
    toolkit (the search build too) and loads the keys it needs, as a long job has."""
    scratch = base / "warm"
    _sources(scratch / "src", 4 * workers, 256)
    vault = scratch / f"warm{workers}"
    Vault(vault, create_for=authority, state=AuthorityState(register_path_for(master))).close()
    encrypt_files(client, scratch / "src", public, PolicyMap((), "doctor"), vault)
    revoke(client, vault, "doctor", master)
    people = [{"name": f"w{i}", "attributes": ["doctor"]} for i in range(4 * workers)]
    issue_keys(client, master, people, scratch / "keys", vault=vault)
    build_index(client, [scratch / "src"], search_key, scratch / "idx", root=scratch / "src",
                segments=workers)


def _serial_index(report: Report, base: Path) -> dict[str, Any]:
    """`index build` of the sources in this process (one segment, the build's own threads): the
    row the bulk index is compared with."""
    key = SearchKey.load(base / "s.key")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    _, stats = SearchIndex.create(base / "serial.idx", collect([base / "src"], root=base / "src"), key)
    seconds = time.perf_counter() - start
    report.add(job="index", workers=1, items=stats.keywords, tasks="", seconds=seconds,
               per_s=stats.keywords / seconds, commit_s="", speedup="", driver_cpu_s="", workers_cpu_s="",
               load=load, source="serial")
    return {"items": stats.keywords, "seconds": seconds, "per_s": stats.keywords / seconds}


def _cpu(workers: list[int]) -> tuple[float, float]:
    """CPU seconds used so far by this process (the driver, with the local schedulers) and by the
    worker processes `workers`: what a job costs, whatever else shares the cores."""
    psutil: Any = importlib.import_module("psutil")  # a dependency of dask.distributed
    own = sum(psutil.Process().cpu_times()[:2])
    children = 0.0
    for pid in workers:
        with contextlib.suppress(psutil.Error):
            children += sum(psutil.Process(pid).cpu_times()[:2])
    return own, children


def _machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has been busy, and stolen by the hypervisor, so far
    (/proc/stat; zeros elsewhere): less this benchmark's own, what other people's jobs took
    from the cores during a run (their processes may be invisible from here)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _timed(run: Any) -> tuple[float, BulkReport]:
    start = time.perf_counter()
    report = run()
    return time.perf_counter() - start, report


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median time (the lower one of an even count)."""
    ordered = sorted(runs, key=lambda m: m["seconds"])
    return ordered[(len(ordered) - 1) // 2]


class _Jobs:
    """The four jobs on fixed inputs; each call makes a fresh target (a new vault, key
    directory or index) where the job needs one, so every run of a job is the same work."""

    def __init__(self, base: Path, authority: CPABE, src: Path, holders: int, client: Any) -> None:
        self.base, self.authority, self.src, self.client = base, authority, src, client
        self.public, self.master = base.parent / "auth" / "public.key", base.parent / "auth" / "master.key"
        base.mkdir()
        self.people = [{"name": f"h{i}", "attributes": ["doctor", "cardiology"]} for i in range(holders)]
        self.count = 0
        self.revoked: Path | None = None

    def _fresh(self, kind: str) -> Path:
        self.count += 1
        return self.base / f"{kind}{self.count}"

    def _vault(self) -> Path:
        vault = self._fresh("v")  # one vault name each: the authority's state pins names
        Vault(vault, create_for=self.authority,
              state=AuthorityState(register_path_for(self.master))).close()
        return vault

    def prepare(self, job: str) -> Any:
        """A call that runs `job` once on a client, its target made beforehand (not timed)."""
        if job == "encrypt":
            vault = self._vault()
            return lambda c: encrypt_files(c, self.src, self.public, PolicyMap((), "doctor and cardiology"),
                                           vault)
        if job == "revoke":
            if self.revoked is None:  # every revocation rewrites every header of one vault
                self.revoked = self._vault()
                encrypt_files(self.client, self.src, self.public,
                              PolicyMap((), "doctor and cardiology"), self.revoked)
            return lambda c, v=self.revoked: revoke(c, v, "doctor", self.master)
        if job == "index":
            out = self._fresh("idx")
            return lambda c: build_index(c, [self.src], self.base.parent / "s.key", out, root=self.src,
                                         segments=INDEX_SEGMENTS)
        out, vault = self._fresh("keys"), self._vault()
        return lambda c: issue_keys(c, self.master, self.people, out, vault=vault)


def _setup(base: Path) -> CPABE:
    authority = CPABE.setup(register=None)
    (base / "auth").mkdir(parents=True)
    authority.public_key.save(base / "auth" / "public.key")
    assert authority.master_key is not None
    authority.master_key.save(base / "auth" / "master.key")
    from abe_health.register import Register

    Register.create(register_path_for(base / "auth" / "master.key"))
    SearchKey.generate().save(base / "s.key")
    return authority


def run(quick: bool) -> Report:
    files, size, holders, small = (2000, 4096, 600, 2) if quick else (16000, 16384, 6000, 2)
    order = (1, 2, 2, 1) if quick else (1, 2, 2, 1, 1, 2)
    report = Report("scale", ["job", "workers", "run", "items", "tasks", "seconds", "per_s", "commit_s",
                              "speedup", "driver_cpu_s", "workers_cpu_s", "others_cpu_s", "steal_s", "load",
                              "source"])
    base = Path(tempfile.mkdtemp(prefix="abe-scale-"))
    try:
        authority = _setup(base)
        public, master = base / "auth" / "public.key", base / "auth" / "master.key"
        _sources(base / "src", files, size)
        _sources(base / "small", small, size)
        serial = _serial_index(report, base)
        serial_keywords = serial["items"]
        runs: dict[str, list[dict[str, Any]]] = {job: [] for job in ("encrypt", "revoke", "index", "keygen")}
        fixed: dict[tuple[str, int], float] = {}
        overhead: dict[int, float] = {}
        with contextlib.ExitStack() as stack:
            clients = {w: stack.enter_context(connect(workers=w)) for w in WORKERS}
            pids: dict[int, list[int]] = {}
            for workers, client in clients.items():
                _warm(client, base / f"w{workers}", public, master, base / "s.key", authority, workers)
                overhead[workers] = _overhead_ms(client, 200 if quick else 1000)
                pids[workers] = list(client.run(os.getpid).values())
            big = _Jobs(base / "big", authority, base / "src", holders, clients[1])
            tiny = _Jobs(base / "tiny", authority, base / "small", small, clients[1])
            for job in runs:
                # the fixed cost of a job: a job of `small` items, the median of 3 at each count
                for workers, client in clients.items():
                    samples = []
                    for _ in range(3):
                        fn = tiny.prepare(job)
                        os.sync()
                        samples.append(_timed(lambda c=client, f=fn: f(c))[0])
                    fixed[(job, workers)] = statistics.median(samples)
                # 1, 2, 2, 1 (, 1, 2) workers: each pair of runs back to back, pairs in both orders
                for number, workers in enumerate(order, 1):
                    fn = big.prepare(job)
                    # what earlier runs and the preparation wrote reaches the disk before the
                    # timing starts: the workers' syncs flush the whole machine's dirty data
                    os.sync()
                    load = os.getloadavg()
                    before, machine = _cpu(pids[workers]), _machine_cpu()
                    seconds, done = _timed(lambda c=clients[workers], f=fn: f(c))
                    after, machine_after = _cpu(pids[workers]), _machine_cpu()
                    ours = after[0] - before[0] + after[1] - before[1]
                    others = max(0.0, machine_after[0] - machine[0] - ours)
                    steal = machine_after[1] - machine[1]
                    # index: the distinct keywords, as a serial build counts them (segments repeat words)
                    items = serial_keywords if job == "index" else done.items
                    m = {"workers": workers, "run": number, "seconds": seconds, "items": items,
                         "tasks": done.tasks, "run_s": done.seconds, "commit": done.commit_seconds,
                         "load": load, "cpu": (after[0] - before[0], after[1] - before[1]),
                         "others": others, "steal": steal}
                    runs[job].append(m)
                    pair = runs[job][-2] if number % 2 == 0 else None
                    speedup: Any = ""
                    if pair is not None:
                        one, two = (pair, m) if workers == 2 else (m, pair)
                        speedup = one["seconds"] / two["seconds"]
                    report.add(job=job, workers=workers, run=number, items=items, tasks=done.tasks,
                               seconds=seconds, per_s=items / seconds, commit_s=done.commit_seconds,
                               speedup=speedup, driver_cpu_s=m["cpu"][0], workers_cpu_s=m["cpu"][1],
                               others_cpu_s=others, steal_s=steal, load=load[0], source="measured")
        _summary(report, runs, fixed, small)
        two = _median_run([m for m in runs["index"] if m["workers"] == 2])
        report.notes.append(f"index: the serial `index build` (one segment) {serial['per_s']:,.0f} "
                            f"keywords/s; the bulk job at {max(WORKERS)} workers (median run) "
                            f"{two['items'] / two['seconds']:,.0f}/s, "
                            f"{serial['seconds'] / two['seconds']:.2f}x the serial build")
        measured = {(job, w): _median_run([m for m in rs if m["workers"] == w])
                    for job, rs in runs.items() for w in WORKERS}
        _model(report, measured, overhead)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    report.notes.append(f"{files} files of {size} bytes, {holders} holders; LocalCluster of 1 and 2 "
                        f"processes with one thread each on {cores} usable cores (shared with the "
                        "driver and the scheduler); the target is 1.8x at 2 workers; the index as "
                        f"{INDEX_SEGMENTS} segments at both; each cluster ran one small job of every "
                        "kind first, not timed (imports, keys loaded on every worker); runs at "
                        + ", ".join(map(str, order)) + " workers per job, a ratio from each pair of "
                        "consecutive runs")
    report.notes.append("load averages (1, 5, 15 min) before each run: " + "; ".join(
        f"{job} {m['run']} ({m['workers']}w): " + " ".join(f"{x:.2f}" for x in m["load"])
        for job, rs in runs.items() for m in rs))
    report.notes.append(f"scheduler overhead per no-op task: {overhead[1]:.2f} ms (1 worker), "
                        f"{overhead[2]:.2f} ms (2 workers)")
    report.plots.append({"title": "bulk throughput: measured (1, 2) and modelled (8, 64, 512 workers)",
                         "file": "throughput.png", "x": "workers", "y": "per_s", "series": "curve",
                         "log": "1", "ylabel": "items per second (keywords for index)"})
    for row in report.rows:
        row["curve"] = f"{row['job']} {row['source']}"
    return report


def _summary(report: Report, runs: dict[str, list[dict[str, Any]]], fixed: dict[tuple[str, int], float],
             small: int) -> None:
    """Per job: every pair's ratio and their median, the fixed cost of a job (a job of `small`
    items) and the steady throughput (items over the time beyond that fixed cost)."""
    for job, rs in runs.items():
        ratios = []
        for first, second in zip(rs[::2], rs[1::2], strict=True):
            one, two = (first, second) if first["workers"] == 1 else (second, first)
            ratios.append(one["seconds"] / two["seconds"])
        steady = {}
        for w in WORKERS:
            rates = [m["items"] / max(1e-9, m["seconds"] - fixed[(job, w)]) for m in rs if m["workers"] == w]
            steady[w] = statistics.median(rates)
        unit = "keywords" if job == "index" else "items"
        report.notes.append(
            f"{job}: median ratio 2/1 workers {statistics.median(ratios):.2f}x (pairs: "
            + ", ".join(f"{r:.2f}x" for r in ratios) + f"); fixed cost of a {small}-item job "
            f"{fixed[(job, 1)] * 1e3:.0f} ms (1 worker), {fixed[(job, 2)] * 1e3:.0f} ms (2 workers); steady "
            f"{steady[1]:,.0f} -> {steady[2]:,.0f} {unit}/s ({steady[2] / steady[1]:.2f}x); driver CPU "
            + ", ".join(f"{m['cpu'][0] / m['items'] * 1e3:.3f}" for m in rs) + f" ms per {unit[:-1]}, "
            "workers' CPU " + ", ".join(f"{m['cpu'][1] / m['items'] * 1e3:.3f}" for m in rs)
            + f" ms per {unit[:-1]}, other jobs on the machine "
            + ", ".join(f"{m['others'] / m['seconds']:.0%}" for m in rs) + " of a core (runs in order)")


def _model(report: Report, measured: dict[tuple[str, int], dict[str, Any]],
           overhead: dict[int, float]) -> None:
    """Rows for 8, 64 and 512 workers from the 1-worker run's terms (module docstring)."""
    batch = {"encrypt": BATCH_FILES, "revoke": BATCH_HEADERS, "keygen": BATCH_KEYS}
    o = overhead[2] / 1e3
    for job in ("encrypt", "revoke", "index", "keygen"):
        one = measured[(job, 1)]
        items, tasks = one["items"], one["tasks"]
        k = one["commit"] / tasks
        c = max(0.0, (one["run_s"] - one["commit"] - tasks * o) / items)
        p = max(0.0, (one["seconds"] - one["run_s"]) / items)
        for workers in (2, *MODELLED):
            # index: one segment per worker, so a task's items shrink as workers grow
            b = items / workers if job == "index" else batch[job]
            terms = (c / workers, o / b, k / b, p)
            rate = 1 / sum(terms)
            if workers == 2:
                got = measured[(job, 2)]["items"] / measured[(job, 2)]["seconds"]
                report.notes.append(f"{job}: model at 2 workers {rate:,.0f}/s, measured {got:,.0f}/s "
                                    f"(c = {c * 1e3:.3f} ms per item, k = {k * 1e3:.2f} ms per commit, "
                                    f"p = {p * 1e3:.3f} ms per item)")
                continue
            names = ("compute", "scheduler", "commits", "planning")
            top = max(range(4), key=lambda i: terms[i])
            report.add(job=job, workers=workers, items=items, tasks="", seconds=items / rate, per_s=rate,
                       commit_s="", speedup=(one["seconds"] / items) * rate, driver_cpu_s="",
                       workers_cpu_s="", load="", source="model")
            if workers == MODELLED[-1]:
                share = ", ".join(f"{n} {t / sum(terms):.0%}" for n, t in zip(names, terms, strict=True))
                report.notes.append(f"{job} at {workers} workers: {names[top]} dominates ({share})")
