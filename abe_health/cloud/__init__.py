"""The untrusted cloud as a service: `abe-health serve` (server) and `Client` (its user).

Trust model (docs/cloud.md states it in full, each sentence with its test): the server is the
cloud of docs/security.md, now reached over HTTP. It stores ciphertext (`.abe` headers and
bodies apart, `.phr` records), catalogs, signed manifests, index segments, sealed search keys
and public keys; it may read, replace, reorder, withhold and plant any of it and collude with
any reader; it is trusted for availability only. It never receives a master key, a user key, a
search key, a data key or plaintext: writers encrypt, readers decrypt and the authority
re-encapsulates on their own machines, and every answer is checked on arrival exactly as a
local store's bytes are (signed manifests, type-checked rows, context-bound headers,
owner-signed search keys). Tokens and roles decide who may ask it for what; its audit log
records every request in a hash chain it signs at checkpoints.

>>> from abe_health.cloud import Client
>>> Client("http://127.0.0.1:8750", "abeh_...")     # the token never appears in a repr
Client('http://127.0.0.1:8750')
"""

from .client import Client
from .errors import (
    BadRequest,
    CloudError,
    Conflict,
    Forbidden,
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    TooLarge,
    Unauthorized,
)

__all__ = [
    "BadRequest",
    "Client",
    "CloudError",
    "Conflict",
    "Forbidden",
    "NotFound",
    "ProtocolError",
    "RateLimited",
    "ServerError",
    "TooLarge",
    "Unauthorized",
]
