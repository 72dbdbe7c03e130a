"""FAME CP-ABE and KP-ABE (Agrawal & Chase, "FAME: Fast Attribute-based Message Encryption",
CCS 2017, eprint 2017/807; section 3 and appendix B), with k = 2 (DLIN), as KEMs.

FAME is designed for Type-III groups: the public key and ciphertext component [As] live in
G2 (h^{a1 s1}, h^{a2 s2}, h^{s1+s2}); attribute and column hashes H(x, l, t) and the key's
per-attribute components live in G1; sk0 = [Br] lives in G2. Decryption is 6 pairings for any
policy: three pair ciphertext rows (G1) with sk0 (G2), three pair key rows (G1) with ct0 (G2).

As a KEM the message factor of the paper's ct' is dropped: the key is K = T1^{s1} T2^{s2} with
T_t = e(g, h)^{d_t a_t + d_3}, and decryption returns den / num, which the paper's
ct' * num / den = msg shows equals K. The master key keeps d1..d3 as exponents (the paper keeps
g^{d_t}) so that g^{d_t + sigma/a_t} costs one exponentiation instead of two.
Column j of the LSSS (0 = the secret's column) is hashed as H(0jlt); attribute y as H(ylt).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

from ...errors import InvalidCiphertext, InvalidKey
from ...policy import KeyAttributes, Policy
from ..pairing import Element
from .base import Record, Scheme
from .common import coefficients_or_refuse, exp, policy_of, row_product

G1x3 = ("list", 3, "G1")
G2x3 = ("list", 3, "G2")
#: columns whose hashes H(0jlt) ship precomputed (fame_columns.bin), per scheme: a fresh process
#: decodes one (0.014 ms) instead of hashing it to the curve (0.08 ms); an AND of N uses N columns
TABLE_COLUMNS = 64
TABLE_FILE = Path(__file__).with_name("fame_columns.bin")
TABLE_GROUP = "mcl:BLS12-381"


def column_table(scheme: _Fame) -> bytes:
    """The compressed points H(0jlt) for j < TABLE_COLUMNS, l < 3, t < 2, in that order: what
    fame_columns.bin holds for FAME CP, then FAME KP (tests/test_validation.py recomputes it)."""
    return b"".join(scheme.group.hash_to_g1(scheme.DST + b"C" + bytes([l, t]), j.to_bytes(4, "big"))
                    .to_bytes() for j in range(TABLE_COLUMNS) for l in range(3) for t in range(2))


@cache
def _table(name: str) -> bytes | None:
    """The shipped table of scheme `name`, or None if the file is absent or not the right size
    (then columns are hashed, as before: the table only saves time)."""
    try:
        data = TABLE_FILE.read_bytes()
    except OSError:
        return None
    size = TABLE_COLUMNS * 6 * 48
    if len(data) != 2 * size:
        return None
    return data[:size] if name == "fame" else data[size:]


class _Fame(Scheme):
    """Setup, hashing and the shared pieces of FAME CP and KP."""

    def _h(self, label: str, l: int, t: int) -> Element:
        return self.hash_g1(b"A" + bytes([l, t]), label.encode())

    def _col(self, j: int, l: int, t: int) -> Element:
        tag, msg = b"C" + bytes([l, t]), j.to_bytes(4, "big")
        if j < TABLE_COLUMNS and (tag, msg, "G1") not in self._hash_cache \
                and self.group.id == TABLE_GROUP:
            table = _table(self.name)
            if table is not None:  # the package's own precomputed hashes: decoded, not re-hashed
                at = ((j * 3 + l) * 2 + t) * 48
                self._hash_cache[(tag, msg, "G1")] = self.group.decode_for_pairing(
                    "G1", table[at:at + 48])
        return self.hash_g1(tag, msg)

    def setup(self, widths: Mapping[str, int] | None = None) -> tuple[Record, Record]:
        grp = self.group
        a = [grp.random_zr(), grp.random_zr()]
        b = [grp.random_zr(), grp.random_zr()]
        d = [grp.random_zr() for _ in range(3)]
        h, e_gh = grp.generator("G2"), grp.generator("GT")
        pk = self.record("public", {
            "H": [h ** a[0], h ** a[1]],
            "T": [e_gh ** ((d[0] * a[0] + d[2]) % grp.order), e_gh ** ((d[1] * a[1] + d[2]) % grp.order)],
        }, widths=dict(widths or {}))
        msk = self.record("master", {"a": a, "b": b, "d": d})
        return pk, msk

    def _key_randomness(self, msk: Record) -> tuple[list[int], list[Element]]:
        """beta = (b1 r1, b2 r2, r1 + r2) and sk0 = h^beta."""
        grp = self.group
        r1, r2 = grp.random_zr(), grp.random_zr()
        b = msk["b"]
        beta = [b[0] * r1 % grp.order, b[1] * r2 % grp.order, (r1 + r2) % grp.order]
        h = grp.generator("G2")
        return beta, [h**x for x in beta]

    def _encap_randomness(self, pk: Record) -> tuple[int, int, list[Element], Element]:
        grp = self.group
        s1, s2 = grp.random_zr(), grp.random_zr()
        ct0 = [pk["H"][0] ** s1, pk["H"][1] ** s2, grp.generator("G2") ** (s1 + s2)]
        return s1, s2, ct0, pk["T"][0] ** s1 * pk["T"][1] ** s2

    def _unwrap(self, ct0: list[Element], sk0: list[Element],
                ct_rows: list[list[Element]], ct_weights: list[int],
                key_rows: list[list[Element]], key_weights: list[int]) -> Element:
        """den / num of the paper: 3 pairings of key rows with ct0, 3 of ct rows with sk0, as
        one multi-pairing (num's G1 sides inverted, so one final exponentiation serves all 6)."""
        den = [(row_product([r[t] for r in key_rows], key_weights), ct0[t]) for t in range(3)]
        num = [(~row_product([r[l] for r in ct_rows], ct_weights), sk0[l]) for l in range(3)]
        return self.group.pair_prod(den + num)


class FameCP(_Fame):
    """FAME ciphertext-policy ABE."""

    name = "fame"
    policy_in = "ciphertext"
    PAIRING_ONLY = frozenset({"ct"})  # each row's G1 elements are aggregated, then paired with sk0
    PAIRING_FORM = PAIRING_ONLY  # 3 G1 points a row: decompressing them cost most of decryption
    DST = b"abe-health/fame-cp/v1/"
    LAYOUTS = {
        "public": {"H": ("list", 2, "G2"), "T": ("list", 2, "GT")},
        "master": {"a": ("list", 2, "Zr"), "b": ("list", 2, "Zr"), "d": ("list", 3, "Zr")},
        "user": {"sk0": G2x3, "sk": ("map", G1x3), "skp": G1x3},
        "ciphertext": {"ct0": G2x3, "ct": ("list", None, G1x3)},
    }

    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        self.key_subject(pk, msk, subject)
        assert isinstance(subject, KeyAttributes)  # key_subject checked the type
        grp, q = self.group, self.group.order
        g = grp.generator("G1")
        beta, sk0 = self._key_randomness(msk)
        inv_a = [pow(a, -1, q) for a in msk["a"]]

        def component(hashes: list[list[Element]], extra: list[int]) -> list[Element]:
            """(prod_l H_l,t^{beta_l / a_t} * g^{extra_t}) for t = 1, 2 (one 4-term
            multi-exponentiation each: about half the cost of 4 exponentiations), and g^{extra_3}."""
            out = [grp.multi_exp([g, *(hashes[l][t] for l in range(3))],
                                 [extra[t], *(beta[l] * inv_a[t] for l in range(3))])
                   for t in range(2)]
            out.append(g ** extra[2])
            return out

        sk = {}
        for label in sorted(subject.labels):
            sigma = grp.random_zr()
            hashes = [[self._h(label, l, t) for t in range(2)] for l in range(3)]
            sk[label] = component(hashes, [sigma * inv_a[0], sigma * inv_a[1], -sigma])
        sigma_p = grp.random_zr()
        d = msk["d"]
        hashes = [[self._col(0, l, t) for t in range(2)] for l in range(3)]
        skp = component(hashes, [d[0] + sigma_p * inv_a[0], d[1] + sigma_p * inv_a[1], d[2] - sigma_p])
        return self.record("user", {"sk0": sk0, "sk": sk, "skp": skp},
                           attributes=[str(a) for a in subject.attributes],
                           widths=pk.meta.get("widths", {}))

    def encapsulate(self, pk: Record, target: Policy | KeyAttributes) -> tuple[Element, Record]:
        self.encap_target(pk, target)
        assert isinstance(target, Policy)  # encap_target checked the type
        lsss = target.lsss
        grp = self.group
        s1, s2, ct0, key = self._encap_randomness(pk)
        s = (s1, s2)
        ct = []
        for row, label in zip(lsss.rows, lsss.rho, strict=True):
            comps = []
            for l in range(3):
                bases = []
                for t in range(2):
                    base = self._h(label, l, t)
                    for j, m in row:
                        base = base * exp(self._col(j, l, t), m)
                    bases.append(base)
                comps.append(grp.multi_exp(bases, s))  # base_1^{s1} base_2^{s2}, one 2-term MSM
            ct.append(comps)
        return key, self.record("ciphertext", {"ct0": ct0, "ct": ct}, policy=str(target))

    def decapsulate(self, key: Record, ct: Record) -> Element:
        self.check(key, "user")
        self.check(ct, "ciphertext")
        policy = policy_of(key, ct)
        lsss = policy.lsss
        if len(ct["ct"]) != lsss.n_rows:
            raise InvalidCiphertext("ciphertext rows do not match its policy")
        omega = coefficients_or_refuse(lsss, key["sk"].keys(), self.group.order, policy)
        rows = sorted(omega)
        weights = [omega[i] for i in rows]
        return self._unwrap(
            ct["ct0"], key["sk0"],
            [ct["ct"][i] for i in rows], weights,
            [*(key["sk"][lsss.rho[i]] for i in rows), key["skp"]], [*weights, 1],
        )


class FameKP(_Fame):
    """FAME key-policy ABE (appendix B): the policy's LSSS is in the key."""

    name = "fame-kp"
    policy_in = "key"
    PAIRING_ONLY = frozenset({"ct"})  # each attribute's G1 elements are aggregated, then paired
    PAIRING_FORM = PAIRING_ONLY  # as in FAME CP
    DST = b"abe-health/fame-kp/v1/"
    LAYOUTS = {
        "public": FameCP.LAYOUTS["public"],
        "master": FameCP.LAYOUTS["master"],
        "user": {"sk0": G2x3, "sk": ("list", None, G1x3)},
        "ciphertext": {"ct0": G2x3, "ct": ("map", G1x3)},
    }

    def keygen(self, pk: Record, msk: Record, subject: KeyAttributes | Policy) -> Record:
        self.key_subject(pk, msk, subject)
        assert isinstance(subject, Policy)  # key_subject checked the type
        grp, q = self.group, self.group.order
        g = grp.generator("G1")
        lsss = subject.lsss
        beta, sk0 = self._key_randomness(msk)
        inv_a = [pow(a, -1, q) for a in msk["a"]]
        d = msk["d"]
        sigma_col = [0] + [grp.random_zr() for _ in range(lsss.n_cols - 1)]
        sk = []
        for row, label in zip(lsss.rows, lsss.rho, strict=True):
            sigma = grp.random_zr()
            m1 = dict(row).get(0, 0)
            col_sigma = sum(m * sigma_col[j] for j, m in row if j) % q
            comps = []
            for t in range(2):
                bases = [g]
                for l in range(3):
                    base = self._h(label, l, t)
                    for j, m in row:
                        if j:
                            base = base * exp(self._col(j, l, t), m)
                    bases.append(base)
                exponents = [m1 * d[t] + (sigma + col_sigma) * inv_a[t],
                             *(beta[l] * inv_a[t] for l in range(3))]
                comps.append(grp.multi_exp(bases, exponents))  # one 4-term multi-exponentiation
            comps.append(g ** (m1 * d[2] - sigma - col_sigma))
            sk.append(comps)
        return self.record("user", {"sk0": sk0, "sk": sk}, policy=str(subject),
                           widths=pk.meta.get("widths", {}))

    def encapsulate(self, pk: Record, target: Policy | KeyAttributes) -> tuple[Element, Record]:
        self.encap_target(pk, target)
        assert isinstance(target, KeyAttributes)  # encap_target checked the type
        s1, s2, ct0, key = self._encap_randomness(pk)
        ct = {
            label: [self.group.multi_exp([self._h(label, l, 0), self._h(label, l, 1)], [s1, s2])
                    for l in range(3)]
            for label in sorted(target.labels)
        }
        return key, self.record("ciphertext", {"ct0": ct0, "ct": ct},
                                attributes=[str(a) for a in target.attributes])

    def decapsulate(self, key: Record, ct: Record) -> Element:
        self.check(key, "user")
        self.check(ct, "ciphertext")
        policy = policy_of(key, key)
        lsss = policy.lsss
        if len(key["sk"]) != lsss.n_rows:
            raise InvalidKey("key rows do not match its policy")
        omega = coefficients_or_refuse(lsss, ct["ct"].keys(), self.group.order, policy, kp=True)
        rows = sorted(omega)
        weights = [omega[i] for i in rows]
        return self._unwrap(ct["ct0"], key["sk0"], [ct["ct"][lsss.rho[i]] for i in rows], weights,
                            [key["sk"][i] for i in rows], weights)
