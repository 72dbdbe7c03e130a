"""RW15 multi-authority CP-ABE (Rouselakis & Waters, "Efficient Statically-Secure Large-Universe
Multi-Authority Attribute-Based Encryption", FC 2015, section 4), as a KEM.

Any number of authorities set up independently (no coordination, added at any time); each issues
keys for its own attributes `name@authority` to a user's global identifier GID. Keys of one GID
from several authorities combine; keys of different GIDs do not (H(GID) ties them together).

Type-III adaptation. Global hashes H(GID) and F(attribute) land in G1; every pairing takes one
side from each source group:
- authority theta: alpha, y; public key e(g1, g2)^alpha in GT and g2^y in G2;
- key for (GID, u): K = g1^alpha H(GID)^y F(u)^t in G1, K' = g2^t in G2;
- ciphertext, row x with shares lambda_x (of z) and omega_x (of 0), fresh t_x:
  C1 = e(g1,g2)^lambda_x (e(g1,g2)^alpha)^{t_x} in GT, C2 = g2^{-t_x} in G2,
  C3 = (g2^y)^{t_x} g2^{omega_x} in G2, C4 = F(u)^{t_x} in G1;
- decryption: C1 e(K, C2) e(H(GID), C3) e(C4, K') = e(g1,g2)^lambda_x e(H(GID), g2)^omega_x, and
  with sum c_x lambda_x = z, sum c_x omega_x = 0 the product is the key e(g1, g2)^z. The rows'
  e(H(GID), C3_x) share H(GID) and fold into one pairing e(H(GID), prod C3_x^{c_x}).
Trust: an authority alone can decrypt only policies satisfiable with its own attributes; users
of different GIDs cannot pool keys; the scheme is statically secure (the adversary fixes its
corrupt authorities and queries up front), as proven in the paper.

Expiry. The same binding through H(GID) means that the attributes one authority issues to one
GID accumulate: components from two issuances (each attribute with fresh t) combine, by design,
into one key, so a key's attributes are facts about the GID, not a bundle. A key-wide
`valid_until` attribute therefore cannot limit the other attributes of its issuance: an expired
`emergency` key and a fresh key of the same GID without `emergency` but with a later
`valid_until` together satisfy `emergency and valid_until >= TODAY`. So an attribute that must
expire carries its own last day as its value (`emergency = 2026-12-31`), and policies test it with
one comparison on that attribute (`emergency >= 2026-12-01@ER`); numeric values are prefix labels
(`abe_health.policy.numeric`), each certifying an interval that contains the key's value, so two
issuances never combine into a date neither holds. `keygen` refuses a `valid_until` attribute.

Ranges. For the same reason two comparisons on one attribute that must both hold
(`ward >= 3@H and ward <= 5@H`) would each be satisfied by a different issuance (`ward = 7`,
`ward = 2`). The policy compiler merges them into the exact range (`ward in 3..5@H`: one label of
one issuance certifies it), and `encapsulate` refuses, through `Policy.check_pooled`, the shapes it
cannot merge, such as `(ward >= 3@H or doctor@H) and ward <= 5@H`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ...errors import InvalidCiphertext, InvalidKey
from ...policy import Attribute, KeyAttributes, Policy
from ...policy.ast import leaves
from ..pairing import Element
from .base import Record, SchemeBase
from .common import coefficients_or_refuse, policy_of, row_product, signed

AUTHORITY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}\Z")
#: a key-wide expiry attribute, meaningless in RW15 (see the module docstring)
KEY_WIDE_EXPIRY = "valid_until"


class RW15(SchemeBase):
    name = "rw15"
    policy_in = "ciphertext"
    PAIRING_ONLY = frozenset({"C4"})  # C4_x only enters e(C4_x, K'_x)
    DST = b"abe-health/rw15/v1/"
    LAYOUTS = {
        "public": {"e_gg_alpha": "GT", "g2_y": "G2"},
        "master": {"alpha": "Zr", "y": "Zr"},
        "user": {"K": ("map", "G1"), "Kp": ("map", "G2")},
        "ciphertext": {"C1": ("list", None, "GT"), "C2": ("list", None, "G2"),
                       "C3": ("list", None, "G2"), "C4": ("list", None, "G1")},
    }

    def _gid(self, gid: str) -> Element:
        return self.hash_g1(b"GID", gid.encode())

    def authority_setup(self, authority: str) -> tuple[Record, Record]:
        """A new authority's (public key, secret key); `authority` names it in policies."""
        if not AUTHORITY_NAME.match(authority):
            raise InvalidKey(f"authority name {authority!r} must be a plain word (letters, digits, _ . -)")
        grp = self.group
        alpha, y = grp.random_zr(), grp.random_zr()
        pk = self.record("public", {"e_gg_alpha": grp.generator("GT") ** alpha,
                                    "g2_y": grp.generator("G2") ** y}, authority=authority)
        return pk, self.record("master", {"alpha": alpha, "y": y}, authority=authority)

    def keygen(self, pk: Record, sk: Record, gid: str, attributes: KeyAttributes) -> Record:
        """Keys of user `gid` for attributes of this authority (`doctor` means `doctor@<it>`)."""
        self.check(pk, "public")
        self.check(sk, "master")
        authority = sk.meta.get("authority")
        if pk.meta.get("authority") != authority:
            raise InvalidKey("the public and secret keys belong to different authorities")
        if not gid or not isinstance(gid, str):
            raise InvalidKey("a user key needs a non-empty global identifier (GID)")
        own = []
        for attr in attributes.attributes:
            if attr.name == KEY_WIDE_EXPIRY:
                raise InvalidKey(
                    f"RW15 keys cannot carry {KEY_WIDE_EXPIRY}: attributes issued to one GID "
                    "accumulate across issuances, so it would not limit the others; give the "
                    "attribute that must expire its last day as its value (e.g. "
                    "'emergency = 2026-12-31') and test it in policies with 'emergency >= DATE@"
                    f"{authority}'")
            if attr.authority not in (None, authority):
                raise InvalidKey(f"authority {authority} cannot issue {attr} "
                                 f"(it belongs to {attr.authority})")
            own.append(Attribute(attr.name, attr.value, authority))
        subject = KeyAttributes(tuple(own), attributes.widths)
        grp = self.group
        g1, g2 = grp.generator("G1"), grp.generator("G2")
        base = g1 ** sk["alpha"] * self._gid(gid) ** sk["y"]
        K, Kp = {}, {}
        for label in sorted(subject.labels):
            t = grp.random_zr()
            K[label] = base * self.hash_attribute(label) ** t
            Kp[label] = g2**t
        return self.record("user", {"K": K, "Kp": Kp}, authority=authority, gid=gid,
                           attributes=[str(a) for a in own], widths=dict(attributes.widths))

    def encapsulate(self, pks: Mapping[str, Record], policy: Policy) -> tuple[Element, Record]:
        """A random GT key under a policy whose every attribute names an authority in `pks`;
        PolicySyntaxError for a policy whose parts on one numeric subject two keys of one GID
        could satisfy with different values (see the module docstring)."""
        for name, pk in pks.items():
            self.check(pk, "public")
            if pk.meta.get("authority") != name:
                raise InvalidKey(f"public key given for {name!r} is authority {pk.meta.get('authority')!r}")
        policy.check_pooled()  # keys of one GID pool: no subject may be split between them
        grp = self.group
        lsss = policy.lsss
        rows = leaves(policy.expanded)
        anonymous = [str(leaf) for leaf in leaves(policy.tree) if leaf.authority is None]
        if anonymous:
            raise InvalidKey("a multi-authority policy names the authority of every attribute "
                             f"(name@authority); missing for: {', '.join(anonymous[:5])}")
        missing = sorted({str(leaf.authority) for leaf in rows if leaf.authority not in pks})
        if missing:
            raise InvalidKey(f"the policy needs the public key of authority {', '.join(missing)}")
        z = grp.random_zr()
        lam = lsss.shares(z, grp.order)
        omega = lsss.shares(0, grp.order)
        e_gg, g2 = grp.generator("GT"), grp.generator("G2")
        C1, C2, C3, C4 = [], [], [], []
        for x, leaf in enumerate(rows):
            pk = pks[str(leaf.authority)]
            t = grp.random_zr()
            C1.append(e_gg ** lam[x] * pk["e_gg_alpha"] ** t)
            C2.append(g2 ** (-t))
            C3.append(grp.multi_exp([pk["g2_y"], g2], [t, omega[x]]))
            C4.append(self.hash_attribute(lsss.rho[x]) ** t)
        ct = self.record("ciphertext", {"C1": C1, "C2": C2, "C3": C3, "C4": C4}, policy=str(policy),
                         authorities=sorted(pks))
        return e_gg**z, ct

    def decapsulate(self, keys: Sequence[Record], ct: Record) -> Element:
        """The key of `ct` from one user's keys (one or more authorities, one GID)."""
        if not keys:
            raise InvalidKey("decryption needs at least one user key")
        for key in keys:
            self.check(key, "user")
        self.check(ct, "ciphertext")
        gids = {key.meta.get("gid") for key in keys}
        if len(gids) != 1:
            raise InvalidKey(f"keys of different users (GIDs {', '.join(sorted(map(str, gids)))}) "
                             "cannot be combined")
        t1, paired = self.decapsulate_parts(keys, ct, self._gid(str(gids.pop())))
        return t1 * paired

    def decapsulate_parts(self, keys: Sequence[Record], ct: Record, hgid: Element
                          ) -> tuple[Element, Element]:
        """(prod C1_x^{c_x}, e(hgid, prod C3_x^{c_x}) prod e(K_x^{c_x}, C2_x) e(C4_x^{c_x}, K'_x))
        over the rows the keys use: their product is the key when hgid = H(GID). Outsourced
        decryption calls this with blinded keys and H(GID)^{1/z} (`hazmat.outsource`)."""
        K = {label: v for key in keys for label, v in key["K"].items()}
        Kp = {label: v for key in keys for label, v in key["Kp"].items()}
        grp = self.group
        policy = policy_of(keys[0], ct)
        lsss = policy.lsss
        if not all(len(ct[p]) == lsss.n_rows for p in ("C1", "C2", "C3", "C4")):
            raise InvalidCiphertext("ciphertext rows do not match its policy")
        coeff = coefficients_or_refuse(lsss, K.keys(), grp.order, policy)
        rows = sorted(coeff)
        weights = [coeff[x] for x in rows]
        # the pairings as one multi-pairing, the weights moved to the G1 sides
        pairs = [(hgid, row_product([ct["C3"][x] for x in rows], weights))]
        for x, w in zip(rows, weights, strict=True):
            label = lsss.rho[x]
            pairs.append((signed(K[label], w), ct["C2"][x]))
            pairs.append((signed(ct["C4"][x], w), Kp[label]))
        return row_product([ct["C1"][x] for x in rows], weights), grp.pair_prod(pairs)
