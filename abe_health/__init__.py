"""abe-health: attribute-based encryption, revocation and encrypted search for personal health records.

Layers, bottom up: `pairing` (Type-III groups), `policy` (language, LSSS), and the schemes,
envelope, revocation and PHR modules built on them. Errors live in `abe_health.errors`.
"""

from .api import ABE, CPABE, KPABE, decrypt, decrypt_file, inspect_file
from .errors import (
    AbeError,
    BackendUnavailable,
    InvalidCiphertext,
    InvalidEncoding,
    InvalidKey,
    PolicyNotSatisfied,
    PolicySyntaxError,
)
from .keys import Key, load_key, read_key
from .policy import KeyAttributes, Policy, parse_attributes

__version__ = "0.1.0"

__all__ = [
    "ABE",
    "CPABE",
    "KPABE",
    "AbeError",
    "BackendUnavailable",
    "InvalidCiphertext",
    "InvalidEncoding",
    "InvalidKey",
    "Key",
    "KeyAttributes",
    "Policy",
    "PolicyNotSatisfied",
    "PolicySyntaxError",
    "__version__",
    "decrypt",
    "decrypt_file",
    "inspect_file",
    "load_key",
    "parse_attributes",
    "read_key",
]
