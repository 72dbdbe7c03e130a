"""An owner's searchable collection: one PASS index per policy class, each key sealed by ABE.

Why: one search key for a whole index lets everyone who opens it learn every matching document
id, even of records their ABE keys cannot read. A collection groups documents by the ABE policy
that protects them (APKS, m2-ABKS); each group is its own PASS index with its own search key,
sealed under that policy and signed by the owner. A searcher's client opens the group keys its
ABE keys satisfy and queries every group, sending keyed stand-ins to the groups it cannot open
(`search.engine`), so it learns nothing from those groups and the server cannot tell which
groups it holds from the trapdoors.

Layout (the cloud stores all of it and may change any byte of it):

    COLL/collection.sig   the owner's signature over the collection statement:
        {"type": "abe-health/search-collection", "collection": 16 random bytes,
         "name": text, "seq": int, "groups": [{"id": 16 hex digits, "dir": "g-ID-EPOCH",
         "policy": base policy, "sealed": policy the key is sealed under, "epoch": int,
         "index": index id, "key": search key fingerprint}, ...]}
    COLL/g-ID-EPOCH/      the group's PASS index, with search.key.abe (the group's search key
                          sealed under "sealed") and search.key.sig (abe_health.owner)
    COLL/lock             the owner's writers' lock

Group search keys are derived from the owner key (`OwnerKey.derive`, bound to the collection
id, group id and epoch), so the owner keeps no other secret. Revoking search capability
(`rekey`) moves a group whose sealed policy is behind the attribute versions of a vault to a
new epoch: a new key (new PRF keys), the index rebuilt under it, sealed under the versioned
policy; a key cached before opens nothing of the new index. Other groups are untouched.

What a reader checks before making any trapdoor: the statement's signature under a pinned owner
key; for each group, that its index has the signed index id and its sealed key the signed
fingerprint (`open_search_key`). The server can serve an older statement (with its older, still
consistent, groups) and can withhold groups: freshness and availability are not protected.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import hmac
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from search import SearchIndex, SearchKey, Source
from search.engine import Searcher, SearchResult
from search.errors import DocumentExists, UnknownDocument

from .authority import ABE
from .errors import AbeError, InvalidSignature, PolicyNotSatisfied
from .fileio import write_atomic
from .keys import Key
from .locks import exclusive
from .owner import OwnerKey, OwnerPublicKey, decode_signed, encode_signed, open_search_key, seal_search_key_to
from .policy import Policy
from .recipients import MultiAuthorityRecipient, PolicyRecipient, Recipient
from .revocation.versions import apply_versions

STATEMENT_TYPE = "abe-health/search-collection"
SIGNATURE_FILE = "collection.sig"
LOCK = "lock"
KEY_LABEL = "collection-search-key"
DECOY_LABEL = b"abe-health/v1/search-decoys\x00"
MAX_STATEMENT = 4 * 1024 * 1024
MAX_GROUPS = 4096
_GROUP_ID = re.compile(r"[0-9a-f]{16}\Z")
_DIR = re.compile(r"g-([0-9a-f]{16})-([0-9]{1,9})\Z")


class CollectionError(AbeError):
    """A collection directory that is malformed, or an operation it cannot do."""


@dataclass(frozen=True)
class Group:
    """One policy class of a collection, as the signed statement describes it."""

    id: str
    dir: str
    policy: str
    sealed: str
    epoch: int
    index: bytes
    key: bytes

    def to_map(self) -> dict[str, Any]:
        return {"id": self.id, "dir": self.dir, "policy": self.policy, "sealed": self.sealed,
                "epoch": self.epoch, "index": self.index, "key": self.key}


@dataclass(frozen=True)
class Statement:
    """The owner-signed description of a collection."""

    collection: bytes
    name: str
    seq: int
    groups: tuple[Group, ...]

    def to_map(self) -> dict[str, Any]:
        return {"type": STATEMENT_TYPE, "collection": self.collection, "name": self.name,
                "seq": self.seq, "groups": [g.to_map() for g in self.groups]}


@dataclass(frozen=True)
class RekeyStats:
    """What a `rekey` did: groups re-keyed, documents and keywords rebuilt, and its time."""

    groups: int
    documents: int
    keywords: int
    seconds: float


#: what seals a group's search key: one CP public key, or the public keys of RW15 authorities
Sealing = Key | Sequence[Key]


def _recipient(sealing: Sealing, policy: Policy | str) -> Recipient:
    if isinstance(sealing, Key):
        return PolicyRecipient(sealing, policy)
    if isinstance(policy, Policy):
        policy = str(policy)
    return MultiAuthorityRecipient(policy, list(sealing))


def _parse_group(item: Any, where: str) -> Group:
    fields = {"id": str, "dir": str, "policy": str, "sealed": str, "epoch": int, "index": bytes,
              "key": bytes}
    if not isinstance(item, dict) or set(item) != set(fields) or not all(
            type(item[k]) is kind for k, kind in fields.items()):
        raise CollectionError(f"{where}: malformed group entry")
    group = Group(**item)
    match = _DIR.match(group.dir)
    if (not _GROUP_ID.match(group.id) or match is None or match.group(1) != group.id
            or int(match.group(2)) != group.epoch or len(group.index) != 16 or len(group.key) != 32):
        raise CollectionError(f"{where}: malformed group entry {group.id[:20]!r}")
    return group


def read_statement(path: Path, owner: OwnerPublicKey) -> Statement:
    """The collection statement at `path`, verified under `owner` and type-checked."""
    sig = path / SIGNATURE_FILE
    try:
        with open(sig, "rb") as handle:
            data = handle.read(MAX_STATEMENT + 1)
    except FileNotFoundError:
        raise CollectionError(f"{path}: not a search collection (no {SIGNATURE_FILE})") from None
    if len(data) > MAX_STATEMENT:
        raise CollectionError(f"{sig} is larger than {MAX_STATEMENT} bytes")
    statement, signature = decode_signed(data, str(sig))
    owner.verify(statement, signature)
    if set(statement) != {"type", "collection", "name", "seq", "groups"} \
            or statement["type"] != STATEMENT_TYPE:
        raise InvalidSignature(f"{sig}: the owner signed something other than a collection")
    cid, name, seq, groups = (statement[k] for k in ("collection", "name", "seq", "groups"))
    if not isinstance(cid, bytes) or len(cid) != 16 or not isinstance(name, str) or not name \
            or type(seq) is not int or not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise CollectionError(f"{sig}: malformed collection statement")
    parsed = tuple(_parse_group(g, str(sig)) for g in groups)
    if len({g.id for g in parsed}) != len(parsed):
        raise CollectionError(f"{sig}: a group is listed twice")
    return Statement(cid, name, seq, parsed)


class Collection:
    """The owner's handle on a collection directory (every change needs the owner key)."""

    def __init__(self, path: str | Path, owner: OwnerKey) -> None:
        self.path = Path(path)
        self.owner = owner
        self.statement = read_statement(self.path, owner.public_key)

    @classmethod
    def create(cls, path: str | Path, owner: OwnerKey, name: str | None = None) -> Collection:
        """A new, empty collection at `path` (missing or empty); `name` prefixes its document
        ids in merged searches (default: the directory's name)."""
        path = Path(path)
        if path.exists() and any(path.iterdir()):
            raise CollectionError(f"{path} exists and is not empty; refusing to overwrite it")
        path.mkdir(parents=True, exist_ok=True)
        statement = Statement(secrets.token_bytes(16), name or path.resolve().name, 1, ())
        _write_statement(path, owner, statement)
        return cls(path, owner)

    # -- keys and groups ----------------------------------------------------------------------
    def group_key(self, group_id: str, epoch: int) -> SearchKey:
        """The search key of a group at an epoch, derived from the owner key."""
        context = self.statement.collection + group_id.encode() + epoch.to_bytes(4, "big")
        return SearchKey(self.owner.derive(KEY_LABEL, context))

    def _index(self, group: Group) -> SearchIndex:
        index = SearchIndex(self.path / group.dir)
        if not hmac.compare_digest(index.index_id, group.index):
            raise CollectionError(f"{self.path / group.dir}: not the index the statement names")
        return index

    @property
    def groups(self) -> tuple[Group, ...]:
        return self.statement.groups

    def documents(self) -> dict[str, str]:
        """Every document id of the collection -> the id of its group."""
        return {doc: g.id for g in self.groups
                for doc in self._index(g).documents(self.group_key(g.id, g.epoch))}

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with exclusive(self.path / LOCK):
            self.statement = read_statement(self.path, self.owner.public_key)
            live = {g.dir for g in self.groups}
            for stray in self.path.iterdir():  # left by a writer killed before its switch
                if _DIR.match(stray.name.removesuffix(".tmp")) and stray.name not in live:
                    shutil.rmtree(stray, ignore_errors=True)
            yield

    def _switch(self, groups: Iterable[Group], drop: Iterable[str] = ()) -> None:
        self.statement = replace(self.statement, seq=self.statement.seq + 1, groups=tuple(groups))
        _write_statement(self.path, self.owner, self.statement)
        for name in drop:
            shutil.rmtree(self.path / name, ignore_errors=True)

    # -- changes ----------------------------------------------------------------------------------
    def add(self, docs: Mapping[str, Mapping[str, int]], policy: str, sealing: Sealing,
            versions: Mapping[str, int] | None = None, replace_existing: bool = False) -> str:
        """Index `docs` ({id: {keyword: tf}}) in the group of `policy` (made if new: its key
        sealed under the policy at `versions`); returns the group id. An id the collection holds
        is refused, or with `replace_existing` removed from its group in the same change."""
        base = _canonical(policy, sealing)
        with self._writing():
            held = self.documents()
            clash = sorted(held.keys() & set(docs))
            if clash and not replace_existing:
                raise DocumentExists(f"already in the collection: {', '.join(clash[:5])}")
            target = next((g for g in self.groups if g.policy == base), None)
            for group in self.groups:  # an amended document that changed policy leaves its group
                gone = [d for d in clash if held[d] == group.id and group is not target]
                if gone:
                    self._index(group).remove(gone, self.group_key(group.id, group.epoch))
            if target is not None:
                self._index(target).add(docs, self.group_key(target.id, target.epoch),
                                        replace=replace_existing)
                return target.id
            group_id = secrets.token_hex(8)
            made = self._build(group_id, 1, docs, base, sealing, versions or {})
            self._switch([*self.groups, made])
            return group_id

    def remove(self, doc_ids: Iterable[str], purge: bool = False) -> int:
        """Take documents out of their groups (see `SearchIndex.remove`)."""
        wanted = sorted(set(doc_ids))
        with self._writing():
            held = self.documents()
            missing = [d for d in wanted if d not in held]
            if missing:
                raise UnknownDocument(f"not in the collection: {', '.join(missing[:5])}")
            for group in self.groups:
                mine = [d for d in wanted if held[d] == group.id]
                if mine:
                    self._index(group).remove(mine, self.group_key(group.id, group.epoch), purge=purge)
        return len(wanted)

    def rekey(self, sealing: Sealing, versions: Mapping[str, int], only: Iterable[str] = ()
              ) -> RekeyStats:
        """Re-key every group whose sealed policy differs from its policy at `versions` (after a
        revocation bumped an attribute it mentions), and the groups named in `only`: a new epoch
        and key, the index rebuilt under it, sealed under the versioned policy."""
        forced = set(only)
        start = time.perf_counter()
        docs_done = words_done = count = 0
        with self._writing():
            groups = list(self.groups)
            for at, group in enumerate(groups):
                target = str(_sealed_policy(group.policy, sealing, versions))
                if target == group.sealed and group.id not in forced:
                    continue
                old_key = self.group_key(group.id, group.epoch)
                index = self._index(group)
                docs = index.contents(old_key)
                if not docs:  # an empty group: nothing to protect, dropped
                    groups[at] = group
                    continue
                made = self._build(group.id, group.epoch + 1, docs, group.policy, sealing, versions)
                groups[at] = made
                self._switch(groups, [group.dir])
                count += 1
                docs_done += len(docs)
                words_done += len({w for counts in docs.values() for w in counts})
        return RekeyStats(count, docs_done, words_done, time.perf_counter() - start)

    def _build(self, group_id: str, epoch: int, docs: Mapping[str, Mapping[str, int]], base: str,
               sealing: Sealing, versions: Mapping[str, int]) -> Group:
        key = self.group_key(group_id, epoch)
        directory = f"g-{group_id}-{epoch}"
        index, _ = SearchIndex.create(self.path / directory, docs, key)
        sealed = _sealed_policy(base, sealing, versions)
        seal_search_key_to(index, key, _recipient(sealing, sealed), self.owner)
        return Group(group_id, directory, base, str(sealed), epoch, index.index_id, key.fingerprint)


def _canonical(policy: str, sealing: Sealing) -> str:
    """The policy's canonical text (so equal policies share a group)."""
    return str(Policy.parse(policy, _widths(sealing)))


def _widths(sealing: Sealing) -> Mapping[str, int] | None:
    return ABE(sealing).widths if isinstance(sealing, Key) else None


def _sealed_policy(base: str, sealing: Sealing, versions: Mapping[str, int]) -> Policy:
    parsed = Policy.parse(base, _widths(sealing))
    return apply_versions(parsed, versions) if isinstance(sealing, Key) else parsed


def _write_statement(path: Path, owner: OwnerKey, statement: Statement) -> None:
    body = statement.to_map()
    write_atomic(path / SIGNATURE_FILE, encode_signed(body, owner.sign(body)))


# ---------------------------------------------------------------------------------------------
# the searcher's side


@dataclass(frozen=True)
class Opened:
    """A collection as one searcher sees it: each group's index, and its key where the
    searcher's ABE keys open it."""

    path: Path
    statement: Statement
    sources: tuple[Source, ...]

    @property
    def held(self) -> builtins.list[str]:
        """Ids of the groups this searcher opened."""
        return [g.id for g, s in zip(self.statement.groups, self.sources, strict=True) if s.key]


def open_collection(path: str | Path, identities: Sequence[Key], owners: Sequence[OwnerPublicKey]
                    ) -> Opened:
    """Verify a collection's statement under whichever pinned owner signed it, then open every
    group key the identities satisfy (others stay closed: `Source.key` None)."""
    path = Path(path)
    errors = []
    for owner in owners:
        try:
            statement = read_statement(path, owner)
            break
        except InvalidSignature as exc:
            errors.append(str(exc))
    else:
        raise InvalidSignature(f"{path}: no pinned owner signed this collection"
                               + (f" ({errors[0]})" if errors else ""))
    sources = []
    for group in statement.groups:
        index = SearchIndex(path / group.dir)
        if not hmac.compare_digest(index.index_id, group.index):
            raise CollectionError(f"{path / group.dir}: not the index the owner's statement names")
        try:
            key: SearchKey | None = open_search_key(index, list(identities), owner)
        except PolicyNotSatisfied:
            key = None
        if key is not None and not hmac.compare_digest(key.fingerprint, group.key):
            raise InvalidSignature(f"{path / group.dir}: the group key is not the one the collection names")
        if key is not None and not index.key_matches(key):
            raise CollectionError(f"{path / group.dir}: a segment of this group was not built by "
                                  "its key (planted)")
        sources.append(Source(index, key, f"{statement.name}/"))
    return Opened(path, statement, tuple(sources))


def decoy_key(identities: Sequence[Key]) -> bytes:
    """The searcher's secret for stand-in trapdoors: derived from its identities' bytes, so one
    searcher repeats its stand-ins exactly (as real trapdoors repeat) and no one else can
    predict them."""
    digest = hashlib.sha256(DECOY_LABEL)
    for blob in sorted(k.to_bytes() for k in identities):
        digest.update(len(blob).to_bytes(4, "big") + blob)
    return digest.digest()


def searcher(opened: Sequence[Opened], identities: Sequence[Key]) -> Searcher:
    """A `Searcher` over every group of the opened collections (stand-ins to the closed ones):
    keep it for many queries, so the batched view of the groups is built once."""
    names = [o.statement.name for o in opened]
    if len(set(names)) != len(names):
        raise CollectionError("two collections have the same name; their document ids would mix")
    return Searcher([s for o in opened for s in o.sources], decoy_key(identities))


def search_collections(query: str, opened: Sequence[Opened], identities: Sequence[Key],
                       top: int | None = None) -> SearchResult:
    """One ranked result over the groups every opened collection lets these identities open,
    with stand-ins sent to the rest; ids are `NAME/doc`."""
    return searcher(opened, identities).search(query, top)
