"""abe-health: attribute-based encryption, revocation and encrypted search for personal health records.

Recipes only; primitives live under `abe_health.hazmat`. Encrypt a file for a recipient, decrypt
it with an identity:

    hospital = CPABE.setup()                          # an authority (MasterKey, PublicKey)
    alice = hospital.keygen(["doctor", "cardiology"])  # a UserKey: an identity
    blob = encrypt(record, None, PolicyRecipient(hospital.public_key, "doctor or nurse"))
    decrypt(blob, None, alice)

Multi-authority: `Authority.setup("hospitalA")`, `MultiAuthorityRecipient(policy, public_keys)`.
Revocation: `abe_health.revocation.Vault`; PHR records: `abe_health.phr`; the format and the
threat model: docs/formats.md, docs/security.md. Errors live in `abe_health.errors`.
"""

from .authority import ABE, CPABE, KPABE
from .encryption import decrypt, encrypt, inspect
from .errors import (
    AbeError,
    BackendUnavailable,
    InvalidCiphertext,
    InvalidEncoding,
    InvalidKey,
    InvalidSignature,
    NoIdentityMatched,
    PolicyNotSatisfied,
    PolicySyntaxError,
    VaultError,
)
from .identities import Holder, Identity
from .keys import Key, MasterKey, PublicKey, UserKey, load_key, read_key
from .ma import Authority
from .policy import KeyAttributes, Policy, parse_attributes
from .recipients import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, Recipient

__version__ = "0.2.0"

__all__ = [
    "ABE",
    "CPABE",
    "KPABE",
    "AbeError",
    "AttributesRecipient",
    "Authority",
    "BackendUnavailable",
    "Holder",
    "Identity",
    "InvalidCiphertext",
    "InvalidEncoding",
    "InvalidKey",
    "InvalidSignature",
    "Key",
    "KeyAttributes",
    "MasterKey",
    "MultiAuthorityRecipient",
    "NoIdentityMatched",
    "Policy",
    "PolicyNotSatisfied",
    "PolicyRecipient",
    "PolicySyntaxError",
    "PublicKey",
    "Recipient",
    "UserKey",
    "VaultError",
    "__version__",
    "decrypt",
    "encrypt",
    "inspect",
    "load_key",
    "parse_attributes",
    "read_key",
]
