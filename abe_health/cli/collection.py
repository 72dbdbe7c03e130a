"""`abe-health collection ...`: an owner's searchable collection, one index per policy class.

`init` makes the collection (signed with the owner key); `add DOCS --policy P` indexes
documents in the group of P (made on first use: its search key derived from the owner key and
sealed under P); `remove`; `rekey --vault V` re-keys the groups whose sealed policy is behind
the attribute versions of vault V after a revocation; `list`. Searching is `abe-health search
COLL... QUERY -i KEY --owner OWNER.pub` (see cli/search.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import click

from ..collection import Collection, Sealing
from ..keys import Key, read_key
from ..owner import OwnerKey
from ..revocation.vault import Vault
from .common import check_output_dir, make_output_dir, note, printable
from .search import _collect, id_option, root_option

collection_argument = click.argument("coll", type=click.Path(file_okay=False), metavar="COLL")
owner_option = click.option("--owner-key", "owner_path", required=True, type=click.Path(dir_okay=False),
                            metavar="OWNER.key", help="The owner's owner.key (signs the collection; "
                                                      "its group search keys derive from it).")
public_option = click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False),
                             metavar="PUBLIC", help="The ABE public key that seals group keys (CP).")
authority_option = click.option("--authority", "authority_paths", multiple=True,
                                type=click.Path(dir_okay=False), metavar="NAME.pub",
                                help="Seal under a multi-authority policy over these authorities "
                                     "(repeatable; instead of -k).")
vault_option = click.option("--vault", "vault_path", type=click.Path(file_okay=False), metavar="VAULT",
                            help="Seal at the attribute versions of this vault's signed manifest "
                                 "(after revocations there).")


def _sealing(public_path: str | None, authority_paths: tuple[str, ...]) -> Sealing:
    if bool(public_path) == bool(authority_paths):
        raise click.UsageError("give either -k PUBLIC.key or one or more --authority NAME.pub")
    if public_path:
        return read_key(public_path, expect="public")
    return [read_key(p, expect="public") for p in authority_paths]


def _versions(vault_path: str | None, sealing: Sealing) -> Mapping[str, int]:
    if vault_path is None:
        return {}
    if not isinstance(sealing, Key):
        raise click.UsageError("--vault versions apply to a CP authority (-k PUBLIC.key)")
    vault = Vault(vault_path)
    try:
        return vault.manifest(sealing).versions
    finally:
        vault.close()


@click.group()
def collection() -> None:
    """Searchable collections: documents grouped by policy, one sealed search key per group."""


@collection.command("init")
@collection_argument
@owner_option
@click.option("--name", default=None, metavar="NAME",
              help="Prefix of its document ids in searches (default: the directory's name).")
def collection_init(coll: str, owner_path: str, name: str | None) -> None:
    """A new, empty collection COLL signed by OWNER.key."""
    check_output_dir(coll)
    make_output_dir(coll)
    made = Collection.create(coll, OwnerKey.load(owner_path), name)
    note(f"collection {made.statement.name} at {coll}")


@collection.command("add")
@collection_argument
@click.argument("docs", nargs=-1, required=True, metavar="DOC_OR_DIR...")
@click.option("-p", "--policy", required=True, metavar="POLICY",
              help="The ABE policy that protects these documents (their group).")
@public_option
@authority_option
@owner_option
@vault_option
@root_option
@id_option
@click.option("--replace", is_flag=True, help="Replace documents the collection already holds.")
def collection_add(coll: str, docs: tuple[str, ...], policy: str, public_path: str | None,
                   authority_paths: tuple[str, ...], owner_path: str, vault_path: str | None,
                   root: str | None, doc_id: str | None, replace: bool) -> None:
    """Index DOC_OR_DIR... in collection COLL, in the group of POLICY (made, and its key sealed,
    on first use)."""
    sealing = _sealing(public_path, authority_paths)
    versions = _versions(vault_path, sealing)
    target = Collection(coll, OwnerKey.load(owner_path))
    group = target.add(_collect(docs, root, doc_id), policy, sealing, versions, replace_existing=replace)
    note(f"added to group {group}")


@collection.command("remove")
@collection_argument
@click.argument("doc_ids", nargs=-1, required=True, metavar="DOC_ID...")
@owner_option
@click.option("--purge", is_flag=True, help="Also rebuild the groups that held them now.")
def collection_remove(coll: str, doc_ids: tuple[str, ...], owner_path: str, purge: bool) -> None:
    """Remove documents DOC_ID... from collection COLL."""
    count = Collection(coll, OwnerKey.load(owner_path)).remove(doc_ids, purge=purge)
    note(f"removed {count} document(s)")


@collection.command("rekey")
@collection_argument
@owner_option
@public_option
@authority_option
@vault_option
@click.option("--group", "groups", multiple=True, metavar="ID",
              help="Also re-key this group (repeatable), behind or not.")
def collection_rekey(coll: str, owner_path: str, public_path: str | None,
                     authority_paths: tuple[str, ...], vault_path: str | None,
                     groups: tuple[str, ...]) -> None:
    """Re-key the groups of COLL whose sealed policy is behind VAULT's attribute versions (after
    a revocation): new search keys, rebuilt indexes, sealed at the new versions."""
    sealing = _sealing(public_path, authority_paths)
    stats = Collection(coll, OwnerKey.load(owner_path)).rekey(sealing, _versions(vault_path, sealing),
                                                               groups)
    note(f"re-keyed {stats.groups} group(s): {stats.documents} documents, {stats.keywords} keywords "
         f"in {stats.seconds:.2f} s")


@collection.command("list")
@collection_argument
@owner_option
def collection_list(coll: str, owner_path: str) -> None:
    """Print each group of COLL: id, epoch, documents, policy (and the sealed policy if it
    differs)."""
    target = Collection(coll, OwnerKey.load(owner_path))
    held = target.documents()
    for group in target.groups:
        count = sum(1 for g in held.values() if g == group.id)
        sealed = "" if group.sealed == group.policy else f"  (sealed: {group.sealed})"
        click.echo(f"{group.id}  epoch {group.epoch}  {count:>6} documents  "
                   f"{printable(group.policy)}{printable(sealed)}")
