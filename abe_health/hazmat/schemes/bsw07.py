"""BSW07 CP-ABE (Bethencourt, Sahai, Waters, "Ciphertext-Policy Attribute-Based Encryption",
IEEE S&P 2007), the classic baseline, as a KEM over an LSSS instead of a threshold tree.

Type-III adaptation. The paper's symmetric pairing e(g, g) is split so that every pairing it
computes takes one side from G1 and the other from G2:
- key: D = g1^{(alpha + r)/beta} in G1; per attribute j: D_j = g1^r H1(j)^{r_j} in G1 and
  D'_j = g2^{r_j} in G2;
- ciphertext: C = h^s with h = g2^beta in G2; per row i: C_i = g2^{lambda_i} in G2 and
  C'_i = H1(rho(i))^{lambda_i} in G1;
- decryption: e(D_j, C_i) / e(C'_i, D'_j) = e(g1, g2)^{r lambda_i} (the H1 terms cancel because
  both pairings contain e(H1(j), g2)^{r_j lambda_i}), so
  A = prod (..)^{omega_i} = e(g1, g2)^{r s} and the KEM key is e(D, C) / A = e(g1, g2)^{alpha s}.
The public f = g^{1/beta} exists only for delegation, which is not offered, so it is omitted.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...errors import InvalidCiphertext
from ...policy import KeyAttributes, Policy
from ..pairing import Element
from .base import Record, Scheme
from .common import coefficients_or_refuse, policy_of, signed


class BSW07(Scheme):
    name = "bsw07"
    policy_in = "ciphertext"
    PAIRING_ONLY = frozenset({"Cpi"})  # C'_i only enters e(C'_i, D'_j)
    DST = b"abe-health/bsw07/v1/"
    LAYOUTS = {
        "public": {"h": "G2", "e_gg_alpha": "GT"},
        "master": {"alpha": "Zr", "beta": "Zr"},
        "user": {"D": "G1", "Dj": ("map", "G1"), "Dpj": ("map", "G2")},
        "ciphertext": {"C": "G2", "Ci": ("list", None, "G2"), "Cpi": ("list", None, "G1")},
    }

    def setup(self, widths: Mapping[str, int] | None = None) -> tuple[Record, Record]:
        grp = self.group
        alpha, beta = grp.random_zr(), grp.random_zr()
        pk = self.record("public", {"h": grp.generator("G2") ** beta,
                                    "e_gg_alpha": grp.generator("GT") ** alpha},
                         widths=dict(widths or {}))
        return pk, self.record("master", {"alpha": alpha, "beta": beta})

    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        self.key_subject(pk, msk, subject)
        assert isinstance(subject, KeyAttributes)  # key_subject checked the type
        grp, q = self.group, self.group.order
        g1, g2 = grp.generator("G1"), grp.generator("G2")
        r = grp.random_zr()
        D = g1 ** ((msk["alpha"] + r) * pow(msk["beta"], -1, q))
        g1r = g1**r
        Dj, Dpj = {}, {}
        for label in sorted(subject.labels):
            rj = grp.random_zr()
            Dj[label] = g1r * self.hash_attribute(label) ** rj
            Dpj[label] = g2**rj
        return self.record("user", {"D": D, "Dj": Dj, "Dpj": Dpj},
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
        Ci = [g2**lam for lam in shares]
        Cpi = [self.hash_attribute(label) ** lam for label, lam in zip(lsss.rho, shares, strict=True)]
        ct = self.record("ciphertext", {"C": pk["h"] ** s, "Ci": Ci, "Cpi": Cpi}, policy=str(target))
        return pk["e_gg_alpha"] ** s, ct

    def decapsulate(self, key: Record, ct: Record) -> Element:
        self.check(key, "user")
        self.check(ct, "ciphertext")
        grp = self.group
        policy = policy_of(key, ct)
        lsss = policy.lsss
        if not len(ct["Ci"]) == len(ct["Cpi"]) == lsss.n_rows:
            raise InvalidCiphertext("ciphertext rows do not match its policy")
        omega = coefficients_or_refuse(lsss, key["Dj"].keys(), grp.order, policy)
        # e(D, C) / prod (e(D_j, C_i) / e(C'_i, D'_j))^{w_i}, as one multi-pairing: the weights
        # and the divisions move to the G1 sides
        pairs = [(key["D"], ct["C"])]
        for i, w in omega.items():
            label = lsss.rho[i]
            pairs.append((signed(key["Dj"][label], -w), ct["Ci"][i]))
            pairs.append((signed(ct["Cpi"][i], w), key["Dpj"][label]))
        return grp.pair_prod(pairs)
