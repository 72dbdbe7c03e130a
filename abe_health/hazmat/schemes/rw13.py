"""RW13 large-universe CP-ABE (Rouselakis & Waters, "Practical Constructions and New Proof
Methods for Large Universe Attribute-Based Encryption", ACM CCS 2013, the large-universe CP-ABE
construction; IACR ePrint 2012/583), as a KEM, in the ciphertext form of Hohenberger & Waters,
"Online/Offline Attribute-Based Encryption", PKC 2014 (their online/offline CP-ABE; see
`hw14.py`), so that one decryption opens ciphertexts made either way.

Security: selectively secure against chosen-plaintext attacks under the paper's q-type
assumption ("q-1"), attributes being elements of Z_r (here H_Zr(label), a hash of the label).
The proof is for symmetric prime-order groups; the Type-III placement below keeps the equations
and has no separate proof. Used as a KEM with an authenticated payload (docs/formats.md, 5).

Type-III adaptation. The ciphertext lives in G1 (so encryption, the device's job, is G1 work),
the key in G2; u, h, w, v are g1^{b_u}, g1^{b_h}, g1^{b_w}, g1^{b_v} in the public key, and the
authority keeps the exponents b to form their G2 twins at keygen (the paper's MSK is alpha
alone: with one group it needs no twins).
- setup: alpha, b_u, b_h, b_w, b_v random; PK = (u, h, w, v, e(g1, g2)^alpha).
- keygen for attributes A_1..A_k: r, r_1..r_k random; K0 = g2^{alpha + b_w r}, K1 = g2^r,
  K2[tau] = g2^{r_tau}, K3[tau] = g2^{(b_u A_tau + b_h) r_tau - b_v r}. The key also carries
  copies of u and w (G1), which decryption needs for the online corrections below.
- encapsulate under (M, rho): s random, lambda = shares of s; per row j, t_j random:
  C0 = g1^s, C1_j = w^{lambda_j} v^{t_j}, C2_j = (u^{A_rho(j)} h)^{-t_j}, C3_j = g1^{t_j};
  K = e(g1, g2)^{alpha s}.
- HW14 corrections (deviation): each row also carries C4_j, C5_j in Z_r, zero here. An online
  ciphertext (`hw14.online`) built from a precomputed piece (lambda'_j, x_j, t_j) carries
  C1_j = w^{lambda'_j} v^{t_j}, C2_j = (u^{x_j} h)^{-t_j} with C4_j = lambda_j - lambda'_j and
  C5_j = t_j (A_rho(j) - x_j); then C1_j w^{C4_j} and C2_j u^{-C5_j} are the RW13 components.
- decapsulate with coefficients omega over a satisfying row set I:
  K = e(C0, K0) / (e(prod_I C1_j^{omega_j} * w^{sum_I omega_j C4_j}, K1)
      * prod_I e(C2_j u^{-C5_j}, K2[rho(j)])^{omega_j} e(C3_j, K3[rho(j)])^{omega_j}).
  Check: the three pairings of row j give e(g1, g2)^{b_w lambda_j r}; over I they give
  e(g1, g2)^{b_w r s}, which e(C0, K0) = e(g1, g2)^{alpha s + b_w r s} divides away.
Costs: encryption 5 G1 exponentiations per row plus 1 in G1 and 1 in GT; decryption 2 pairings
per row used plus 2 (one G1 exponentiation per row whose C5 is non-zero).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import InvalidCiphertext
from ...policy import KeyAttributes, Policy
from ..pairing import Element
from .base import Record, Scheme
from .common import coefficients_or_refuse, policy_of, row_product

ROWS_G1 = ("list", None, "G1")
ROWS_ZR = ("list", None, "Zr")


class RW13(Scheme):
    """Rouselakis-Waters large-universe CP-ABE, ciphertexts in HW14's online/offline form."""

    name = "rw13"
    policy_in = "ciphertext"
    DST = b"abe-health/rw13/v1/"
    LAYOUTS = {
        "public": {"u": "G1", "h": "G1", "w": "G1", "v": "G1", "e_gg_alpha": "GT"},
        "master": {"alpha": "Zr", "b": ("list", 4, "Zr")},
        "user": {"K0": "G2", "K1": "G2", "K2": ("map", "G2"), "K3": ("map", "G2"), "u": "G1", "w": "G1"},
        "ciphertext": {"C0": "G1", "C1": ROWS_G1, "C2": ROWS_G1, "C3": ROWS_G1, "C4": ROWS_ZR,
                       "C5": ROWS_ZR},
    }

    def attribute(self, label: str) -> int:
        """A_label: the attribute as an element of Z_r (the paper's universe is Z_r itself)."""
        return self.group.hash_to_zr(self.DST + b"A", label.encode())

    def setup(self, widths: Mapping[str, int] | None = None) -> tuple[Record, Record]:
        grp = self.group
        alpha = grp.random_zr()
        b = [grp.random_zr() for _ in range(4)]  # b_u, b_h, b_w, b_v
        g1 = grp.generator("G1")
        pk = self.record("public", {"u": g1 ** b[0], "h": g1 ** b[1], "w": g1 ** b[2], "v": g1 ** b[3],
                                    "e_gg_alpha": grp.generator("GT") ** alpha},
                         widths=dict(widths or {}))
        return pk, self.record("master", {"alpha": alpha, "b": b})

    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        self.key_subject(pk, msk, subject)
        assert isinstance(subject, KeyAttributes)  # key_subject checked the type
        grp, q = self.group, self.group.order
        g2 = grp.generator("G2")
        b_u, b_h, b_w, b_v = msk["b"]
        r = grp.random_zr()
        K2, K3 = {}, {}
        for label in sorted(subject.labels):
            r_tau = grp.random_zr()
            K2[label] = g2**r_tau
            K3[label] = g2 ** (((b_u * self.attribute(label) + b_h) * r_tau - b_v * r) % q)
        return self.record("user", {"K0": g2 ** ((msk["alpha"] + b_w * r) % q), "K1": g2**r,
                                    "K2": K2, "K3": K3, "u": pk["u"], "w": pk["w"]},
                           attributes=[str(a) for a in subject.attributes],
                           widths=pk.meta.get("widths", {}))

    def encapsulate(self, pk: Record, target: Policy | KeyAttributes) -> tuple[Element, Record]:
        self.encap_target(pk, target)
        assert isinstance(target, Policy)  # encap_target checked the type
        grp = self.group
        lsss = target.lsss
        s = grp.random_zr()
        lam = lsss.shares(s, grp.order)
        g1 = grp.generator("G1")
        C1, C2, C3 = [], [], []
        for j, label in enumerate(lsss.rho):
            t = grp.random_zr()
            C1.append(pk["w"] ** lam[j] * pk["v"] ** t)
            C2.append((pk["u"] ** self.attribute(label) * pk["h"]) ** (-t))
            C3.append(g1**t)
        zeros = [0] * lsss.n_rows
        ct = self.record("ciphertext", {"C0": g1**s, "C1": C1, "C2": C2, "C3": C3, "C4": zeros,
                                        "C5": list(zeros)}, policy=str(target))
        return pk["e_gg_alpha"] ** s, ct

    def decapsulate(self, key: Record, ct: Record) -> Element:
        self.check(key, "user")
        self.check(ct, "ciphertext")
        grp, q = self.group, self.group.order
        policy = policy_of(key, ct)
        lsss = policy.lsss
        if not all(len(ct[p]) == lsss.n_rows for p in ("C1", "C2", "C3", "C4", "C5")):
            raise InvalidCiphertext("ciphertext rows do not match its policy")
        omega = coefficients_or_refuse(lsss, key["K2"].keys(), q, policy)
        rows = sorted(omega)
        weights = [omega[j] for j in rows]
        c1 = row_product([ct["C1"][j] for j in rows], weights)
        shift = sum(w * ct["C4"][j] for j, w in zip(rows, weights, strict=True)) % q
        if shift:
            c1 = c1 * key["w"] ** shift
        pairs = [(c1, key["K1"])]
        for j, w in zip(rows, weights, strict=True):
            label = lsss.rho[j]
            c2 = ct["C2"][j] * key["u"] ** (-ct["C5"][j]) if ct["C5"][j] else ct["C2"][j]
            pairs.append((c2 if w == 1 else c2**w, key["K2"][label]))
            pairs.append((ct["C3"][j] if w == 1 else ct["C3"][j] ** w, key["K3"][label]))
        return grp.pair(ct["C0"], key["K0"]) / grp.pair_prod(pairs)
