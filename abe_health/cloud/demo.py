"""The cloud part of `abe-health demo`: a real server process, an owner, a reader, an authority.

The server runs as a child process (`python -m abe_health.cli serve`) on a free loopback port
over a temporary data directory, exactly as a user would run it, and is stopped at the end.
"""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from search import SearchIndex, SearchKey, keywords

from ..authority import ABE, CPABE
from ..errors import PolicyNotSatisfied
from ..revocation.manifest import AuthorityState
from .audit import load_verify_key, verify
from .auth import Principals
from .client import Client
from .errors import CloudError
from .search import push_index


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            Client(url, "").health()
            return
        except CloudError:
            time.sleep(0.1)
    raise CloudError("the demo server did not start")


def cloud_story(echo: Callable[[str], None]) -> None:
    """Owner uploads, reader searches and decrypts, authority revokes, the audit log verifies
    and then fails after one byte of it is changed."""
    echo("\nthe cloud as a service (abe-health serve in a child process, HTTP on loopback):")
    with tempfile.TemporaryDirectory(prefix="abe-health-demo-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        principals = Principals(data / "server.sqlite")
        tokens = {role: principals.create(role, role)[1] for role in ("owner", "reader", "authority")}
        principals.close()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        process = subprocess.Popen([sys.executable, "-m", "abe_health.cli", "serve", "--data",  # noqa: S603
                                    str(data), "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(url, process)
            _story(echo, url, tokens, Path(tmp))
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log = data / "audit.log"
        public = load_verify_key(data / "audit.pub")
        verdict = verify(log, public)
        echo(f"  audit verify: {'ok' if verdict.ok else 'FAILED'}, {verdict.entries} entries, "
             f"last signed checkpoint at entry {verdict.checkpoint}")
        raw = bytearray(log.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        log.write_bytes(bytes(raw))
        verdict = verify(log, public)
        echo(f"  one byte of the log changed: {'ok (this should not happen)' if verdict.ok else 'refused'}"
             f" at line {verdict.line}: {verdict.problem}")


def _story(echo: Callable[[str], None], url: str, tokens: dict[str, str], tmp: Path) -> None:
    owner, reader, authority = (Client(url, tokens[r]) for r in ("owner", "reader", "authority"))
    hospital = CPABE.setup()
    state = AuthorityState(tmp / "state.sqlite")
    authority.vault("ward", create_for=hospital, state=state).close()
    record = b'{"patient": "P-17", "note": "cardiology follow-up"}'
    file_id = owner.vault("ward").add(io.BytesIO(record), "doctor or nurse", ABE(hospital.public_key))
    key = SearchKey.generate()
    SearchIndex.create(tmp / "idx", {file_id: keywords(record.decode())}, key)
    push_index(owner, tmp / "idx", "ward")
    echo(f"  owner uploaded record {file_id} to vault 'ward' and its index (the server got "
         "ciphertext only)")
    hits = reader.search("ward", "^cardio", key).hits
    nurse = hospital.keygen(["nurse"])
    out = io.BytesIO()
    reader.vault("ward").get(hits[0].doc_id, nurse, out)
    echo(f"  reader searched '^cardio' -> {hits[0].doc_id} ({hits[0].match}: "
         f"{'/'.join(hits[0].keywords)}) and decrypted it: {out.getvalue() == record}")
    report = authority.revoke("ward", "nurse", hospital, state=state)
    echo(f"  authority revoked 'nurse': {report.files_updated} header rewritten "
         f"({report.bytes_written} bytes sent, body untouched)")
    try:
        reader.vault("ward").get(file_id, nurse, io.BytesIO())
        echo("  the revoked nurse key still opens it (this should not happen)")
    except PolicyNotSatisfied:
        echo("  the revoked nurse key is refused")
