"""`abe-health owner ...`, `abe-health index ...` and `abe-health search` from a terminal.

`owner keygen -o DIR` makes the data owner's Ed25519 signing key (DIR/owner.key, mode 0600) and
its public half (DIR/owner.pub), which readers pin. With `--policy P -k public.key --owner-key
owner.key` at build time the search key is also sealed in an `.abe` envelope next to the index
(INDEX/search.key.abe) and signed for this index (INDEX/search.key.sig), so `search -i USER.key
--owner owner.pub` works for anyone whose ABE attributes satisfy the policy and refuses, before
making any trapdoor, a sealed key the pinned owner did not sign for this index (a server could
otherwise seal a key of its own and read every query). `--key SEARCH.key` (the owner's own key)
needs no signature.
"""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import click

from search import SearchIndex, SearchKey, SearchResult, Source
from search.engine import run
from search.errors import InvalidSearchKey
from search.text import document_keywords, stream

from ..authority import ABE
from ..collection import SIGNATURE_FILE, decoy_key, open_collection
from ..errors import AbeError, InvalidSignature, PolicyNotSatisfied
from ..keys import Key, read_key
from ..owner import OwnerKey, OwnerPublicKey, open_search_key, seal_search_key
from ..recipients import PolicyRecipient
from .common import (
    CliError,
    check_output_dir,
    check_output_file,
    make_output_dir,
    note,
    printable,
    read_secret_key,
)

index_argument = click.argument("index_dir", type=click.Path(file_okay=False), metavar="INDEX")
docs_argument = click.argument("docs", nargs=-1, required=True, metavar="DOC_OR_DIR...")
root_option = click.option("--root", type=click.Path(file_okay=False, exists=True), metavar="DIR",
                           help="Document ids are paths relative to DIR (default: the current "
                                "directory); files outside it keep their absolute path.")
id_option = click.option("--id", "doc_id", metavar="ID",
                         help="The document id of the one file given (instead of its path).")
#: the longest document id --id accepts
MAX_DOC_ID = 1024
search_key_option = click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
                                 metavar="SEARCH.key", help="The search key (index keygen).")


def _collect(paths: tuple[str, ...], root: str | None, doc_id: str | None
             ) -> Mapping[str, Mapping[str, int]]:
    """Read documents (a progress bar on a terminal); a missing one names its path. Ids are
    paths relative to `root` (default: the current directory), or `doc_id` for a single file."""
    return dict(_documents(paths, root, doc_id))


def _documents(paths: tuple[str, ...], root: str | None, doc_id: str | None
               ) -> Iterable[tuple[str, Mapping[str, int]]]:
    """`_collect`, one file at a time: the files are listed, checked and named first, then read
    as the index build consumes them (its memory stays bounded however many there are)."""
    given = [Path(p) for p in paths]
    for path in given:
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if doc_id is not None:
        if len(given) != 1 or given[0].is_dir():
            raise click.UsageError("--id names one document: give exactly one file")
        if not doc_id or len(doc_id) > MAX_DOC_ID:
            raise click.UsageError(f"--id takes 1 to {MAX_DOC_ID} characters")
        return [(doc_id, document_keywords(given[0]))]

    def each(files: list[Path]) -> Iterator[Path]:
        if not sys.stderr.isatty():
            yield from files
            return
        with click.progressbar(files, label="reading documents", file=sys.stderr) as bar:
            yield from bar

    return stream(given, Path(root) if root else None, each)


def _status(stage: str, n: int) -> None:
    """Progress of a build on a terminal, rewritten in place."""
    if sys.stderr.isatty():
        click.echo(f"\r{stage}: {n:>10,}", err=True, nl=False)


def _check_key_options(key_path: str | None, identities: tuple[str, ...], owner_paths: tuple[str, ...],
                       targets: tuple[str, ...]) -> None:
    """Usage errors of `search`'s key options, raised before any file is read."""
    if bool(key_path) == bool(identities):
        raise click.UsageError("give exactly one of --key SEARCH.key or -i USER.key")
    if key_path:
        if owner_paths:
            raise click.UsageError("--owner checks the sealed key that -i opens; --key needs no "
                                   "signature")
        if len(targets) != 1:
            raise click.UsageError("--key searches one index; search several with -i and --owner")
        return
    if not owner_paths:
        raise click.UsageError("-i needs --owner OWNER.pub: the owner's public key, to check that "
                               "the owner (not the server) sealed the index's search key")


def _open_index(index: SearchIndex, keys: list[Key], owners: list[OwnerPublicKey]) -> SearchKey:
    """The index's sealed search key, opened with `keys` and signed by one of the pinned owners."""
    refusal: Exception | None = None
    for owner in owners:
        try:
            return open_search_key(index, keys, owner)
        except InvalidSignature as exc:
            refusal = refusal or exc
    assert refusal is not None
    raise refusal


def _sources(targets: tuple[str, ...], keys: list[Key], owners: list[OwnerPublicKey]) -> list[Source]:
    """What `search -i` queries: every group of every collection, and every sealed index (a
    closed one only among several targets: alone, it is refused with exit status 3)."""
    sources: list[Source] = []
    for target in targets:
        if (Path(target) / SIGNATURE_FILE).exists():
            sources.extend(open_collection(target, keys, owners).sources)
            continue
        index = SearchIndex(target)
        try:
            key = _open_index(index, keys, owners)
            if not index.key_matches(key):  # a segment the server planted beside a signed key
                raise InvalidSearchKey(f"this search key did not build {target}")
            sources.append(Source(index, key, "" if len(targets) == 1 else f"{Path(target).resolve().name}/"))
        except PolicyNotSatisfied:
            if len(targets) == 1:
                raise
            sources.append(Source(index, None))
    if not any(s.key for s in sources):
        raise PolicyNotSatisfied("these keys open no group of " + ", ".join(targets))
    return sources


@click.group()
def owner() -> None:
    """The data owner's signing key, which vouches for sealed search keys."""


@owner.command("keygen")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Directory for owner.key (secret, mode 0600) and owner.pub (created if missing).")
@click.option("--force", is_flag=True, help="Overwrite an existing owner key.")
def owner_keygen(out_dir: str, force: bool) -> None:
    """A new Ed25519 owner key: DIR/owner.key (mode 0600) and DIR/owner.pub for readers."""
    secret, public = os.path.join(out_dir, "owner.key"), os.path.join(out_dir, "owner.pub")
    for path in (secret, public):
        if os.path.exists(path) and not force:
            raise CliError(f"{path} exists; use --force to replace it (signatures made with the old "
                           "key stop verifying under the new one)")
    make_output_dir(out_dir)
    key = OwnerKey.generate()
    key.save(secret)
    key.public_key.save(public)
    note(f"wrote {secret} (keep it secret) and {public}; fingerprint {key.fingerprint}")


@owner.command("fingerprint")
@click.argument("path", type=click.Path(dir_okay=False), metavar="KEY")
def owner_fingerprint(path: str) -> None:
    """Print the fingerprint of KEY, an owner.pub or owner.key (to compare out of band)."""
    try:
        click.echo(OwnerPublicKey.load(path).fingerprint)
    except AbeError:
        click.echo(OwnerKey.load(path).fingerprint)


@click.group()
def index() -> None:
    """Build and extend encrypted PASS-tree search indexes."""


@index.command("keygen")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The new search key (mode 0600).")
def index_keygen(out_path: str) -> None:
    """A new random search key OUT (mode 0600)."""
    check_output_file(out_path)
    SearchKey.generate().save(out_path)
    note(f"wrote {out_path}")


@index.command("build")
@docs_argument
@search_key_option
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              metavar="INDEX", help="The new index directory (missing or empty; its parent must exist).")
@click.option("--policy", default=None, metavar="POLICY",
              help="Also seal the search key under this ABE policy.")
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="The ABE public key for --policy.")
@click.option("--owner-key", "owner_path", type=click.Path(dir_okay=False), metavar="OWNER.key",
              help="The owner's owner.key, to sign the sealed key for this index (with --policy).")
@root_option
@id_option
def index_build(docs: tuple[str, ...], key_path: str, out_dir: str, policy: str | None,
                public_path: str | None, owner_path: str | None, root: str | None,
                doc_id: str | None) -> None:
    """Index DOC_OR_DIR... (JSON string values or plain text) into a new directory INDEX.

    Each file is one document, named by its path relative to --root (so `siteA/rec.json` and
    `siteB/rec.json` are two documents); a file given twice is refused."""
    if (policy is None) != (public_path is None):
        raise click.UsageError("--policy and -k/--public go together")
    if policy is not None and owner_path is None:
        raise click.UsageError("--policy needs --owner-key OWNER.key: readers accept a sealed "
                               "search key only with the owner's signature")
    if policy is None and owner_path is not None:
        raise click.UsageError("--owner-key signs the key that --policy seals; give both")
    key = SearchKey.load(key_path)
    authority = ABE(read_key(public_path, expect="public")) if public_path else None
    owner_key = OwnerKey.load(owner_path) if owner_path else None
    if authority is not None and policy is not None:  # a policy that cannot seal fails now
        PolicyRecipient(authority.public_key, policy)
    check_output_dir(out_dir)
    idx, stats = SearchIndex.create(out_dir, _documents(docs, root, doc_id), key, _status)
    if authority is not None and owner_key is not None and policy is not None:
        seal_search_key(idx, key, authority, policy, owner_key)
    if sys.stderr.isatty():
        note("")
    note(f"indexed {stats.documents} documents, {stats.keywords} keywords into {out_dir} "
         f"({(stats.filter_bytes + stats.leaf_bytes) / max(1, stats.keywords):.0f} bytes per keyword)")


@index.command("add")
@index_argument
@docs_argument
@search_key_option
@root_option
@id_option
@click.option("--replace", is_flag=True,
              help="Replace documents the index already holds (an amended record) instead of "
                   "refusing them.")
def index_add(index_dir: str, docs: tuple[str, ...], key_path: str, root: str | None,
              doc_id: str | None, replace: bool) -> None:
    """Add DOC_OR_DIR... to INDEX without rebuilding it (a new segment, merged when due).

    Ids are made as in `index build`; an id the index holds is refused unless --replace."""
    key = SearchKey.load(key_path)
    idx = SearchIndex(index_dir)
    stats = idx.add(_collect(docs, root, doc_id), key, _status, replace=replace)
    note(f"added {stats.documents} documents ({stats.keywords} keywords); {len(idx.segments)} segment(s)")


@index.command("remove")
@index_argument
@click.argument("doc_ids", nargs=-1, required=True, metavar="DOC_ID...")
@search_key_option
@click.option("--purge", is_flag=True,
              help="Also rebuild the segments that held them now (see `index compact`).")
def index_remove(index_dir: str, doc_ids: tuple[str, ...], key_path: str, purge: bool) -> None:
    """Remove the documents DOC_ID... (as `index list` shows them) from INDEX.

    Searches skip them at once; their segments are rebuilt without them at the next merge,
    `index compact`, or now with --purge (for erasure: afterwards no index file derives from
    them)."""
    key = SearchKey.load(key_path)
    count = SearchIndex(index_dir).remove(doc_ids, key, purge=purge)
    note(f"removed {count} document(s)" + ("; their segments were rebuilt without them" if purge
                                            else "; `index compact` erases them from the segments"))


@index.command("compact")
@index_argument
@search_key_option
def index_compact(index_dir: str, key_path: str) -> None:
    """Rebuild the segments of INDEX that hold removed documents, without them."""
    key = SearchKey.load(key_path)
    rebuilt = SearchIndex(index_dir).compact(key, _status)
    note(f"rebuilt {rebuilt} segment(s)")


@index.command("list")
@index_argument
@search_key_option
def index_list(index_dir: str, key_path: str) -> None:
    """Print the id of every document INDEX holds, one a line, sorted."""
    key = SearchKey.load(key_path)
    for doc in sorted(SearchIndex(index_dir).documents(key)):
        click.echo(printable(doc))


@click.command("search")
@click.argument("targets", nargs=-1, required=True, type=click.Path(file_okay=False),
                metavar="INDEX_OR_COLLECTION...")
@click.argument("query")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), metavar="SEARCH.key",
              help="The search key (the owner's) of the one INDEX.")
@click.option("-i", "--identity", "identities", multiple=True, type=click.Path(dir_okay=False),
              metavar="KEY", help="An ABE user key (repeatable: one user's keys from several "
                                  "authorities) that may open sealed search keys.")
@click.option("--owner", "owner_paths", multiple=True, type=click.Path(dir_okay=False),
              metavar="OWNER.pub", help="A pinned owner's owner.pub (with -i; repeatable, one per "
                                        "owner): sealed keys must carry its signature.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many documents to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search(targets: tuple[str, ...], query: str, key_path: str | None, identities: tuple[str, ...],
           owner_paths: tuple[str, ...], top: int, as_json: bool) -> None:
    """Ranked documents of INDEX_OR_COLLECTION... matching QUERY: a pattern (`card`, `^card`,
    `itis$`, `^heart$`) or patterns and field ranges under AND/OR (`card AND ^diab`,
    `bp_systolic >= 140`, `date in 2024-01-01..2024-06-30`). With -i, collections are searched
    group by group: only the groups your keys open answer; ids are NAME/document."""
    _check_key_options(key_path, identities, owner_paths, targets)
    if key_path:
        idx = SearchIndex(targets[0])
        key = SearchKey.load(key_path)
        if not idx.key_matches(key):
            raise InvalidSearchKey(f"this search key did not build {targets[0]}")
        result = idx.search(query, key, top)
    else:
        keys = [read_secret_key(path, "user") for path in identities]
        owners = [OwnerPublicKey.load(path) for path in owner_paths]
        result = run(query, _sources(targets, keys, owners), top, decoy_key(keys))
    print_result(query, result, as_json)


def print_result(query: str, result: SearchResult, as_json: bool) -> None:
    """Ranked hits, one a line (or as JSON with the query and the statistics)."""
    if as_json:
        click.echo(json.dumps({
            "query": query,
            "hits": [{"document": h.doc_id, "match": h.match, "score": h.score,
                      "keywords": list(h.keywords)} for h in result.hits],
            "stats": result.stats.__dict__,
        }, indent=2))
        return
    if not result.hits:
        note("no match")
    for rank_no, hit in enumerate(result.hits, start=1):
        click.echo(f"{rank_no:>3}. {printable(hit.doc_id)}  ({hit.match}, {hit.score:.3f}: "
                   f"{printable(', '.join(hit.keywords[:5]))})")
