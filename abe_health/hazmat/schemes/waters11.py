"""Waters11 CP-ABE (Waters, "Ciphertext-Policy Attribute-Based Encryption: An Expressive,
Efficient, and Provably Secure Realization", PKC 2011, large-universe variant with h_x = H(x)),
the other classic baseline, as a KEM.

Type-III adaptation: every pairing takes one side from each source group.
- public key: g1^a in G1, e(g1, g2)^alpha; master key: alpha, a;
- key: K = g1^{alpha + a t} in G1, L = g2^t in G2, K_x = H1(x)^t in G1;
- ciphertext: C' = g2^s in G2; per row i: C_i = g1^{a lambda_i} H1(rho(i))^{-r_i} in G1 and
  D_i = g2^{r_i} in G2;
- decryption: e(C_i, L) e(K_x, D_i) = e(g1, g2)^{a t lambda_i} (the H1 terms cancel), so
  prod over rows = e(g1, g2)^{a t s} and the KEM key is e(K, C') / that = e(g1, g2)^{alpha s}.
  The rows' e(C_i, L) share L, so they are folded into one pairing e(prod C_i^{omega_i}, L).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import InvalidCiphertext
from ...policy import KeyAttributes, Policy
from ..pairing import Element
from .base import Record, Scheme
from .common import coefficients_or_refuse, policy_of, row_product, signed


class Waters11(Scheme):
    name = "waters11"
    policy_in = "ciphertext"
    PAIRING_ONLY = frozenset({"Ci"})  # the C_i are aggregated, then paired with L
    DST = b"abe-health/waters11/v1/"
    LAYOUTS = {
        "public": {"g1_a": "G1", "e_gg_alpha": "GT"},
        "master": {"alpha": "Zr", "a": "Zr"},
        "user": {"K": "G1", "L": "G2", "Kx": ("map", "G1")},
        "ciphertext": {"Cp": "G2", "Ci": ("list", None, "G1"), "Di": ("list", None, "G2")},
    }

    def setup(self, widths: Mapping[str, int] | None = None) -> tuple[Record, Record]:
        grp = self.group
        alpha, a = grp.random_zr(), grp.random_zr()
        pk = self.record("public", {"g1_a": grp.generator("G1") ** a,
                                    "e_gg_alpha": grp.generator("GT") ** alpha},
                         widths=dict(widths or {}))
        return pk, self.record("master", {"alpha": alpha, "a": a})

    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        self.key_subject(pk, msk, subject)
        assert isinstance(subject, KeyAttributes)  # key_subject checked the type
        grp = self.group
        t = grp.random_zr()
        K = grp.generator("G1") ** (msk["alpha"] + msk["a"] * t)
        Kx = {label: self.hash_attribute(label) ** t for label in sorted(subject.labels)}
        return self.record("user", {"K": K, "L": grp.generator("G2") ** t, "Kx": Kx},
                           attributes=[str(a) for a in subject.attributes],
                           widths=pk.meta.get("widths", {}))

    def encapsulate(self, pk: Record, target: Policy | KeyAttributes) -> tuple[Element, Record]:
        self.encap_target(pk, target)
        assert isinstance(target, Policy)  # encap_target checked the type
        grp = self.group
        lsss = target.lsss
        s = grp.random_zr()
        shares = lsss.shares(s, grp.order)
        g2 = grp.generator("G2")
        Ci, Di = [], []
        for label, lam in zip(lsss.rho, shares, strict=True):
            r = grp.random_zr()
            Ci.append(grp.multi_exp([pk["g1_a"], self.hash_attribute(label)], [lam, -r]))
            Di.append(g2**r)
        ct = self.record("ciphertext", {"Cp": g2**s, "Ci": Ci, "Di": Di}, policy=str(target))
        return pk["e_gg_alpha"] ** s, ct

    def decapsulate(self, key: Record, ct: Record) -> Element:
        self.check(key, "user")
        self.check(ct, "ciphertext")
        grp = self.group
        policy = policy_of(key, ct)
        lsss = policy.lsss
        if not len(ct["Ci"]) == len(ct["Di"]) == lsss.n_rows:
            raise InvalidCiphertext("ciphertext rows do not match its policy")
        omega = coefficients_or_refuse(lsss, key["Kx"].keys(), grp.order, policy)
        rows = sorted(omega)
        weights = [omega[i] for i in rows]
        # e(K, C') / (e(prod C_i^{w_i}, L) prod e(K_x^{w_i}, D_i)), as one multi-pairing
        pairs = [(key["K"], ct["Cp"]), (~row_product([ct["Ci"][i] for i in rows], weights), key["L"])]
        pairs += [(signed(key["Kx"][lsss.rho[i]], -w), ct["Di"][i])
                  for i, w in zip(rows, weights, strict=True)]
        return grp.pair_prod(pairs)
