"""abe-health: attribute-based encryption, revocation and encrypted search for personal health records.

Layers, bottom up: `pairing` (Type-III groups), `policy` (language, LSSS), and the schemes,
envelope, revocation and PHR modules built on them. Errors live in `abe_health.errors`.
"""

from .errors import (
    AbeError,
    BackendUnavailable,
    InvalidCiphertext,
    InvalidEncoding,
    InvalidKey,
    PolicyNotSatisfied,
    PolicySyntaxError,
)
from .policy import KeyAttributes, Policy, parse_attributes

__version__ = "0.1.0"

__all__ = [
    "AbeError",
    "BackendUnavailable",
    "InvalidCiphertext",
    "InvalidEncoding",
    "InvalidKey",
    "KeyAttributes",
    "Policy",
    "PolicyNotSatisfied",
    "PolicySyntaxError",
    "__version__",
    "parse_attributes",
]
