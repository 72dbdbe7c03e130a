"""Running a planned job's batches on a Dask cluster and committing each result as it arrives.

The driver (this process) submits one task per pending batch, at most a few per worker thread at
a time (so a job of millions of items never puts millions of tasks on the scheduler), and
commits each result in the order results arrive, in this process only: the driver is the single
writer of the target and of the journal. Dask re-runs a task whose worker died (kill -9, a lost
node) on another worker; a task that raises is retried `RETRIES` times, then reported and left
pending in the journal for the next run. A commit may also refuse a result that went stale while
it was computed (a vault's manifest moved on); that batch is computed again, at most
`RESUBMITS` times.
"""

from __future__ import annotations

import importlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cluster import worker_count
from .journal import Journal

#: tasks in flight per worker thread: enough to hide a task's round trip, few enough to keep
#: the scheduler's state small
IN_FLIGHT_PER_THREAD = 3
#: how often a task that raised is run again before its batch is reported as failed
RETRIES = 2
#: how often a batch whose result went stale before its commit is computed again
RESUBMITS = 3

#: (batch number, its pending items) -> (a module-level task function, its one argument)
MakeTask = Callable[[int, list[Any]], tuple[Callable[[Any], Any], Any]]
#: (batch number, its items, the task's result) -> [(item, why) that failed], or None: stale
Commit = Callable[[int, list[Any], Any], "list[tuple[str, str]] | None"]


@dataclass
class BulkReport:
    """What a bulk run did: items in the job, committed by this run, already done before it
    (a resumed job), failed (item, why), tasks run, worker threads, wall time of the run and the
    part of it the driver spent committing (serial work: what bounds a large cluster)."""

    kind: str
    items: int = 0
    committed: int = 0
    resumed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    tasks: int = 0
    workers: int = 0
    seconds: float = 0.0
    commit_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run_batches(client: Any, journal: Journal, report: BulkReport, make_task: MakeTask,
                commit: Commit, on_commit: Callable[[int], None] | None = None) -> BulkReport:
    """Run every pending batch of `journal` on `client`'s cluster and commit each result
    (`commit`), marking the batch done in the journal after its commit succeeded."""
    as_completed: Any = importlib.import_module("distributed").as_completed
    start = time.perf_counter()
    pending = journal.pending()
    done_before, total = journal.counts()
    report.items, report.resumed = total, done_before
    report.workers = worker_count(client)
    window = max(2, IN_FLIGHT_PER_THREAD * report.workers)
    job = secrets.token_hex(4)
    queue = sorted(pending)
    resubmits: dict[int, int] = {}
    futures: dict[Any, int] = {}

    def submit(batch: int) -> Any:
        fn, arg = make_task(batch, pending[batch])
        future = client.submit(fn, arg, key=f"abe-bulk-{report.kind}-{job}-{batch}-{secrets.token_hex(3)}",
                               pure=False, retries=RETRIES)
        futures[future] = batch
        report.tasks += 1
        return future

    running = as_completed([submit(queue.pop(0)) for _ in range(min(window, len(queue)))])
    for future in running:
        batch = futures.pop(future)
        try:
            result = future.result()
        except Exception as exc:  # a task that failed on every retry: reported, left pending
            report.failed.append((f"batch {batch}", f"{type(exc).__name__}: {exc}"))
            result = None
        else:
            began = time.perf_counter()
            failed = commit(batch, pending[batch], result)
            report.commit_seconds += time.perf_counter() - began
            if failed is None and resubmits.get(batch, 0) < RESUBMITS:
                resubmits[batch] = resubmits.get(batch, 0) + 1
                running.add(submit(batch))
                continue
            if failed is None:
                report.failed.append((f"batch {batch}", "its target kept changing while it ran"))
            else:
                bad = {name for name, _ in failed}
                # a batch without failures is marked whole, with no statement per item
                kept = [i for i in pending[batch] if item_name(i) not in bad] if bad else None
                journal.mark_done(batch, kept)
                report.failed += failed
                report.committed += len(pending[batch]) - len(bad)
                if on_commit is not None:
                    on_commit(len(pending[batch]) - len(bad))
        if queue:
            running.add(submit(queue.pop(0)))
    report.seconds = time.perf_counter() - start
    return report


def item_name(item: Any) -> str:
    """How an item is named in reports: its `name` field, else its first element, else itself."""
    if isinstance(item, dict):
        return str(item.get("name", item))
    if isinstance(item, list | tuple) and item:
        return str(item[0])
    return str(item)
