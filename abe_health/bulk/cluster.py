"""Where bulk tasks run: a `dask.distributed` client, the caller's own or one made here.

Dask is an optional dependency (the `scale` extra): nothing in `abe_health` imports it at import
time, and every entry point that needs it calls `require_dask` first, which raises
`MissingExtra` naming the extra. `connect` makes a client for the CLI: to a running scheduler
(`dask scheduler` / `dask worker`, Kubernetes, HPC: `scheduler="tcp://host:8786"`), or to a
`LocalCluster` of `workers` processes with one thread each (the toolkit's work is CPU-bound
Python, so processes, not threads, are what scale), or, with `workers=0`, to a cluster of one
thread inside this process (small jobs, debugging: nothing leaves the process).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

from ..errors import MissingExtra

#: what the local cluster's worker processes start with, beside Dask's own settings. Dask sets
#: MALLOC_TRIM_THRESHOLD_, which also fixes glibc's mmap threshold at 128 KiB: every numpy
#: temporary above that is mapped, zero-filled page by page and unmapped again, and a search
#: segment's build takes about twice the CPU time. A fixed 32 MiB mmap threshold (the ceiling
#: of glibc's own adaptive one) keeps them on the heap; Dask's trimming still returns memory.
#: An exported MALLOC_MMAP_THRESHOLD_ wins; workers of a cluster started elsewhere need it
#: in their environment (docs/scale.md).
WORKER_ENVIRON = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": 32 << 20}
#: Dask's self-monitoring, slowed down for the local cluster. By default the scheduler and every
#: worker wake every 20 ms to time their event loop, sample the system every 500 ms and check
#: memory every 100 ms (each nanny too, in this process): with the cluster idle, that took 6.5 %
#: of a core in the driver's process for two clusters (1.5 % with these settings), CPU that on a
#: machine whose cores the driver and the workers share comes out of the work. The memory limit
#: is still enforced, checked every second.
MONITOR_CONFIG = {"distributed.admin.tick.interval": "1s",
                  "distributed.admin.system-monitor.interval": "5s",
                  "distributed.worker.memory.monitor-interval": "1s"}

EXTRA_MESSAGE = ('bulk work runs on dask.distributed, which is not installed: '
                 'pip install "abe-health[scale]"')


def require_dask() -> None:
    """MissingExtra (naming the `scale` extra) unless `dask.distributed` can be imported."""
    if importlib.util.find_spec("dask") is None or importlib.util.find_spec("distributed") is None:
        raise MissingExtra(EXTRA_MESSAGE, case="scale-extra")


def default_workers() -> int:
    """Worker processes of a local cluster when none is asked for: one per usable CPU."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A `distributed.Client` for the block: to `scheduler` if given, else to a new local
    cluster of `workers` processes (default: one per CPU; 0: one thread in this process; its
    processes start with WORKER_ENVIRON; MONITOR_CONFIG slows its self-monitoring), closed (with
    its workers) when the block ends."""
    require_dask()
    dist: Any = importlib.import_module("distributed")
    if scheduler is not None:
        with dist.Client(scheduler, timeout="30s") as client:
            yield client
        return
    count = default_workers() if workers is None else workers
    options: dict[str, Any] = {"dashboard_address": ":0", "threads_per_worker": 1}
    if count == 0:
        options.update(processes=False, n_workers=1)
    else:
        options.update(processes=True, n_workers=count)
    config: Any = importlib.import_module("dask").config
    with config.set({**WORKER_ENVIRON, **MONITOR_CONFIG}), dist.LocalCluster(**options) as cluster, \
            dist.Client(cluster) as client:
        yield client


def worker_count(client: Any) -> int:
    """How many threads the client's cluster runs tasks on (at least 1)."""
    return max(1, sum(int(n) for n in client.nthreads().values()))
