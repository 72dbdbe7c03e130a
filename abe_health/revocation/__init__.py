"""Ending access: expiring keys (renewal) and, in later work, attribute revocation.

Expiry is indirect revocation and needs nothing beyond the ABE schemes themselves: keys carry
`valid_until = DATE`, writers put `valid_until >= TODAY` (or a period) into policies, and the
authority re-issues short-lived keys to those who keep access (`renew`); a revoked user is simply
not renewed. Trust: the authority that issues `valid_until` must not issue it beyond what its
policy allows; nothing else is assumed beyond the security of the scheme itself.
"""

from .expiry import renew
from .vault import RevocationReport, Vault

__all__ = ["RevocationReport", "Vault", "renew"]
