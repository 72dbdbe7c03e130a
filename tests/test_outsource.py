"""Outsourced decryption (GHW11 on FAME CP/KP and RW15): transform-then-retrieve equals direct
decryption; unsatisfying keys fail at the cloud and at the device; every tampered or malicious
transformation is detected; transformation keys do not collude; the device keys are typed
secrets. Each test backs a sentence of docs/devices.md."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import struct

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import WIDTHS, keys, trees

from abe_health import (
    CPABE,
    KPABE,
    AttributesRecipient,
    Authority,
    MultiAuthorityRecipient,
    PolicyRecipient,
    decrypt,
    encrypt,
)
from abe_health.devices import (
    RetrievalKey,
    TransformationKey,
    blind,
    header_digest,
    header_size,
    retrieve,
    transform,
    transform_file,
)
from abe_health.devices import transformed as tformat
from abe_health.errors import AbeError, InvalidCiphertext, InvalidKey, PolicyNotSatisfied
from abe_health.hazmat import outsource
from abe_health.hazmat.schemes import get_scheme
from abe_health.policy import Policy

PLAIN = b'{"resourceType": "Observation", "value": 72}' * 50


@pytest.fixture(scope="module")
def cp():
    return CPABE.setup(widths=WIDTHS)


@pytest.fixture(scope="module")
def kp():
    return KPABE.setup(widths=WIDTHS)


@pytest.fixture(scope="module")
def authorities():
    return Authority.setup("hospitalA"), Authority.setup("university")


def payload(blob: bytes) -> bytes:
    return blob[header_size(blob):]


# -- correctness ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fame", "fame-kp"])
@settings(max_examples=12, deadline=None)
@given(tree=trees(3), data=st.data())
def test_transform_then_retrieve_equals_direct_decryption(name, tree, data):
    scheme = get_scheme(name)
    pk, msk = _authority(name)
    policy = Policy(tree)
    if policy.lsss.n_rows > 60:
        return
    attrs = data.draw(keys(tree))
    key = scheme.keygen(pk, msk, attrs if name == "fame" else policy)
    k, ct = scheme.encapsulate(pk, policy if name == "fame" else attrs)
    z = scheme.group.random_zr()
    tk = outsource.blind(scheme, [key], z)
    if policy.is_satisfied_by(attrs):
        parts = outsource.transform(tk, ct)
        assert outsource.retrieve(scheme.group, parts, z) == scheme.decapsulate(key, ct) == k
    else:
        with pytest.raises(PolicyNotSatisfied):  # refused at the cloud
            outsource.transform(tk, ct)


_AUTHORITIES: dict[str, tuple] = {}


def _authority(name):
    if name not in _AUTHORITIES:
        _AUTHORITIES[name] = get_scheme(name).setup(WIDTHS)
    return _AUTHORITIES[name]


def test_cp_round_trip_through_the_recipes(cp):
    alice = cp.keygen(["doctor", "cardiology", "age = 40"])
    tk, rk = blind(alice)
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "(doctor and cardiology) or nurse"))
    header = transform(tk, blob)
    assert len(header) < 1024
    assert retrieve(header + payload(blob), None, rk) == decrypt(blob, None, alice) == PLAIN
    assert retrieve(transform_file(tk, blob, None), None, rk, expect_header=header_digest(blob)) == PLAIN


def test_kp_round_trip(kp):
    key = kp.keygen(policy="study = diabetes and year >= 2024")
    tk, rk = blind(key)
    blob = encrypt(PLAIN, None, AttributesRecipient(kp.public_key, ["study = diabetes", "year = 2025"]))
    assert retrieve(transform_file(tk, blob, None), None, rk) == PLAIN


def test_rw15_holder_blinds_all_its_keys_with_one_z(authorities):
    hospital, university = authorities
    keys_ = [hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"])]
    tk, rk = blind(*keys_)
    assert len(tk.blinded.records) == 2
    blob = encrypt(PLAIN, None, MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                                        [hospital.public_key, university.public_key]))
    assert retrieve(transform_file(tk, blob, None), None, rk) == PLAIN
    assert len(transform(tk, blob)) < 1500  # two GT elements: constant, whatever the policy


def test_transformed_header_is_constant_in_the_policy_size(cp):
    tk, _ = blind(cp.keygen([f"a{i}" for i in range(100)]))
    sizes = {n: len(transform(tk, encrypt(b"x", None, PolicyRecipient(
        cp.public_key, " and ".join(f"a{i}" for i in range(n)))))) for n in (1, 10, 100)}
    assert len(set(sizes.values())) == 1 and sizes[100] < 1024


def test_rw15_transformed_header_is_constant_and_under_1_kib(authorities):
    hospital, university = authorities
    names = {auth: [f"a{i}" for i in range(20)] for auth in (hospital, university)}
    tk, _ = blind(*(auth.keygen("alice", attrs) for auth, attrs in names.items()))
    sizes = set()
    for n in (1, 5, 20):
        policy = " and ".join(f"a{i}@{auth.name}" for auth in names for i in range(n))
        blob = encrypt(b"x", None, MultiAuthorityRecipient(policy, [hospital.public_key,
                                                                    university.public_key]))
        sizes.add(len(transform(tk, blob)))
    assert len(sizes) == 1 and sizes.pop() < 1024


def test_context_binds_the_transformed_file(cp):
    tk, rk = blind(cp.keygen(["doctor"]))
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "doctor"), context=b"vault/1/0")
    out = transform_file(tk, blob, None)
    assert retrieve(out, None, rk, context=b"vault/1/0") == PLAIN
    with pytest.raises(InvalidCiphertext, match="transformation is wrong"):
        retrieve(out, None, rk, context=b"vault/2/0")


# -- a key that does not satisfy the policy -------------------------------------------------------

def test_unsatisfying_key_fails_at_the_cloud_and_at_the_device(cp):
    nurse = cp.keygen(["nurse"])
    doctor = cp.keygen(["doctor"])
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "doctor"))
    tk, rk = blind(nurse)
    with pytest.raises(PolicyNotSatisfied):
        transform(tk, blob)
    # a cloud that answers anyway: with another holder's transformation, or random elements
    other_tk, _ = blind(doctor)
    forged = transform_file(other_tk, blob, None)
    th = tformat.read(_stream(forged))
    forged = _rebuild(forged, tk=th.tk.replace(other_tk.id, tk.id))
    with pytest.raises(InvalidCiphertext):
        retrieve(forged, None, rk)
    grp = tk.scheme.group
    random_t = _rebuild(forged, t=[grp.compress_gt(grp.random("GT"))])
    with pytest.raises(InvalidCiphertext):
        retrieve(random_t, None, rk)


def _stream(data: bytes):
    import io

    return io.BytesIO(data)


def _core(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack(">I", data[4:8])
    return cbor2.loads(data[8:8 + n]), data[8 + n:]


def _rebuild(data: bytes, magic: bytes = tformat.MAGIC, **changes) -> bytes:
    core, rest = _core(data)
    core.update(changes)
    raw = cbor2.dumps(core)
    return magic + struct.pack(">I", len(raw)) + raw + rest


# -- tampering and malicious transformations -----------------------------------------------------

@pytest.fixture(scope="module")
def transformed_cp(cp):
    tk, rk = blind(cp.keygen(["doctor"]))
    blob = encrypt(PLAIN[:3000], None, PolicyRecipient(cp.public_key, "doctor"), chunk=1024)
    return tk, rk, blob, transform_file(tk, blob, None)


def test_every_byte_of_the_transformed_header_is_checked(transformed_cp):
    """Each bit flip anywhere in the header: an error, never a plaintext (wrong or right)."""
    _tk, rk, _blob, out = transformed_cp
    size = tformat.read(_stream(out)).size
    for at in range(size):
        bad = out[:at] + bytes([out[at] ^ (1 << (at % 8))]) + out[at + 1:]
        with pytest.raises(AbeError):
            retrieve(bad, None, rk)


def _mutations(core: dict, grp) -> dict[str, object]:
    """Every field of a transformed header replaced by a plausible wrong value."""
    t0 = grp.decompress_gt(core["t"][0])
    flip = lambda b: bytes([b[0] ^ 1]) + b[1:]  # noqa: E731
    return {"v": 1, "scheme": "fame-kp", "group": "mcl:BN254", "tk": "0" * 16,
            "header": flip(core["header"]), "t": [grp.compress_gt(t0 * grp.generator("GT"))],
            "wrap": flip(core["wrap"]), "chunk": core["chunk"] * 2, "salt": flip(core["salt"])}


def test_every_field_of_a_transformation_flipped_is_detected(transformed_cp, cp):
    _tk, rk, _blob, out = transformed_cp
    core, _ = _core(out)
    assert set(_mutations(core, cp.public_key.scheme.group)) == set(core)
    for field, value in _mutations(core, cp.public_key.scheme.group).items():
        with pytest.raises(AbeError):
            retrieve(_rebuild(out, **{field: value}), None, rk)


def test_malicious_transformations_are_refused(transformed_cp, cp):
    """Powers and shifts of the true T, the identity, an element outside the order-r subgroup
    (which would leak z modulo small factors), another file's T: all refused."""
    tk, rk, _blob, out = transformed_cp
    grp = cp.public_key.scheme.group
    core, _ = _core(out)
    t = grp.decompress_gt(core["t"][0])
    other = encrypt(b"other", None, PolicyRecipient(cp.public_key, "doctor"))
    candidates = [t**2, t**-1, t * grp.generator("GT"), grp.identity("GT"),
                  grp.decompress_gt(_core(transform(tk, other))[0]["t"][0])]
    for value in candidates:
        with pytest.raises(InvalidCiphertext):
            retrieve(_rebuild(out, t=[grp.compress_gt(value)]), None, rk)
    # T times an element of order 4513: accepted, it would tell the cloud whether 4513 divides z
    tainted = grp.compress_gt(t * _order_4513(grp))
    for off_subgroup in (tainted, b"\x02" + bytes(287)):  # the second: norm 1, not of order r
        with pytest.raises(InvalidCiphertext, match="order-r subgroup"):
            retrieve(_rebuild(out, t=[off_subgroup]), None, rk)


def _order_4513(grp):
    """An element of order 4513 of the cyclotomic subgroup (4513 divides its order / r)."""
    from abe_health.hazmat.pairing import fp12, mcl

    cofactor = (fp12.P**4 - fp12.P**2 + 1) // grp.order
    base = grp.decompress_gt(b"\x02" + bytes(287), check=False)  # norm 1: cyclotomic after p^2 + 1
    raw = mcl._gt_raw(fp12.serialize(fp12.frobenius(fp12.parse(base.to_bytes()), 2)))
    mcl._LIB.mclBnGT_mul(raw, raw, base._v)
    square, e = raw, cofactor // 4513
    acc = mcl._gt_raw(fp12.serialize(fp12.parse(grp.identity("GT").to_bytes())))
    while e:
        if e & 1:
            mcl._LIB.mclBnGT_mul(acc, acc, square)
        mcl._LIB.mclBnGT_sqr(square, square)
        e >>= 1
    element = mcl.GT(acc)
    assert not element.is_identity()
    return element


def test_version_1_transformed_files_are_still_read_and_checked(transformed_cp, cp):
    """Version 1 (full 576-byte GT elements) decrypts as before and refuses an element outside
    the order-r subgroup."""
    _tk, rk, _blob, out = transformed_cp
    grp = cp.public_key.scheme.group
    core, _ = _core(out)
    full = [grp.decompress_gt(raw).to_bytes() for raw in core["t"]]
    assert retrieve(_rebuild(out, b"ABT1", v=1, t=full), None, rk) == PLAIN[:3000]
    with pytest.raises(InvalidCiphertext, match="order-r subgroup"):
        retrieve(_rebuild(out, b"ABT1", v=1, t=[b"\x02" + bytes(575)]), None, rk)
    for mismatched in ((b"ABT1", 2, core["t"]), (tformat.MAGIC, 1, core["t"]), (b"ABT1", 1, core["t"])):
        magic, version, t = mismatched
        with pytest.raises(InvalidCiphertext):
            retrieve(_rebuild(out, magic, v=version, t=t), None, rk)


def test_payload_tampering_after_transformation_is_detected(transformed_cp):
    _tk, rk, _blob, out = transformed_cp
    for at in (len(out) - 1, len(out) - 1100):
        with pytest.raises(InvalidCiphertext, match="chunk"):
            retrieve(out[:at] + bytes([out[at] ^ 1]) + out[at + 1:], None, rk)
    with pytest.raises(InvalidCiphertext):
        retrieve(out[:-1], None, rk)


def test_rw15_swapped_or_altered_parts_are_refused(authorities):
    hospital, university = authorities
    tk, rk = blind(hospital.keygen("alice", ["doctor"]), university.keygen("alice", ["researcher"]))
    blob = encrypt(PLAIN, None, MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                                        [hospital.public_key, university.public_key]))
    out = transform_file(tk, blob, None)
    core, _ = _core(out)
    grp = tk.scheme.group
    t1, t2 = core["t"]
    g = grp.compress_gt(grp.generator("GT"))
    for t in ([t2, t1], [g, t2], [t1, g], [t1, grp.compress_gt(grp.identity("GT"))]):
        with pytest.raises(InvalidCiphertext):
            retrieve(_rebuild(out, t=t), None, rk)


def test_expected_header_pins_the_file(cp):
    tk, rk = blind(cp.keygen(["doctor"]))
    one = encrypt(b"one", None, PolicyRecipient(cp.public_key, "doctor"))
    two = encrypt(b"two", None, PolicyRecipient(cp.public_key, "doctor"))
    with pytest.raises(InvalidCiphertext, match="another header"):
        retrieve(transform_file(tk, two, None), None, rk, expect_header=header_digest(one))


# -- collusion and pooling ----------------------------------------------------------------------

def test_two_holders_transformation_keys_open_nothing_neither_could(cp):
    alice, bob = cp.keygen(["doctor"]), cp.keygen(["cardiology"])
    (tk_a, rk_a), (tk_b, rk_b) = blind(alice), blind(bob)
    blob = encrypt(PLAIN, None, PolicyRecipient(cp.public_key, "doctor and cardiology"))
    for tk in (tk_a, tk_b):
        with pytest.raises(PolicyNotSatisfied):
            transform(tk, blob)
    header = next(iter(_headers(blob)))
    for first, second in ((tk_a, tk_b), (tk_b, tk_a)):
        rec_a, rec_b = first.blinded.records[0], second.blinded.records[0]
        merged = dataclasses.replace(rec_a, parts={**rec_a.parts, "sk": {**rec_a["sk"], **rec_b["sk"]}},
                                     meta={**rec_a.meta, "attributes": ["doctor", "cardiology"]})
        pooled = TransformationKey(outsource.Blinded(first.scheme, (merged,)))
        parts = outsource.transform(pooled.blinded, header.ciphertext)
        for rk in (rk_a, rk_b):  # neither holder's z, nor the cloud, gets the file's key
            with pytest.raises(InvalidCiphertext):
                header.unwrap(outsource.retrieve(first.scheme.group, parts, rk.z))
    # sanity: the same merge of one holder's own key does open, so the check above can fail
    carol = cp.keygen(["doctor", "cardiology"])
    tk_c, rk_c = blind(carol)
    rec = tk_c.blinded.records[0]
    self_merged = dataclasses.replace(rec, parts={**rec.parts, "sk": {**rec["sk"], **rec["sk"]}})
    parts = outsource.transform(outsource.Blinded(tk_c.scheme, (self_merged,)), header.ciphertext)
    header.unwrap(outsource.retrieve(tk_c.scheme.group, parts, rk_c.z))


def _headers(blob: bytes):
    from abe_health.hazmat.envelope import read_header

    yield read_header(_stream(blob))


def test_rw15_refuses_pooling_across_gids(authorities):
    hospital, university = authorities
    bob, mallory = hospital.keygen("bob", ["doctor"]), university.keygen("mallory", ["researcher"])
    with pytest.raises(InvalidKey, match="different users"):
        blind(bob, mallory)
    (tk_b, rk_b), (tk_m, rk_m) = blind(bob), blind(mallory)
    blob = encrypt(PLAIN, None, MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                                        [hospital.public_key, university.public_key]))
    # an edited transformation key file holding both holders' blinded keys
    both = TransformationKey(outsource.Blinded(tk_b.scheme, (*tk_b.blinded.records, *tk_m.blinded.records),
                                               tk_b.blinded.hgid))
    with pytest.raises(InvalidKey, match="different users"):
        transform(both, blob)
    # ... and with mallory's GID relabelled as bob's: the cloud computes, the device gets nothing
    relabelled = dataclasses.replace(tk_m.blinded.records[0],
                                     meta={**tk_m.blinded.records[0].meta, "gid": "bob"})
    forged = TransformationKey(outsource.Blinded(tk_b.scheme, (*tk_b.blinded.records, relabelled),
                                                 tk_b.blinded.hgid))
    header = next(iter(_headers(blob)))
    parts = outsource.transform(forged.blinded, header.ciphertext)
    for rk in (rk_b, rk_m):
        with pytest.raises(InvalidCiphertext):
            header.unwrap(outsource.retrieve(tk_b.scheme.group, parts, rk.z))


def test_other_schemes_are_not_blinded():
    bsw = CPABE.setup("bsw07")
    with pytest.raises(InvalidKey, match="outsourced decryption supports"):
        blind(bsw.keygen(["doctor"]))


def test_transformation_key_of_another_authority_is_named(cp):
    stranger = CPABE.setup()
    tk, _ = blind(stranger.keygen(["doctor"]))
    blob = encrypt(b"x", None, PolicyRecipient(cp.public_key, "doctor"))
    with pytest.raises(InvalidKey, match="encrypted for authority"):
        transform(tk, blob)


# -- the device keys ----------------------------------------------------------------------------

def test_key_files_are_secret_typed_and_round_trip(cp, tmp_path):
    tk, rk = blind(cp.keygen(["doctor"]))
    tk.save(tmp_path / "a.tk")
    rk.save(tmp_path / "a.rk")
    for name in ("a.tk", "a.rk"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600
    assert TransformationKey.read(tmp_path / "a.tk") == tk
    again = RetrievalKey.read(tmp_path / "a.rk")
    assert again == rk and again.transformation_key == tk.id
    z_hex = f"{rk.z:x}"
    for obj in (tk, rk):
        assert z_hex not in repr(obj) and z_hex not in str(obj)
        with pytest.raises(TypeError, match="not pickled"):
            pickle.dumps(obj)
        assert copy.deepcopy(obj) is obj


def test_retrieval_key_of_another_transformation_key_is_named(cp):
    alice = cp.keygen(["doctor"])
    tk1, _ = blind(alice)
    _, rk2 = blind(alice)
    blob = encrypt(b"x", None, PolicyRecipient(cp.public_key, "doctor"))
    with pytest.raises(InvalidKey, match=f"transformation key {tk1.id}"):
        retrieve(transform_file(tk1, blob, None), None, rk2)


@pytest.mark.parametrize("data", [b"", b"\xff", cbor2.dumps([1]), cbor2.dumps({"type": "x"}),
                                  cbor2.dumps({"v": 2, "type": "abe-health/retrieval-key"})])
def test_malformed_key_files_are_refused(data):
    for cls in (TransformationKey, RetrievalKey):
        with pytest.raises(InvalidKey):
            cls.from_bytes(data)


def test_edited_transformation_key_files_are_refused(cp):
    tk, rk = blind(cp.keygen(["doctor"]))
    raw = cbor2.loads(tk.to_bytes())
    for edit in ({"keys": []}, {"scheme": "bsw07"}, {"hgid": b"\x00" * 48}, {"extra": 1},
                 {"keys": [raw["keys"][0], raw["keys"][0]]}):
        with pytest.raises(InvalidKey):
            TransformationKey.from_bytes(cbor2.dumps({**raw, **edit}))
    raw_rk = cbor2.loads(rk.to_bytes())
    for edit in ({"z": b"\x00" * 32}, {"z": b"\xff" * 32}, {"tk": "not hex!"}, {"scheme": "rw13"}):
        with pytest.raises(InvalidKey):
            RetrievalKey.from_bytes(cbor2.dumps({**raw_rk, **edit}))


def test_an_abe_file_given_to_the_device_is_named(cp):
    _, rk = blind(cp.keygen(["doctor"]))
    blob = encrypt(b"x", None, PolicyRecipient(cp.public_key, "doctor"))
    with pytest.raises(InvalidCiphertext, match="not a transformed one"):
        retrieve(blob, None, rk)


def test_what_a_transformation_key_shows(cp, authorities):
    """The cloud sees the holder's labels (numeric values through their prefix labels), its
    authority and GID; never z nor any element of the user key itself."""
    alice = cp.keygen(["doctor", "age = 40"])
    tk, rk = blind(alice)
    raw = cbor2.loads(tk.to_bytes())
    meta = raw["keys"][0]["meta"]
    assert meta["attributes"] == ["doctor", "age = 40"] and meta["pk"] == alice.record.meta["pk"]
    assert "age#p0=40" in raw["keys"][0]["parts"]["sk"]
    data = tk.to_bytes()
    assert get_scheme("fame").group.zr_to_bytes(rk.z) not in data
    user = alice.record.parts
    for element in (*user["sk0"], *user["skp"], *(e for row in user["sk"].values() for e in row)):
        assert element.to_bytes() not in data
    hospital, _ = authorities
    tk_ma, _ = blind(hospital.keygen("alice", ["doctor"]))
    assert cbor2.loads(tk_ma.to_bytes())["keys"][0]["meta"]["gid"] == "alice"
