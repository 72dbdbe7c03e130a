"""`Client(url, token)`: the toolkit's side of `abe-health serve`.

Every answer is untrusted: documents are read only up to a limit that fits what they may hold,
decoded inside one `try`, and type-checked by the caller before use; a problem document becomes
the typed exception its type names (`errors.PROBLEMS`), anything else a `ProtocolError` or
`ServerError`. What the server returns is then checked exactly as a local store's bytes are:
vault manifests against the pinned authority key, catalog rows by type, headers by their
context binding, search keys by the owner's signature (see `remote.py` and `search.py`).

Files stream both ways in constant memory: an upload is fed from the writer's thread through a
bounded queue to the HTTP request's body; a download is read block by block from the response.
The token is sent only in the Authorization header, never printed (`repr` shows the URL).
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, cast

import cbor2
import httpx

from search import SearchKey, SearchResult

from ..errors import AbeError
from . import ids
from .errors import CloudError, ProtocolError, ServerError, error_for, slug_of

#: largest JSON or CBOR document accepted from the server (catalogs of ~100k files, search answers)
MAX_DOCUMENT = 512 * 1024**2
MAX_PROBLEM = 64 * 1024
BLOCK = 256 * 1024
#: times a request refused for the token's rate (429) is sent again, after 0.25, 0.5, 1, 2 s
RETRIES = 4
_DONE = object()
_ABORT = object()


class _Aborted(Exception):
    """Raised inside an upload's body generator to abort the request (the writer failed)."""


class Download:
    """A readable stream over a response body (closes the response at the end)."""

    def __init__(self, response: httpx.Response, counter: list[int]) -> None:
        self._response = response
        self._blocks = response.iter_raw(BLOCK)
        self._buffer = bytearray()
        self._counter = counter
        self._done = False

    def _fill(self, n: int) -> None:
        while not self._done and (n < 0 or len(self._buffer) < n):
            try:
                block = next(self._blocks)
            except StopIteration:
                self._done = True
                break
            except httpx.HTTPError as exc:
                raise ServerError(f"the download broke off: {exc}") from None
            self._counter[0] += len(block)
            self._buffer += block

    def read(self, n: int = -1) -> bytes:
        self._fill(n)
        if n < 0 or n >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
        else:
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
        return out

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Upload:
    """A writable stream whose bytes become the body of one PUT (see the module docstring)."""

    def __init__(self, client: Client, path: str, headers: Mapping[str, str]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=8)
        self._pending = bytearray()
        self._error: BaseException | None = None
        self.answer: Any = None
        self._thread = threading.Thread(target=self._send, args=(client, path, dict(headers)),
                                        daemon=True)
        self._thread.start()

    def _body(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if item is _ABORT:
                raise _Aborted
            yield cast(bytes, item)

    def _send(self, client: Client, path: str, headers: dict[str, str]) -> None:
        try:
            self.answer = client.request("PUT", path, content=self._body(), headers=headers)
        except BaseException as exc:  # handed to the writer's thread, never lost
            self._error = exc

    def _put(self, item: object) -> None:
        while True:
            if self._error is not None:
                raise self._error
            if not self._thread.is_alive():
                raise ServerError("the upload ended early")
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def write(self, data: bytes) -> int:
        self._pending += data
        if len(self._pending) >= BLOCK:
            self._put(bytes(self._pending))
            self._pending.clear()
        return len(data)

    def finish(self) -> Any:
        if self._pending:
            self._put(bytes(self._pending))
            self._pending.clear()
        self._put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.answer

    def abort(self) -> None:
        with contextlib.suppress(BaseException):
            self._queue.put(_ABORT, timeout=1)
        self._thread.join(timeout=30)


class Client:
    """A connection to `abe-health serve` at `url` with a bearer `token`."""

    def __init__(self, url: str, token: str, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport,
                                  headers={"authorization": f"Bearer {token}"} if token else {})
        #: bytes received from and sent to the server by this client (bodies only)
        self.received = [0]
        self.sent = [0]
        #: sealed document tables of index segments already fetched, by segment id: a search
        #: names them and the server leaves them out (each opens only under its own segment id)
        self.search_tables: dict[bytes, bytes] = {}
        #: per index: (digest of what the live tables were made from, the opened live tables)
        self.search_views: dict[str, tuple[bytes, dict[tuple[int, bytes], list[str | None]]]] = {}

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------
    def _raise_for(self, response: httpx.Response) -> None:
        """The typed exception of an error response (its body read at most MAX_PROBLEM bytes)."""
        raw = b""
        for block in response.iter_raw(MAX_PROBLEM):
            raw += block
            if len(raw) >= MAX_PROBLEM:
                break
        response.close()
        status = response.status_code
        try:
            doc = json.loads(raw[:MAX_PROBLEM])
        except ValueError:
            doc = None
        slug = slug_of(doc.get("type")) if isinstance(doc, dict) else None
        detail = doc.get("detail") if isinstance(doc, dict) else None
        detail = detail[:1000] if isinstance(detail, str) else f"HTTP {status}"
        if slug is not None:
            raise error_for(slug, detail, status)
        cls = ServerError if status >= 500 else CloudError
        raise cls(f"{self.url}: HTTP {status}: {detail}", status)

    def _send(self, method: str, path: str, content: Any = None,
              headers: Mapping[str, str] | None = None) -> httpx.Response:
        if isinstance(content, bytes):
            self.sent[0] += len(content)
        elif content is not None:
            content = self._counting(content)
        try:
            request = self._http.build_request(method, path, content=content, headers=headers)
            response = self._http.send(request, stream=True)
            for attempt in range(RETRIES if content is None or isinstance(content, bytes) else 0):
                if response.status_code != 429:
                    break
                response.close()  # over the token's rate: wait and send the same request again
                time.sleep(0.25 * 2**attempt)
                response = self._http.send(self._http.build_request(
                    method, path, content=content, headers=headers), stream=True)
        except _Aborted:
            raise ServerError("upload aborted") from None
        except httpx.HTTPError as exc:
            if isinstance(exc.__cause__, _Aborted) or isinstance(exc.__context__, _Aborted):
                raise ServerError("upload aborted") from None
            raise ServerError(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            self._raise_for(response)
        return response

    def _counting(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        for block in blocks:
            self.sent[0] += len(block)
            yield block

    def request(self, method: str, path: str, content: Any = None,
                headers: Mapping[str, str] | None = None, limit: int = MAX_DOCUMENT) -> bytes:
        """Send a request; return the answer's body (refused past `limit` bytes)."""
        response = self._send(method, path, content, headers)
        try:
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ProtocolError(f"{self.url}: an answer of {declared} bytes (at most {limit})")
            body = bytearray()
            for block in response.iter_raw(BLOCK):
                body += block
                if len(body) > limit:
                    raise ProtocolError(f"{self.url}: an answer larger than {limit} bytes")
            self.received[0] += len(body)
            return bytes(body)
        except httpx.HTTPError as exc:
            raise ServerError(f"{self.url}: the answer broke off: {exc}") from None
        finally:
            response.close()

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
        return Download(self._send("GET", path, headers=headers), self.received)

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
