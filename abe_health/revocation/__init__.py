"""Ending access: expiring keys (`renew`) and attribute revocation (`Vault`).

Expiry is indirect revocation and needs nothing beyond the ABE schemes themselves: CP keys carry
`valid_until = DATE`, writers put `valid_until >= TODAY` (or a period) into policies, and the
authority re-issues short-lived keys to those who keep access (`renew`, from its issuance
register); a revoked user is simply not renewed. Multi-authority (RW15) keys date each expiring
attribute instead (`emergency = DATE`, policies `emergency >= TODAY@ER`), because attributes one
authority issues to one GID accumulate across issuances. Revocation rewrites the ABE headers of
stored files under epoch attributes (versions.py, vault.py). Neither adds a cryptographic
construction: both rest on the ABE scheme in use (FAME by default) plus AES-GCM, HKDF, HPKE and
Ed25519 for the vault's key escrow and signed manifest, so
the published attacks on proxy-update schemes (Venema-Alpar, CT-RSA 2021; on DAC-MACS) do not
apply. Trust: the authority (master key holder) does the revoking and must not re-issue the
revoked attribute; the cloud stores files, catalog, manifest and escrows, may edit any of them,
and is trusted for nothing but availability (see vault.py and docs/security.md).
"""

from .expiry import renew
from .vault import RevocationReport, Vault

__all__ = ["RevocationReport", "Vault", "renew"]
