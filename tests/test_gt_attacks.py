"""Attacks by a malicious transformation cloud on outsourced decryption, from an independent
review of GT compression, the GT membership test and transformed headers v2: small-subgroup
probes of z in every encoding, RW15's unchecked T1, canonical compression, format versions, and
a cloud that keeps a pinned header's digest but serves a wrap of its own under a K it knows
(found by the review; fixed by pinning the wrap too: `header_digest`)."""

from __future__ import annotations

import ctypes
import io
import os
import secrets
import struct
from math import gcd

import cbor2
import pytest

from abe_health import CPABE, Authority, MultiAuthorityRecipient, PolicyRecipient, encrypt
from abe_health.devices import blind, header_digest, retrieve, transform_file
from abe_health.devices import transformed as tformat
from abe_health.errors import InvalidCiphertext, InvalidEncoding
from abe_health.hazmat import outsource
from abe_health.hazmat.envelope import seal_payload, wrap_dek
from abe_health.hazmat.pairing import fp12, get_group, mcl
from abe_health.policy import Policy
from tests.test_outsource import _core, _rebuild

GROUP = get_group("mcl")
P, U, R = fp12.P, fp12.U, GROUP.order
LIB = mcl._LIB
NORM1 = P**6 + 1  # the order of the norm-1 subgroup, which holds every decompressed value
PLAIN = b'{"resourceType": "Observation", "value": 72}' * 40


# -- helpers: generic Fp12 arithmetic through mcl (no GLV, valid for any value) ------------------

def _values(raw) -> tuple[int, ...]:
    out = ctypes.create_string_buffer(fp12.SIZE)
    LIB.mclBnGT_serialize(out, fp12.SIZE, raw)
    values = fp12.parse(out.raw)
    assert values is not None
    return values


def _copy(raw):
    out = mcl._RawGT()
    ctypes.memmove(out, raw, ctypes.sizeof(out))
    return out


def _pow(raw, e: int):
    """raw^e for any Fp12 value and any e >= 0, by generic squarings and multiplications."""
    acc = mcl._RawGT()
    LIB.mclBnGT_setInt32(acc, 1)
    base = _copy(raw)
    while e:
        if e & 1:
            LIB.mclBnGT_mul(acc, acc, base)
        LIB.mclBnGT_sqr(base, base)
        e >>= 1
    return acc


def _mul(x, y):
    out = mcl._RawGT()
    LIB.mclBnGT_mul(out, x, y)
    return out


def _is_one(raw) -> bool:
    return bool(LIB.mclBnGT_isOne(raw))


def _random_norm1():
    c = b"".join(secrets.randbelow(P).to_bytes(48, "little") for _ in range(6))
    return GROUP.decompress_gt(c, check=False)._v


def _of_order(q: int):
    """An element of exact prime order q of the norm-1 subgroup (q divides (p^6 + 1) / r)."""
    assert NORM1 % q == 0
    while True:
        h = _pow(_random_norm1(), NORM1 // q)
        if not _is_one(h):
            assert _is_one(_pow(h, q))
            return h


def _member():
    return GROUP.generator("GT") ** GROUP.random_zr()


#: every prime below 2^17 dividing (p^6 + 1) / r: 2 (only -1), 5, 37, 73, 89 (in p^2 + 1), 4513
SMALL = (2, 5, 37, 73, 89, 4513)


# -- claim 1: membership ---------------------------------------------------------------------------

def test_membership_math():
    assert U < 0 and R == U**4 - U**2 + 1
    assert gcd(NORM1, P - U) == R
    assert NORM1 % (R * R) != 0  # r appears once: the r-part of the norm-1 group is exactly GT
    assert (P - U) % R == 0  # members satisfy f^p == f^u
    cofactor, small = NORM1 // R, []
    for q in range(2, 1 << 17):
        if cofactor % q == 0:
            small.append(q)
            while cofactor % q == 0:
                cofactor //= q
    assert tuple(small) == SMALL
    # sign of u: f^p == f^u (u < 0) for a member, via mcl's GLV power with the negative exponent
    f = _member()
    assert fp12.serialize(fp12.frobenius(fp12.parse(f.to_bytes()))) == (f**U).to_bytes()
    # the constant |u| the test raises to
    out = ctypes.create_string_buffer(32)
    LIB.mclBnFr_serialize(out, 32, mcl._U_ABS)
    assert int.from_bytes(out.raw, "little") == -U


@pytest.mark.parametrize("q", (*SMALL, 5 * 37, 73 * 4513))
def test_member_times_small_order_is_refused_in_every_form(q):
    """T * h, h of small order q (the small-subgroup probe of z), and h alone: refused by the
    full decoding (v1), by the compressed decoding (v2) and by the raw test, as by x^r == 1."""
    factors = {5 * 37: (5, 37), 73 * 4513: (73, 4513)}.get(q, (q,))
    h = _of_order(factors[0])
    for f in factors[1:]:
        h = _mul(h, _of_order(f))
    for value in (_mul(_member()._v, h), h):
        assert not mcl._in_gt(value) and not LIB.mclBnGT_isValid(value)
        element = mcl.GT(value)
        with pytest.raises(InvalidEncoding, match="order-r subgroup"):
            GROUP.deserialize("GT", element.to_bytes())
        if q == 2 and value is h:  # -1 has no compressed form at all
            with pytest.raises(InvalidEncoding, match="no compressed form"):
                GROUP.compress_gt(element)
            continue
        c = GROUP.compress_gt(element)
        assert GROUP.decompress_gt(c, check=False) == element  # it is encodable ...
        with pytest.raises(InvalidEncoding, match="order-r subgroup"):
            GROUP.decompress_gt(c)  # ... and refused when checked


def test_membership_edge_values():
    zero, one = (0,) * 12, (1,) + (0,) * 11
    minus_one = (P - 1,) + (0,) * 11
    w = (0,) * 6 + (1,) + (0,) * 5  # w itself: norm -v, not 1
    i_unit = (0, 1) + (0,) * 10  # i in Fp2: norm i^2 = -1
    for values in (zero, minus_one, w, i_unit):
        assert not mcl._in_gt(mcl._gt_raw(fp12.serialize(values)))
    assert mcl._in_gt(mcl._gt_raw(fp12.serialize(one)))
    # values >= p in the full form: refused by mcl's decoding, before any test
    good = _member().to_bytes()
    for slot in range(12):
        for big in (P, P + 1, (1 << 384) - 1):
            bad = good[:48 * slot] + big.to_bytes(48, "little") + good[48 * (slot + 1):]
            with pytest.raises(InvalidEncoding):
                GROUP.deserialize("GT", bad)


def test_generic_power_is_what_the_test_needs():
    """mcl's GLV power (mclBnGT_pow) is only right on GT; on a norm-1 non-member it does not give
    h^|u|, so a test built on it would be unsound. The test uses the generic power: check it."""
    h = _of_order(89)
    generic = mcl._RawGT()
    LIB.mclBnGT_powGeneric(generic, h, mcl._U_ABS)
    assert _values(generic) == _values(_pow(h, -U))


# -- claim 2: compression --------------------------------------------------------------------------

def test_compressed_form_is_canonical():
    f = _member()
    good = GROUP.compress_gt(f)
    assert GROUP.decompress_gt(bytearray(good)) == f == GROUP.decompress_gt(good)
    for bad in (memoryview(good), good.hex(), None, 7, list(good)):
        with pytest.raises(InvalidEncoding):
            GROUP.decompress_gt(bad)  # type: ignore[arg-type]
    for slot in range(6):
        for big in (P, P + 1, P + int.from_bytes(good[48 * slot:48 * (slot + 1)], "little"),
                    (1 << 384) - 1):
            if big >= 1 << 384:
                continue
            bad = good[:48 * slot] + big.to_bytes(48, "little") + good[48 * (slot + 1):]
            with pytest.raises(InvalidEncoding, match="non-canonical"):
                GROUP.decompress_gt(bad)
            with pytest.raises(InvalidEncoding, match="non-canonical"):
                GROUP.decompress_gt(bad, check=False)
    # the identity: exactly 288 zero bytes, both ways; -1 (what c = 0 would mean) is never made
    assert GROUP.compress_gt(GROUP.identity("GT")) == bytes(288)
    assert GROUP.decompress_gt(bytes(288)).is_identity()
    assert GROUP.decompress_gt(bytes(288), check=False).is_identity()
    # one form per element: compress(decompress(c)) == c for random canonical c (norm 1 always)
    for _ in range(20):
        c = b"".join(secrets.randbelow(P).to_bytes(48, "little") for _ in range(6))
        f = GROUP.decompress_gt(c, check=False)
        values = fp12.parse(f.to_bytes())
        assert _is_one(_mul(f._v, mcl._gt_raw(fp12.serialize(fp12.conjugate(values)))))
        assert GROUP.compress_gt(f) == c
        assert not f.is_identity() and f != mcl.GT(mcl._gt_raw(fp12.serialize((P - 1,) + (0,) * 11)))


# -- claims 3 and 4 through the device -------------------------------------------------------------

@pytest.fixture(scope="module")
def rw15():
    hospital, university = Authority.setup("hospitalA"), Authority.setup("university")
    tk, rk = blind(hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"]))
    blob = encrypt(PLAIN, None, MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                                        [hospital.public_key, university.public_key]))
    return tk, rk, blob, transform_file(tk, blob, None)


@pytest.fixture(scope="module")
def fame():
    cp = CPABE.setup()
    tk, rk = blind(cp.keygen(["doctor"]))
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "doctor"))
    return cp, tk, rk, blob, transform_file(tk, blob, None)


@pytest.mark.parametrize("q", [5, 37, 4513])
def test_rw15_residue_probe_is_refused(rw15, q):
    """The cloud's small-subgroup probe of z: T1' = T1 h^-j, T2' = T2 h would open iff z = j
    (mod q). Every residue is refused at decoding (v2 and v1), so nothing depends on z."""
    _tk, rk, _blob, out = rw15
    core, _ = _core(out)
    t1 = GROUP.decompress_gt(core["t"][0], check=False)
    t2 = GROUP.decompress_gt(core["t"][1])
    h = mcl.GT(_of_order(q))
    assert outsource.retrieve(GROUP, [t1, t2], rk.z) == outsource.retrieve(GROUP, [t1, t2], rk.z)
    hits = []
    for j in range(min(q, 8)):
        t1j = t1 * mcl.GT(_pow(h._v, (q - j) % q))
        t2h = t2 * h
        # without the test the device would accept exactly one residue: confirm the probe is real
        k = t1j * mcl.GT(_pow(t2h._v, rk.z))  # generic power: what an unchecked device computes
        hits.append(k == outsource.retrieve(GROUP, [t1, t2], rk.z))
        for forged in (_rebuild(out, t=[GROUP.compress_gt(t1j), GROUP.compress_gt(t2h)]),
                       _rebuild(out, b"ABT1", v=1, t=[t1j.to_bytes(), t2h.to_bytes()])):
            with pytest.raises(InvalidCiphertext, match="order-r subgroup"):
                retrieve(forged, None, rk)
    assert hits.count(True) == (1 if rk.z % q < min(q, 8) else 0)


def test_rw15_unchecked_t1_never_opens(rw15):
    """T1 decoded without the test: any T1' != T1 (small order, norm-1 non-member, GT, identity,
    T1 times those) with the true T2 gives K' != K, whatever z."""
    _tk, rk, _blob, out = rw15
    core, _ = _core(out)
    t1 = GROUP.decompress_gt(core["t"][0], check=False)
    others = [mcl.GT(_of_order(5)), mcl.GT(_random_norm1()), _member(), GROUP.identity("GT")]
    for other in others + [t1 * o for o in others]:
        if other == t1:
            continue
        with pytest.raises(InvalidCiphertext, match="transformation is wrong"):
            retrieve(_rebuild(out, t=[GROUP.compress_gt(other), core["t"][1]]), None, rk)
    assert retrieve(out, None, rk) == PLAIN


def test_format_versions_and_sizes(rw15):
    _tk, rk, _blob, out = rw15
    core, _ = _core(out)
    full = [GROUP.decompress_gt(core["t"][0], check=False).to_bytes(),
            GROUP.decompress_gt(core["t"][1]).to_bytes()]
    assert retrieve(_rebuild(out, b"ABT1", v=1, t=full), None, rk) == PLAIN
    # v1 checks T1 too; v2 with full elements and v1 with compressed ones are refused
    with pytest.raises(InvalidCiphertext, match="order-r subgroup"):
        retrieve(_rebuild(out, b"ABT1", v=1, t=[(GROUP.decompress_gt(core["t"][0], check=False)
                                                   * mcl.GT(_of_order(5))).to_bytes(), full[1]]),
                 None, rk)
    for magic, v, t in ((tformat.MAGIC, 2, full), (b"ABT1", 1, core["t"]), (b"ABT1", 2, full),
                        (tformat.MAGIC, 1, core["t"]), (b"ABT3", 3, core["t"]),
                        (tformat.MAGIC, 2, core["t"][:1]), (tformat.MAGIC, 2, core["t"] * 2)):
        with pytest.raises(InvalidCiphertext):
            retrieve(_rebuild(out, magic, v=v, t=t), None, rk)
    big = tformat.MAGIC + struct.pack(">I", tformat.MAX_CORE + 1) + bytes(tformat.MAX_CORE + 1)
    with pytest.raises(InvalidCiphertext, match="exceeds"):
        retrieve(big, None, rk)


def test_version_field_is_an_exact_integer(rw15):
    _tk, rk, _blob, out = rw15
    with pytest.raises(InvalidCiphertext):
        retrieve(_rebuild(out, v=2.0), None, rk)


# -- a pinned header pins its wrap too (v1 and v2) ----------------------------------------------

def _forge(out: bytes, parts, known_k, fake: bytes, context: bytes = b"") -> bytes:
    """A transformed file that names the pinned header (`header` kept) but carries a wrap the
    cloud made itself, under a K it knows, around a data key and payload of its choosing."""
    core, _ = _core(out)
    dek, salt = os.urandom(32), os.urandom(32)
    payload = io.BytesIO()
    seal_payload(dek, salt, core["chunk"], io.BytesIO(fake), payload)
    core.update(t=[GROUP.compress_gt(p) for p in parts], salt=salt,
                wrap=wrap_dek(known_k, dek, core["header"], context))
    raw = cbor2.dumps(core)
    return tformat.MAGIC + struct.pack(">I", len(raw)) + raw + payload.getvalue()


def _refused_or_fail(forged: bytes, rk, pinned: bytes) -> None:
    try:
        got = retrieve(forged, None, rk, expect_header=pinned)
    except InvalidCiphertext:
        return  # the secure outcome
    pytest.fail(f"pinned retrieval accepted the cloud's data key; plaintext {got!r}")


def test_fame_pinned_header_refuses_a_cloud_chosen_key(fame):
    """The cloud encrypts a key of its own to the device's attributes (ABE is public-key), so it
    knows K_c and T_c = transform(TK, ct_c) with T_c^z = K_c. It then serves the pinned header's
    core digest with a fresh wrap under K_c: refused, because the pin covers the wrap."""
    cp, tk, rk, blob, out = fame
    scheme = cp.public_key.scheme
    k_c, ct_c = scheme.encapsulate(cp.public_key.record, Policy.parse("doctor"))
    (t_c,) = outsource.transform(tk.blinded, ct_c)
    forged = _forge(out, [t_c], k_c, b"forged lab result")
    _refused_or_fail(forged, rk, header_digest(blob))


def test_rw15_pinned_header_refuses_a_cloud_chosen_key(rw15):
    """RW15: TK holds H(GID)^{1/z}, so T2 = e(H(GID)^{1/z}, g2^a) has T2^z = e(H(GID), g2^a),
    which the cloud computes from the public hash; T1 = 1. No encryption needed."""
    tk, rk, blob, out = rw15
    scheme = tk.scheme
    a = GROUP.random_zr()
    g2a = GROUP.generator("G2") ** a
    t2 = GROUP.pair(tk.blinded.hgid, g2a)
    k = GROUP.pair(scheme.hash_g1(b"GID", b"alice"), g2a)
    forged = _forge(out, [GROUP.identity("GT"), t2], k, b"forged prescription")
    _refused_or_fail(forged, rk, header_digest(blob))
