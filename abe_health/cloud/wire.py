"""The client's HTTP/1.1 transport: keep-alive connections of the standard library's http.client.

Why not httpx (used before): on loopback one small request took 0.3 ms through httpx and 0.09
ms through http.client against the same server, and httpx's h11 read streamed bodies 64 KiB at
a time through several layers of Python per piece; searches are small requests and vault files
are large streams, and both were bounded by the client. Here a small request's headers and
body go out in one write (`HTTPConnection`).

Bulk bodies move in large pieces with no thread between the caller and the socket: an upload
is sent from the writer's own thread as chunked transfer encoding, 1 MiB per chunk, its pieces
handed to one `sendmsg` without joining them; a download is read through a 1 MiB buffer
(`BulkResponse`), so a reader asking for 64 KiB at a time makes no system call per read.
Connections are pooled per `Client` (thread-safe) and checked before
reuse: one the server closed while idle is dropped, and a request that fails on a reused
connection before any answer arrived is sent once more on a fresh one (only bodies held in
memory are sent again).
"""

from __future__ import annotations

import http.client
import io
import select
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .errors import CloudError

#: idle connections a client keeps for reuse
MAX_IDLE = 8
#: request bodies up to this size are sent in the same write as the headers
SMALL_BODY = 64 * 1024
#: bytes a download's socket is read into at once
READ_BUFFER = 1024 * 1024
#: buffers handed to one sendmsg (Linux takes at most IOV_MAX = 1024)
MAX_IOV = 512

Connection = http.client.HTTPConnection
Response = http.client.HTTPResponse
#: errors of a connection or of HTTP framing: the caller reports them as a ServerError
WIRE_ERRORS = (OSError, http.client.HTTPException)


def send_all(sock: socket.socket, parts: Sequence[bytes | memoryview]) -> None:
    """Send every byte of `parts` in order, in as few system calls as the kernel allows."""
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    if isinstance(sock, ssl.SSLSocket):  # TLS has no sendmsg
        for view in views:
            sock.sendall(view)
        return
    while views:
        sent = sock.sendmsg(views[:MAX_IOV])
        while sent:
            if sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][sent:]
                sent = 0


class BulkResponse(http.client.HTTPResponse):
    """A response read through a buffer of READ_BUFFER bytes: a reader that asks for 64 KiB at
    a time (a vault's decryption) is served from memory, not by a system call or two each."""

    def __init__(self, sock: socket.socket, debuglevel: int = 0, method: str | None = None,
                 url: str | None = None) -> None:
        super().__init__(sock, debuglevel, method, url)
        self.fp.close()
        self.fp = cast(io.BufferedReader, sock.makefile("rb", READ_BUFFER))


class HTTPConnection(http.client.HTTPConnection):
    """http.client sends a request's headers and its body in two writes: each wakes the
    server, which then waits for the second. Here a body held in memory of up to SMALL_BODY
    bytes goes out with the headers in one write (http.client's own `_send_output` otherwise)."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and len(message_body) <= SMALL_BODY:
            self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
            head = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
            del self._buffer[:]  # type: ignore[attr-defined]
            self.send(head + message_body)
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class HTTPSConnection(HTTPConnection, http.client.HTTPSConnection):
    """The same over TLS."""


class Pool:
    """Keep-alive connections to the server at `url` (http or https), thread-safe."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CloudError(f"not an http(s) URL: {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        #: the URL's path, put before every request's path
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._free: list[Connection] = []
        self._lock = threading.Lock()

    def _new(self) -> Connection:
        cls = HTTPSConnection if self.https else HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        conn.connect()
        # a chunk's size line, data and end go out as written, not held back for an ACK
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    @staticmethod
    def _alive(conn: Connection) -> bool:
        """An idle connection is usable while nothing is readable on it (EOF is readable)."""
        sock = conn.sock
        if sock is None:
            return False
        try:
            return not select.select([sock], [], [], 0)[0]
        except (OSError, ValueError):
            return False

    def take(self) -> tuple[Connection, bool]:
        """A connection, and whether it was used before (a fresh one when none is idle)."""
        while True:
            with self._lock:
                conn = self._free.pop() if self._free else None
            if conn is None:
                return self._new(), False
            if self._alive(conn):
                return conn, True
            conn.close()

    def release(self, conn: Connection, response: Response | None) -> None:
        """Give `conn` back once `response` is read to its end; close it otherwise."""
        if response is not None and response.isclosed() and not response.will_close \
                and conn.sock is not None:
            with self._lock:
                if len(self._free) < MAX_IDLE:
                    self._free.append(conn)
                    return
        conn.close()

    def exchange(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str],
                 bulk: bool = False) -> tuple[Connection, Response]:
        """Send a request whose body is in memory; its connection and response (headers read).
        A `bulk` response (a download) is read through a large buffer."""
        for attempt in (0, 1):
            conn, reused = self.take()
            conn.response_class = BulkResponse if bulk else http.client.HTTPResponse
            try:
                conn.request(method, self.prefix + path, body=body, headers=dict(headers))
                return conn, conn.getresponse()
            except (ConnectionError, http.client.BadStatusLine):
                conn.close()
                if not reused or attempt:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def open_stream(self, method: str, path: str, headers: Mapping[str, str]) -> Connection:
        """A connection on which a request with a chunked body has begun (headers sent)."""
        conn, _ = self.take()
        try:
            conn.putrequest(method, self.prefix + path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("transfer-encoding", "chunked")
            conn.endheaders()
        except BaseException:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            free, self._free = self._free, []
        for conn in free:
            conn.close()
