"""Suite `scale`: bulk work on a Dask LocalCluster of 1 and 2 worker processes (one thread
each), and a model of 8, 64 and 512 workers from what was measured.

Four jobs of `abe_health.bulk`, each timed end to end through its public function (planning,
the journal, tasks, the driver's commits): `encrypt` (small files into a vault), `revoke`
(every header of that vault re-encapsulated), `index` (the files' keywords as one segment per
worker) and `keygen` (user keys recorded in the register). The per-task overhead of the
scheduler is measured with no-op tasks. The model splits a job's time per item into what the
workers share and what the driver does alone:

    seconds per item (W workers) = c / W + (o + k) / b + p
    c: compute per item (the 1-worker run's time, less its commits and task overheads)
    o: scheduler round trip per task (no-op tasks); k: the driver's commit per task (measured in
       the runs: catalog transaction, renames, syncs); b: items per task (the batch size a large
       job gets); p: the driver's planning per item (listing, policies, journal)

so the throughput it predicts for W workers is 1 / that. The notes compare the model with the
2-worker measurement and say which term dominates at 512 workers.
"""

from __future__ import annotations

import json
import os
import shutil
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
from search import SearchKey

from .report import Report

WORKERS = (1, 2)
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


def _warm(client: Any, base: Path, public: Path) -> None:
    """Import the toolkit and load the keys on every worker (a scratch job), as a long job has."""
    scratch = base / "warm"
    _sources(scratch / "src", 8, 256)
    encrypt_files(client, scratch / "src", public, PolicyMap((), "doctor"), scratch / "out")


def _timed(run: Any) -> tuple[float, BulkReport]:
    start = time.perf_counter()
    report = run()
    return time.perf_counter() - start, report


def run(quick: bool) -> Report:
    files, size, holders = (240, 4096, 48) if quick else (2000, 16384, 256)
    report = Report("scale", ["job", "workers", "items", "tasks", "seconds", "per_s", "commit_s",
                              "speedup", "source"])
    base = Path(tempfile.mkdtemp(prefix="abe-scale-"))
    try:
        authority = CPABE.setup(register=None)
        (base / "auth").mkdir()
        authority.public_key.save(base / "auth" / "public.key")
        assert authority.master_key is not None
        authority.master_key.save(base / "auth" / "master.key")
        from abe_health.register import Register

        Register.create(register_path_for(base / "auth" / "master.key"))
        public, master = base / "auth" / "public.key", base / "auth" / "master.key"
        _sources(base / "src", files, size)
        SearchKey.generate().save(base / "s.key")
        people = [{"name": f"h{i}", "attributes": ["doctor", "cardiology"]} for i in range(holders)]
        measured: dict[tuple[str, int], dict[str, Any]] = {}
        overhead: dict[int, float] = {}
        for workers in WORKERS:
            with connect(workers=workers) as client:
                _warm(client, base / f"w{workers}", public)
                overhead[workers] = _overhead_ms(client, 200 if quick else 1000)
                vault = base / f"w{workers}" / "v"
                Vault(vault, create_for=authority,
                      state=AuthorityState(register_path_for(master))).close()
                jobs = {
                    "encrypt": lambda c=client, v=vault: encrypt_files(
                        c, base / "src", public, PolicyMap((), "doctor and cardiology"), v),
                    "revoke": lambda c=client, v=vault: revoke(c, v, "doctor", master),
                    "index": lambda c=client, w=workers: build_index(
                        c, [base / "src"], base / "s.key", base / f"w{w}" / "idx", root=base / "src",
                        segments=w),
                    "keygen": lambda c=client, w=workers, v=vault: issue_keys(
                        c, master, people, base / f"w{w}" / "keys", vault=v),
                }
                for job, fn in jobs.items():
                    seconds, done = _timed(fn)
                    # index: the distinct keywords (one segment at 1 worker; segments repeat words)
                    items = measured[(job, 1)]["items"] if (job, 1) in measured else (
                        done.extra["keywords"] if job == "index" else done.items)
                    measured[(job, workers)] = {"seconds": seconds, "items": items, "tasks": done.tasks,
                                                "run": done.seconds, "commit": done.commit_seconds}
                    one = measured.get((job, 1))
                    report.add(job=job, workers=workers, items=items, tasks=done.tasks, seconds=seconds,
                               per_s=items / seconds, commit_s=done.commit_seconds,
                               speedup=one["seconds"] / seconds if one else 1.0, source="measured")
        _model(report, measured, overhead)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    report.notes.append(f"{files} files of {size} bytes, {holders} holders; LocalCluster of 1 and 2 "
                        f"processes with one thread each on {cores} usable cores (shared with the "
                        "driver and the scheduler); the target is 1.8x at 2 workers")
    report.notes.append(f"scheduler overhead per no-op task: {overhead[1]:.2f} ms (1 worker), "
                        f"{overhead[2]:.2f} ms (2 workers)")
    report.plots.append({"title": "bulk throughput: measured (1, 2) and modelled (8, 64, 512 workers)",
                         "file": "throughput.png", "x": "workers", "y": "per_s", "series": "curve",
                         "log": "1", "ylabel": "items per second (keywords for index)"})
    for row in report.rows:
        row["curve"] = f"{row['job']} {row['source']}"
    return report


def _model(report: Report, measured: dict[tuple[str, int], dict[str, Any]],
           overhead: dict[int, float]) -> None:
    """Rows for 8, 64 and 512 workers from the 1-worker run's terms (module docstring)."""
    batch = {"encrypt": BATCH_FILES, "revoke": BATCH_HEADERS, "keygen": BATCH_KEYS}
    o = overhead[2] / 1e3
    for job in ("encrypt", "revoke", "index", "keygen"):
        one = measured[(job, 1)]
        items, tasks = one["items"], one["tasks"]
        k = one["commit"] / tasks
        c = max(0.0, (one["run"] - one["commit"] - tasks * o) / items)
        p = max(0.0, (one["seconds"] - one["run"]) / items)
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
                       commit_s="", speedup=(one["seconds"] / items) * rate, source="model")
            if workers == MODELLED[-1]:
                share = ", ".join(f"{n} {t / sum(terms):.0%}" for n, t in zip(names, terms, strict=True))
                report.notes.append(f"{job} at {workers} workers: {names[top]} dominates ({share})")
