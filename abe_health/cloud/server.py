"""Starting the server: open the data directory, its audit log and signing key, run uvicorn.

uvicorn runs with its C HTTP parser (httptools) and, where it exists (not on Windows), the
libuv event loop (uvloop): with uvicorn's pure-Python h11 protocol and asyncio's loop, on
loopback, a 64 MiB upload moved at about half the speed and a small request took 2.6 times as
long (0.23 against 0.09 ms for an empty application).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .app import Limits, State, build_app
from .audit import AuditLog, new_signing_key
from .store import DataDir

LOOP = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def open_state(data: Path, limits: Limits | None = None) -> State:
    """The server's state over the data directory `data` (created if missing)."""
    data.mkdir(parents=True, exist_ok=True)
    limits = limits or Limits()
    signer = new_signing_key(data)
    audit = AuditLog(data / "audit.log", signer, limits.checkpoint_every)
    return State(DataDir(data), audit, limits)


def serve(data: Path, host: str, port: int, limits: Limits | None = None) -> None:
    """Run the API until interrupted (a signed audit checkpoint is written on the way out)."""
    import uvicorn

    state = open_state(data, limits)
    try:
        uvicorn.run(build_app(state), host=host, port=port, log_level="warning",
                    server_header=False, proxy_headers=False, http="httptools", loop=LOOP)
    finally:
        state.data.close()
