"""`Client(url, token)`: the toolkit's side of `abe-health serve`.

Every answer is untrusted: documents are read only up to a limit that fits what they may hold,
decoded inside one `try`, and type-checked by the caller before use; a problem document becomes
the typed exception its type names (`errors.PROBLEMS`), anything else a `ProtocolError` or
`ServerError`. What the server returns is then checked exactly as a local store's bytes are:
vault manifests against the pinned authority key, catalog rows by type, headers by their
context binding, search keys by the owner's signature (see `remote.py` and `search.py`).

Files stream both ways in constant memory over the transport of `wire.py`: an upload is sent
from the writer's thread as chunked transfer encoding in 1 MiB chunks; a download is read
straight from the socket, as many bytes per read as the reader asks for.
The token is sent only in the Authorization header, never printed (`repr` shows the URL).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, cast

import cbor2

from search import SearchKey, SearchResult

from ..errors import AbeError
from . import ids
from .errors import CloudError, ProtocolError, ServerError, error_for, slug_of
from .wire import WIRE_ERRORS, Connection, Pool, Response, send_all

#: largest JSON or CBOR document accepted from the server (catalogs of ~100k files, search answers)
MAX_DOCUMENT = 512 * 1024**2
MAX_PROBLEM = 64 * 1024
#: bytes per chunk of an upload, and per read when a whole object is copied
BLOCK = 1024 * 1024
#: times a request refused for the token's rate (429) is sent again, after 0.25, 0.5, 1, 2 s
RETRIES = 4


class Download:
    """A readable stream over a response body; `read(n)` returns n bytes until the end (a body
    shorter than the length the server declared is a ServerError, never a quiet end)."""

    def __init__(self, client: Client, conn: Connection, response: Response) -> None:
        self._client, self._conn, self._response = client, conn, response
        declared = response.getheader("content-length")
        self._left = int(declared) if declared is not None and declared.isdigit() else None
        self._closed = False

    def read(self, n: int = -1) -> bytes:
        if self._closed or n == 0:
            return b""
        try:
            block = self._response.read() if n < 0 else self._response.read(n)
        except WIRE_ERRORS as exc:
            raise ServerError(f"{self._client.url}: the download broke off: {exc}") from None
        if self._left is not None:
            self._left -= len(block)
            if self._left and (n < 0 or not block):
                raise ServerError(f"{self._client.url}: the download broke off "
                                  f"({self._left} bytes missing)")
        self._client.received[0] += len(block)
        return block

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client._pool.release(self._conn, self._response)

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Upload:
    """A writable stream whose bytes become the chunked body of one request (see the module
    docstring); `finish` ends it and returns the answer's body, `abort` drops the connection
    so that the server stores nothing."""

    def __init__(self, client: Client, path: str, headers: Mapping[str, str]) -> None:
        self._client = client
        try:
            self._conn = client._pool.open_stream("PUT", path, {**client._headers, **headers})
        except WIRE_ERRORS as exc:
            raise ServerError(f"{client.url}: {type(exc).__name__}: {exc}") from None
        self._parts: list[bytes] = []
        self._pending = 0
        self._done = False

    def write(self, data: bytes) -> int:
        size = len(data)
        if size:
            self._parts.append(bytes(data))  # no copy of bytes; a mutable buffer is copied
            self._pending += size
            if self._pending >= BLOCK:
                self._flush(last=False)
        return size

    def _flush(self, last: bool) -> None:
        """Send the pending bytes as one chunk (and, if `last`, the empty chunk that ends the
        body); the pieces go to the socket as they are, never joined."""
        parts: list[bytes] = [b"%x\r\n" % self._pending, *self._parts, b"\r\n"] if self._pending else []
        if last:
            parts.append(b"0\r\n\r\n")
        try:
            assert self._conn.sock is not None
            send_all(self._conn.sock, parts)
        except WIRE_ERRORS as exc:
            self._broken(exc)
        self._client.sent[0] += self._pending
        self._parts, self._pending = [], 0

    def _broken(self, exc: BaseException) -> None:
        """A send failed: the server's refusal if it answered one (it may refuse before the end
        of a body), else a ServerError."""
        self._done = True
        try:
            response = self._conn.getresponse()
        except WIRE_ERRORS:
            self._conn.close()
            raise ServerError(f"{self._client.url}: the upload broke off: {exc}") from None
        if response.status >= 400:
            self._client._raise_for(self._conn, response)
        self._conn.close()
        raise ServerError(f"{self._client.url}: the upload broke off: {exc}") from None

    def finish(self) -> bytes:
        """End the body and return the answer's (a small document)."""
        self._flush(last=True)
        self._done = True
        try:
            response = self._conn.getresponse()
        except WIRE_ERRORS as exc:
            self._conn.close()
            raise ServerError(f"{self._client.url}: {type(exc).__name__}: {exc}") from None
        return self._client._answer(self._conn, response, MAX_DOCUMENT)

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._conn.close()


class Client:
    """A connection to `abe-health serve` at `url` with a bearer `token`."""

    def __init__(self, url: str, token: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self._pool = Pool(self.url, timeout)
        self._headers = {"authorization": f"Bearer {token}"} if token else {}
        #: bytes received from and sent to the server by this client (bodies only)
        self.received = [0]
        self.sent = [0]
        #: sealed document tables of index segments already fetched, by segment id: a search
        #: names them and the server leaves them out (each opens only under its own segment id)
        self.search_tables: dict[bytes, bytes] = {}
        #: per index: (digest of what the live tables were made from, the opened live tables,
        #: their number of live documents)
        self.search_views: dict[str, tuple[bytes, dict[tuple[int, bytes], list[str | None]], int]] = {}

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------
    def _raise_for(self, conn: Connection, response: Response) -> None:
        """The typed exception of an error response (its body read at most MAX_PROBLEM bytes)."""
        try:
            raw = response.read(MAX_PROBLEM)
        except WIRE_ERRORS:
            raw = b""
        self._pool.release(conn, response)
        status = response.status
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        slug = slug_of(doc.get("type")) if isinstance(doc, dict) else None
        detail = doc.get("detail") if isinstance(doc, dict) else None
        detail = detail[:1000] if isinstance(detail, str) else f"HTTP {status}"
        if slug is not None:
            raise error_for(slug, detail, status)
        cls = ServerError if status >= 500 else CloudError
        raise cls(f"{self.url}: HTTP {status}: {detail}", status)

    def _send(self, method: str, path: str, content: bytes | None = None,
              headers: Mapping[str, str] | None = None, bulk: bool = False
              ) -> tuple[Connection, Response]:
        """Send a request with a body held in memory (sent again after a 429, with backoff);
        the connection and the response of a success, the typed exception of a refusal."""
        merged = {**self._headers, **(headers or {})}
        for attempt in range(RETRIES + 1):
            try:
                conn, response = self._pool.exchange(method, path, content, merged, bulk)
            except WIRE_ERRORS as exc:
                raise ServerError(f"{self.url}: {type(exc).__name__}: {exc}") from None
            if response.status != 429 or attempt == RETRIES:
                break
            with contextlib.suppress(*WIRE_ERRORS):
                response.read(MAX_PROBLEM)
            self._pool.release(conn, response)
            time.sleep(0.25 * 2**attempt)  # over the token's rate: wait and send it again
        if content:
            self.sent[0] += len(content)
        if response.status >= 400:
            self._raise_for(conn, response)
        return conn, response

    def _answer(self, conn: Connection, response: Response, limit: int) -> bytes:
        """A response's body (refused past `limit` bytes); the connection goes back to the pool."""
        try:
            if response.status >= 400:
                self._raise_for(conn, response)
            declared = response.getheader("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ProtocolError(f"{self.url}: an answer of {declared} bytes (at most {limit})")
            try:
                body = response.read(limit + 1)
            except WIRE_ERRORS as exc:
                raise ServerError(f"{self.url}: the answer broke off: {exc}") from None
            if len(body) > limit:
                raise ProtocolError(f"{self.url}: an answer larger than {limit} bytes")
            if declared is not None and declared.isdigit() and len(body) != int(declared):
                raise ServerError(f"{self.url}: the answer broke off")
            self.received[0] += len(body)
            return body
        finally:
            self._pool.release(conn, response)

    def request(self, method: str, path: str, content: bytes | None = None,
                headers: Mapping[str, str] | None = None, limit: int = MAX_DOCUMENT) -> bytes:
        """Send a request; return the answer's body (refused past `limit` bytes)."""
        conn, response = self._send(method, path, content, headers)
        return self._answer(conn, response, limit)

    def cbor(self, method: str, path: str, value: Any = None,
             headers: Mapping[str, str] | None = None, limit: int = MAX_DOCUMENT) -> Any:
        """A CBOR request and its decoded CBOR answer (None for an empty one)."""
        content = None if value is None else cbor2.dumps(value)
        raw = self.request(method, path, content, {**(headers or {}),
                                                   "content-type": "application/cbor"}, limit)
        return decode_cbor(raw, self.url) if raw else None

    def json(self, method: str, path: str, value: Any = None, limit: int = 16 * 1024**2) -> Any:
        content = None if value is None else json.dumps(value).encode()
        raw = self.request(method, path, content, {"content-type": "application/json"}, limit)
        try:
            return json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            raise ProtocolError(f"{self.url}: the answer is not JSON") from None

    def download(self, path: str, headers: Mapping[str, str] | None = None) -> Download:
        return Download(self, *self._send("GET", path, headers=headers, bulk=True))

    def upload(self, path: str, headers: Mapping[str, str] | None = None) -> Upload:
        return Upload(self, path, headers or {})

    @contextlib.contextmanager
    def uploading(self, path: str, headers: Mapping[str, str] | None = None) -> Iterator[BinaryIO]:
        """A writable stream sent as the body of PUT `path`; aborted (nothing stored) if the
        block fails."""
        upload = self.upload(path, headers)
        try:
            yield cast(BinaryIO, upload)
        except BaseException:
            upload.abort()
            raise
        upload.finish()

    # -- the API ----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        answer = self.json("GET", "/health")
        if not isinstance(answer, dict):
            raise ProtocolError(f"{self.url}: /health did not answer an object")
        return answer

    def whoami(self) -> dict[str, Any]:
        answer = self.json("GET", "/v1/whoami")
        if not isinstance(answer, dict):
            raise ProtocolError(f"{self.url}: /v1/whoami did not answer an object")
        return answer

    def put(self, kind: str, name: str, src: BinaryIO | bytes) -> None:
        """Store an object (`kind`: phr, abe or key) from bytes or a binary stream."""
        path = f"/v1/objects/{ids.kind(kind)}/{ids.name(name, 'object name')}"
        with self.uploading(path) as out:
            if isinstance(src, bytes):
                out.write(src)
            else:
                while block := src.read(BLOCK):
                    out.write(block)

    def get(self, kind: str, name: str, dst: BinaryIO | None = None,
            limit: int = MAX_DOCUMENT) -> bytes | None:
        """An object's bytes (at most `limit`), or streamed into `dst` (any size)."""
        path = f"/v1/objects/{ids.kind(kind)}/{ids.name(name, 'object name')}"
        if dst is None:
            return self.request("GET", path, limit=limit)
        with self.download(path) as src:
            while block := src.read(BLOCK):
                dst.write(block)
        return None

    def list(self, kind: str) -> list[tuple[str, int]]:
        answer = self.json("GET", f"/v1/objects/{ids.kind(kind)}")
        if not isinstance(answer, list) or not all(
                isinstance(a, dict) and isinstance(a.get("name"), str)
                and type(a.get("bytes")) is int for a in answer):
            raise ProtocolError(f"{self.url}: a malformed object list")
        return [(a["name"], a["bytes"]) for a in answer]

    def delete(self, kind: str, name: str) -> None:
        self.request("DELETE", f"/v1/objects/{ids.kind(kind)}/{ids.name(name, 'object name')}")

    def put_transform_key(self, name: str, key: Any) -> str:
        """Store a transformation key (`abe_health.devices.TransformationKey`) under `name` for
        this principal; returns its id. The server transforms with it until it is deleted."""
        path = f"/v1/transform-keys/{ids.name(name, 'key name')}"
        raw = self.request("PUT", path, content=key.to_bytes(),
                           headers={"content-type": "application/octet-stream"})
        try:
            answer = json.loads(raw)
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise ProtocolError(f"{self.url}{path}: a malformed answer")
        return str(answer["id"])

    def delete_transform_key(self, name: str) -> None:
        """Revoke a stored transformation key."""
        self.request("DELETE", f"/v1/transform-keys/{ids.name(name, 'key name')}")

    def transform(self, name: str, *, object: str | None = None, vault: str | None = None,
                  file: str | None = None) -> bytes:
        """The transformed header of a stored `.abe` object, or of a vault file's current
        header, made by the server with transformation key `name` (at most 64 KiB). The device
        then opens it with `abe_health.devices.retrieve` and its retrieval key."""
        target: dict[str, str] = ({"object": object} if object is not None
                                  else {"vault": str(vault), "file": str(file)})
        return self.request("POST", f"/v1/transform-keys/{ids.name(name, 'key name')}/transform",
                            content=cbor2.dumps(target), headers={"content-type": "application/cbor"},
                            limit=64 * 1024)

    def vault(self, name: str, create_for: Any = None, state: Any = None) -> Any:
        """The remote vault `name` as a `revocation.Vault` (every local check applies)."""
        from ..revocation import Vault
        from .remote import RemoteStore

        return Vault(f"cloud-vault-{name}", create_for=create_for, state=state, name=name,
                     store=RemoteStore(self, name))

    def revoke(self, vault: str, label: str, authority: Any, state: Any = None,
               lazy: bool = False, rotate: bool = False) -> Any:
        """Revoke `label` in a remote vault: headers are re-encapsulated here, with the
        authority's master key, and switched by the server; no body crosses the network unless
        `rotate`."""
        store = self.vault(vault, state=state)
        try:
            return store.revoke(label, authority, lazy=lazy, rotate=rotate)
        finally:
            store.close()

    def search(self, index: str, pattern: str, key: SearchKey, top: int | None = None,
               require_key: bool = False) -> SearchResult:
        """Ranked hits of `pattern` in a remote index: the server walks the tree with the
        trapdoor; the same hits as `SearchIndex.search` on the same index (which finds nothing
        with a wrong key; `require_key` raises InvalidSearchKey instead)."""
        from .search import remote_search

        return remote_search(self, index, pattern, key, top, require_key)


def decode_cbor(raw: bytes, where: str) -> Any:
    try:
        return cbor2.loads(raw)
    except Exception:  # cbor2 raises several types for garbage
        raise ProtocolError(f"{where}: the answer is not CBOR") from None


__all__ = ["AbeError", "Client", "Download", "Upload"]
