"""Authorized search over collections: groups by policy, many owners, revoking search capability.

The model is plain Python: a document is visible to a user iff the attribute set of its group's
policy (here: conjunctions) is a subset of the user's attributes; results must equal
`reference_query` over the visible documents, with ids `NAME/doc`.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abe_health import CPABE
from abe_health.collection import (
    Collection,
    CollectionError,
    _write_statement,
    open_collection,
    read_statement,
    search_collections,
)
from abe_health.errors import InvalidSignature
from abe_health.owner import SEALED_KEY, OwnerKey
from abe_health.revocation.manifest import AuthorityState
from abe_health.revocation.vault import Vault
from search import DocumentExists, SearchKey, UnknownDocument
from search.query import reference_query

AUTHORITY = CPABE.setup()
ATTRIBUTES = ["doctor", "nurse", "cardiology", "researcher"]
POLICIES = {("doctor",): "doctor", ("nurse",): "nurse", ("cardiology", "doctor"): "doctor and cardiology",
            ("researcher",): "researcher"}
WORDS = ["cardio", "card", "asthma", "wheeze", "heart", "diabetes"]


def policy_of(needs: tuple[str, ...]) -> str:
    return POLICIES[needs]


@st.composite
def corpora(draw):
    """Documents, each with words and the attribute set its policy needs."""
    n = draw(st.integers(1, 10))
    return {f"d{i}": (Counter({w: draw(st.integers(1, 3)) for w in
                               draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True))}),
                      draw(st.sampled_from(sorted(POLICIES))))
            for i in range(n)}


def build(path, owner, corpus, name=None) -> Collection:
    coll = Collection.create(path, owner, name)
    for needs in sorted({needs for _, needs in corpus.values()}):
        docs = {d: words for d, (words, n) in corpus.items() if n == needs}
        coll.add(docs, policy_of(needs), AUTHORITY.public_key)
    return coll


def visible(corpus, attrs, prefix):
    return {prefix + d: words for d, (words, needs) in corpus.items() if set(needs) <= set(attrs)}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corpus=corpora(), attrs=st.lists(st.sampled_from(ATTRIBUTES), unique=True),
       queries=st.lists(st.sampled_from(["card", "^card", "heart OR asthma", "card AND wheez", "e"]),
                        min_size=1, max_size=3))
def test_a_searcher_finds_exactly_what_its_keys_may_open(tmp_path_factory, corpus, attrs, queries):
    owner = OwnerKey.generate()
    path = tmp_path_factory.mktemp("c") / "clinic"
    coll = build(path, owner, corpus)
    user = AUTHORITY.keygen(attributes=attrs or ["nobody"])
    opened = open_collection(path, [user], [owner.public_key])
    for query in queries:
        result = search_collections(query, [opened], [user])
        assert result.hits == reference_query(query, visible(corpus, attrs, "clinic/")), query
    needs_of = {str(AUTHORITY.policy(p)): needs for needs, p in POLICIES.items()}
    assert sorted(opened.held) == sorted(g.id for g in coll.groups if set(needs_of[g.policy]) <= set(attrs))
    assert len(opened.sources) == len({needs for _, needs in corpus.values()})


def test_many_owners_merge_into_one_ranking(tmp_path):
    corpora = {
        "clinic": {"a": (Counter({"cardio": 2}), ("doctor",)), "b": (Counter({"card": 1}), ("nurse",))},
        "lab": {"a": (Counter({"card": 3, "heart": 1}), ("doctor",)),
                "z": (Counter({"cardiology": 1}), ("researcher",))},
    }
    owners = {name: OwnerKey.generate() for name in corpora}
    for name, corpus in corpora.items():
        build(tmp_path / name, owners[name], corpus)
    doctor = AUTHORITY.keygen(attributes=["doctor", "nurse"])
    pins = list(owners[n].public_key for n in corpora)
    opened = [open_collection(tmp_path / name, [doctor], pins) for name in corpora]
    merged = {**visible(corpora["clinic"], ["doctor", "nurse"], "clinic/"),
              **visible(corpora["lab"], ["doctor", "nurse"], "lab/")}
    for query in ("card", "card OR heart", "^card AND heart"):
        assert search_collections(query, opened, [doctor]).hits == reference_query(query, merged)
    # a third owner joins without touching the others
    third = OwnerKey.generate()
    build(tmp_path / "gp", third, {"q": (Counter({"cardiac": 1}), ("doctor",))})
    before = {n: (tmp_path / n / "collection.sig").read_bytes() for n in corpora}
    opened.append(open_collection(tmp_path / "gp", [doctor], [*pins, third.public_key]))
    merged["gp/q"] = Counter({"cardiac": 1})
    assert search_collections("card", opened, [doctor]).hits == reference_query("card", merged)
    assert before == {n: (tmp_path / n / "collection.sig").read_bytes() for n in corpora}
    with pytest.raises(InvalidSignature, match="no pinned owner"):
        open_collection(tmp_path / "gp", [doctor], pins)


def test_revoking_search_capability_rekeys_only_the_affected_groups(tmp_path):
    owner = OwnerKey.generate()
    corpus = {"heart1": (Counter({"cardiology": 1}), ("doctor",)),
              "ward1": (Counter({"cardiac": 1, "ward": 1}), ("nurse",))}
    coll = build(tmp_path / "clinic", owner, corpus)
    vault = Vault(tmp_path / "vault", create_for=AUTHORITY, state=AuthorityState(tmp_path / "state.db"))
    mallory = vault.issue_key(AUTHORITY, ["doctor", "nurse"])
    opened = open_collection(tmp_path / "clinic", [mallory], [owner.public_key])
    cached = {g.policy: s.key for g, s in zip(opened.statement.groups, opened.sources, strict=True)}
    assert [h.doc_id for h in search_collections("card", [opened], [mallory]).hits] == \
        ["clinic/heart1", "clinic/ward1"]
    nurse_before = next(g for g in coll.groups if g.policy == "nurse")

    vault.revoke("doctor", AUTHORITY)
    stats = coll.rekey(AUTHORITY.public_key, vault.versions(AUTHORITY))
    assert stats.groups == 1 and stats.documents == 1 and stats.keywords == 1
    doctor_group = next(g for g in coll.groups if g.policy == "doctor")
    assert doctor_group.epoch == 2 and "doctor#v1" in doctor_group.sealed
    assert next(g for g in coll.groups if g.policy == "nurse") == nurse_before  # untouched
    assert not (tmp_path / "clinic" / f"g-{doctor_group.id}-1").exists()

    again = open_collection(tmp_path / "clinic", [mallory], [owner.public_key])
    assert [h.doc_id for h in search_collections("card", [again], [mallory]).hits] == ["clinic/ward1"]
    index = next(s.index for g, s in zip(again.statement.groups, again.sources, strict=True)
                 if g.policy == "doctor")
    assert not index.key_matches(cached["doctor"])  # the cached key opens nothing of the new index
    assert index.search("card", cached["doctor"]).hits == []
    alice = vault.issue_key(AUTHORITY, ["doctor"])  # a holder who keeps doctor, re-issued
    for_alice = open_collection(tmp_path / "clinic", [alice], [owner.public_key])
    assert [h.doc_id for h in search_collections("card", [for_alice], [alice]).hits] == ["clinic/heart1"]
    assert coll.rekey(AUTHORITY.public_key, vault.versions(AUTHORITY)).groups == 0  # nothing behind


def test_owner_updates_move_documents_between_groups(tmp_path):
    owner = OwnerKey.generate()
    coll = build(tmp_path / "c", owner, {"x": (Counter({"heart": 1}), ("doctor",))})
    with pytest.raises(DocumentExists):
        coll.add({"x": Counter({"heart": 1})}, "nurse", AUTHORITY.public_key)
    coll.add({"x": Counter({"asthma": 1})}, "nurse", AUTHORITY.public_key, replace_existing=True)
    assert coll.documents() == {"x": next(g.id for g in coll.groups if g.policy == "nurse")}
    nurse = AUTHORITY.keygen(attributes=["nurse"])
    opened = open_collection(tmp_path / "c", [nurse], [owner.public_key])
    assert [h.doc_id for h in search_collections("asthma", [opened], [nurse]).hits] == ["c/x"]
    assert coll.remove(["x"], purge=True) == 1
    with pytest.raises(UnknownDocument):
        coll.remove(["x"])
    assert search_collections("asthma", [open_collection(tmp_path / "c", [nurse], [owner.public_key])],
                              [nurse]).hits == []


def test_the_server_cannot_relabel_swap_or_forge_groups(tmp_path):
    owner = OwnerKey.generate()
    corpus = {"a": (Counter({"heart": 1}), ("doctor",)), "b": (Counter({"heart": 1}), ("nurse",))}
    coll = build(tmp_path / "c", owner, corpus)
    doctor = AUTHORITY.keygen(attributes=["doctor"])
    sig = (tmp_path / "c" / "collection.sig").read_bytes()
    # an edited statement (one byte) does not verify
    for at in (40, len(sig) // 2, len(sig) - 3):
        edited = bytearray(sig)
        edited[at] ^= 1
        (tmp_path / "c" / "collection.sig").write_bytes(bytes(edited))
        with pytest.raises((InvalidSignature, CollectionError)):
            open_collection(tmp_path / "c", [doctor], [owner.public_key])
    (tmp_path / "c" / "collection.sig").write_bytes(sig)
    # a statement the server signs itself is not the pinned owner's
    rogue = OwnerKey.generate()
    _write_statement(tmp_path / "c", rogue, read_statement(tmp_path / "c", owner.public_key))
    with pytest.raises(InvalidSignature, match="no pinned owner"):
        open_collection(tmp_path / "c", [doctor], [owner.public_key])
    (tmp_path / "c" / "collection.sig").write_bytes(sig)
    # swapping the two groups' directories is caught by the signed index ids
    a, b = (tmp_path / "c" / g.dir for g in coll.groups)
    shutil.move(a, tmp_path / "tmp")
    shutil.move(b, a)
    shutil.move(tmp_path / "tmp", b)
    with pytest.raises(CollectionError, match="not the index"):
        open_collection(tmp_path / "c", [doctor], [owner.public_key])
    shutil.move(a, tmp_path / "tmp")
    shutil.move(b, a)
    shutil.move(tmp_path / "tmp", b)
    # a group key the server sealed itself is refused before any trapdoor
    group = coll.groups[0]
    rogue_key = SearchKey.generate()
    from abe_health import PolicyRecipient, encrypt

    (tmp_path / "c" / group.dir / SEALED_KEY).write_bytes(
        encrypt(rogue_key.to_bytes(), None, PolicyRecipient(AUTHORITY.public_key, "doctor or nurse")))
    with pytest.raises(InvalidSignature, match="not the one the owner signed"):
        open_collection(tmp_path / "c", [doctor], [owner.public_key])


def test_statement_is_type_checked(tmp_path):
    owner = OwnerKey.generate()
    coll = build(tmp_path / "c", owner, {"a": (Counter({"heart": 1}), ("doctor",))})
    good = coll.statement
    bad_groups = [replace(good.groups[0], dir="../../etc"), replace(good.groups[0], index=b"x"),
                  replace(good.groups[0], epoch=7)]
    for group in bad_groups:
        _write_statement(tmp_path / "c", owner, replace(good, groups=(group,)))
        with pytest.raises(CollectionError, match="malformed group"):
            read_statement(tmp_path / "c", owner.public_key)
    _write_statement(tmp_path / "c", owner, replace(good, groups=(good.groups[0], good.groups[0])))
    with pytest.raises(CollectionError, match="listed twice"):
        read_statement(tmp_path / "c", owner.public_key)


def test_cli_collections_end_to_end(tmp_path, monkeypatch):
    """Two owners' collections, searched in one call with one user's keys; a revocation in a
    vault, then `collection rekey --vault` cuts the revoked user's search."""
    from click.testing import CliRunner

    from abe_health.cli import main

    def run(*args: object) -> str:
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.stdout

    monkeypatch.chdir(tmp_path)
    run("setup", "-o", "hosp")
    for owner in ("clinic", "lab"):
        run("owner", "keygen", "-o", owner)
        run("collection", "init", f"{owner}.coll", "--owner-key", f"{owner}/owner.key")
        (tmp_path / owner / "notes").mkdir()
        (tmp_path / owner / "notes" / "a.json").write_text('{"note": "cardiology", "bp_systolic": 150}')
        (tmp_path / owner / "notes" / "b.json").write_text('{"note": "cardiac ward", "bp_systolic": 120}')
        run("collection", "add", f"{owner}.coll", f"{owner}/notes/a.json", "--root", f"{owner}/notes",
            "-p", "doctor", "-k", "hosp/public.key", "--owner-key", f"{owner}/owner.key")
        run("collection", "add", f"{owner}.coll", f"{owner}/notes/b.json", "--root", f"{owner}/notes",
            "-p", "nurse", "-k", "hosp/public.key", "--owner-key", f"{owner}/owner.key")
    run("vault", "init", "v", "-m", "hosp/master.key")
    run("vault", "issue", "v", "-m", "hosp/master.key", "-a", "doctor", "-o", "mallory.key")
    run("keygen", "-m", "hosp/master.key", "-a", "nurse", "-o", "nurse.key")
    pins = ["--owner", "clinic/owner.pub", "--owner", "lab/owner.pub"]
    both = run("search", "clinic.coll", "lab.coll", "card AND bp_systolic >= 140", "-i", "mallory.key", *pins)
    assert [line.split()[1] for line in both.splitlines()] == ["clinic.coll/a.json", "lab.coll/a.json"]
    nurse = run("search", "clinic.coll", "lab.coll", "card", "-i", "nurse.key", *pins)
    assert [line.split()[1] for line in nurse.splitlines()] == ["clinic.coll/b.json", "lab.coll/b.json"]
    refused = CliRunner().invoke(main, ["search", "clinic.coll", "card", "-i", "nurse.key", "--owner",
                                        "lab/owner.pub"])
    assert refused.exit_code == 1 and "no pinned owner" in refused.stderr
    run("revoke", "v", "--attr", "doctor", "-m", "hosp/master.key")
    for owner in ("clinic", "lab"):
        run("collection", "rekey", f"{owner}.coll", "--owner-key", f"{owner}/owner.key",
            "-k", "hosp/public.key", "--vault", "v")
        assert "doctor#v1" in run("collection", "list", f"{owner}.coll", "--owner-key", f"{owner}/owner.key")
    cut = CliRunner().invoke(main, ["search", "clinic.coll", "lab.coll", "card", "-i", "mallory.key", *pins])
    assert cut.exit_code == 3 and cut.stderr.startswith("error: these keys open no group")
    run("vault", "issue", "v", "-m", "hosp/master.key", "-a", "doctor", "-o", "alice.key")
    again = run("search", "clinic.coll", "lab.coll", "card", "-i", "alice.key", *pins)
    assert [line.split()[1] for line in again.splitlines()] == ["clinic.coll/a.json", "lab.coll/a.json"]
