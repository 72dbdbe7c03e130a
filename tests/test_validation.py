"""Validation of untrusted ciphertexts after the speed work (docs/speed.md).

The cloud may plant any header. Every group element at every position of every scheme's
ciphertext is replaced, one at a time, by bytes off the curve, a non-canonical encoding, a point
on the curve outside the order-r subgroup (an element outside GT for GT), and the header must be
refused by `read_header` itself: before any key is touched, not only later by the key wrap. G1
points that only enter pairings are tested as a batch (their sum), so the one case the batch can
miss is also tested: several off-subgroup points whose components cancel are accepted, and they
change nothing (the file decrypts to the same plaintext), because a pairing ignores the component
of a point outside the subgroup.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest

from abe_health import (
    CPABE,
    KPABE,
    AttributesRecipient,
    Authority,
    InvalidCiphertext,
    MultiAuthorityRecipient,
    PolicyRecipient,
    decrypt,
    encrypt,
)
from abe_health.errors import InvalidEncoding
from abe_health.hazmat.envelope import read_header
from abe_health.hazmat.pairing import Element, get_group

GROUP = get_group("mcl")
P = int("1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf"
        "6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16)
#: cofactor of G1 in E(Fp): 3 * 11^2 * 10177^2 * 859267^2 * 52437899^2
H1 = 0x396C8C005555E1568C00AAAB0000AAAB
MESSAGE = b'{"bp": "120/80"}'


def _sqrt(a: int) -> int | None:
    s = pow(a, (P + 1) // 4, P)
    return s if s * s % P == a % P else None


def _encode_g1(x: int, y_odd: bool) -> bytes:
    out = bytearray(x.to_bytes(48, "little"))
    out[47] |= 0x80 if y_odd else 0
    return bytes(out)


def _encode_g1_long(x: int, y: int) -> bytes:
    """The uncompressed form of pairing-only G1 points: x | y, each 48 bytes little-endian."""
    return x.to_bytes(48, "little") + y.to_bytes(48, "little")


def _xy(point: Element) -> tuple[int, int]:
    data = GROUP.encode_for_pairing(point)
    return int.from_bytes(data[:48], "little"), int.from_bytes(data[48:], "little")


def curve_point_g1() -> Element:
    """A random point of E(Fp): in G1 with probability 1/h."""
    while True:
        x = secrets.randbelow(P)
        y = _sqrt((x**3 + 4) % P)
        if y is not None:
            return GROUP.decode_for_pairing("G1", _encode_g1(x, bool(y & 1)))


def curve_point_g2() -> Element:
    """A random point of the twist E'(Fp2) (the unchecked decoder of the backend)."""
    while True:
        data = bytearray(secrets.token_bytes(96))
        data[47] &= 0x0F
        data[95] &= 0x0F
        try:
            return GROUP._decode("G2", bytes(data))  # type: ignore[attr-defined]
        except InvalidEncoding:
            continue


def scalar_mul(point: Element, k: int) -> Element:
    """k * point by double-and-add on the group law alone (mcl's GLV multiplication assumes the
    subgroup, so it cannot be used on points outside it)."""
    acc = GROUP.identity(point.kind)
    for bit in bin(k)[2:]:
        acc = acc * acc
        if bit == "1":
            acc = acc * point
    return acc


def cofactor_point(order_divides: int = H1) -> Element:
    """A non-zero point of E(Fp) whose order divides `order_divides` (so outside G1)."""
    while True:
        t = scalar_mul(curve_point_g1(), GROUP.order * (H1 // order_divides))
        if not t.is_identity():
            return t


# -- headers of every scheme ------------------------------------------------------------------

def _fame() -> tuple[bytes, Any]:
    hospital = CPABE.setup()
    key = hospital.keygen(["doctor", "cardiology"])
    return encrypt(MESSAGE, None, PolicyRecipient(hospital.public_key, "doctor and cardiology")), key


def _scheme(name: str) -> tuple[bytes, Any]:
    hospital = CPABE.setup(scheme=name)
    key = hospital.keygen(["doctor", "cardiology"])
    return encrypt(MESSAGE, None, PolicyRecipient(hospital.public_key, "doctor and cardiology")), key


def _fame_kp() -> tuple[bytes, Any]:
    registry = KPABE.setup()
    key = registry.keygen(policy="study and year")
    return encrypt(MESSAGE, None, AttributesRecipient(registry.public_key, ["study", "year"])), key


def _rw15() -> tuple[bytes, Any]:
    a, b = Authority.setup("hospitalA"), Authority.setup("university")
    keys = [a.keygen("alice", ["doctor"]), b.keygen("alice", ["researcher"])]
    recipient = MultiAuthorityRecipient("doctor@hospitalA and researcher@university",
                                        [a.public_key, b.public_key])
    return encrypt(MESSAGE, None, recipient), keys


SCHEMES = {"fame": _fame, "bsw07": lambda: _scheme("bsw07"), "waters11": lambda: _scheme("waters11"),
           "fame-kp": _fame_kp, "rw15": _rw15}


@pytest.fixture(scope="module", params=sorted(SCHEMES))
def sample(request: pytest.FixtureRequest) -> tuple[str, bytes, Any]:
    blob, key = SCHEMES[request.param]()
    return request.param, blob, key


def split(blob: bytes) -> tuple[dict[str, Any], bytes]:
    (n,) = struct.unpack(">I", blob[4:8])
    return cbor2.loads(blob[8:8 + n]), blob[8 + n:]


def join(core: dict[str, Any], rest: bytes) -> bytes:
    raw = cbor2.dumps(core)
    return b"ABE2" + struct.pack(">I", len(raw)) + raw + rest


def positions(core: dict[str, Any]) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path inside ct.parts, kind) of every group element of the ciphertext."""
    scheme = core["ct"]["scheme"]
    from abe_health.hazmat.schemes import get_scheme

    layout = get_scheme(scheme, GROUP).LAYOUTS["ciphertext"]

    def walk(spec: Any, value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], str]]:
        if isinstance(spec, str):
            if spec != "Zr":
                yield path, spec
        elif spec[0] == "list":
            for i, v in enumerate(value):
                yield from walk(spec[2], v, (*path, i))
        else:
            for k, v in value.items():
                yield from walk(spec[1], v, (*path, k))

    for name, spec in layout.items():
        yield from walk(spec, core["ct"]["parts"][name], (name,))


def replaced(core: dict[str, Any], path: tuple[Any, ...], data: bytes) -> dict[str, Any]:
    new = cbor2.loads(cbor2.dumps(core))
    target = new["ct"]["parts"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = data
    return new


def get(core: dict[str, Any], path: tuple[Any, ...]) -> bytes:
    target = core["ct"]["parts"]
    for step in path:
        target = target[step]
    return bytes(target)


def malformed(kind: str, honest: bytes) -> dict[str, bytes]:
    """The encodings decoding must refuse for one element of `kind`."""
    if kind == "G1":
        # every G1 position of these ciphertexts is pairing-only, where a reader accepts both the
        # compressed (48 bytes) and the uncompressed form (96): both are planted everywhere
        off = 5
        while _sqrt((off**3 + 4) % P) is not None:
            off += 1
        point = GROUP.decode_for_pairing("G1", honest)
        x, y = _xy(point)
        outside, order3, stray = point * cofactor_point(), point * cofactor_point(3), curve_point_g1()
        return {
            "off-curve": _encode_g1(off, False),
            "non-canonical": _encode_g1(x + P, bool(y & 1)),
            "off-subgroup": outside.to_bytes(),
            "order-3 component": order3.to_bytes(),
            "random curve point": stray.to_bytes(),
            "uncompressed, off-curve": _encode_g1_long(x, (y + 1) % P),
            "uncompressed, x off the curve": _encode_g1_long(off, y),
            "uncompressed, x non-canonical": _encode_g1_long(x + P, y),
            "uncompressed, y non-canonical": _encode_g1_long(x, y + P),
            "uncompressed, top bit set": _encode_g1_long(x, y | 1 << 383),
            "uncompressed, (0, 1)": _encode_g1_long(0, 1),
            "uncompressed, the order-3 point (0, 2)": _encode_g1_long(0, 2),
            "uncompressed, off-subgroup": GROUP.encode_for_pairing(outside),
            "uncompressed, order-3 component": GROUP.encode_for_pairing(order3),
            "uncompressed, random curve point": GROUP.encode_for_pairing(stray),
            "47 bytes": honest[:47],
            "95 bytes": GROUP.encode_for_pairing(point)[:95],
            "97 bytes": GROUP.encode_for_pairing(point) + b"\0",
        }
    if kind == "G2":
        flipped = bytearray(honest)
        flipped[0] ^= 1
        bad = bytearray(honest)
        bad[47] |= 0x1F  # the first coordinate >= p
        return {"flipped bit": bytes(flipped), "non-canonical": bytes(bad),
                "off-subgroup": curve_point_g2().to_bytes()}
    big = bytearray(honest)
    big[:48] = P.to_bytes(48, "little")  # a coefficient equal to p
    return {"zero": bytes(576), "outside GT": secrets.token_bytes(575) + b"\x00",
            "non-canonical": bytes(big)}


def test_every_position_refuses_every_malformed_element(sample):
    name, blob, _key = sample
    core, rest = split(blob)
    seen = 0
    for path, kind in positions(core):
        for data in malformed(kind, get(core, path)).values():
            with pytest.raises(InvalidCiphertext, match="malformed ciphertext"):
                read_header_bytes(join(replaced(core, path, data), rest))
            seen += 1
    assert seen >= 9, name


def test_identity_decodes_where_it_did_and_opens_nothing(sample):
    """The identity is a valid subgroup element (decoding accepted it before too); a header
    with one is refused by the key wrap, never opened."""
    _name, blob, key = sample
    core, rest = split(blob)
    for path, kind in positions(core):
        identity = GROUP.identity(kind)  # type: ignore[arg-type]
        forms = {identity.to_bytes(), GROUP.encode_for_pairing(identity)} if kind == "G1" \
            else {identity.to_bytes()}
        for data in forms:
            planted = join(replaced(core, path, data), rest)
            assert read_header_bytes(planted).ciphertext is not None
            with pytest.raises(InvalidCiphertext):
                decrypt(planted, None, *(key if isinstance(key, list) else [key]))


def read_header_bytes(data: bytes) -> Any:
    import io

    return read_header(io.BytesIO(data))


@pytest.mark.parametrize("form", ["compressed", "uncompressed"])
def test_cancelling_off_subgroup_points_change_nothing(sample, form):
    """The batch test is a sum; components that cancel pass it, and are harmless: decryption
    sees only each point's subgroup component, so the file opens exactly as before (whichever
    form the planted points are written in)."""
    name, blob, key = sample
    core, rest = split(blob)
    def encode(point: Element) -> bytes:
        return GROUP.encode_for_pairing(point) if form == "uncompressed" else point.to_bytes()

    g1_paths = [path for path, kind in positions(core) if kind == "G1"]
    assert len(g1_paths) >= 2, name
    t = cofactor_point()
    first, second = g1_paths[0], g1_paths[-1]
    planted = replaced(core, first, encode(GROUP.decode_for_pairing("G1", get(core, first)) * t))
    planted = replaced(planted, second, encode(GROUP.decode_for_pairing("G1", get(core, second)) * ~t))
    # the header's digest binds the wrap, so re-encrypting is the only way to a file that opens:
    # instead compare the KEM keys of the two ciphertexts directly
    honest, forged = read_header_bytes(blob), read_header_bytes(join(planted, rest))
    keys = key if isinstance(key, list) else [key]
    scheme = honest.scheme
    if name == "rw15":
        records = [k.record for k in keys]
        assert scheme.decapsulate(records, forged.ciphertext) == \
            scheme.decapsulate(records, honest.ciphertext)
    else:
        record = keys[0].record
        assert scheme.decapsulate(record, forged.ciphertext) == scheme.decapsulate(record, honest.ciphertext)
    assert decrypt(blob, None, *keys) == MESSAGE


def test_pairing_ignores_the_cofactor_component():
    """The fact docs/speed.md builds on: e(P0 + T, Q) = e(P0, Q) for T of order dividing h."""
    p0, q = GROUP.random("G1"), GROUP.random("G2")
    for order in (3, H1):
        t = cofactor_point(order)
        assert not GROUP.check_pairing_batch([p0 * t])
        assert GROUP.pair(p0 * t, q) == GROUP.pair(p0, q)
        assert GROUP.pair_prod([(p0 * t, q), (p0, q)]) == GROUP.pair(p0, q) ** 2
        # multi-exponentiation and GLV multiplication keep the subgroup component exact
        assert GROUP.pair(GROUP.multi_exp([p0 * t, p0], [5, 7]), q) == GROUP.pair(p0, q) ** 12
        assert GROUP.pair((p0 * t) ** 11, q) == GROUP.pair(p0, q) ** 11


def test_keys_are_still_checked_point_by_point(tmp_path):
    """User keys are not batch-tested: an edited key with a point outside G1 is refused."""
    from abe_health import read_key
    from abe_health.errors import InvalidKey

    hospital = CPABE.setup()
    key = hospital.keygen(["doctor"])
    path = tmp_path / "alice.key"
    key.save(path, armor=False)
    data = cbor2.loads(path.read_bytes())
    honest = GROUP.deserialize("G1", data["parts"]["skp"][0])
    data["parts"]["skp"][0] = (honest * cofactor_point()).to_bytes()
    path.write_bytes(cbor2.dumps(data))
    with pytest.raises(InvalidKey):
        read_key(path)
    # the uncompressed form is for ciphertexts' pairing-only points: a key refuses it, even honest
    data["parts"]["skp"][0] = GROUP.encode_for_pairing(honest)
    path.write_bytes(cbor2.dumps(data))
    with pytest.raises(InvalidKey, match="48 bytes"):
        read_key(path)


def test_decode_for_pairing_checks_curve_and_encoding():
    good = GROUP.random("G1")
    assert GROUP.decode_for_pairing("G1", good.to_bytes()) == good
    assert GROUP.decode_many_for_pairing("G1", [good.to_bytes()] * 3) == [good] * 3
    bad = malformed("G1", good.to_bytes())
    for what in ("off-curve", "non-canonical"):
        with pytest.raises(InvalidEncoding):
            GROUP.decode_for_pairing("G1", bad[what])
        with pytest.raises(InvalidEncoding, match=r"^\[1\]"):
            GROUP.decode_many_for_pairing("G1", [good.to_bytes(), bad[what]])
    with pytest.raises(InvalidEncoding):
        GROUP.decode_many_for_pairing("G1", [good.to_bytes()[:-1]])
    assert GROUP.check_pairing_batch([good, good])
    assert not GROUP.check_pairing_batch([good, GROUP.decode_for_pairing("G1", bad["off-subgroup"])])
    with pytest.raises(InvalidEncoding):  # G2 and GT are always checked in full
        GROUP.decode_for_pairing("G2", curve_point_g2().to_bytes())


def test_the_uncompressed_form_round_trips_and_is_checked():
    """x | y decodes to the same point as the compressed form, for points in G1 and outside it
    and for the identity; every malformed variant is refused by the decoder itself except the
    points on the curve outside G1, which the batch test refuses."""
    for point in (GROUP.random("G1"), GROUP.generator("G1"), curve_point_g1(), cofactor_point(3),
                  GROUP.identity("G1")):
        long = GROUP.encode_for_pairing(point)
        assert len(long) == 96
        assert GROUP.decode_for_pairing("G1", long) == point
        if point.to_bytes() == bytes(48) and not point.is_identity():
            # (0, 2), of order 3 (the random order-3 point is it half the time): x = 0 with an
            # even y is the identity's compressed form, so this point has none of its own
            assert GROUP.decode_for_pairing("G1", point.to_bytes()).is_identity()
            continue
        assert GROUP.decode_for_pairing("G1", point.to_bytes()) == point
        assert GROUP.decode_many_for_pairing("G1", [long, point.to_bytes(), bytearray(long)]) == [point] * 3
    assert GROUP.encode_for_pairing(GROUP.identity("G1")) == bytes(96)
    assert GROUP.encode_for_pairing(GROUP.generator("G2")) == GROUP.generator("G2").to_bytes()
    good = GROUP.random("G1")
    for what, data in malformed("G1", good.to_bytes()).items():
        if what.endswith(("off-subgroup", "component", "random curve point", "(0, 2)")):
            assert not GROUP.check_pairing_batch([good, GROUP.decode_for_pairing("G1", data)]), what
            continue
        with pytest.raises(InvalidEncoding):
            GROUP.decode_for_pairing("G1", data)
        with pytest.raises(InvalidEncoding, match=r"^\[1\]"):
            GROUP.decode_many_for_pairing("G1", [GROUP.encode_for_pairing(good), data])
    with pytest.raises(InvalidEncoding):  # only G1 has a second form
        GROUP.decode_for_pairing("G2", GROUP.generator("G2").to_bytes() * 2)


def test_fame_writes_its_rows_uncompressed_and_reads_both_forms(sample):
    """FAME CP and KP write the G1 points of `ct` uncompressed; the other schemes compressed.
    A header whose points are re-encoded in the other form decodes to the same record (its wrap
    no longer opens: the associated data is the header as stored)."""
    name, blob, key = sample
    core, rest = split(blob)
    g1_paths = [path for path, kind in positions(core) if kind == "G1"]
    expected = 96 if name in ("fame", "fame-kp") else 48
    assert {len(get(core, path)) for path in g1_paths} == {expected}
    other = core
    for path in g1_paths:
        point = GROUP.decode_for_pairing("G1", get(core, path))
        other = replaced(other, path, point.to_bytes() if expected == 96 else GROUP.encode_for_pairing(point))
    honest, converted = read_header_bytes(blob), read_header_bytes(join(other, rest))
    assert converted.ciphertext.parts == honest.ciphertext.parts
    with pytest.raises(InvalidCiphertext, match="header was altered"):
        decrypt(join(other, rest), None, *(key if isinstance(key, list) else [key]))
