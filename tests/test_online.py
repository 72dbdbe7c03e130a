"""Online/offline encryption: RW13 and its HW14 online ciphertexts decrypt iff the policy is
satisfied; the online path performs no group operation; pools are sealed at rest, refuse
tampering and are consumed exactly once, across processes too."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import WIDTHS, keys, trees

from abe_health import CPABE, Authority, MultiAuthorityRecipient, PolicyRecipient, decrypt
from abe_health.devices import Pool, PoolKey, precompute
from abe_health.devices import pool as pool_module
from abe_health.errors import InvalidKey, PolicyNotSatisfied, PolicySyntaxError, PoolExhausted
from abe_health.hazmat.pairing import get_group
from abe_health.hazmat.schemes import get_scheme, hw14
from abe_health.policy import Policy, parse_attributes


@pytest.fixture(scope="module")
def rw13():
    return CPABE.setup("rw13", widths=WIDTHS)


@pytest.fixture()
def key():
    return PoolKey.generate()


# -- the scheme ---------------------------------------------------------------------------------

CASES = [
    (["doctor", "cardiology"], "(doctor and cardiology) or (nurse and ward = 3)", True),
    (["nurse", "ward = 4"], "(doctor and cardiology) or (nurse and ward = 3)", False),
    (["a", "c"], "2 of (a, b, c)", True),
    (["c"], "2 of (a, b, c)", False),
    (["age = 40"], "age >= 18 and age < 60", True),
    (["age = 17"], "age >= 18 and age < 60", False),
]


@pytest.mark.parametrize(("attrs", "text", "ok"), CASES)
def test_rw13_full_and_online_ciphertexts_decrypt_iff_satisfied(attrs, text, ok):
    scheme = get_scheme("rw13")
    pk, msk = _authority()
    key = scheme.keygen(pk, msk, parse_attributes(attrs, WIDTHS))
    policy = Policy.parse(text, WIDTHS)
    k, ct = scheme.encapsulate(pk, policy)
    session = hw14.offline_session(scheme, pk)
    pieces = [hw14.offline_piece(scheme, pk) for _ in range(policy.lsss.n_rows)]
    online = hw14.online(scheme, policy, session, pieces)
    for want, record in ((k, ct), (session.key, online)):
        if ok:
            assert scheme.decapsulate(key, record) == want
        else:
            with pytest.raises(PolicyNotSatisfied):
                scheme.decapsulate(key, record)


_MADE: list = []


def _authority():
    if not _MADE:
        _MADE.append(get_scheme("rw13").setup(WIDTHS))
    return _MADE[0]


@settings(max_examples=10, deadline=None)
@given(tree=trees(3), data=st.data())
def test_rw13_online_random_policies(tree, data):
    scheme = get_scheme("rw13")
    pk, msk = _authority()
    policy = Policy(tree)
    if policy.lsss.n_rows > 40:
        return
    attrs = data.draw(keys(tree))
    key = scheme.keygen(pk, msk, attrs)
    session = hw14.offline_session(scheme, pk)
    ct = hw14.online(scheme, policy, session,
                     [hw14.offline_piece(scheme, pk) for _ in range(policy.lsss.n_rows)])
    if policy.is_satisfied_by(attrs):
        assert scheme.decapsulate(key, ct) == session.key
    else:
        with pytest.raises(PolicyNotSatisfied):
            scheme.decapsulate(key, ct)


def test_rw13_collusion_of_two_users_fails():
    scheme = get_scheme("rw13")
    pk, msk = _authority()
    alice = scheme.keygen(pk, msk, parse_attributes(["doctor"]))
    bob = scheme.keygen(pk, msk, parse_attributes(["cardiology"]))
    k, ct = scheme.encapsulate(pk, Policy.parse("doctor and cardiology"))
    pooled = dataclasses.replace(alice, parts={**alice.parts, "K2": {**alice["K2"], **bob["K2"]},
                                               "K3": {**alice["K3"], **bob["K3"]}})
    assert scheme.decapsulate(pooled, ct) != k
    carol = scheme.keygen(pk, msk, parse_attributes(["doctor", "cardiology"]))
    assert scheme.decapsulate(carol, ct) == k


# -- no group operation online ------------------------------------------------------------------

def test_the_online_path_performs_no_group_operation(rw13, key, tmp_path, monkeypatch):
    """Counted as the benchmark counts them (pairings, exponentiations, hashes to curves), and
    decoding elements (a subgroup check each) forbidden outright."""
    from benchmarks.counting import count_ops

    alice = rw13.keygen(["doctor", "cardiology", "age = 40"])
    precompute(tmp_path / "p", key, rw13.public_key, count=2, rows=40)
    fixed = PolicyRecipient(rw13.public_key, "doctor")
    precompute(tmp_path / "f", key, fixed, count=1)
    group = get_group()

    def forbidden(*_args):
        raise AssertionError("an element was decoded on the online path")

    blobs = []
    with count_ops(group) as counts, monkeypatch.context() as patch:
        patch.setattr(type(group), "_deserialize", forbidden)
        patch.setattr(type(group), "random", forbidden)
        blobs.append(Pool(tmp_path / "p", key).encrypt(b"hr=72", None, "doctor and age >= 18"))
        blobs.append(Pool(tmp_path / "f", key).encrypt(b"hr=73", None))
    assert sum(counts.values()) == 0, counts
    assert [decrypt(b, None, alice) for b in blobs] == [b"hr=72", b"hr=73"]


# -- pools --------------------------------------------------------------------------------------

def test_pool_is_sealed_at_rest_and_secret(rw13, key, tmp_path):
    path = tmp_path / "p"
    precompute(path, key, rw13.public_key, count=1, rows=2)
    assert os.stat(path).st_mode & 0o777 == 0o600
    raw = path.read_bytes()
    _, sessions, pieces = pool_module.take(path, key, 1, 2)
    grp = get_group()
    for secret in (sessions[0]["s"], sessions[0]["k"], *(p["t"] for p in pieces)):
        assert secret not in raw and len(secret) >= 32
    assert grp.zr_from_bytes(sessions[0]["s"]) and "secret" in repr(hw14.Session(1, None, None))
    assert key.secret.hex() not in repr(key)


def test_wrong_key_and_edited_pools_are_refused(rw13, key, tmp_path):
    path = tmp_path / "p"
    precompute(path, key, rw13.public_key, count=2, rows=4)
    original = path.read_bytes()
    with pytest.raises(InvalidKey, match="pool key does not match"):
        pool_module.take(path, PoolKey.generate(), 1, 1)
    data = cbor2.loads(original)
    edits = {
        "duplicated entry": {"sessions": [data["sessions"][0], data["sessions"][0]]},
        "reordered pieces": {"pieces": data["pieces"][::-1]},
        "moved counter": {"first": [1, 0]},
        "header": {"pk": "0" * 16},
        "widths": {"widths": {"age": 7}},
    }
    for what, edit in edits.items():
        path.write_bytes(cbor2.dumps({**data, **edit}))
        with pytest.raises(InvalidKey):
            pool_module.take(path, key, 2, 2)
        assert path.read_bytes() == cbor2.dumps({**data, **edit}), what  # nothing consumed
    path.write_bytes(b"not a pool")
    with pytest.raises(InvalidKey, match="not a pool"):
        Pool(path, key).encrypt(b"x", None, "doctor")


def test_exhausted_pool_is_an_error_and_nothing_is_reused(rw13, key, tmp_path):
    alice = rw13.keygen(["doctor", "nurse"])
    path = tmp_path / "p"
    precompute(path, key, rw13.public_key, count=3, rows=4)
    pool = Pool(path, key)
    blobs = [pool.encrypt(b"1", None, "doctor and nurse"), pool.encrypt(b"2", None, "doctor or nurse")]
    with pytest.raises(PoolExhausted, match="1 and 2 needed"):
        pool.encrypt(b"3", None, "doctor and nurse")  # 1 piece left for 2 rows
    assert pool.info().sessions == 1 and pool.info().pieces == 0  # the OR took both pieces
    with pytest.raises(PoolExhausted):
        pool.encrypt(b"3", None, "doctor")
    assert [decrypt(b, None, alice) for b in blobs] == [b"1", b"2"]
    headers = [b[:600] for b in blobs]
    assert headers[0] != headers[1]


def test_a_bad_policy_consumes_nothing(rw13, key, tmp_path):
    path = tmp_path / "p"
    precompute(path, key, rw13.public_key, count=1, rows=2)
    with pytest.raises(PolicySyntaxError):
        Pool(path, key).encrypt(b"x", None, "doctor and (")
    with pytest.raises(InvalidKey, match="policy given now"):
        Pool(path, key).encrypt(b"x", None)
    assert Pool(path, key).info().sessions == 1


def test_fixed_policy_pools_for_any_recipient(key, tmp_path):
    fame = CPABE.setup()
    alice = fame.keygen(["doctor"])
    precompute(tmp_path / "f", key, PolicyRecipient(fame.public_key, "doctor"), count=2)
    pool = Pool(tmp_path / "f", key)
    assert pool.info().policy == "doctor"
    with pytest.raises(InvalidKey, match='encapsulates "doctor", not "nurse"'):
        pool.encrypt(b"x", None, "nurse")
    assert decrypt(pool.encrypt(b"x", None, "doctor", context=b"c"), None, alice, context=b"c") == b"x"
    hospital = Authority.setup("hospitalA")
    precompute(tmp_path / "m", key, MultiAuthorityRecipient("doctor@hospitalA", [hospital.public_key]),
               count=1)
    blob = Pool(tmp_path / "m", key).encrypt(b"y", None, armor=True)
    assert blob.startswith(b"-----BEGIN ABE FILE-----")
    assert decrypt(blob, None, hospital.keygen("al", ["doctor"])) == b"y"
    with pytest.raises(InvalidKey, match="needs an rw13"):
        precompute(tmp_path / "x", key, fame.public_key, count=1)


CHILD = textwrap.dedent("""
    import hashlib, os, sys, time
    from abe_health.devices import PoolKey, pool
    from abe_health.errors import PoolExhausted
    key = PoolKey.read(sys.argv[2])
    open(sys.argv[3] + f".ready-{os.getpid()}", "w").close()
    while not os.path.exists(sys.argv[3]):  # all start together
        time.sleep(0.002)
    while True:
        try:
            _, sessions, pieces = pool.take(sys.argv[1], key, 1, 1)
        except PoolExhausted:
            break
        for e in sessions + pieces:
            print(hashlib.sha256(e.get("s", e.get("t", b""))).hexdigest(), flush=True)
        time.sleep(0.002)  # a device's own work between two readings
""")


def test_pool_pieces_are_never_used_twice_across_processes(rw13, key, tmp_path):
    """Six processes drain one pool at once: every session and piece is taken exactly once."""
    path, key_path, go = tmp_path / "p", tmp_path / "pool.key", tmp_path / "go"
    key.save(key_path)
    precompute(path, key, rw13.public_key, count=150, rows=150)
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(key_path), str(go)],
                              stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
             for _ in range(6)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=300)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    taken = [line for lines in outputs for line in lines]
    assert len(taken) == 150 + 150 == len(set(taken))
    assert sum(1 for lines in outputs if lines) > 1  # the processes did interleave
    assert Pool(path, key).info().sessions == 0
    assert hashlib.sha256(b"").hexdigest() not in taken


def test_a_reservation_takes_a_batch_once_and_never_returns_it(rw13, key, tmp_path):
    alice = rw13.keygen(["doctor"])
    path = tmp_path / "p"
    precompute(path, key, rw13.public_key, count=4, rows=4)
    reservation = Pool(path, key).reserve(3, 3)
    assert Pool(path, key).info().sessions == 1 and "secret" not in repr(reservation)
    blobs = [reservation.encrypt(str(i).encode(), None, "doctor") for i in range(3)]
    with pytest.raises(PoolExhausted, match="reservation is used up"):
        reservation.encrypt(b"x", None, "doctor")
    assert [decrypt(b, None, alice) for b in blobs] == [b"0", b"1", b"2"]
    del reservation  # what it held is gone; the pool still has exactly what was not taken
    assert (Pool(path, key).info().sessions, Pool(path, key).info().pieces) == (1, 1)
