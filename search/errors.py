"""Typed errors of the search package (independent of abe_health, which maps them for its CLI)."""

from __future__ import annotations


class SearchError(Exception):
    """Base class of every error the search package raises on purpose; `case` optionally names
    which situation of one type this is (for a front end's hints)."""

    case: str | None = None

    def __init__(self, *args: object, case: str | None = None) -> None:
        super().__init__(*args)
        if case is not None:
            self.case = case


class IndexCorrupt(SearchError):
    """An index file or directory that is malformed, truncated or of an unknown version."""


class InvalidSearchKey(SearchError):
    """A search key file that is malformed, or that does not belong to the index."""


class InvalidPattern(SearchError, ValueError):
    """A query pattern that cannot match anything (empty, or markers in the middle)."""


class IndexExists(SearchError):
    """A new index was asked for where a non-empty directory already is."""


class DocumentExists(SearchError):
    """A document id that the index already holds was added again without `replace`."""


class UnknownDocument(SearchError):
    """A document id to remove that the index does not hold (or no longer holds)."""
