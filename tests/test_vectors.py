"""Frozen format vectors (tests/vectors/, written once by generate.py): today's code must read
every one of them as its `expect:` line says. A change that alters a format fails here; a
deliberate change bumps the format version and regenerates them."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import cbor2
import pytest

from abe_health import decrypt
from abe_health.errors import InvalidCiphertext, PolicyNotSatisfied
from abe_health.keys import read_key

VECTORS = Path(__file__).parent / "vectors"
ABE_VECTORS = sorted(VECTORS.glob("*/*.vec"))


def read_vector(path: Path) -> tuple[dict[str, str], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"---\n")
    headers = dict(line.split(": ", 1) for line in head.decode().splitlines())
    return headers, body


def test_every_scheme_has_vectors():
    assert {p.parent.name for p in ABE_VECTORS} == {"fame", "fame-kp", "bsw07", "waters11", "rw15"}
    assert len(ABE_VECTORS) == 5 * 8 + 2  # and FAME CP and KP each an uncompressed.vec


@pytest.mark.parametrize("scheme", ["fame", "fame-kp"])
def test_fame_vectors_freeze_both_forms_of_g1(scheme):
    """success.vec holds the rows' G1 points compressed (48 bytes, as written before issue 18),
    uncompressed.vec in the 96-byte form FAME writes now (docs/formats.md section 1.1)."""
    from abe_health.hazmat.envelope import read_header

    for name, size in (("success", 48), ("uncompressed", 96)):
        _headers, body = read_vector(VECTORS / scheme / f"{name}.vec")
        (n,) = struct.unpack(">I", body[4:8])
        rows = cbor2.loads(body[8:8 + n])["ct"]["parts"]["ct"]
        points = [p for row in (rows.values() if isinstance(rows, dict) else rows) for p in row]
        assert points and {len(p) for p in points} == {size}
        assert read_header(io.BytesIO(body)).ciphertext.scheme == scheme


@pytest.mark.parametrize("path", ABE_VECTORS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_abe_vector(path):
    headers, body = read_vector(path)
    keys = [read_key(path.parent / name) for name in headers["identity"].split(",")]
    context = bytes.fromhex(headers.get("context", ""))
    out = io.BytesIO()
    expect = headers["expect"]

    def run():
        return decrypt(io.BytesIO(body), out, keys if len(keys) > 1 else keys[0], context=context)

    if expect == "success":
        run()
        assert hashlib.sha256(out.getvalue()).hexdigest() == headers["payload"]
    elif expect == "not satisfied":
        with pytest.raises(PolicyNotSatisfied):
            run()
    elif expect == "version failure":
        with pytest.raises(InvalidCiphertext, match="version-1"):
            run()
    elif expect == "header failure":
        with pytest.raises(InvalidCiphertext, match="header"):
            run()
        assert out.getvalue() == b""
    else:
        assert expect == "payload failure"
        with pytest.raises(InvalidCiphertext, match=r"payload|chunk"):
            run()


def test_phr_vector():
    from abe_health.phr import open_record

    expected = json.loads((VECTORS / "rw15" / "record.json").read_text())
    blob = (VECTORS / "rw15" / "record.phr").read_bytes()
    for identity, names in expected["visible"].items():
        keys = [read_key(VECTORS / "rw15" / n) for n in identity.split(",")]
        opened = open_record(blob, keys, expect_id=expected["record_id"])
        assert sorted(opened.visible) == names
        for name, value in opened.visible.items():
            digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
            assert digest == expected["sections"][name]
        assert sorted(opened.closed) == sorted(set(expected["sections"]) - set(names))
    with pytest.raises(InvalidCiphertext):
        open_record(blob, [read_key(VECTORS / "rw15" / "alice-0.key")], expect_id="patient-43")


def test_key_vectors():
    spec = json.loads((VECTORS / "keys" / "keys.json").read_text())
    for name, want in spec.items():
        key = read_key(VECTORS / "keys" / name, passphrase=want.get("passphrase"))
        assert (key.kind, key.scheme.name) == (want["kind"], want["scheme"])
        same = read_key((VECTORS / "keys" / want["same_as"]).resolve())
        assert key.to_bytes() == same.to_bytes()


def test_index_vector():
    from abe_health.owner import OwnerPublicKey, open_search_key
    from search import SearchIndex, SearchKey

    spec = json.loads((VECTORS / "index" / "index.json").read_text())
    index = SearchIndex(VECTORS / "index" / "idx")
    key = SearchKey.load(VECTORS / "index" / "search.key")
    for query, docs in spec["queries"].items():
        assert [h.doc_id for h in index.search(query, key).hits] == docs
    owner = OwnerPublicKey.load(VECTORS / "index" / "owner.pub")
    alice = read_key((VECTORS / "index" / spec["identity"]).resolve())
    opened = open_search_key(index, alice, owner)
    assert opened.fingerprint == key.fingerprint
