"""The owner's signing key, and owner-signed search keys against a server that swaps them.

Threat: the server stores the index directory and may replace, reorder or plant any file in it,
including INDEX/search.key.abe (sealing needs only the ABE public key). A reader who pins the
owner's public key must refuse every substitution before a single trapdoor is computed.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import stat
from collections import Counter
from dataclasses import replace

import cbor2
import pytest
from click.testing import CliRunner

import search.client
import search.engine
from abe_health import PolicyRecipient, decrypt, encrypt
from abe_health.authority import ABE
from abe_health.cli import main
from abe_health.errors import AbeError, InvalidEncoding, InvalidKey
from abe_health.owner import (
    KEY_SIGNATURE,
    SEALED_KEY,
    STATEMENT_PREFIX,
    InvalidSignature,
    OwnerKey,
    OwnerPublicKey,
    decode_signed,
    encode_signed,
    encode_statement,
    open_search_key,
    seal_search_key,
    search_key_statement,
    verify_search_key,
)
from search import SearchIndex, SearchKey
from search.errors import IndexCorrupt, InvalidSearchKey
from search.format import read_manifest, write_manifest
from search.prf import SubstringPRF

DOCS = {
    "alice.json": Counter({"hiv": 1, "oncology": 2, "cardiology": 1}),
    "bob.txt": Counter({"oncologist": 1, "heart": 3}),
}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def authority():
    return ABE.setup()


@pytest.fixture(scope="module")
def owner():
    return OwnerKey.generate()


@pytest.fixture
def world(tmp_path, authority, owner):
    """An owner-built, sealed and signed index; key files on disk; a doctor and a nurse."""
    key = SearchKey.generate()
    index, _ = SearchIndex.create(tmp_path / "idx", DOCS, key)
    seal_search_key(index, key, authority, "doctor", owner)
    owner.save(tmp_path / "owner.key")
    owner.public_key.save(tmp_path / "owner.pub")
    key.save(tmp_path / "s.key")
    authority.public_key.save(tmp_path / "public.key")
    authority.keygen(attributes=["doctor"]).save(tmp_path / "doctor.key")
    authority.keygen(attributes=["nurse"]).save(tmp_path / "nurse.key")
    return {"tmp": tmp_path, "idx": tmp_path / "idx", "key": key, "index": index,
            "doctor": authority.keygen(attributes=["doctor"])}


@pytest.fixture
def no_trapdoors(monkeypatch):
    """Record every trapdoor computation (the refusals must come before any)."""
    calls: list[str] = []
    real_trapdoor, real_one = search.client.trapdoor, SubstringPRF.one

    def trapdoor(key, pattern):
        calls.append(pattern)
        return real_trapdoor(key, pattern)

    def one(self, codes):
        calls.append("prf")
        return real_one(self, codes)

    monkeypatch.setattr(search.client, "trapdoor", trapdoor)
    monkeypatch.setattr(search.engine, "trapdoor", trapdoor)
    monkeypatch.setattr(SubstringPRF, "one", one)
    return calls


# ---------------------------------------------------------------------------------------------
# the owner key


def test_owner_key_files_modes_and_round_trip(tmp_path):
    key = OwnerKey.generate()
    key.save(tmp_path / "owner.key")
    key.public_key.save(tmp_path / "owner.pub")
    assert stat.S_IMODE(os.stat(tmp_path / "owner.key").st_mode) == 0o600
    loaded = OwnerKey.load(tmp_path / "owner.key")
    assert loaded == key and loaded.fingerprint == key.fingerprint
    public = OwnerPublicKey.load(tmp_path / "owner.pub")
    assert public == key.public_key
    decoded = cbor2.loads((tmp_path / "owner.key").read_bytes())
    assert decoded["v"] == 1 and decoded["type"] == "abe-health/owner-key"
    assert decoded["alg"] == "ed25519" and len(decoded["seed"]) == 32
    assert cbor2.loads((tmp_path / "owner.pub").read_bytes())["type"] == "abe-health/owner-public-key"
    assert len(key.fingerprint) == 39 and key.fingerprint.count(":") == 7
    assert OwnerKey.generate().fingerprint != key.fingerprint


def test_owner_key_never_shows_or_pickles_its_seed():
    key = OwnerKey.generate()
    seed = cbor2.loads(key.to_bytes())["seed"]
    for text in (repr(key), str(key), f"{key}", repr(key.public_key)):
        assert seed.hex() not in text and seed.hex()[:8] not in text
        assert key.fingerprint in text and "ed25519" in text
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(key)


def test_sign_and_verify_statements():
    key = OwnerKey.generate()
    statement = {"type": "abe-health/test", "n": 5, "data": b"\x00\x01", "list": [1, "a", None]}
    signature = key.sign(statement)
    assert len(signature) == 64
    key.public_key.verify(statement, signature)
    key.public_key.verify(dict(reversed(list(statement.items()))), signature)  # canonical order
    for changed in ({**statement, "n": 6}, {**statement, "extra": True}, {**statement, "type": "x"}):
        with pytest.raises(InvalidSignature, match="does not verify"):
            key.public_key.verify(changed, signature)
    with pytest.raises(InvalidSignature, match="does not verify"):
        OwnerKey.generate().public_key.verify(statement, signature)
    with pytest.raises(InvalidSignature, match="64 bytes"):
        key.public_key.verify(statement, signature[:-1])
    assert issubclass(InvalidSignature, AbeError)


def test_signatures_are_domain_separated():
    """The signed bytes carry the prefix: an Ed25519 signature over the bare CBOR does not verify."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = os.urandom(32)
    key = OwnerKey.from_seed(seed)
    statement = {"type": "abe-health/test", "x": 1}
    message = encode_statement(statement)
    assert message.startswith(STATEMENT_PREFIX)
    bare = Ed25519PrivateKey.from_private_bytes(seed).sign(cbor2.dumps(statement, canonical=True))
    with pytest.raises(InvalidSignature):
        key.public_key.verify(statement, bare)
    assert Ed25519PrivateKey.from_private_bytes(seed).sign(message) == key.sign(statement)


@pytest.mark.parametrize("statement", [
    {"x": 1}, {"type": ""}, {"type": 5}, {"type": "t", "f": 1.5}, {"type": "t", "s": {1, 2}},
    {"type": "t", "m": {1: "non-text key"}}, ["type", "t"],
])
def test_malformed_statements_are_refused(statement):
    with pytest.raises(InvalidEncoding):
        OwnerKey.generate().sign(statement)
    if isinstance(statement, dict):
        with pytest.raises(InvalidSignature, match="malformed"):
            OwnerKey.generate().public_key.verify(statement, bytes(64))


def _owner_files():
    key = OwnerKey.generate()
    good = cbor2.loads(key.to_bytes())
    pub = cbor2.loads(key.public_key.to_bytes())
    return [
        (OwnerKey, b"", "not CBOR"),
        (OwnerKey, b"\xff\xfe garbage", "not CBOR"),
        (OwnerKey, cbor2.dumps([1, 2]), "not an owner key"),
        (OwnerKey, cbor2.dumps({**good, "v": 2}), "not an abe-health owner key"),
        (OwnerKey, cbor2.dumps({**good, "alg": "rsa"}), "unknown algorithm"),
        (OwnerKey, cbor2.dumps({**good, "seed": good["seed"][:31]}), "32 bytes"),
        (OwnerKey, cbor2.dumps({**good, "seed": "text"}), "32 bytes"),
        (OwnerKey, cbor2.dumps({**good, "extra": 1}), "unexpected fields"),
        (OwnerKey, key.public_key.to_bytes(), "public key"),
        (OwnerKey, key.to_bytes()[:-3], "not CBOR"),
        (OwnerPublicKey, key.to_bytes(), "private owner key"),
        (OwnerPublicKey, cbor2.dumps({**pub, "key": pub["key"] + b"\x00"}), "32 bytes"),
        (OwnerPublicKey, cbor2.dumps({**pub, "type": "abe-health/pass-search-key"}), "not an"),
        (OwnerPublicKey, b"\x00" * 70_000, "too large"),
    ]


@pytest.mark.parametrize(("kind", "data", "message"), _owner_files())
def test_malformed_owner_key_files_raise_typed_errors(tmp_path, kind, data, message):
    path = tmp_path / "k"
    path.write_bytes(data)
    with pytest.raises(InvalidKey, match=message):
        kind.load(path)


def test_missing_owner_key_file(tmp_path):
    with pytest.raises(InvalidKey, match="cannot read"):
        OwnerKey.load(tmp_path / "missing.key")
    with pytest.raises(InvalidKey, match="cannot read"):
        OwnerPublicKey.load(tmp_path / "missing.pub")


def test_cli_owner_keygen(tmp_path):
    result = run("owner", "keygen", "-o", tmp_path / "own")
    assert result.exit_code == 0, result.output
    secret, public = tmp_path / "own" / "owner.key", tmp_path / "own" / "owner.pub"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    key = OwnerKey.load(secret)
    assert OwnerPublicKey.load(public) == key.public_key
    assert key.fingerprint in result.output
    result = run("owner", "keygen", "-o", tmp_path / "own")
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {secret} exists; use --force")
    assert OwnerKey.load(secret) == key
    secret.unlink()  # owner.pub alone is also protected
    result = run("owner", "keygen", "-o", tmp_path / "own")
    assert result.exit_code == 1 and "owner.pub exists" in result.output
    assert run("owner", "keygen", "-o", tmp_path / "own", "--force").exit_code == 0
    assert OwnerPublicKey.load(public) != key.public_key
    result = run("owner", "fingerprint", public)
    assert result.output.strip() == OwnerPublicKey.load(public).fingerprint
    assert run("owner", "fingerprint", secret).output.strip() == OwnerKey.load(secret).fingerprint


# ---------------------------------------------------------------------------------------------
# the signed search key: the honest path


def test_signed_search_key_opens_for_a_doctor(world, owner):
    index = SearchIndex(world["idx"])
    key = open_search_key(index, world["doctor"], owner.public_key)
    assert key == world["key"]
    verify_search_key(index, key, owner.public_key)
    statement, signature = decode_signed((world["idx"] / KEY_SIGNATURE).read_bytes())
    assert statement == {"type": "abe-health/search-key", "index": index.index_id,
                         "key": key.fingerprint}
    assert key.secret not in (world["idx"] / KEY_SIGNATURE).read_bytes()
    owner.public_key.verify(statement, signature)


def test_cli_build_search_and_add_with_an_owner_key(world, tmp_path, owner):
    recs = tmp_path / "recs"
    recs.mkdir()
    (recs / "a.json").write_text('{"notes": "HIV positive; oncology referral"}')
    (recs / "b.txt").write_text("oncologist letter")
    result = run("index", "build", recs, "--key", tmp_path / "s.key", "-o", tmp_path / "new",
                 "--policy", "doctor", "-k", tmp_path / "public.key", "--owner-key", tmp_path / "owner.key")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / SEALED_KEY).exists() and (tmp_path / "new" / KEY_SIGNATURE).exists()
    args = ("search", tmp_path / "new", "^oncolog", "-i", tmp_path / "doctor.key",
            "--owner", tmp_path / "owner.pub")
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "a.json" in result.output and "b.txt" in result.output
    result = run("search", tmp_path / "new", "hiv", "-i", tmp_path / "nurse.key",
                 "--owner", tmp_path / "owner.pub")
    assert result.exit_code == 3 and result.output.startswith("error: key attributes do not satisfy")
    # index add keeps the index id, so the signature stays valid
    before = read_manifest(tmp_path / "new").index_id
    (recs / "c.txt").write_text("oncology follow-up")
    result = run("index", "add", tmp_path / "new", recs / "c.txt", "--key", tmp_path / "s.key")
    assert result.exit_code == 0, result.output
    assert read_manifest(tmp_path / "new").index_id == before
    result = run(*args)
    assert result.exit_code == 0 and "c.txt" in result.output
    # the owner's own key needs no signature
    (tmp_path / "new" / KEY_SIGNATURE).unlink()
    result = run("search", tmp_path / "new", "hiv", "--key", tmp_path / "s.key")
    assert result.exit_code == 0 and "a.json" in result.output


def test_cli_refuses_incomplete_options(world, tmp_path):
    tmp = world["tmp"]
    result = run("index", "build", tmp / "idx", "--key", tmp / "s.key", "-o", tmp / "x",
                 "--policy", "doctor", "-k", tmp / "public.key")
    assert result.exit_code == 2 and "--policy needs --owner-key" in result.output
    assert not (tmp / "x").exists()
    result = run("index", "build", tmp / "idx", "--key", tmp / "s.key", "-o", tmp / "x",
                 "--owner-key", tmp / "owner.key")
    assert result.exit_code == 2 and "give both" in result.output
    result = run("search", world["idx"], "hiv", "-i", tmp / "doctor.key")
    assert result.exit_code == 2 and "-i needs --owner" in result.output
    result = run("search", world["idx"], "hiv", "--key", tmp / "s.key", "--owner", tmp / "owner.pub")
    assert result.exit_code == 2
    result = run("search", world["idx"], "hiv", "-i", tmp / "doctor.key", "--owner", tmp / "owner.key")
    assert result.exit_code == 1 and "private owner key" in result.output


def test_version_1_indexes_are_refused_with_a_rebuild_hint(world):
    path = world["idx"] / "manifest.cbor"
    manifest = cbor2.loads(path.read_bytes())
    path.write_bytes(cbor2.dumps({"v": 1, "format": manifest["format"], "segments": manifest["segments"]}))
    with pytest.raises(IndexCorrupt, match=r"version-1 search index.*rebuild it"):
        SearchIndex(world["idx"])
    result = run("search", world["idx"], "hiv", "--key", world["tmp"] / "s.key")
    assert result.exit_code == 1 and "rebuild it with `abe-health index build`" in result.output
    path.write_bytes(cbor2.dumps({**manifest, "index": b"short"}))
    with pytest.raises(IndexCorrupt, match="index id"):
        SearchIndex(world["idx"])


# ---------------------------------------------------------------------------------------------
# attacks: each a clean refusal, before any trapdoor


def _server_swaps_key_and_segments(world, authority, owner):
    """The attack seen in production: the server seals its own key and plants segments built
    with it, keeping the index id (it can copy it) and the owner's signature file."""
    idx, tmp = world["idx"], world["tmp"]
    rogue = SearchKey.generate()
    SearchIndex.create(tmp / "rogue", {"x": Counter({"hiv": 1, "oncology": 1})}, rogue)
    for seg in [p for p in idx.iterdir() if p.name.startswith("seg-")]:
        shutil.rmtree(seg)
    shutil.copytree(tmp / "rogue" / "seg-0001", idx / "seg-0001")
    manifest = read_manifest(idx)  # the server rewrites the key check too
    write_manifest(idx, replace(manifest, segments=["seg-0001"],
                                key_check=rogue.check_value(manifest.index_id)))
    sealed = encrypt(rogue.to_bytes(), None, PolicyRecipient(authority.public_key, "doctor"))
    (idx / SEALED_KEY).write_bytes(sealed)
    return "not the one the owner signed"


def _server_signs_with_its_own_owner_key(world, authority, owner):
    _server_swaps_key_and_segments(world, authority, owner)
    rogue = SearchKey.from_bytes(_rogue_key(world))
    statement = search_key_statement(read_manifest(world["idx"]).index_id, rogue)
    (world["idx"] / KEY_SIGNATURE).write_bytes(encode_signed(statement, OwnerKey.generate().sign(statement)))
    return "does not verify under the owner key"


def _rogue_key(world):

    return decrypt((world["idx"] / SEALED_KEY).read_bytes(), None, world["doctor"])


def _another_owner_signs_the_right_statement(world, authority, owner):
    statement = search_key_statement(read_manifest(world["idx"]).index_id, world["key"])
    (world["idx"] / KEY_SIGNATURE).write_bytes(encode_signed(statement, OwnerKey.generate().sign(statement)))
    return "does not verify under the owner key"


def _statement_for_another_index_of_the_same_owner(world, authority, owner):
    other = SearchIndex.create(world["tmp"] / "other", DOCS, world["key"])[0]  # even the same key
    seal_search_key(other, world["key"], authority, "doctor", owner)
    shutil.copy(world["tmp"] / "other" / KEY_SIGNATURE, world["idx"] / KEY_SIGNATURE)
    return "for another index"


def _other_index_key_and_signature_moved_in(world, authority, owner):
    """Another index of the owner (another key): its sealed key and signature both moved in."""
    other_key = SearchKey.generate()
    other = SearchIndex.create(world["tmp"] / "other", DOCS, other_key)[0]
    seal_search_key(other, other_key, authority, "doctor", owner)
    for name in (KEY_SIGNATURE, SEALED_KEY):
        shutil.copy(world["tmp"] / "other" / name, world["idx"] / name)
    return "for another index"


def _fingerprint_modified(world, authority, owner):
    path = world["idx"] / KEY_SIGNATURE
    statement, signature = decode_signed(path.read_bytes())
    statement["key"] = bytes([statement["key"][0] ^ 1]) + statement["key"][1:]
    path.write_bytes(encode_signed(statement, signature))
    return "does not verify"


def _index_id_modified(world, authority, owner):
    path = world["idx"] / KEY_SIGNATURE
    statement, signature = decode_signed(path.read_bytes())
    statement["index"] = os.urandom(16)
    path.write_bytes(encode_signed(statement, signature))
    return "does not verify"


def _statement_of_another_type(world, authority, owner):
    statement = {"type": "abe-health/something-else", "index": read_manifest(world["idx"]).index_id,
                 "key": world["key"].fingerprint}
    (world["idx"] / KEY_SIGNATURE).write_bytes(encode_signed(statement, owner.sign(statement)))
    return "something other than a search key"


def _write(data, message):
    def tamper(world, authority, owner):
        (world["idx"] / KEY_SIGNATURE).write_bytes(data(world))
        return message
    return tamper


def _missing_signature(world, authority, owner):
    (world["idx"] / KEY_SIGNATURE).unlink()
    return "has no owner signature"


ATTACKS = {
    "server-key-and-segments": _server_swaps_key_and_segments,
    "server-key-signed-by-server": _server_signs_with_its_own_owner_key,
    "another-owner": _another_owner_signs_the_right_statement,
    "statement-for-another-index": _statement_for_another_index_of_the_same_owner,
    "other-index-key-and-signature": _other_index_key_and_signature_moved_in,
    "fingerprint-modified": _fingerprint_modified,
    "index-id-modified": _index_id_modified,
    "statement-of-another-type": _statement_of_another_type,
    "truncated": _write(lambda w: (w["idx"] / KEY_SIGNATURE).read_bytes()[:-10],
                        "search.key.sig: not an owner signature (bytes are not CBOR)"),
    "garbage": _write(lambda w: b"\xff" + os.urandom(120), "search.key.sig: not an owner signature"),
    "empty": _write(lambda w: b"", "search.key.sig: not an owner signature"),
    "not-a-signature-file": _write(lambda w: cbor2.dumps({"v": 1, "type": "nope"}),
                                   "search.key.sig: not an abe-health owner signature"),
    "short-signature": _write(lambda w: cbor2.dumps({**cbor2.loads((w["idx"] / KEY_SIGNATURE).read_bytes()),
                                                     "signature": bytes(63)}),
                              "search.key.sig: malformed owner signature"),
    "huge": _write(lambda w: bytes(200_000), "search.key.sig is too large"),
    "missing": _missing_signature,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_api_refuses_every_substitution_before_any_trapdoor(world, authority, owner, no_trapdoors, attack):
    message = ATTACKS[attack](world, authority, owner)
    index = SearchIndex(world["idx"])
    with pytest.raises(InvalidSignature, match=re.escape(message)):
        open_search_key(index, world["doctor"], owner.public_key)
    assert no_trapdoors == []


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_cli_refuses_every_substitution_before_any_trapdoor(world, authority, owner, no_trapdoors, attack):
    message = ATTACKS[attack](world, authority, owner)
    tmp = world["tmp"]
    for pattern in ("hiv", "^oncolog"):
        result = run("search", world["idx"], pattern, "-i", tmp / "doctor.key", "--owner", tmp / "owner.pub")
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)  # a refusal, not a crash
        lines = result.output.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
        assert "Traceback" not in result.output
    assert no_trapdoors == []


def test_the_trapdoor_recorder_sees_honest_searches(world, no_trapdoors):
    """Control for the tests above: an honest search does go through the recorded functions."""
    tmp = world["tmp"]
    result = run("search", world["idx"], "^oncolog", "-i", tmp / "doctor.key", "--owner", tmp / "owner.pub")
    assert result.exit_code == 0 and "alice.json" in result.output and "bob.txt" in result.output
    assert no_trapdoors == ["^oncolog", "prf"]


def test_planted_segment_beside_a_signed_key_is_refused_before_any_trapdoor(world, no_trapdoors):
    """The signed key is genuine, but the server adds a segment of its own key: `search` refuses
    the index (it could only match the planted segment's own trapdoors, which the key never makes)."""
    idx, tmp = world["idx"], world["tmp"]
    SearchIndex.create(tmp / "rogue", {"x": Counter({"hiv": 1})}, SearchKey.generate())
    shutil.copytree(tmp / "rogue" / "seg-0001", idx / "seg-0099")
    manifest = read_manifest(idx)
    write_manifest(idx, replace(manifest, segments=[*manifest.segments, "seg-0099"]))
    result = run("search", idx, "hiv", "-i", tmp / "doctor.key", "--owner", tmp / "owner.pub")
    assert result.exit_code == 1 and result.output.startswith("error: this search key did not build")
    assert no_trapdoors == []


def test_sealing_refuses_a_key_that_did_not_build_the_index(world, authority, owner):
    with pytest.raises(InvalidSearchKey, match="did not build"):
        seal_search_key(world["index"], SearchKey.generate(), authority, "doctor", owner)
