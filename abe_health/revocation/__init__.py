"""Ending access: expiring keys (`renew`) and immediate attribute revocation (`Vault`).

Expiry is indirect revocation and needs nothing beyond the ABE schemes themselves: keys carry
`valid_until = DATE`, writers put `valid_until >= TODAY` (or a period) into policies, and the
authority re-issues short-lived keys to those who keep access (`renew`); a revoked user is simply
not renewed. Immediate revocation rewrites the ABE headers of stored files under epoch
attributes (versions.py, vault.py). Neither adds a cryptographic construction: both rest on the
ABE scheme in use (FAME by default) plus AES-GCM, HKDF and X25519 for the vault's key escrow, so
the published attacks on proxy-update schemes (Venema-Alpar, CT-RSA 2021; on DAC-MACS) do not
apply. Trust: the authority (master key holder) does the revoking and must not re-issue the
revoked attribute; the cloud stores files, catalog and escrows and is trusted only to store them.
"""

from .expiry import renew
from .vault import RevocationReport, Vault

__all__ = ["RevocationReport", "Vault", "renew"]
