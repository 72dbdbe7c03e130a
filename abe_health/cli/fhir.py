"""`abe-health fhir encrypt`, `fhir decrypt`, `fhir index` and `fhir search`: FHIR R4 Bundles
encrypted resource by resource under a policy map, read back as a valid Bundle of what one
user's keys open, and searched per resource with the same authorization (`fhir search` is
`abe-health search` over the collections `fhir index` fills)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..collection import SIGNATURE_FILE, Collection
from ..fhir import FhirPolicyMap, decrypt_bundle, encrypt_bundle, load_bundle
from ..fhir.container import MAX_CONTAINER
from ..fhir.inspect import describe_container
from ..fhir.search import index_bundle
from ..fileio import write_atomic
from ..owner import OwnerKey
from .common import (
    authority_keys,
    check_output_dir,
    check_output_file,
    note,
    printable,
    read_secret_key,
)
from .search import search as search_command

map_option = click.option("--policies", "policy_map", required=True, type=click.Path(dir_okay=False),
                          metavar="MAP.json", help="JSON policy map: resources, labels, types, default.")


def authority_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--authority FILE (repeatable) and --authorities DIR: whose public keys seal the classes."""
    command = click.option("--authorities", "authority_dir", type=click.Path(file_okay=False),
                           metavar="DIR", help="A directory of NAME.pub files (multi-authority).")(command)
    return click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False),
                        metavar="FILE", help="An authority's public key (repeatable).")(command)


@click.group()
def fhir() -> None:
    """Encrypt FHIR R4 Bundles resource by resource, and read what your keys open."""


def _read_container(path: str) -> bytes:
    with open(path, "rb") as fin:
        blob = fin.read(MAX_CONTAINER + 1)
    return blob


@fhir.command("encrypt")
@click.argument("bundle", type=click.Path(dir_okay=False), metavar="BUNDLE.json")
@map_option
@authority_options
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The encrypted bundle.")
@click.option("--bundle-id", default=None, metavar="ID",
              help="The bundle's id, stored in clear and bound into everything "
                   "(default: the Bundle's id, else random).")
def encrypt(bundle: str, policy_map: str, authority_paths: tuple[str, ...],
            authority_dir: str | None, out_path: str, bundle_id: str | None) -> None:
    """Encrypt BUNDLE.json (a FHIR R4 Bundle) into OUT: one ABE encapsulation per distinct
    policy, each resource sealed on its own."""
    check_output_file(out_path)
    data = load_bundle(bundle)
    pmap = FhirPolicyMap.load(policy_map)
    blob = encrypt_bundle(data, pmap, authority_keys(authority_paths, authority_dir),
                          bundle_id=bundle_id)
    write_atomic(out_path, blob)
    info = describe_container(blob)
    note(f"wrote {out_path}: bundle {printable(info['id'])}, {info['entries']} resources under "
         f"{len(info['classes'])} policies")


@fhir.command("decrypt")
@click.argument("container", type=click.Path(dir_okay=False), metavar="ENCRYPTED")
@click.option("-i", "--identity", "key_paths", multiple=True, required=True,
              type=click.Path(dir_okay=False), metavar="KEY",
              help="Your user key (repeat for your keys from several authorities).")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False, allow_dash=True),
              metavar="OUT", help="The FHIR Bundle of what your keys open (default: stdout).")
@click.option("--outcome", "outcome_path", default=None, type=click.Path(dir_okay=False),
              metavar="FILE", help="Also write the OperationOutcome listing what was withheld.")
@click.option("--expect-id", default=None, metavar="ID", help="Refuse any bundle but this one.")
def decrypt(container: str, key_paths: tuple[str, ...], out_path: str | None,
            outcome_path: str | None, expect_id: str | None) -> None:
    """Write the FHIR Bundle of the resources of ENCRYPTED your keys open; references to
    withheld resources are kept and marked, and what was withheld is listed on stderr. A bundle
    altered anywhere is refused."""
    check_output_file(out_path)
    check_output_file(outcome_path)
    blob = _read_container(container)
    keys = [read_secret_key(p, "user") for p in key_paths]
    opened = decrypt_bundle(blob, *keys, expect_id=expect_id)
    for withheld in opened.withheld:
        note(f"withheld: {withheld.entries} resources under policy \"{printable(withheld.policy)}\"")
    total = opened.readable + opened.withheld_entries
    # the id is authenticated now: every class that opened was written for it
    note(f"bundle {printable(opened.bundle_id)}: {opened.readable} of {total} resources "
         f"readable; {len(opened.masked)} references to withheld resources marked")
    text = json.dumps(opened.bundle, indent=2, ensure_ascii=False) + "\n"
    if outcome_path is not None:
        if opened.outcome is None:
            note(f"nothing was withheld: {outcome_path} not written")
        else:
            write_atomic(outcome_path, (json.dumps(opened.outcome, indent=2, ensure_ascii=False)
                                        + "\n").encode())
    if out_path in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(out_path, text.encode())


@fhir.command("index")
@click.argument("bundle", type=click.Path(dir_okay=False), metavar="BUNDLE.json")
@map_option
@authority_options
@click.option("-c", "--collection", "coll", required=True, type=click.Path(file_okay=False),
              metavar="COLL", help="The search collection (made if missing).")
@click.option("--owner-key", "owner_path", required=True, type=click.Path(dir_okay=False),
              metavar="OWNER.key", help="The owner's owner.key (signs the collection).")
@click.option("--bundle-id", default=None, metavar="ID",
              help="The bundle's id as encrypted (default: the Bundle's own id).")
@click.option("--replace", is_flag=True, help="Re-index a bundle indexed before.")
def index(bundle: str, policy_map: str, authority_paths: tuple[str, ...], authority_dir: str | None,
          coll: str, owner_path: str, bundle_id: str | None, replace: bool) -> None:
    """Index BUNDLE.json's resources in collection COLL, each in the group of the policy the map
    gives it, so `search COLL QUERY -i KEY --owner OWNER.pub` shows a resource only to keys
    that open it (ids BUNDLE/Type/id)."""
    data = load_bundle(bundle)
    own = data.get("id")
    bundle_id = bundle_id or (own if isinstance(own, str) else None)
    if bundle_id is None:
        raise click.UsageError("the Bundle has no id: give --bundle-id, the id it was encrypted under")
    pmap = FhirPolicyMap.load(policy_map)
    keys = authority_keys(authority_paths, authority_dir)
    owner = OwnerKey.load(owner_path)
    if not (Path(coll) / SIGNATURE_FILE).exists():
        check_output_dir(coll)
        Collection.create(coll, owner)
    counts = index_bundle(Collection(coll, owner), data, pmap, keys, bundle_id, replace=replace)
    note(f"indexed {sum(counts.values())} resources of bundle {printable(bundle_id)} in "
         f"{len(counts)} policy groups of {coll}")


fhir.add_command(search_command, "search")
