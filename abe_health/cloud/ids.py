"""Names the cloud accepts in a URL, checked before any of them reaches a path or a query.

Every name is matched in full against one of these patterns: no slash (except the one fixed
`seg-N/` level of an index), no leading dot, no `..`, no NUL, so no id can name a file outside its
place in the data directory, a temporary file or a lock.
"""

from __future__ import annotations

import re

from .errors import BadRequest

#: vaults, indexes and stored objects: lowercase letters, digits, '.', '_', '-' (not first)
NAME = re.compile(r"[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9_-]+)*\Z")
MAX_NAME = 64
#: a vault file's stored part: `<16 hex digits>.<generation>.head|body`
PART = re.compile(r"(?P<id>[0-9a-f]{16})\.(?P<gen>0|[1-9][0-9]{0,9})\.(?:head|body)\Z")
FILE_ID = re.compile(r"[0-9a-f]{16}\Z")
#: the files of a search index directory that a server stores
INDEX_FILE = re.compile(r"(?:manifest\.cbor|search\.key\.abe|search\.key\.sig|"
                        r"seg-[0-9]{4,9}/(?:meta\.cbor|filters\.bin|node_off\.npy|node_m\.npy|"
                        r"salts\.npy|leaves\.bin|leaf_off\.npy))\Z")
#: kinds of stored objects: `.phr` records, whole `.abe` files, public keys and parameters
KINDS = ("phr", "abe", "key")


def _check(pattern: re.Pattern[str], value: str, what: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or len(value) > limit or not pattern.match(value):
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise BadRequest(f"invalid {what} {shown!r}", 400, "invalid-id")
    return value


def name(value: str, what: str = "name") -> str:
    """A vault, index or object name."""
    return _check(NAME, value, what)


def part(value: str) -> str:
    """A vault file part name."""
    return _check(PART, value, "file part")


def file_id(value: str) -> str:
    return _check(FILE_ID, value, "file id")


def index_file(value: str) -> str:
    return _check(INDEX_FILE, value, "index file", 80)


def kind(value: str) -> str:
    if value not in KINDS:
        raise BadRequest(f"invalid object kind {value[:20]!r} (one of {', '.join(KINDS)})", 400,
                         "invalid-id")
    return value
