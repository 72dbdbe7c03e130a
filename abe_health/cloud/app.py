"""The HTTP API of `abe-health serve` (Starlette), over a `store.DataDir`.

Every route is declared once in `ROUTES` (method, path, the role action it needs, a summary,
the body it takes and what it answers): the router and the OpenAPI description
(`GET /openapi.json`) are both made from that table, so the description cannot drift from the
routes. Each handler runs inside `_endpoint`, which authenticates the bearer token, checks the
role (`auth.ALLOWED`), applies the per-token rate limit, notes principal and object for the
audit trail, and turns every exception into an RFC 9457 problem (a 4xx for anything a client
sent; a 500 only for a bug). `audit.AuditLog` records every request after it is answered
(`AuditMiddleware`), including refused ones.

What the server never receives: a master key, a user key, a search key, a data key or any
plaintext. It stores ciphertext and public material, walks index trees with the trapdoors it is
sent, and switches headers that an authority re-encapsulated elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from search.server import ServerResult

from .. import __version__
from ..devices import TransformationKey, transform
from ..errors import AbeError, VaultError
from ..fileio import write_atomic
from ..hazmat.envelope import MAX_HEADER, WRAP
from ..revocation.catalog import Row
from ..revocation.manifest import MAX_BYTES as MAX_MANIFEST
from . import ids
from .audit import AuditLog, now
from .auth import ALLOWED, Principal
from .errors import BadRequest, Conflict, Forbidden, NotFound, RateLimited
from .http import (
    bearer,
    cbor_response,
    json_response,
    problem,
    problem_for,
    read_body,
    read_cbor,
    read_json,
    receive_into,
    stream_file,
)
from .openapi import describe
from .routing import Routes
from .store import DataDir

#: a header part: magic, length, core and wrap
MAX_HEADER_PART = 8 + MAX_HEADER + WRAP
AUDIT_KEY = "abe.audit"
#: trapdoors one search may send: a query's most (16 terms, each a range of 62)
MAX_TRAPDOORS = 16 * 62
#: segment ids a search may name as known (their sealed document tables are then left out)
MAX_KNOWN = 4096
#: trapdoors times segments up to which a search is walked by the event loop's own thread
INLINE_WALKS = 8
#: the largest transformation key file accepted (a holder's blinded keys)
MAX_TRANSFORM_KEY = 16 * 1024 * 1024


@dataclass
class Limits:
    """What the server accepts (each a `serve` option)."""

    max_body: int = 64 * 1024**3  # one uploaded file
    max_document: int = 64 * 1024**2  # one JSON or CBOR request document
    rate: float = 200.0  # requests per second per token, sustained
    burst: int = 400  # requests per token at once
    max_uploads: int = 16  # uploads streaming at once
    checkpoint_every: int = 1000  # audit entries between signed checkpoints
    checkpoint_seconds: float = 60.0  # longest wait before a checkpoint covers an entry


@dataclass
class Bucket:
    tokens: float
    stamp: float


@dataclass
class State:
    """The server's state, shared by every request."""

    data: DataDir
    audit: AuditLog
    limits: Limits
    buckets: dict[str, Bucket] = field(default_factory=dict)
    uploads: int = 0

    def throttle(self, principal: Principal) -> None:
        """A token bucket per principal: `rate` per second, up to `burst` at once."""
        now_ = time.monotonic()
        bucket = self.buckets.setdefault(principal.id, Bucket(float(self.limits.burst), now_))
        bucket.tokens = min(float(self.limits.burst),
                            bucket.tokens + (now_ - bucket.stamp) * self.limits.rate)
        bucket.stamp = now_
        if bucket.tokens < 1:
            raise RateLimited(f"more than {self.limits.rate:g} requests per second for this token",
                              429, "rate-limited")
        bucket.tokens -= 1

    @contextlib.asynccontextmanager
    async def upload(self) -> AsyncIterator[None]:
        if self.uploads >= self.limits.max_uploads:
            raise RateLimited(f"{self.uploads} uploads are open; this server takes "
                              f"{self.limits.max_uploads} at once", 429, "too-many-uploads")
        self.uploads += 1
        try:
            yield
        finally:
            self.uploads -= 1


@dataclass(frozen=True)
class Ctx:
    request: Request
    principal: Principal
    state: State

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    @property
    def data(self) -> DataDir:
        return self.state.data

    @property
    def lease(self) -> str | None:
        return self.request.headers.get("abe-lease")


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    """One route: what it needs and what it does (the OpenAPI description is made from these)."""

    method: str
    path: str
    action: str | None  # the role action (auth.ALLOWED); None: no token needed
    summary: str
    handler: Handler
    body: str = ""  # "" | "stream" | "cbor" | "json"
    answer: str = "json"  # "json" | "cbor" | "stream" | "empty"


# -- handlers -------------------------------------------------------------------------------------
async def health(ctx: Ctx) -> Response:
    return json_response({"status": "ok", "version": __version__})


async def whoami(ctx: Ctx) -> Response:
    p = ctx.principal
    return json_response({"id": p.id, "name": p.name, "role": p.role, "expires": p.expires})


async def token_create(ctx: Ctx) -> Response:
    body = await read_json(ctx.request, 4096)
    if not isinstance(body, dict) or not isinstance(body.get("role"), str) \
            or not isinstance(body.get("name"), str):
        raise BadRequest('expected {"name": ..., "role": ..., "expires_in": seconds}', 400,
                         "malformed-body")
    expires_in = body.get("expires_in")
    if expires_in is not None and (type(expires_in) not in (int, float) or expires_in <= 0):
        raise BadRequest("expires_in is a positive number of seconds", 400, "malformed-body")
    expires = time.time() + expires_in if expires_in is not None else None
    principal, token = ctx.data.principals.create(body["name"], body["role"], expires)
    return json_response({"id": principal.id, "name": principal.name, "role": principal.role,
                          "expires": expires, "token": token}, 201)


async def token_list(ctx: Ctx) -> Response:
    return json_response(ctx.data.principals.list())


async def token_revoke(ctx: Ctx) -> Response:
    token_id = ctx.param("token_id")
    if len(token_id) != 16 or not all(c in "0123456789abcdef" for c in token_id):
        raise BadRequest("invalid token id", 400, "invalid-id")
    if not ctx.data.principals.revoke(token_id):
        raise NotFound(f"no token {token_id}", 404, "not-found")
    return Response(status_code=204)


# objects: .phr records, .abe files, public keys and parameters
def _object(ctx: Ctx) -> tuple[str, str]:
    return ids.kind(ctx.param("kind")), ids.name(ctx.param("name"), "object name")


async def object_put(ctx: Ctx) -> Response:
    kind, name = _object(ctx)
    ctx.data.require_owner("object", kind, name, ctx.principal.id)
    async with ctx.state.upload():
        with ctx.data.write(ctx.data.object_path(kind, name)) as out:
            size = await receive_into(ctx.request, out, ctx.state.limits.max_body)
    return json_response({"kind": kind, "name": name, "bytes": size}, 201)


async def object_get(ctx: Ctx) -> Response:
    kind, name = _object(ctx)
    try:
        handle = open(ctx.data.object_path(kind, name), "rb")  # closed by the stream
    except FileNotFoundError:
        raise NotFound(f"no {kind} object {name}", 404, "not-found") from None
    return stream_file(handle)


async def object_delete(ctx: Ctx) -> Response:
    kind, name = _object(ctx)
    path = ctx.data.object_path(kind, name)
    if not path.exists():
        raise NotFound(f"no {kind} object {name}", 404, "not-found")
    ctx.data.require_owner("object", kind, name, ctx.principal.id, claim=False)
    path.unlink()
    ctx.data.disown("object", kind, name)
    return Response(status_code=204)


async def object_list(ctx: Ctx) -> Response:
    kind = ids.kind(ctx.param("kind"))
    folder = ctx.data.root / "objects" / kind
    names = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) \
        if folder.is_dir() else []
    return json_response([{"name": n, "bytes": (folder / n).stat().st_size} for n in names])


# vaults
def _vault(ctx: Ctx) -> str:
    return ids.name(ctx.param("vault"), "vault name")


async def vault_create(ctx: Ctx) -> Response:
    name = _vault(ctx)
    manifest = await _manifest_body(ctx)
    ctx.data.create_vault(name, manifest)
    return json_response({"vault": name}, 201)


async def _manifest_body(ctx: Ctx) -> bytes:
    from .http import read_body

    data = await read_body(ctx.request, MAX_MANIFEST)
    if not data:
        raise BadRequest("a vault manifest is not empty", 400, "malformed-body")
    return data


async def vault_list(ctx: Ctx) -> Response:
    return json_response(ctx.data.vaults())


async def manifest_get(ctx: Ctx) -> Response:
    with ctx.data.vault(_vault(ctx)) as store:
        return Response(store.read_manifest(), media_type="application/cbor")


async def manifest_put(ctx: Ctx) -> Response:
    name = _vault(ctx)
    data = await _manifest_body(ctx)
    ctx.data.check_lease(name, ctx.lease)
    with ctx.data.vault(name) as store:
        store.write_manifest(data)
    return Response(status_code=204)


def _row_of(value: Any) -> Row:
    """A catalog row sent by a client: exactly the catalog's fields, each type-checked."""
    if not isinstance(value, list) or len(value) != 9:
        raise BadRequest("a catalog row is a list of 9 fields", 400, "malformed-body")
    try:
        return Row.of(tuple(value))
    except VaultError as exc:
        raise BadRequest(str(exc), 400, "malformed-body") from None


async def catalog_list(ctx: Ctx) -> Response:
    with ctx.data.vault(_vault(ctx)) as store:
        rows = store.catalog.rows()
    return cbor_response([list(r.values()) if isinstance(r, Row) else {"error": str(r)} for r in rows])


async def catalog_row(ctx: Ctx) -> Response:
    file_id = ids.file_id(ctx.param("file_id"))
    with ctx.data.vault(_vault(ctx)) as store:
        try:
            row = store.catalog.row(file_id)
        except VaultError as exc:
            if str(exc).startswith("no file"):
                raise NotFound(str(exc), 404, "not-found") from None
            raise
    return cbor_response(list(row.values()))


def _may_write_file(ctx: Ctx, vault: str, file_id: str) -> None:
    """An owner writes only the vault files it added; an authority re-encrypts any."""
    owner = ctx.data.claim("vault-file", vault, file_id, ctx.principal.id)
    if owner != ctx.principal.id and ctx.principal.role != "authority":
        raise Forbidden(f"vault-file {file_id} belongs to another principal", 403, "forbidden")


async def catalog_insert(ctx: Ctx) -> Response:
    vault = _vault(ctx)
    row = _row_of(await read_cbor(ctx.request, ctx.state.limits.max_document))
    _may_write_file(ctx, vault, row.id)
    ctx.data.check_lease(vault, ctx.lease)
    with ctx.data.vault(vault) as store:
        try:
            store.catalog.row(row.id)
        except VaultError:
            store.catalog.insert(row)
            return Response(status_code=201)
    raise Conflict(f"file {row.id} exists in vault {vault}", 409, "conflict")


async def catalog_replace(ctx: Ctx) -> Response:
    vault, file_id = _vault(ctx), ids.file_id(ctx.param("file_id"))
    row = _row_of(await read_cbor(ctx.request, ctx.state.limits.max_document))
    if row.id != file_id:
        raise BadRequest("the row's id is not the one in the path", 400, "malformed-body")
    _may_write_file(ctx, vault, file_id)
    ctx.data.check_lease(vault, ctx.lease)
    with ctx.data.vault(vault) as store:
        store.catalog.row(file_id)  # VaultError if there is no such file
        store.catalog.replace(row)
    return Response(status_code=204)


async def file_delete(ctx: Ctx) -> Response:
    vault, file_id = _vault(ctx), ids.file_id(ctx.param("file_id"))
    if ctx.data.owner_of("vault-file", vault, file_id) != ctx.principal.id:
        raise Forbidden(f"file {file_id} belongs to another principal", 403, "forbidden")
    ctx.data.check_lease(vault, ctx.lease)
    with ctx.data.vault(vault) as store:
        if not store.catalog.delete(file_id):
            raise NotFound(f"no file {file_id} in vault {vault}", 404, "not-found")
        for name in os.listdir(ctx.data.vault_path(vault) / "files"):
            if name.startswith(file_id + "."):
                store.dir.unlink(name)
    ctx.data.disown("vault-file", vault, file_id)
    return Response(status_code=204)


async def part_get(ctx: Ctx) -> Response:
    part = ids.part(ctx.param("part"))
    with ctx.data.vault(_vault(ctx)) as store:
        try:
            handle = store.dir.open_read(part)
        except VaultError:
            raise NotFound(f"no part {part}", 404, "not-found") from None
    return stream_file(handle)


async def part_put(ctx: Ctx) -> Response:
    vault, part = _vault(ctx), ids.part(ctx.param("part"))
    _may_write_file(ctx, vault, part[:16])
    ctx.data.check_lease(vault, ctx.lease)
    limit = MAX_HEADER_PART if part.endswith(".head") else ctx.state.limits.max_body
    async with ctx.state.upload():
        with ctx.data.vault(vault) as store, store.dir.atomic(part) as out:
            size = await receive_into(ctx.request, out, limit)
    return json_response({"part": part, "bytes": size}, 201)


async def part_delete(ctx: Ctx) -> Response:
    vault, part = _vault(ctx), ids.part(ctx.param("part"))
    _may_write_file(ctx, vault, part[:16])
    ctx.data.check_lease(vault, ctx.lease)
    with ctx.data.vault(vault) as store:
        store.dir.unlink(part)
    return Response(status_code=204)


async def headers_switch(ctx: Ctx) -> Response:
    """Revocation: headers re-encapsulated by the authority, each switched atomically."""
    vault = _vault(ctx)
    batch = await read_cbor(ctx.request, ctx.state.limits.max_document)
    if not isinstance(batch, list) or not all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
            and isinstance(item[1], bytes) and len(item[1]) <= MAX_HEADER_PART for item in batch):
        raise BadRequest("expected a list of [part name, header bytes]", 400, "malformed-body")
    parts = [(ids.part(name), data) for name, data in batch]
    if any(not name.endswith(".head") for name, _ in parts):
        raise BadRequest("only headers are switched here", 400, "malformed-body")
    ctx.data.check_lease(vault, ctx.lease)
    with ctx.data.vault(vault) as store:
        done, error = await run_in_threadpool(store.dir.replace_all, parts)
    return cbor_response({"done": done, "error": error})


async def lock_take(ctx: Ctx) -> Response:
    vault = _vault(ctx)
    with ctx.data.vault(vault):
        pass  # 404 for a vault that does not exist
    lease = ctx.data.lease(vault, ctx.principal.id, ctx.lease)
    return json_response({"lease": lease.token, "seconds": 30})


async def lock_release(ctx: Ctx) -> Response:
    token = ctx.lease
    if token:
        ctx.data.release(_vault(ctx), token)
    return Response(status_code=204)


# indexes
def _index(ctx: Ctx) -> str:
    return ids.name(ctx.param("index"), "index name")


async def index_put(ctx: Ctx) -> Response:
    index, path = _index(ctx), ids.index_file(ctx.param("path"))
    ctx.data.require_owner("index", "", index, ctx.principal.id)
    async with ctx.state.upload():
        with ctx.data.write(ctx.data.index_path(index) / path) as out:
            size = await receive_into(ctx.request, out, ctx.state.limits.max_body)
    return json_response({"index": index, "file": path, "bytes": size}, 201)


async def index_get(ctx: Ctx) -> Response:
    index, path = _index(ctx), ids.index_file(ctx.param("path"))
    try:
        handle = open(ctx.data.index_path(index) / path, "rb")  # closed by the stream
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"no file {path} in index {index}", 404, "not-found") from None
    return stream_file(handle)


async def index_delete(ctx: Ctx) -> Response:
    index = _index(ctx)
    if not ctx.data.index_path(index).exists():
        raise NotFound(f"no index {index}", 404, "not-found")
    ctx.data.require_owner("index", "", index, ctx.principal.id, claim=False)
    ctx.data.remove_index(index)
    ctx.data.disown("index", "", index)
    return Response(status_code=204)


async def index_list(ctx: Ctx) -> Response:
    folder = ctx.data.root / "indexes"
    return json_response(sorted(p.name for p in folder.iterdir()
                                if (p / "manifest.cbor").is_file()))


async def index_search(ctx: Ctx) -> Response:
    """Walk every segment's tree with every trapdoor of a query (one batched walk per segment);
    return per segment its key check, its sealed document table (unless the client names the
    segment as known) and, per trapdoor, the nodes visited and the sealed leaves reached; and
    the raw manifest (for its removals)."""
    index = _index(ctx)
    body = await read_cbor(ctx.request, 16 * (MAX_TRAPDOORS + 64))
    doors = body.get("trapdoors") if isinstance(body, dict) else None
    known = body.get("known", []) if isinstance(body, dict) else None
    if not (isinstance(doors, list) and 1 <= len(doors) <= MAX_TRAPDOORS
            and all(isinstance(d, bytes) and len(d) == 16 for d in doors)
            and isinstance(known, list) and len(known) <= MAX_KNOWN
            and all(isinstance(k, bytes) and len(k) <= 64 for k in known)):
        raise BadRequest(f'expected {{"trapdoors": [1 to {MAX_TRAPDOORS} values of 16 bytes], '
                         f'"known": [at most {MAX_KNOWN} segment ids]}}', 400, "malformed-body")
    cached = set(known)

    def walk() -> dict[str, Any]:
        manifest, segments, forests = ctx.data.walks(index)
        answers: list[list[ServerResult]] = [[] for _ in segments]
        for forest, members in forests:  # every trapdoor of every segment of a forest at once
            results = iter(forest.traverse([(at, door) for at in range(len(members)) for door in doors]))
            for i in members:
                answers[i] = [next(results) for _ in doors]
        return {"manifest": manifest, "segments": [
            {"name": segment.path.name, "id": segment.id, "key_check": bytes(segment.meta["key_check"]),
             "documents": b"" if segment.id in cached else bytes(segment.meta["documents"]),
             "answers": [{"visited": a.nodes_visited, "leaves": [[i, p] for i, p in a.leaves]}
                         for a in found]}
            for segment, found in zip(segments, answers, strict=True)]}

    # a walk of a few trapdoors over a few segments takes a fraction of a millisecond: handing
    # it to a worker thread and back cost as much again (two thread wake-ups); larger ones
    # would hold up every other request, so they go to a worker thread
    segments = ctx.data.segment_count(index)
    small = segments is not None and len(doors) * segments <= INLINE_WALKS
    return cbor_response(walk() if small else await run_in_threadpool(walk))


# transformation keys (outsourced decryption, abe_health.devices)
def _transform_key_path(ctx: Ctx) -> Path:
    """DATA/transform-keys/<principal>/<name>.tk: each principal reaches only its own keys."""
    name = ids.name(ctx.param("name"), "key name")
    return ctx.data.root / "transform-keys" / ctx.principal.id / f"{name}.tk"


async def transform_key_put(ctx: Ctx) -> Response:
    """Store a holder's transformation key (checked to be one; mode 0600)."""
    path = _transform_key_path(ctx)
    data = await read_body(ctx.request, MAX_TRANSFORM_KEY)
    try:
        key = TransformationKey.from_bytes(data)
    except AbeError as exc:
        raise BadRequest(f"not a transformation key: {exc}", 422, "invalid-key") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, secret=True)
    return json_response({"name": path.stem, "id": key.id}, 201)


async def transform_key_list(ctx: Ctx) -> Response:
    folder = ctx.data.root / "transform-keys" / ctx.principal.id
    names = sorted(p.stem for p in folder.glob("*.tk")) if folder.is_dir() else []
    return json_response(names)


async def transform_key_delete(ctx: Ctx) -> Response:
    """Revoke a transformation key: the server can transform nothing more with it."""
    path = _transform_key_path(ctx)
    if not path.exists():
        raise NotFound(f"no transformation key {path.stem}", 404, "not-found")
    path.unlink()
    return Response(status_code=204)


def _header_of(ctx: Ctx, target: Any) -> bytes:
    """The stored `.abe` header a transform request names: {"object": NAME} (an abe object) or
    {"vault": V, "file": ID} (the file's current generation)."""
    if isinstance(target, dict) and set(target) == {"object"} and isinstance(target["object"], str):
        path = ctx.data.object_path("abe", ids.name(target["object"], "object name"))
        try:
            with open(path, "rb") as handle:
                return handle.read(MAX_HEADER_PART)
        except FileNotFoundError:
            raise NotFound(f"no abe object {target['object']}", 404, "not-found") from None
    if isinstance(target, dict) and set(target) == {"vault", "file"} \
            and all(isinstance(v, str) for v in target.values()):
        vault, file_id = ids.name(target["vault"], "vault name"), ids.file_id(target["file"])
        with ctx.data.vault(vault) as store:
            try:
                row = store.catalog.row(file_id)
                with store.dir.open_read(f"{file_id}.{row.gen}.head") as handle:
                    return handle.read(MAX_HEADER_PART)
            except VaultError as exc:
                raise NotFound(str(exc), 404, "not-found") from None
    raise BadRequest('expected {"object": NAME} or {"vault": NAME, "file": ID}', 400, "malformed-body")


async def transform_key_transform(ctx: Ctx) -> Response:
    """Transform a stored header with one of the caller's transformation keys: every pairing
    here, a short ciphertext back that only the holder's retrieval key opens."""
    path = _transform_key_path(ctx)
    try:
        key = TransformationKey.from_bytes(path.read_bytes())
    except FileNotFoundError:
        raise NotFound(f"no transformation key {path.stem}", 404, "not-found") from None
    header = _header_of(ctx, await read_cbor(ctx.request, 4096))
    answer = await run_in_threadpool(transform, key, header)
    return Response(answer, media_type="application/octet-stream")


async def openapi(ctx: Ctx) -> Response:
    return json_response(describe(ROUTES, __version__))


ROUTES: Sequence[Endpoint] = (
    Endpoint("GET", "/health", None, "Liveness: the server answers", health),
    Endpoint("GET", "/openapi.json", None, "This API's OpenAPI 3.1 description", openapi),
    Endpoint("GET", "/v1/whoami", "any", "The principal of the token", whoami),
    Endpoint("POST", "/v1/tokens", "admin", "Create a principal and its token (shown once)",
             token_create, "json"),
    Endpoint("GET", "/v1/tokens", "admin", "List principals (never their tokens)", token_list),
    Endpoint("DELETE", "/v1/tokens/{token_id}", "admin", "Revoke a token", token_revoke,
             answer="empty"),
    Endpoint("GET", "/v1/objects/{kind}", "read", "List stored objects of a kind", object_list),
    Endpoint("PUT", "/v1/objects/{kind}/{name}", "write", "Store an object (streamed)",
             object_put, "stream"),
    Endpoint("GET", "/v1/objects/{kind}/{name}", "read", "Fetch an object (streamed)",
             object_get, answer="stream"),
    Endpoint("DELETE", "/v1/objects/{kind}/{name}", "write", "Delete an object of one's own",
             object_delete, answer="empty"),
    Endpoint("GET", "/v1/vaults", "read", "List vaults", vault_list),
    Endpoint("PUT", "/v1/vaults/{vault}", "authority", "Create a vault with its signed manifest",
             vault_create, "stream"),
    Endpoint("GET", "/v1/vaults/{vault}/manifest", "read", "The vault's signed manifest",
             manifest_get, answer="cbor"),
    Endpoint("PUT", "/v1/vaults/{vault}/manifest", "authority", "Replace the signed manifest",
             manifest_put, "stream", "empty"),
    Endpoint("GET", "/v1/vaults/{vault}/catalog", "read", "Every catalog row", catalog_list,
             answer="cbor"),
    Endpoint("POST", "/v1/vaults/{vault}/catalog", "write", "Add a catalog row", catalog_insert,
             "cbor", "empty"),
    Endpoint("GET", "/v1/vaults/{vault}/catalog/{file_id}", "read", "One catalog row",
             catalog_row, answer="cbor"),
    Endpoint("PUT", "/v1/vaults/{vault}/catalog/{file_id}", "write",
             "Switch a file to a new generation", catalog_replace, "cbor", "empty"),
    Endpoint("DELETE", "/v1/vaults/{vault}/files/{file_id}", "write",
             "Delete a file of one's own (row and parts)", file_delete, answer="empty"),
    Endpoint("GET", "/v1/vaults/{vault}/parts/{part}", "read", "A header or body (streamed)",
             part_get, answer="stream"),
    Endpoint("PUT", "/v1/vaults/{vault}/parts/{part}", "write", "Store a header or body (streamed)",
             part_put, "stream"),
    Endpoint("DELETE", "/v1/vaults/{vault}/parts/{part}", "write", "Remove a header or body",
             part_delete, answer="empty"),
    Endpoint("POST", "/v1/vaults/{vault}/headers", "authority",
             "Revocation: switch re-encapsulated headers, each atomically", headers_switch,
             "cbor", "cbor"),
    Endpoint("POST", "/v1/vaults/{vault}/lock", "write", "Take or renew the vault's writer lease",
             lock_take),
    Endpoint("DELETE", "/v1/vaults/{vault}/lock", "write", "Release the writer lease",
             lock_release, answer="empty"),
    Endpoint("GET", "/v1/indexes", "read", "List indexes", index_list),
    Endpoint("PUT", "/v1/indexes/{index}/files/{path:path}", "write",
             "Store a file of an index of one's own (streamed)", index_put, "stream"),
    Endpoint("GET", "/v1/indexes/{index}/files/{path:path}", "read",
             "Fetch a file of an index (streamed)", index_get, answer="stream"),
    Endpoint("DELETE", "/v1/indexes/{index}", "write", "Delete an index of one's own",
             index_delete, answer="empty"),
    Endpoint("GET", "/v1/transform-keys", "read", "The caller's transformation keys (names only)",
             transform_key_list),
    Endpoint("PUT", "/v1/transform-keys/{name}", "read", "Store one of the caller's transformation keys",
             transform_key_put, body="stream"),
    Endpoint("DELETE", "/v1/transform-keys/{name}", "read", "Revoke one of the caller's transformation keys",
             transform_key_delete, answer="empty"),
    Endpoint("POST", "/v1/transform-keys/{name}/transform", "read",
             "Transform a stored header for the holder's device (outsourced decryption)",
             transform_key_transform, body="cbor", answer="stream"),
    Endpoint("POST", "/v1/indexes/{index}/search", "read",
             "Walk the index with a trapdoor: the sealed leaves reached", index_search,
             "cbor", "cbor"),
)

ANONYMOUS = Principal("-", "anonymous", "none")


def _endpoint(state: State, spec: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette handler of one route: token, role, rate limit, audit note, problems."""

    async def handle(request: Request) -> Response:
        note = request.scope.setdefault(AUDIT_KEY, {})
        note["action"] = f"{spec.method} {spec.path}"
        try:
            principal = ANONYMOUS
            if spec.action is not None:
                principal = state.data.principals.authenticate(bearer(request))
                note["principal"] = principal.label()
                state.throttle(principal)
                if spec.action != "any" and principal.role not in ALLOWED[spec.action]:
                    raise Forbidden(f"a token of role {principal.role} may not do this", 403,
                                    "forbidden")
            return await spec.handler(Ctx(request, principal, state))
        except Exception as exc:  # the one place a failure becomes a problem response
            response = problem_for(exc, request, str(state.data.root))
            note["problem"] = str(exc)[:200] if response.status_code < 500 else "internal"
            return response

    return handle


class AuditMiddleware:
    """Append one audit entry per HTTP request once it is answered: principal, action, object
    (the path), result (status and problem), time it arrived, bytes in and out."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        note: dict[str, Any] = scope.setdefault(AUDIT_KEY, {})
        arrived, counted, status = now(), [0, 0], [0]

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counted[0] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                counted[1] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            result = str(status[0] or "aborted")
            if "problem" in note:
                result += f" {note['problem']}"
            self.state.audit.append(note.get("principal", "-"),
                                    note.get("action", f"{scope['method']} (no route)"),
                                    scope.get("path", ""), result, counted[0] + counted[1], arrived)


class Service:
    """The ASGI application: the lifespan (sweep the data directory and tick checkpoints while
    up, sign a last checkpoint on the way down) and each request sent to its endpoint by the
    route table (`routing.Routes`), with Starlette's requests and responses."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.routes = Routes([(spec.method, spec.path, _endpoint(state, spec)) for spec in ROUTES])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        found = self.routes.find(scope["method"], scope["path"])
        if isinstance(found, int):
            response = problem("not-found", "no such route", scope["path"]) if found == 404 else \
                problem("method-not-allowed", "method not allowed for this route", scope["path"])
        else:
            handle, scope["path_params"] = found
            response = await handle(Request(scope, receive, send))
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        try:
            self.state.data.sweep()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)[:200]})
            return
        ticker = asyncio.create_task(_checkpoints(self.state))
        await send({"type": "lifespan.startup.complete"})
        try:
            await receive()  # lifespan.shutdown
        finally:
            ticker.cancel()
            self.state.audit.checkpoint()
        await send({"type": "lifespan.shutdown.complete"})


def build_app(state: State) -> ASGIApp:
    """The ASGI application over `state`, every request audited (uvicorn runs it; tests may too)."""
    return AuditMiddleware(Service(state), state)


async def _checkpoints(state: State) -> None:
    """Sign a checkpoint when entries have waited `checkpoint_seconds` without one."""
    waited = 0.0
    while True:
        await asyncio.sleep(1.0)
        waited = waited + 1.0 if state.audit.since_checkpoint else 0.0
        if waited >= state.limits.checkpoint_seconds:
            await run_in_threadpool(state.audit.checkpoint)
            waited = 0.0
