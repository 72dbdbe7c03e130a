"""The typed exceptions of abe-health: one class per kind of failure.

Callers catch `AbeError` for "anything this toolkit refused"; the CLI maps each subclass to a
one-line message and a non-zero exit code. Errors that describe bad input also derive from
`ValueError`, so generic code that already handles `ValueError` keeps working.
"""

from __future__ import annotations


class AbeError(Exception):
    """Base class of every error abe-health raises on purpose. `case` optionally names which of
    several situations of one type this is, so a front end (the CLI) can add its own hint
    without the library naming front-end commands or flags."""

    case: str | None = None

    def __init__(self, *args: object, case: str | None = None) -> None:
        super().__init__(*args)
        if case is not None:
            self.case = case


class PolicySyntaxError(AbeError, ValueError):
    """A policy (or attribute) text that does not parse; names the 1-based column and what was expected."""

    def __init__(self, message: str, text: str = "", column: int = 0) -> None:
        self.message = message
        self.text = text
        self.column = column
        where = f"column {column}: " if column else ""
        super().__init__(f"{where}{message}")


class PolicyNotSatisfied(AbeError):
    """The attributes of a key do not satisfy the policy of a ciphertext (or the reverse for KP-ABE)."""


class InvalidEncoding(AbeError, ValueError):
    """Bytes that are not a valid element, key or structure (wrong length, off-curve, off-subgroup)."""


class InvalidCiphertext(AbeError):
    """A ciphertext or `.abe` file that is malformed, truncated, reordered or tampered with."""


class InvalidKey(AbeError):
    """A key that is malformed, of the wrong kind/scheme/group, or unusable for the request."""


class BackendUnavailable(AbeError):
    """A pairing backend was requested that is not installed or not known."""


class VaultError(AbeError):
    """A vault or its catalog that is missing, malformed, or altered by the store that holds it."""


class InvalidSignature(AbeError):
    """A signature that is missing, malformed or does not verify under the pinned key, or a
    valid signature over a statement that does not vouch for what it is offered with."""


class NoIdentityMatched(PolicyNotSatisfied):
    """None of several identities opened a file because none satisfies its policy; `reasons`
    holds (identity, why) for each, in the order tried."""

    def __init__(self, message: str, reasons: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.reasons = reasons


class InvalidBundle(AbeError, ValueError):
    """A FHIR Bundle that is not valid FHIR R4, or that cannot be encrypted resource by resource
    (no entries, an entry without a resource, too many entries); names the entry."""


class InvalidPolicyMap(AbeError, ValueError):
    """A FHIR policy map that is malformed, or whose entry does not parse or cannot protect a
    resource; the message names the offending entry."""


class MissingExtra(AbeError):
    """An optional part of abe-health was used without its optional dependencies installed;
    the message names the extra to install."""


class PoolExhausted(AbeError):
    """A pool of precomputed encryption material (`abe_health.devices`) holds too few unused
    pieces for the request; pieces are never reused, so nothing was encrypted."""


class BulkError(AbeError):
    """A bulk job (`abe_health.bulk`) that cannot start, resume or finish: its journal belongs to
    another job, an input a policy map does not cover, a task that failed on every attempt (the
    job's journal keeps what was done, so running it again resumes)."""
