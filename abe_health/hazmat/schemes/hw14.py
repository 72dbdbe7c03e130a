"""HAZARDOUS MATERIALS: use `abe_health.devices` (`precompute`, `PoolRecipient`) instead.

Online/offline encryption for RW13 (Hohenberger & Waters, "Online/Offline Attribute-Based
Encryption", PKC 2014: their online/offline variant of the Rouselakis-Waters large-universe
CP-ABE). The ciphertext is the one `rw13.py` decrypts.

- **Offline**, before the policy, its size or the message is known:
  a *session* (one per ciphertext): s random, C0 = g1^s and the KEM key K = e(g1, g2)^{alpha s};
  *pieces* (one per policy row): lambda', x, t random, C1 = w^{lambda'} v^t,
  C2 = (u^x h)^{-t}, C3 = g1^t. A session costs 1 G1 and 1 GT exponentiation, a piece 5 in G1.
- **Online**, given a policy (M, rho) of n rows, a session and n pieces: lambda = M (s, y_2, ...)
  with fresh y; per row j, C4_j = lambda_j - lambda'_j and C5_j = t_j (A_rho(j) - x_j). Only
  arithmetic in Z_r (the attribute A is a SHA-512 hash of the label reduced mod r): no group
  operation at all.

Every session and every piece is used once: two ciphertexts from one session share their KEM key,
and two rows from one piece reveal the difference of their shares. Keeping that promise is the
pool's job (`abe_health.devices.pool`: a lock and an atomic consumption of the pool file).
Security (HW14): selectively secure as RW13 is, under the same q-type assumption, the pieces
being uniformly random and used once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import InvalidKey
from ...policy import Policy
from ..pairing import Element
from .base import Record
from .rw13 import RW13


@dataclass(frozen=True, repr=False)
class Session:
    """Offline material of one ciphertext: s, C0 = g1^s and K = e(g1, g2)^{alpha s} (secret)."""

    s: int
    c0: Element
    key: Element

    def __repr__(self) -> str:
        return "Session(<secret>)"


@dataclass(frozen=True, repr=False)
class Piece:
    """Offline material of one policy row: lambda', x, t and C1, C2, C3 (secret exponents)."""

    lam: int
    x: int
    t: int
    c1: Element
    c2: Element
    c3: Element

    def __repr__(self) -> str:
        return "Piece(<secret>)"


def offline_session(scheme: RW13, pk: Record) -> Session:
    """One ciphertext's session (2 exponentiations)."""
    scheme.check(pk, "public")
    grp = scheme.group
    s = grp.random_zr()
    return Session(s, grp.generator("G1") ** s, pk["e_gg_alpha"] ** s)


def offline_piece(scheme: RW13, pk: Record) -> Piece:
    """One row's piece (5 G1 exponentiations)."""
    scheme.check(pk, "public")
    grp = scheme.group
    lam, x, t = grp.random_zr(), grp.random_zr(), grp.random_zr()
    return Piece(lam, x, t, pk["w"] ** lam * pk["v"] ** t, (pk["u"] ** x * pk["h"]) ** (-t),
                 grp.generator("G1") ** t)


def corrections(scheme: RW13, policy: Policy, s: int,
                pieces: Sequence[tuple[int, int, int]]) -> tuple[list[int], list[int]]:
    """C4 and C5 of `policy` for session exponent s and the pieces' (lambda', x, t), one per row:
    lambda = M (s, y_2, ...) with fresh y, C4_j = lambda_j - lambda'_j, C5_j = t_j (A_rho(j) - x_j).
    Arithmetic in Z_r only."""
    q = scheme.group.order
    lsss = policy.lsss
    if len(pieces) != lsss.n_rows:
        raise InvalidKey(f"the policy has {lsss.n_rows} rows; {len(pieces)} pieces were given")
    lam = lsss.shares(s, q)
    c4 = [(lam[j] - lam_p) % q for j, (lam_p, _x, _t) in enumerate(pieces)]
    c5 = [t * (scheme.attribute(label) - x) % q for label, (_l, x, t) in zip(lsss.rho, pieces, strict=True)]
    return c4, c5


def online(scheme: RW13, policy: Policy, session: Session, pieces: Sequence[Piece]) -> Record:
    """The ciphertext of `policy` from one session and one piece per row: Z_r arithmetic only.
    The KEM key is `session.key`."""
    c4, c5 = corrections(scheme, policy, session.s, [(p.lam, p.x, p.t) for p in pieces])
    return scheme.record("ciphertext", {
        "C0": session.c0, "C1": [p.c1 for p in pieces], "C2": [p.c2 for p in pieces],
        "C3": [p.c3 for p in pieces], "C4": c4, "C5": c5}, policy=str(policy))
