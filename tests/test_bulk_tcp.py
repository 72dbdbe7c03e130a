"""Bulk work on a cluster of separate processes over TCP: `dask scheduler` and two `dask worker`s
started here on free ports, the CLI and the API connecting with --scheduler / Client(address).
Results equal the serial path's; one worker killed with SIGKILL mid-run; the driver killed with
SIGKILL and the command run again. Every process started is stopped at teardown."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from abe_health import read_key
from abe_health.authority import ABE
from abe_health.bulk import encrypt_files
from abe_health.register import register_path_for
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState
from search import SearchIndex, SearchKey, collect
from tests.test_bulk import MAP, QUERIES, catalog, make_sources, opened, serial_vault

distributed = pytest.importorskip("distributed")
DASK = Path(sys.executable).with_name("dask")
CLI = [sys.executable, "-m", "abe_health.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A scheduler and two workers (no nanny: a killed worker stays dead), as processes."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log = tmp / "cluster.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.tmp = tmp

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=log, cwd=self.tmp,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def start(self) -> Cluster:
        self._spawn("scheduler", "--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard")
        self.workers = [self._spawn("worker", self.address, "--nthreads", "1", "--no-nanny",
                                    "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}")
                        for i in range(2)]
        with distributed.Client(self.address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        return self

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not DASK.exists():
        pytest.skip("the dask command is not installed beside this Python")
    running = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    t = tmp_path_factory.mktemp("tcp")
    subprocess.run([*CLI, "setup", "-o", str(t / "auth")], check=True, capture_output=True)
    (t / "map.json").write_text(json.dumps(MAP))
    return {"t": t, "sources": make_sources(t / "src", 48), "master": t / "auth" / "master.key",
            "public": t / "auth" / "public.key"}


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_over_tcp_equals_the_serial_path(cluster: Cluster, world: dict[str, Any]):
    t = world["t"]
    assert cli("vault", "init", t / "v", "-m", world["master"]).returncode == 0
    done = cli("bulk", "encrypt", t / "src", "-k", world["public"], "--policy-map", t / "map.json",
               "-o", t / "v", "--scheduler", cluster.address)
    assert done.returncode == 0, done.stderr
    assert "48 of 48" in done.stderr and "2 worker(s)" in done.stderr
    assert catalog(t / "v") == catalog(serial_vault(world, "serial.vault"))
    revoked = cli("bulk", "revoke", t / "v", "--attr", "nurse", "-m", world["master"],
                  "--scheduler", cluster.address)
    assert revoked.returncode == 0, revoked.stderr
    master = world["master"]
    auth = ABE(read_key(world["public"]), read_key(master), register=register_path_for(master))
    vault = Vault(t / "v", state=AuthorityState(register_path_for(master)))
    assert vault.pending(auth) == []
    key = vault.issue_key(auth, ["doctor", "nurse", "psychiatrist", "lab"])
    assert opened(t / "v", key) == world["sources"]
    SearchKey.generate().save(t / "s.key")
    indexed = cli("bulk", "index", t / "src", "--key", t / "s.key", "-o", t / "idx", "--root", t / "src",
                  "--scheduler", cluster.address)
    assert indexed.returncode == 0, indexed.stderr
    key_s = SearchKey.load(t / "s.key")
    serial, _ = SearchIndex.create(t / "serial.idx", collect([t / "src"], root=t / "src"), key_s)
    for query in QUERIES:
        assert SearchIndex(t / "idx").search(query, key_s).hits == serial.search(query, key_s).hits


def test_the_driver_killed_and_run_again(cluster: Cluster, world: dict[str, Any]):
    """SIGKILL to `abe-health bulk encrypt` once the journal shows a batch committed; the same
    command finishes the job: every file once."""
    t = world["t"]
    assert cli("vault", "init", t / "k", "-m", world["master"]).returncode == 0
    command = [*CLI, "bulk", "encrypt", str(t / "src"), "-k", str(world["public"]), "--policy-map",
               str(t / "map.json"), "-o", str(t / "k"), "--scheduler", cluster.address]
    journal = t / ".k.encrypt.journal"
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _committed(t / "k"):
            time.sleep(0.01)
        if proc.poll() is None:
            proc.kill()
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL and journal.exists()
    assert 0 < len(catalog(t / "k")) < 48
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert sorted(catalog(t / "k")) == sorted(world["sources"])


def _committed(vault: Path) -> bool:
    try:
        return bool(catalog(vault))
    except Exception:
        return False


def test_a_worker_killed_mid_run_over_tcp(cluster: Cluster, world: dict[str, Any]):
    t = world["t"]
    cli("vault", "init", t / "w", "-m", world["master"])
    killed = []

    def kill(count: int) -> None:
        if not killed:
            victim = cluster.workers[1]
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)

    with distributed.Client(cluster.address, timeout="30s") as client:
        report = encrypt_files(client, t / "src", world["public"], t / "map.json", t / "w", on_commit=kill)
    assert killed and report.committed == 48 and not report.failed
    master = world["master"]
    auth = ABE(read_key(world["public"]), read_key(master))
    key = auth.keygen(["doctor", "nurse", "psychiatrist", "lab"])
    assert opened(t / "w", key) == world["sources"]
