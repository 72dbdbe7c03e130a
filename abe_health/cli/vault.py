"""`abe-health vault ...` and `abe-health revoke`: stored files and attribute revocation."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import click

from ..authority import ABE
from ..fileio import atomic_output
from ..keys import read_key
from ..register import register_path_for
from ..revocation import Vault
from ..revocation.manifest import AuthorityState
from .audit import local_action
from .common import (
    CliError,
    check_output_dir,
    check_output_file,
    note,
    passphrase_option,
    printable,
    read_secret_key,
)

vault_argument = click.argument("path", type=click.Path(file_okay=False), metavar="VAULT")
master_option = click.option(
    "-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
    metavar="MASTER", help="The authority's master.key (the vault's authority).")
public_option = click.option(
    "-k", "--public", "public_path", required=True, type=click.Path(dir_okay=False),
    metavar="PUBLIC", help="The authority's public key (pinned: the vault manifest must verify "
                           "under it).")


def _authority(master_path: str, passphrase_file: str | None) -> ABE:
    """The authority of `master_path`, recording the keys it issues in its register."""
    master = read_secret_key(master_path, "master", passphrase_file)
    register = register_path_for(master_path)
    return ABE(read_key(Path(master_path).with_name("public.key"), expect="public"), master,
               register=register if register.exists() else None)


def _authority_vault(path: str, master_path: str, passphrase_file: str | None) -> tuple[Vault, ABE]:
    """The vault opened by its authority, with the authority's own state (beside its master
    key) that refuses replayed manifests."""
    authority = _authority(master_path, passphrase_file)
    return Vault(path, state=AuthorityState(register_path_for(master_path))), authority


def _report_failures(failed: list[tuple[str, str]]) -> None:
    """Name each file that could not be rewritten (one `error: file ID: ...` line each); the
    others were."""
    for file_id, why in failed:
        where = "" if why.startswith(f"file {file_id}") else f"file {file_id}: "
        click.echo(f"error: {printable(where + why)}", err=True)
    if failed:
        raise CliError(f"{len(failed)} file(s) could not be rewritten (listed above); the others were")


@click.group()
def vault() -> None:
    """A directory of stored .abe files with a catalog for revocation."""


@vault.command("init")
@vault_argument
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The authority whose master key alone will be able to revoke.")
@passphrase_option
def init(path: str, master_path: str, passphrase_file: str | None) -> None:
    """Create an empty VAULT (its escrow key lets anyone add; only the authority revokes)."""
    check_output_dir(path)
    authority = _authority(master_path, passphrase_file)
    Vault(path, create_for=authority, state=AuthorityState(register_path_for(master_path))).close()
    note(f"created vault {path}")


@vault.command("add")
@vault_argument
@click.argument("src", type=click.Path(dir_okay=False), metavar="FILE")
@public_option
@click.option("-p", "--policy", required=True, metavar="POLICY", help="The file's access policy.")
@click.option("--name", default=None, metavar="NAME", help="A name to list the file by (default: its path).")
def add(path: str, src: str, public_path: str, policy: str, name: str | None) -> None:
    """Encrypt FILE under POLICY (at the current attribute versions) into VAULT; print its id."""
    store = Vault(path)
    with open(src, "rb") as fin:
        file_id = store.add(fin, policy, ABE(read_key(public_path, expect="public")), name or src)
    click.echo(file_id)


@vault.command("put")
@vault_argument
@click.argument("file_id", metavar="ID")
@click.argument("src", type=click.Path(dir_okay=False), metavar="FILE")
@public_option
@click.option("-p", "--policy", required=True, metavar="POLICY",
              help="The policy of the new content (never taken from the untrusted catalog).")
def put(path: str, file_id: str, src: str, public_path: str, policy: str) -> None:
    """Replace the content of file ID in VAULT with FILE, under POLICY with a fresh data key."""
    with open(src, "rb") as fin:
        Vault(path).put(file_id, fin, ABE(read_key(public_path, expect="public")), policy)


@vault.command("list")
@vault_argument
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="The authority's public key: also mark (*) headers awaiting a lazy update.")
def list_files(path: str, public_path: str | None) -> None:
    """The files stored in VAULT: id, body size, name, policy (as the untrusted catalog says)."""
    store = Vault(path)
    pending = set(store.pending(ABE(read_key(public_path, expect="public")))) if public_path else set()
    for file_id, name, policy, size in store.list():
        mark = "*" if file_id in pending else " "
        click.echo(f"{file_id}{mark} {size:>12,}  {printable(name)}  [{printable(policy)}]")


@vault.command("issue")
@vault_argument
@master_option
@click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR",
              help="An attribute of the key (repeatable).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The new user key (mode 0600).")
@passphrase_option
def issue(path: str, master_path: str, attrs: tuple[str, ...], out_path: str,
          passphrase_file: str | None) -> None:
    """Issue a user key OUT at VAULT's current attribute versions (after a revocation)."""
    check_output_file(out_path)
    store, authority = _authority_vault(path, master_path, passphrase_file)
    key = store.issue_key(authority, list(attrs))
    key.save(out_path)
    assert authority.master_key is not None
    local_action(master_path, authority.master_key, "keygen", str(key.record.meta.get("iid", "")),
                 f"vault {path}")
    note(f"wrote {out_path}: {key.describe()}")


@vault.command("get")
@vault_argument
@click.argument("file_id", metavar="ID")
@click.option("-i", "--identity", "key_path", required=True, type=click.Path(dir_okay=False),
              metavar="KEY", help="Your user key.")
@click.option("-m", "--master", "master_path", type=click.Path(dir_okay=False), metavar="MASTER",
              help="Apply a pending (lazy) revocation to this file before reading it.")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False, allow_dash=True),
              metavar="OUT", help="Output file (default: stdout).")
@passphrase_option
def get(path: str, file_id: str, key_path: str, master_path: str | None, out_path: str | None,
        passphrase_file: str | None) -> None:
    """Decrypt file ID of VAULT into OUT (written only if the whole file verifies)."""
    check_output_file(out_path)
    if master_path:
        store, authority = _authority_vault(path, master_path, passphrase_file)
    else:
        store, authority = Vault(path), None
    key = read_secret_key(key_path, "user")
    if out_path in (None, "-"):
        buffer = io.BytesIO()
        store.get(file_id, key, buffer, authority)
        sys.stdout.buffer.write(buffer.getvalue())
        return
    with atomic_output(out_path) as out:
        store.get(file_id, key, out, authority)


@vault.command("update")
@vault_argument
@master_option
@passphrase_option
def update(path: str, master_path: str, passphrase_file: str | None) -> None:
    """Rewrite every pending header of VAULT (finishes a lazy or interrupted revocation)."""
    store, authority = _authority_vault(path, master_path, passphrase_file)
    done = list(store.update_pending(authority))
    note(f"updated {len(done)} headers")
    _report_failures(store.last_failures)


@click.command()
@vault_argument
@click.option("--attr", "attr", required=True, metavar="ATTR", help="The attribute to take away.")
@click.option("--user", default=None, metavar="WHO", help="Who loses it (recorded in the message only).")
@master_option
@click.option("--lazy", is_flag=True, help="Mark headers now, rewrite each at its next read.")
@click.option("--rotate", is_flag=True,
              help="Also re-encrypt every affected body now under a fresh data key, so a data "
                   "key the revoked reader already knows stops working.")
@passphrase_option
def revoke(path: str, attr: str, user: str | None, master_path: str, lazy: bool, rotate: bool,
           passphrase_file: str | None) -> None:
    """Revoke ATTR in VAULT: bump its version and re-encapsulate every header that mentions it."""
    if lazy and rotate:
        raise click.UsageError("--rotate re-encrypts now; it does not go with --lazy")
    store, authority = _authority_vault(path, master_path, passphrase_file)
    report = store.revoke(attr, authority, lazy=lazy, rotate=rotate)
    assert authority.master_key is not None
    local_action(master_path, authority.master_key, "revoke", f"vault {path} {report.label}",
                 f"version {report.version}, {report.files_updated} files")
    who = f" from {user}" if user else ""
    what = "files re-encrypted" if rotate else "headers rewritten"
    note(f"revoked {report.label}{who}: version {report.version}; {report.files_updated} {what} "
         f"({report.bytes_written:,} bytes) in {report.seconds:.2f} s"
         f"{'; the rest at first read' if lazy else ''}. Holders who keep it need keys from "
         "`vault issue`.")
    _report_failures(report.failed)
