"""Request and response plumbing of the server: problem details, bounded bodies, streams.

Nothing read from a request is trusted: a body is read only up to the limit that applies to it
(refused at once when its declared length is larger), JSON and CBOR documents are decoded inside
one `try` whose every failure is a 400 problem, and an exception that is not a refusal of the
toolkit becomes a 500 problem without its text (a bug, logged on the server with its traceback).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

import cbor2
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from search.errors import SearchError

from ..errors import AbeError, InvalidCiphertext, InvalidKey, PolicyNotSatisfied, VaultError
from ..locks import Busy
from .errors import PROBLEMS, BadRequest, CloudError, TooLarge, type_uri

LOG = logging.getLogger("abe_health.cloud")
PROBLEM_TYPE = "application/problem+json"
CBOR_TYPE = "application/cbor"
#: bytes per read of a stored file and per write of an uploaded one
BLOCK = 1024 * 1024
#: files up to this size are read by the event loop's thread in one read and sent in one body
SMALL = 64 * 1024


def problem(slug: str, detail: str, instance: str = "") -> Response:
    """An RFC 9457 problem details response of a known type."""
    kind = PROBLEMS[slug]
    body = {"type": type_uri(slug), "title": kind.title, "status": kind.status,
            "detail": detail[:1000]}
    if instance:
        body["instance"] = instance[:512]
    return Response(json.dumps(body), status_code=kind.status, media_type=PROBLEM_TYPE)


def slug_for(exc: BaseException) -> str:
    """The problem type of an exception raised while answering a request."""
    if isinstance(exc, CloudError):
        return exc.problem if exc.problem in PROBLEMS else "malformed-body"
    for cls, slug in ((Busy, "busy"), (VaultError, "vault-error"), (PolicyNotSatisfied, "not-satisfied"),
                      (InvalidCiphertext, "invalid-ciphertext"), (InvalidKey, "invalid-key"),
                      (SearchError, "index-corrupt"), (ClientDisconnect, "malformed-body")):
        if isinstance(exc, cls):
            return slug
    if isinstance(exc, AbeError):
        return "malformed-body"
    return "internal"


def problem_for(exc: BaseException, request: Request, root: str = "") -> Response:
    """The problem response for `exc`; the data directory's path never leaves the server."""
    slug = slug_for(exc)
    if slug == "internal":
        LOG.exception("internal error answering %s %s", request.method, request.url.path,
                      exc_info=exc)
        detail = "internal server error"
    else:
        detail = str(exc).replace(root + os.sep, "").replace(root, "") if root else str(exc)
    if slug in ("unauthorized", "forbidden"):
        LOG.warning("%s %s: %s (%s)", request.method, request.url.path, slug, detail)
    return problem(slug, detail, request.url.path)


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def declared_length(request: Request, limit: int) -> None:
    """TooLarge at once when the declared Content-Length passes `limit`."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise BadRequest("malformed Content-Length", 400, "malformed-body")
    if int(declared) > limit:
        raise TooLarge(f"body of {int(declared)} bytes; this server accepts at most {limit}", 413,
                       "too-large")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (a document, never a file)."""
    declared_length(request, limit)
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body larger than {limit} bytes", 413, "too-large")
        parts.append(chunk)
    return b"".join(parts)


def _write_all(out: BinaryIO, blocks: list[bytes]) -> None:
    for block in blocks:
        out.write(block)


async def receive_into(request: Request, out: BinaryIO, limit: int) -> int:
    """Stream the body into `out` in constant memory; returns its length. The body's pieces are
    written about 1 MiB at a time by a worker thread while the next ones arrive (at most two
    such batches are held), so the event loop only receives."""
    declared_length(request, limit)
    loop = asyncio.get_running_loop()
    size, batch, batched = 0, [], 0
    writing: asyncio.Future[None] | None = None
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body larger than {limit} bytes", 413, "too-large")
            batch.append(chunk)
            batched += len(chunk)
            if batched >= BLOCK:
                if writing is not None:
                    await writing
                writing = loop.run_in_executor(None, _write_all, out, batch)
                batch, batched = [], 0
    finally:
        if writing is not None:  # never leave a write running on a file being closed
            await asyncio.wait([writing])
    if writing is not None:
        await writing
    _write_all(out, batch)
    return size


async def read_cbor(request: Request, limit: int) -> Any:
    data = await read_body(request, limit)
    try:
        return cbor2.loads(data)
    except Exception:  # cbor2 raises several types (and RecursionError) for garbage
        raise BadRequest("the body is not valid CBOR", 400, "malformed-body") from None


async def read_json(request: Request, limit: int) -> Any:
    data = await read_body(request, limit)
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON", 400, "malformed-body") from None


def cbor_response(value: Any, status: int = 200) -> Response:
    return Response(cbor2.dumps(value), status_code=status, media_type=CBOR_TYPE)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status_code=status, media_type="application/json")


async def _blocks(handle: BinaryIO) -> AsyncIterator[bytes]:
    """A file's blocks, each read by a worker thread while the one before is being sent; the
    file is closed once no read is running on it."""
    loop = asyncio.get_running_loop()
    reading = loop.run_in_executor(None, handle.read, BLOCK)
    try:
        while block := await reading:
            reading = loop.run_in_executor(None, handle.read, BLOCK)
            yield block
    finally:
        reading.add_done_callback(lambda _: handle.close())


def stream_file(handle: BinaryIO) -> Response:
    """A stored file as a streamed response of known length (constant memory); a small one (a
    header, a key, an index's manifest) is read at once and sent as one body."""
    size = os.fstat(handle.fileno()).st_size
    if size <= SMALL:
        with handle:
            return Response(handle.read(SMALL), media_type="application/octet-stream")
    return StreamingResponse(_blocks(handle), media_type="application/octet-stream",
                             headers={"content-length": str(size)})
