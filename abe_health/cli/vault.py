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
from .common import CliError, printable


def _authority(master_path: str) -> ABE:
    """The authority of `master_path`, recording the keys it issues in its register."""
    master = read_key(master_path, expect="master")
    register = register_path_for(master_path)
    return ABE(read_key(Path(master_path).with_name("public.key"), expect="public"), master,
               register=register if register.exists() else None)


def _authority_vault(path: str, master_path: str) -> tuple[Vault, ABE]:
    """The vault opened by its authority, with the authority's own state (beside its master
    key) that refuses replayed manifests."""
    authority = _authority(master_path)
    return Vault(path, state=AuthorityState(register_path_for(master_path))), authority


def _report_failures(failed: list[tuple[str, str]]) -> None:
    """Name each file that could not be rewritten; the others were."""
    for file_id, why in failed:
        where = "" if why.startswith(f"file {file_id}") else f"file {file_id}: "
        click.echo(f"error: {where}{printable(why)}", err=True)
    if failed:
        raise CliError(f"{len(failed)} file(s) could not be rewritten (listed above); "
                       "the others were")


def register(main: click.Group, handle_errors) -> None:
    """Add the `vault` group and the `revoke` command to the CLI."""

    @main.group()
    def vault() -> None:
        """A directory of stored .abe files with a catalog for revocation."""

    @vault.command("init")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
                  help="The authority whose master key alone will be able to revoke.")
    @handle_errors
    def vault_init(path: str, master_path: str) -> None:
        """Create an empty vault (escrow.pub lets anyone add; only the authority revokes)."""
        authority = _authority(master_path)
        Vault(path, create_for=authority,
              state=AuthorityState(register_path_for(master_path))).close()
        click.echo(f"created vault {path}", err=True)

    @vault.command("add")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.argument("src", type=click.Path(dir_okay=False))
    @click.option("-k", "--public", "public_path", required=True, type=click.Path(dir_okay=False))
    @click.option("-p", "--policy", required=True)
    @click.option("--name", default=None, help="A name to list the file by (default: its path).")
    @handle_errors
    def vault_add(path: str, src: str, public_path: str, policy: str, name: str | None) -> None:
        """Encrypt SRC under POLICY (at the current attribute versions) into the vault."""
        store = Vault(path)
        try:
            with open(src, "rb") as fin:
                file_id = store.add(fin, policy, ABE(read_key(public_path, expect="public")), name or src)
        except OSError as exc:
            raise CliError(f"cannot read {src}: {exc.strerror}") from None
        click.echo(file_id)

    @vault.command("put")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.argument("file_id")
    @click.argument("src", type=click.Path(dir_okay=False))
    @click.option("-k", "--public", "public_path", required=True, type=click.Path(dir_okay=False),
                  help="The authority's public key (pinned: the vault manifest must verify under it).")
    @click.option("-p", "--policy", required=True,
                  help="The policy of the new content (never taken from the untrusted catalog).")
    @handle_errors
    def vault_put(path: str, file_id: str, src: str, public_path: str, policy: str) -> None:
        """Replace a stored file's content under POLICY with a fresh data key."""
        try:
            with open(src, "rb") as fin:
                Vault(path).put(file_id, fin, ABE(read_key(public_path, expect="public")), policy)
        except OSError as exc:
            raise CliError(f"cannot read {src}: {exc.strerror}") from None

    @vault.command("list")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False),
                  help="The authority's public key: also mark (*) headers awaiting a lazy update.")
    @handle_errors
    def vault_list(path: str, public_path: str | None) -> None:
        """Stored files: id, body size, name, policy (as the untrusted catalog says)."""
        store = Vault(path)
        pending = set(store.pending(ABE(read_key(public_path, expect="public")))) if public_path else set()
        for file_id, name, policy, size in store.list():
            mark = "*" if file_id in pending else " "
            click.echo(f"{file_id}{mark} {size:>12,}  {printable(name)}  [{printable(policy)}]")

    @vault.command("issue")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False))
    @click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def vault_issue(path: str, master_path: str, attrs: tuple[str, ...], out_path: str) -> None:
        """Issue a user key at the vault's current attribute versions (after a revocation)."""
        store, authority = _authority_vault(path, master_path)
        key = store.issue_key(authority, list(attrs))
        key.save(out_path)
        click.echo(f"wrote {out_path}: {key.describe()}", err=True)

    @vault.command("get")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.argument("file_id")
    @click.option("-i", "--identity", "key_path", required=True, type=click.Path(dir_okay=False))
    @click.option("-m", "--master", "master_path", type=click.Path(dir_okay=False),
                  help="Apply a pending (lazy) revocation to this file before reading it.")
    @click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False))
    @handle_errors
    def vault_get(path: str, file_id: str, key_path: str, master_path: str | None,
                  out_path: str | None) -> None:
        """Decrypt a stored file (written only if the whole file verifies)."""
        if master_path:
            store, authority = _authority_vault(path, master_path)
        else:
            store, authority = Vault(path), None
        key = read_key(key_path, expect="user")
        if out_path in (None, "-"):
            buffer = io.BytesIO()
            store.get(file_id, key, buffer, authority)
            sys.stdout.buffer.write(buffer.getvalue())
            return
        with atomic_output(out_path) as out:
            store.get(file_id, key, out, authority)

    @vault.command("update")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def vault_update(path: str, master_path: str) -> None:
        """Rewrite every pending header (finishes a lazy or interrupted revocation)."""
        store, authority = _authority_vault(path, master_path)
        done = list(store.update_pending(authority))
        click.echo(f"updated {len(done)} headers", err=True)
        _report_failures(store.last_failures)

    @main.command("revoke")
    @click.argument("path", type=click.Path(file_okay=False))
    @click.option("--attr", "attr", required=True, help="The attribute to take away.")
    @click.option("--user", default=None, help="Who loses it (recorded in the message only).")
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False))
    @click.option("--lazy", is_flag=True, help="Mark headers now, rewrite each at its next read.")
    @click.option("--rotate", is_flag=True,
                  help="Also re-encrypt every affected body now under a fresh data key, so a data "
                       "key the revoked reader already knows stops working.")
    @handle_errors
    def revoke(path: str, attr: str, user: str | None, master_path: str, lazy: bool,
               rotate: bool) -> None:
        """Revoke ATTR: bump its version and re-encapsulate every header that mentions it."""
        if lazy and rotate:
            raise click.UsageError("--rotate re-encrypts now; it does not go with --lazy")
        store, authority = _authority_vault(path, master_path)
        report = store.revoke(attr, authority, lazy=lazy, rotate=rotate)
        who = f" from {user}" if user else ""
        what = "files re-encrypted" if rotate else "headers rewritten"
        click.echo(f"revoked {report.label}{who}: version {report.version}; "
                   f"{report.files_updated} {what} ({report.bytes_written:,} bytes) in "
                   f"{report.seconds:.2f} s{'; the rest at first read' if lazy else ''}. Holders who "
                   "keep it need keys from `vault issue`.", err=True)
        _report_failures(report.failed)
