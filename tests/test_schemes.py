"""Every scheme, on every backend: decrypts when satisfied, refuses when not, resists collusion."""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import WIDTHS, keys, trees

from abe_health.errors import InvalidCiphertext, InvalidKey, PolicyNotSatisfied
from abe_health.hazmat.schemes import SCHEMES, get_scheme
from abe_health.keys import from_map, to_map
from abe_health.policy import Policy, parse_attributes

CP_SCHEMES = sorted(name for name, cls in SCHEMES.items() if cls.policy_in == "ciphertext")


@pytest.fixture(scope="session")
def authorities():
    """One (scheme, pk, msk) per (scheme, group), made once: setup is cheap but keys are not."""
    made = {}

    def get(name, group):
        if (name, group.id) not in made:
            scheme = get_scheme(name, group)
            made[(name, group.id)] = (scheme, *scheme.setup(WIDTHS))
        return made[(name, group.id)]

    return get


def attrs(*texts):
    return parse_attributes(texts, WIDTHS)


def policy(text):
    return Policy.parse(text, WIDTHS)


def cp_roundtrip(authorities, name, group, key_attrs, policy_text):
    scheme, pk, msk = authorities(name, group)
    key = scheme.keygen(pk, msk, attrs(*key_attrs))
    k, ct = scheme.encapsulate(pk, policy(policy_text))
    return scheme, key, k, ct


CASES = [
    (["doctor", "cardiology"], "(doctor and cardiology) or (nurse and ward = 3)", True),
    (["nurse", "ward = 3"], "(doctor and cardiology) or (nurse and ward = 3)", True),
    (["nurse", "ward = 4"], "(doctor and cardiology) or (nurse and ward = 3)", False),
    (["doctor"], "doctor and cardiology", False),
    (["a", "c"], "2 of (a, b, c)", True),
    (["c"], "2 of (a, b, c)", False),
    (["a", "b", "d"], "3 of (a, b, c, d, e)", True),
    (["a", "e"], "3 of (a, b, c, d, e)", False),
    (["x", "y"], "(x and y) or (x and z) or 2 of (x, z, w)", True),
    (["x", "w", "z"], "(x and y) or (x and z) or 2 of (x, z, w)", True),
    (["age = 40"], "age >= 18 and age < 60", True),
    (["age = 17"], "age >= 18 and age < 60", False),
    (["emergency@ER", "day = 2026-11-30"], "emergency@ER and day >= 2026-11-22", True),
    (["emergency@ER", "day = 2026-11-21"], "emergency@ER and day >= 2026-11-22", False),
]


@pytest.mark.parametrize("name", CP_SCHEMES)
@pytest.mark.parametrize(("key_attrs", "policy_text", "ok"), CASES)
def test_cp_decrypts_iff_satisfied(authorities, group, name, key_attrs, policy_text, ok):
    scheme, key, k, ct = cp_roundtrip(authorities, name, group, key_attrs, policy_text)
    if ok:
        assert scheme.decapsulate(key, ct) == k
    else:
        with pytest.raises(PolicyNotSatisfied, match="do not satisfy policy"):
            scheme.decapsulate(key, ct)


def _merge(scheme_name, key_a, key_b):
    """The collusion attack: pool two users' per-attribute components into one key."""
    parts = dict(key_a.parts)
    for field in {"fame": ["sk"], "bsw07": ["Dj", "Dpj"], "waters11": ["Kx"]}[scheme_name]:
        parts[field] = {**key_a.parts[field], **key_b.parts[field]}
    return dataclasses.replace(key_a, parts=parts)


@pytest.mark.parametrize("name", CP_SCHEMES)
def test_cp_collusion_of_two_users_fails(authorities, group, name):
    scheme, pk, msk = authorities(name, group)
    alice = scheme.keygen(pk, msk, attrs("doctor"))
    bob = scheme.keygen(pk, msk, attrs("cardiology"))
    k, ct = scheme.encapsulate(pk, policy("doctor and cardiology"))
    for key in (alice, bob):
        with pytest.raises(PolicyNotSatisfied):
            scheme.decapsulate(key, ct)
    pooled = _merge(name, alice, bob)
    assert scheme.decapsulate(pooled, ct) != k
    assert scheme.decapsulate(_merge(name, bob, alice), ct) != k
    # sanity: the same pooling of one user's own key is harmless, so the check above can fail
    carol = scheme.keygen(pk, msk, attrs("doctor", "cardiology"))
    assert scheme.decapsulate(_merge(name, carol, carol), ct) == k


def test_kp_decrypts_iff_satisfied(authorities, group):
    scheme, pk, msk = authorities("fame-kp", group)
    for key_attrs, policy_text, ok in CASES:
        key = scheme.keygen(pk, msk, policy(policy_text))
        k, ct = scheme.encapsulate(pk, attrs(*key_attrs))
        if ok:
            assert scheme.decapsulate(key, ct) == k, policy_text
        else:
            with pytest.raises(PolicyNotSatisfied, match="do not satisfy key policy"):
                scheme.decapsulate(key, ct)


def test_kp_collusion_of_two_keys_fails(authorities, group):
    """Rows of two keys (policies 'x and z', 'w and y') spliced into a key for 'x and y'."""
    scheme, pk, msk = authorities("fame-kp", group)
    key1 = scheme.keygen(pk, msk, policy("x and z"))
    key2 = scheme.keygen(pk, msk, policy("w and y"))
    k, ct = scheme.encapsulate(pk, attrs("x", "y"))
    for key in (key1, key2):
        with pytest.raises(PolicyNotSatisfied):
            scheme.decapsulate(key, ct)
    spliced = dataclasses.replace(
        key1, parts={**key1.parts, "sk": [key1.parts["sk"][0], key2.parts["sk"][1]]},
        meta={**key1.meta, "policy": "x and y"})
    assert scheme.decapsulate(spliced, ct) != k
    honest = scheme.keygen(pk, msk, policy("x and y"))
    assert scheme.decapsulate(honest, ct) == k


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_keys_of_another_authority_fail(authorities, mcl_group, name):
    scheme, pk, _msk = authorities(name, mcl_group)
    pk2, msk2 = scheme.setup(WIDTHS)
    if scheme.policy_in == "ciphertext":
        stranger = scheme.keygen(pk2, msk2, attrs("doctor"))
        k, ct = scheme.encapsulate(pk, policy("doctor"))
    else:
        stranger = scheme.keygen(pk2, msk2, policy("doctor"))
        k, ct = scheme.encapsulate(pk, attrs("doctor"))
    assert scheme.decapsulate(stranger, ct) != k


@pytest.mark.parametrize("name", sorted(SCHEMES))
def test_records_round_trip_through_cbor(authorities, mcl_group, name):
    scheme, pk, msk = authorities(name, mcl_group)
    if scheme.policy_in == "ciphertext":
        key = scheme.keygen(pk, msk, attrs("doctor", "age = 30"))
        k, ct = scheme.encapsulate(pk, policy("doctor and age > 20"))
    else:
        key = scheme.keygen(pk, msk, policy("doctor and age > 20"))
        k, ct = scheme.encapsulate(pk, attrs("doctor", "age = 30"))
    for rec in (pk, msk, key, ct):
        again = from_map(cbor2.loads(cbor2.dumps(to_map(scheme, rec))))[1]
        assert again.parts == rec.parts and again.meta == rec.meta and again.kind == rec.kind
    key2 = from_map(cbor2.loads(cbor2.dumps(to_map(scheme, key))))[1]
    ct2 = from_map(cbor2.loads(cbor2.dumps(to_map(scheme, ct))))[1]
    assert scheme.decapsulate(key2, ct2) == k


def test_records_refuse_wrong_scheme_kind_and_shape(authorities, mcl_group):
    fame, pk, msk = authorities("fame", mcl_group)
    bsw, bpk, bmsk = authorities("bsw07", mcl_group)
    key = fame.keygen(pk, msk, attrs("doctor"))
    bkey = bsw.keygen(bpk, bmsk, attrs("doctor"))
    _, ct = fame.encapsulate(pk, policy("doctor"))
    with pytest.raises(InvalidKey, match="scheme 'bsw07', not 'fame'"):
        fame.decapsulate(bkey, ct)
    with pytest.raises(InvalidKey, match="expected a user record"):
        fame.decapsulate(pk, ct)
    with pytest.raises(InvalidCiphertext, match="expected a ciphertext record"):
        fame.decapsulate(key, key)
    data = to_map(fame, key)
    data["parts"]["sk0"] = data["parts"]["sk0"][:2]
    with pytest.raises(InvalidKey, match="sk0"):
        from_map(data)
    data = to_map(fame, ct)
    data["parts"]["ct"][0][1] = bytes(48)[:47] + b"\x01"
    with pytest.raises(InvalidCiphertext, match="malformed ciphertext"):
        from_map(data)
    data = to_map(fame, ct)
    data["group"] = "mcl:BN254"
    with pytest.raises(InvalidCiphertext, match="group"):
        from_map(data)


def test_ciphertext_with_rows_removed_is_refused(authorities, mcl_group):
    fame, pk, msk = authorities("fame", mcl_group)
    key = fame.keygen(pk, msk, attrs("a"))
    _, ct = fame.encapsulate(pk, policy("a or b"))
    short = dataclasses.replace(ct, parts={**ct.parts, "ct": ct.parts["ct"][:1]})
    with pytest.raises(InvalidCiphertext, match="rows do not match"):
        fame.decapsulate(key, short)
    swapped = dataclasses.replace(ct, meta={**ct.meta, "policy": "a and"})
    with pytest.raises(InvalidCiphertext, match="malformed policy"):
        fame.decapsulate(key, swapped)


@pytest.mark.parametrize("name", sorted(SCHEMES))
@settings(max_examples=20)
@given(tree=trees(3), data=st.data())
def test_random_policies(authorities, mcl_group, name, tree, data):
    scheme, pk, msk = authorities(name, mcl_group)
    pol = Policy(tree)
    if pol.lsss.n_rows > 120:
        return
    key_attrs = data.draw(keys(tree))
    if scheme.policy_in == "ciphertext":
        key = scheme.keygen(pk, msk, key_attrs)
        k, ct = scheme.encapsulate(pk, pol)
    else:
        key = scheme.keygen(pk, msk, pol)
        k, ct = scheme.encapsulate(pk, key_attrs)
    if pol.is_satisfied_by(key_attrs):
        assert scheme.decapsulate(key, ct) == k
    else:
        with pytest.raises(PolicyNotSatisfied):
            scheme.decapsulate(key, ct)


def test_hash_cache_is_used(authorities, mcl_group):
    fame, pk, _msk = authorities("fame", mcl_group)
    fame.encapsulate(pk, policy("cached_attr_1 and cached_attr_2"))
    size = len(fame._hash_cache)
    fame.encapsulate(pk, policy("cached_attr_1 and cached_attr_2"))
    assert len(fame._hash_cache) == size


def test_wrong_subject_types_are_refused(authorities, mcl_group):
    fame, pk, msk = authorities("fame", mcl_group)
    with pytest.raises(TypeError, match="issues keys for KeyAttributes"):
        fame.keygen(pk, msk, policy("doctor"))
    with pytest.raises(TypeError, match="encrypts under Policy"):
        fame.encapsulate(pk, attrs("doctor"))
    kp, kpk, kmsk = authorities("fame-kp", mcl_group)
    with pytest.raises(TypeError, match="issues keys for Policy"):
        kp.keygen(kpk, kmsk, attrs("doctor"))
    with pytest.raises(InvalidKey, match="expected a public record"):
        fame.encapsulate(msk, policy("doctor"))
