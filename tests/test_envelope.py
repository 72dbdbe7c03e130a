"""The .abe format: round trips, and every flip, truncation, swap or header splice refused."""

from __future__ import annotations

import hashlib
import io
import struct

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from abe_health import AttributesRecipient, PolicyRecipient, decrypt, encrypt
from abe_health.authority import CPABE, KPABE
from abe_health.errors import InvalidCiphertext, InvalidKey, PolicyNotSatisfied
from abe_health.hazmat.envelope import CHUNK, read_header

SMALL = 1024  # the smallest chunk the format allows: keeps "every byte" tests fast


@pytest.fixture(scope="module")
def abe():
    return CPABE.setup()


@pytest.fixture(scope="module")
def alice(abe):
    return abe.keygen(["doctor", "cardiology"])


def encrypt_small(abe, data, policy="doctor"):
    out = io.BytesIO()
    encrypt(io.BytesIO(data), out, PolicyRecipient(abe.public_key, abe.policy(policy)), chunk=SMALL)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17])
def test_round_trip_sizes(abe, alice, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    blob = encrypt(data, None, PolicyRecipient(abe.public_key, "doctor and cardiology"))
    assert decrypt(blob, None, alice) == data
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == read_header(io.BytesIO(blob)).size + size + 16 * chunks


def test_unsatisfied_policy_is_refused_before_any_payload(abe, alice):
    blob = encrypt(b"secret", None, PolicyRecipient(abe.public_key, "nurse"))
    with pytest.raises(PolicyNotSatisfied, match='key attributes do not satisfy policy "nurse"'):
        decrypt(blob, None, alice)


def _decrypt_small(blob, key):
    sink = io.BytesIO()
    decrypt(io.BytesIO(blob), sink, key)
    return sink.getvalue()


def test_every_single_byte_flip_in_a_three_chunk_file(abe, alice):
    data = bytes(range(256)) * 12  # 3072 bytes = 3 chunks of 1024
    blob = encrypt_small(abe, data)
    assert _decrypt_small(blob, alice) == data
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01 << (i % 8)
        with pytest.raises((InvalidCiphertext, InvalidKey, PolicyNotSatisfied)):
            _decrypt_small(bytes(tampered), alice)


def test_every_truncation_point(abe, alice):
    blob = encrypt_small(abe, bytes(3 * SMALL))
    for cut in range(len(blob)):
        with pytest.raises(InvalidCiphertext):
            _decrypt_small(blob[:cut], alice)


def test_chunk_swap_drop_duplicate_and_append(abe, alice):
    blob = encrypt_small(abe, b"A" * SMALL + b"B" * SMALL + b"C" * 100)
    start = read_header(io.BytesIO(blob)).size
    size = SMALL + 16
    c0, c1, c2 = blob[start : start + size], blob[start + size : start + 2 * size], blob[start + 2 * size :]
    head = blob[:start]
    for payload in (c1 + c0 + c2, c0 + c2, c0 + c1 + c1 + c2, c0 + c1 + c2 + b"\x00",
                    c0 + c1 + c2 + c2, c0 + c1):
        with pytest.raises(InvalidCiphertext):
            _decrypt_small(head + payload, alice)


def test_header_from_another_file(abe, alice):
    one = encrypt_small(abe, b"x" * 2000)
    two = encrypt_small(abe, b"y" * 2000)
    h1 = read_header(io.BytesIO(one)).size
    h2 = read_header(io.BytesIO(two)).size
    with pytest.raises(InvalidCiphertext):
        _decrypt_small(one[:h1] + two[h2:], alice)


def test_header_edits_are_refused(abe, alice):
    blob = encrypt_small(abe, b"payload")
    (length,) = struct.unpack(">I", blob[4:8])
    header = cbor2.loads(blob[8 : 8 + length])
    payload = blob[8 + length :]

    def rebuild(h):
        raw = cbor2.dumps(h)
        return b"ABE2" + struct.pack(">I", len(raw)) + raw + payload

    h = dict(header, chunk=2048)
    with pytest.raises(InvalidCiphertext):
        _decrypt_small(rebuild(h), alice)
    h = dict(header, ct=dict(header["ct"], meta=dict(header["ct"]["meta"], policy="doctor or nurse")))
    with pytest.raises((InvalidCiphertext, PolicyNotSatisfied)):
        _decrypt_small(rebuild(h), alice)
    for bad in (b"ABE3" + blob[4:], b"XYZ1" + blob[4:], b"", b"ABE2", b"ABE2\xff\xff\xff\xff"):
        with pytest.raises(InvalidCiphertext):
            _decrypt_small(bad, alice)


def test_version_1_files_are_refused_with_a_migration_message(abe, alice):
    blob = encrypt_small(abe, b"payload")
    with pytest.raises(InvalidCiphertext, match=r"version-1 \.abe file.*abe-health 0\.1"):
        _decrypt_small(b"ABE1" + blob[4:], alice)


def test_format_matches_its_specification(abe, alice):
    """An independent reading of the documented format (KEK, wrap, HKDF, nonce, AAD) decrypts it."""
    blob = encrypt_small(abe, b"hello PHR" * 300)
    (n,) = struct.unpack(">I", blob[4:8])
    core, wrap = blob[8 : 8 + n], blob[8 + n : 8 + n + 92]
    fields = cbor2.loads(core)
    assert set(fields) == {"v", "ct", "chunk", "salt"} and fields["chunk"] == SMALL
    salt = fields["salt"]
    header = read_header(io.BytesIO(blob))
    assert header.size == 8 + n + 92
    gt_key = alice.scheme.decapsulate(alice.record, header.ciphertext)
    wsalt, nonce, sealed = wrap[:32], wrap[32:44], wrap[44:]
    kek = HKDF(algorithm=hashes.SHA256(), length=32, salt=wsalt,
               info=b"abe-health/v2/kek" + bytes(4)).derive(gt_key.to_bytes())
    dek = AESGCM(kek).decrypt(nonce, sealed, hashlib.sha256(blob[: 8 + n]).digest())
    okm = HKDF(algorithm=hashes.SHA256(), length=39, salt=salt,
               info=b"abe-health/v2/payload").derive(dek)
    aad = hashlib.sha256(b"ABE2" + salt + SMALL.to_bytes(4, "big")).digest()
    out, pos, counter = b"", header.size, 0
    while pos < len(blob):
        chunk = blob[pos : pos + SMALL + 16]
        last = pos + len(chunk) == len(blob)
        nonce = okm[32:] + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        out += AESGCM(okm[:32]).decrypt(nonce, chunk, aad)
        pos, counter = pos + len(chunk), counter + 1
    assert out == b"hello PHR" * 300


def test_failed_decryption_writes_no_file(abe, alice, tmp_path):
    src = tmp_path / "rec.abe"
    blob = encrypt_small(abe, b"z" * 3000)
    src.write_bytes(blob[:-1])
    out = tmp_path / "out.json"
    with pytest.raises(InvalidCiphertext):
        decrypt(src, out, alice)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.abe"]


def test_failed_decryption_keeps_the_old_file(abe, alice, tmp_path):
    out = tmp_path / "out.json"
    out.write_bytes(b"previous")
    src = tmp_path / "rec.abe"
    src.write_bytes(encrypt(b"secret", None, PolicyRecipient(abe.public_key, "nurse")))
    with pytest.raises(PolicyNotSatisfied):
        decrypt(src, out, alice)
    assert out.read_bytes() == b"previous"


def test_file_round_trip_and_wrong_authority(abe, alice, tmp_path):
    plain = tmp_path / "rec.json"
    plain.write_bytes(b'{"bp": "120/80"}')
    encrypt(plain, tmp_path / "rec.abe", PolicyRecipient(abe.public_key, "doctor"))
    decrypt(tmp_path / "rec.abe", tmp_path / "out.json", alice)
    assert (tmp_path / "out.json").read_bytes() == plain.read_bytes()
    other = CPABE.setup()
    stranger = other.keygen(["doctor"])
    with pytest.raises(InvalidKey, match="encrypted for authority"):
        decrypt(tmp_path / "rec.abe", tmp_path / "out2.json", stranger)


def test_kp_files(tmp_path):
    kp = KPABE.setup()
    key = kp.keygen(policy="lab and (cardiology or oncology)")
    blob = encrypt(b"ecg", None, AttributesRecipient(kp.public_key, ["lab", "cardiology"]))
    assert decrypt(blob, None, key) == b"ecg"
    with pytest.raises(PolicyNotSatisfied):
        decrypt(encrypt(b"ecg", None, AttributesRecipient(kp.public_key, ["lab"])), None, key)
    with pytest.raises(InvalidKey, match="attributes"):
        encrypt(b"ecg", None, PolicyRecipient(kp.public_key, "lab"))


def test_wrong_key_kinds(abe, alice):
    blob = encrypt(b"x", None, PolicyRecipient(abe.public_key, "doctor"))
    with pytest.raises(InvalidKey, match="identity is a user key"):
        decrypt(blob, None, abe.public_key)
    with pytest.raises(InvalidKey, match="needs an authority public key"):
        encrypt(io.BytesIO(b""), io.BytesIO(), PolicyRecipient(alice, abe.policy("doctor")))
    bsw = CPABE.setup("bsw07")
    with pytest.raises(InvalidKey, match="encrypted with fame"):
        decrypt(blob, None, bsw.keygen(["doctor"]))


@pytest.mark.parametrize("size", [0, 1, 47, 48, 49, 3000, 70000])
def test_armored_files(abe, alice, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    armored = encrypt(data, None, PolicyRecipient(abe.public_key, "doctor"), armor=True)
    text = armored.decode("ascii")
    assert text.startswith("-----BEGIN ABE FILE-----\n") and text.endswith("-----END ABE FILE-----\n")
    assert all(len(line) <= 64 for line in text.splitlines())
    assert decrypt(armored, None, alice) == data


def test_armor_tampering(abe, alice):
    armored = encrypt(b"x" * 500, None, PolicyRecipient(abe.public_key, "doctor"), armor=True)
    lines = armored.split(b"\n")
    for bad in (
        armored.replace(b"-----END ABE FILE-----\n", b""),
        armored + b"trailing",
        b"\n".join([*lines[:3], b"!!!!", *lines[3:]]),
        b"\n".join(lines[:2] + lines[3:]),
        armored.replace(b"BEGIN ABE FILE", b"BEGIN ABE FILX"),
    ):
        with pytest.raises(InvalidCiphertext):
            decrypt(bad, None, alice)


def test_reencapsulation_keeps_the_payload(abe, alice):
    from abe_health.hazmat.envelope import reencapsulate

    data = bytes(range(256)) * 1000
    blob = encrypt(data, None, PolicyRecipient(abe.public_key, "doctor and cardiology"))
    old = read_header(io.BytesIO(blob))
    nurse = abe.keygen(["nurse"])
    new_gt, new_ct = abe.public_key.scheme.encapsulate(abe.public_key.record, abe.policy("nurse"))
    out = io.BytesIO()
    reencapsulate(io.BytesIO(blob), out, lambda h: alice.scheme.decapsulate(alice.record, h.ciphertext),
                  abe.public_key.scheme, new_ct, new_gt)
    rewrapped = out.getvalue()
    new = read_header(io.BytesIO(rewrapped))
    assert rewrapped[new.size :] == blob[old.size :]  # payload bytes untouched
    assert decrypt(rewrapped, None, nurse) == data
    with pytest.raises(PolicyNotSatisfied):
        decrypt(rewrapped, None, alice)
    with pytest.raises(PolicyNotSatisfied):
        reencapsulate(io.BytesIO(blob), io.BytesIO(),
                      lambda h: nurse.scheme.decapsulate(nurse.record, h.ciphertext),
                      abe.public_key.scheme, new_ct, new_gt)


def test_context_binds_a_header_to_its_place(abe, alice):
    """A header written for one context (vault file id and generation, PHR section) does not
    open under another, so a stored file moved to another id or section is refused."""
    out = io.BytesIO()
    encrypt(io.BytesIO(b"f1"), out, PolicyRecipient(abe.public_key, "doctor"), chunk=SMALL,
            context=b"file-1")
    blob = out.getvalue()
    assert decrypt(io.BytesIO(blob), io.BytesIO(), alice, context=b"file-1")
    for other in (b"", b"file-2", b"file-1\x00"):
        with pytest.raises(InvalidCiphertext, match="belongs to another file"):
            decrypt(io.BytesIO(blob), io.BytesIO(), alice, context=other)


def test_headers_sharing_one_encapsulation_have_independent_wraps(abe, alice):
    """The v1 break: one GT key for many headers and a zero nonce let wrap(victim) xor
    wrap(planted) xor planted DEK give the victim's DEK. Each v2 wrap has its own salt and nonce."""
    from abe_health.hazmat.envelope import WRAP, write_header

    gt_key, ct = abe.public_key.scheme.encapsulate(abe.public_key.record, abe.policy("doctor"))
    salt, victim_dek, planted_dek = bytes(32), b"V" * 32, b"P" * 32
    heads = []
    for dek in (victim_dek, planted_dek):
        out = io.BytesIO()
        write_header(out, abe.public_key.scheme, ct, gt_key, dek, salt, SMALL)  # same salt, same GT key
        heads.append(out.getvalue())
    wraps = [h[-WRAP:] for h in heads]
    assert wraps[0][:44] != wraps[1][:44]  # fresh wrap salt and nonce
    forged = bytes(a ^ b ^ c for a, b, c in zip(wraps[0][44:76], wraps[1][44:76], planted_dek, strict=True))
    assert forged != victim_dek
    assert read_header(io.BytesIO(heads[0])).unwrap(gt_key) == victim_dek
