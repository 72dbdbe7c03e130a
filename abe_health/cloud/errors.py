"""The cloud's errors, on both sides of the wire: RFC 9457 problem types and typed exceptions.

Every refusal of `abe-health serve` is an `application/problem+json` document whose `type` is a
stable URI (an anchor of docs/cloud.md, where each type is described). `PROBLEMS` is the one
table of types: the server answers with it, and the client turns a problem back into the
exception the table names, so that a caller catches the same `VaultError`, `InvalidCiphertext`,
`Busy` or `IndexCorrupt` whether its vault or index is local or remote. Types without a
toolkit equivalent get the classes below, all under `CloudError` (an `AbeError`).
"""

from __future__ import annotations

from dataclasses import dataclass

from search.errors import IndexCorrupt, SearchError

from ..errors import AbeError, InvalidCiphertext, InvalidKey, PolicyNotSatisfied, VaultError
from ..locks import Busy

#: problem type URIs are this prefix and the type's slug (an anchor in docs/cloud.md)
TYPE_PREFIX = "https://github.com/abe-health/abe-health/blob/main/docs/cloud.md#problem-"


class CloudError(AbeError):
    """A request the cloud refused, or an answer the client could not accept. `status` is the
    HTTP status (0 when no answer came), `problem` the problem type's slug."""

    status: int = 0
    problem: str = "cloud-error"

    def __init__(self, message: str, status: int = 0, problem: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        if problem is not None:
            self.problem = problem


class Unauthorized(CloudError):
    """No token, an unknown, revoked or expired one (401)."""


class Forbidden(CloudError):
    """A valid token whose role or ownership does not allow the request (403)."""


class NotFound(CloudError):
    """No such object, vault, index or route (404)."""


class BadRequest(CloudError, ValueError):
    """Input the server refused: a malformed id, body, JSON or CBOR document (400, 405, 411)."""


class TooLarge(BadRequest):
    """A body past the server's configured limit (413)."""


class Conflict(CloudError):
    """The object exists, or changed since it was read (409)."""


class RateLimited(CloudError):
    """Too many requests for this token, or too many uploads open at once (429)."""


class ServerError(CloudError):
    """The server failed (5xx), or no server answered."""


class ProtocolError(CloudError):
    """An answer that is not what the protocol allows (wrong type, size or shape): the server is
    untrusted, so the client refuses it instead of guessing."""


@dataclass(frozen=True)
class Problem:
    """One problem type: its HTTP status, short title, and the client's exception class."""

    status: int
    title: str
    error: type[Exception]


PROBLEMS: dict[str, Problem] = {
    "unauthorized": Problem(401, "missing, unknown, revoked or expired token", Unauthorized),
    "forbidden": Problem(403, "the token's role or ownership does not allow this", Forbidden),
    "not-found": Problem(404, "no such object", NotFound),
    "method-not-allowed": Problem(405, "method not allowed", BadRequest),
    "invalid-id": Problem(400, "malformed name or id", BadRequest),
    "malformed-body": Problem(400, "malformed request body", BadRequest),
    "too-large": Problem(413, "body larger than the server accepts", TooLarge),
    "conflict": Problem(409, "the object exists or changed", Conflict),
    "busy": Problem(409, "another writer holds the lock", Busy),
    "rate-limited": Problem(429, "too many requests for this token", RateLimited),
    "too-many-uploads": Problem(429, "too many uploads open at once", RateLimited),
    "vault-error": Problem(422, "the stored vault refused the request", VaultError),
    "invalid-ciphertext": Problem(422, "not a valid .abe header or file", InvalidCiphertext),
    "invalid-key": Problem(422, "not a valid key", InvalidKey),
    "index-corrupt": Problem(422, "the stored index is malformed", IndexCorrupt),
    "not-satisfied": Problem(403, "the key's attributes do not satisfy the header's policy",
                             PolicyNotSatisfied),
    "internal": Problem(500, "internal server error (a bug)", ServerError),
}


def type_uri(slug: str) -> str:
    return TYPE_PREFIX + slug


def slug_of(uri: object) -> str | None:
    """The slug of a known problem type URI, else None."""
    if isinstance(uri, str) and uri.startswith(TYPE_PREFIX) and uri[len(TYPE_PREFIX):] in PROBLEMS:
        return uri[len(TYPE_PREFIX):]
    return None


def error_for(slug: str, detail: str, status: int) -> Exception:
    """The exception a client raises for a problem of type `slug`."""
    cls = PROBLEMS[slug].error
    if issubclass(cls, CloudError):
        return cls(detail, status, slug)
    if issubclass(cls, (AbeError, SearchError)):
        return cls(detail)
    return CloudError(detail, status, slug)


__all__ = [
    "PROBLEMS",
    "BadRequest",
    "CloudError",
    "Conflict",
    "Forbidden",
    "IndexCorrupt",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "TooLarge",
    "Unauthorized",
]
