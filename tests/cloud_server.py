"""A test helper: `abe-health serve` in a real child process on a free port, with tokens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from abe_health.cloud import Client
from abe_health.cloud.auth import Principals


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process over `data`; `tokens[role]` is one token per role."""

    data: Path
    options: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, role: str, name: str | None = None, expires: float | None = None) -> str:
        principals = Principals(self.data / "server.sqlite")
        try:
            return principals.create(name or role, role, expires)[1]
        finally:
            principals.close()

    def start(self) -> Server:
        self.data.mkdir(parents=True, exist_ok=True)
        for role in ("admin", "owner", "reader", "authority"):
            if role not in self.tokens:
                self.tokens[role] = self.token(role)
        self.port = free_port()
        self.log = open(self.data.parent / f"server-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "abe_health.cli", "serve", "--data", str(self.data),
             "--port", str(self.port), *self.options], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"the server did not start: {self.log_text()}")

    def client(self, role: str) -> Client:
        return Client(self.url, self.tokens[role])

    def kill(self) -> None:
        """kill -9: no shutdown, no last checkpoint."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def log_text(self) -> str:
        return (self.data.parent / f"server-{self.port}.log").read_text(errors="replace")
