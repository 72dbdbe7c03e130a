"""`abe-health cloud ...`: the vault, index, search and object commands, against a server.

A group of its own rather than `--remote URL` on each local command: a remote command needs a
server and a token as well as its arguments, answers with the server's refusals (401, 403, 429)
besides the toolkit's, and names a vault or index by name rather than by directory; one
group keeps each local command's arguments meaning one thing. The commands mirror the local
ones (`cloud vault add` is `vault add` against the server) and the same checks run on the
client: manifests against the pinned public key, rows by type, headers by their context,
search keys by the owner's signature.

The server's URL comes from `--url` or ABE_HEALTH_URL; the token from `--token-file FILE` (its
first line) or ABE_HEALTH_TOKEN, never from an argument, which `ps` would show to every user.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import Any

import click

from search import SearchKey

from ..authority import ABE
from ..cloud import Client
from ..cloud.app import MAX_HEADER_PART
from ..cloud.search import open_remote_search_key, push_index
from ..fileio import atomic_output
from ..keys import read_key
from ..owner import OwnerPublicKey
from ..register import register_path_for
from ..revocation import Vault
from ..revocation.manifest import AuthorityState
from .audit import local_action
from .common import CliError, check_output_file, note, passphrase_option, printable, read_secret_key
from .search import print_result
from .vault import _authority, _report_failures, master_option, public_option

URL_VARIABLE, TOKEN_VARIABLE = "ABE_HEALTH_URL", "ABE_HEALTH_TOKEN"


def _client(ctx: click.Context) -> Client:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "client" not in obj:
        url, token_file = obj.get("url"), obj.get("token_file")
        if not url:
            raise click.UsageError(f"give --url URL (or set {URL_VARIABLE})")
        if token_file:
            with open(token_file, encoding="utf-8") as handle:
                token = handle.readline().strip()
        else:
            token = os.environ.get(TOKEN_VARIABLE, "")
        if not token:
            raise click.UsageError(f"give --token-file FILE (or set {TOKEN_VARIABLE})")
        obj["client"] = Client(url, token)
        ctx.call_on_close(obj["client"].close)
    client: Client = obj["client"]
    return client


@click.group()
@click.option("--url", envvar=URL_VARIABLE, default=None, metavar="URL",
              help=f"The server (default: ${URL_VARIABLE}).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help=f"A file whose first line is your token (default: ${TOKEN_VARIABLE}).")
@click.pass_context
def cloud(ctx: click.Context, url: str | None, token_file: str | None) -> None:
    """Store, search and revoke through an `abe-health serve` server."""
    ctx.ensure_object(dict).update(url=url, token_file=token_file)


@cloud.command("whoami")
@click.pass_context
def whoami(ctx: click.Context) -> None:
    """The principal and role of your token."""
    me = _client(ctx).whoami()
    click.echo(printable(f"{me.get('name')} ({me.get('role')}, token {me.get('id')})"))


# -- objects --------------------------------------------------------------------------------------
kind_argument = click.argument("kind", type=click.Choice(["phr", "abe", "key"]))


@cloud.command("put")
@kind_argument
@click.argument("name")
@click.argument("src", type=click.Path(dir_okay=False, exists=True), metavar="FILE")
@click.pass_context
def put(ctx: click.Context, kind: str, name: str, src: str) -> None:
    """Store FILE (a .phr record, an .abe file, a public key) as object NAME of KIND."""
    with open(src, "rb") as fin:
        _client(ctx).put(kind, name, fin)
    note(f"stored {kind} {name}")


@cloud.command("get")
@kind_argument
@click.argument("name")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              metavar="OUT", help="Output file (default: stdout).")
@click.pass_context
def get(ctx: click.Context, kind: str, name: str, out_path: str | None) -> None:
    """Fetch object NAME of KIND (streamed; written atomically to OUT)."""
    check_output_file(out_path)
    client = _client(ctx)
    if out_path is None:
        client.get(kind, name, sys.stdout.buffer)
        return
    with atomic_output(out_path) as out:
        client.get(kind, name, out)


@cloud.command("list")
@kind_argument
@click.pass_context
def list_objects(ctx: click.Context, kind: str) -> None:
    """The stored objects of KIND and their sizes."""
    for name, size in _client(ctx).list(kind):
        click.echo(f"{size:>12,}  {printable(name)}")


@cloud.command("delete")
@kind_argument
@click.argument("name")
@click.pass_context
def delete(ctx: click.Context, kind: str, name: str) -> None:
    """Delete object NAME of KIND (only its owner may)."""
    _client(ctx).delete(kind, name)
    note(f"deleted {kind} {name}")


# -- outsourced decryption ----------------------------------------------------------------------
@cloud.group("transform-key")
def transform_key() -> None:
    """Transformation keys the server keeps for your devices (outsourced decryption)."""


@transform_key.command("put")
@click.argument("name")
@click.argument("tk_path", type=click.Path(dir_okay=False, exists=True), metavar="KEY.tk")
@click.pass_context
def transform_key_put(ctx: click.Context, name: str, tk_path: str) -> None:
    """Store the transformation key KEY.tk (from `key blind`) on the server as NAME."""
    from ..devices import TransformationKey

    key_id = _client(ctx).put_transform_key(name, TransformationKey.read(tk_path))
    note(f"stored transformation key {name} ({key_id}); `cloud transform-key delete {name}` revokes it")


@transform_key.command("delete")
@click.argument("name")
@click.pass_context
def transform_key_delete(ctx: click.Context, name: str) -> None:
    """Revoke transformation key NAME: the server transforms nothing more with it."""
    _client(ctx).delete_transform_key(name)
    note(f"deleted transformation key {name}")


@cloud.command("transform")
@click.argument("name")
@click.argument("obj", metavar="OBJECT")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The transformed file, for `decrypt --retrieval-key` on the device.")
@click.pass_context
def transform(ctx: click.Context, name: str, obj: str, out_path: str) -> None:
    """Have the server transform the stored .abe object OBJECT with transformation key NAME,
    and write the transformed file OUT (the short transformed header, then OBJECT's payload)."""
    from ..devices import header_size

    check_output_file(out_path)
    client = _client(ctx)
    header = client.transform(name, object=obj)
    with client.download(f"/v1/objects/abe/{obj}") as src, atomic_output(out_path) as out:
        head = src.read(MAX_HEADER_PART)
        skip = header_size(head)
        out.write(header)
        out.write(head[skip:])
        while block := src.read(1 << 20):
            out.write(block)
    note(f"wrote {out_path}: open it with `abe-health decrypt --retrieval-key KEY.rk`")


# -- vaults ---------------------------------------------------------------------------------------
@cloud.group("vault")
def vault() -> None:
    """A vault kept by the server (headers and bodies apart, a catalog, a signed manifest)."""


def _authority_vault(ctx: click.Context, name: str, master_path: str, passphrase_file: str | None
                     ) -> tuple[Vault, ABE]:
    authority = _authority(master_path, passphrase_file)
    store = _client(ctx).vault(name, state=AuthorityState(register_path_for(master_path)))
    return store, authority


@vault.command("init")
@click.argument("name", metavar="VAULT")
@master_option
@passphrase_option
@click.pass_context
def vault_init(ctx: click.Context, name: str, master_path: str, passphrase_file: str | None) -> None:
    """Create VAULT on the server, with a manifest signed by the authority."""
    authority = _authority(master_path, passphrase_file)
    _client(ctx).vault(name, create_for=authority,
                       state=AuthorityState(register_path_for(master_path))).close()
    note(f"created vault {name}")


@vault.command("add")
@click.argument("name", metavar="VAULT")
@click.argument("src", type=click.Path(dir_okay=False, exists=True), metavar="FILE")
@public_option
@click.option("-p", "--policy", required=True, metavar="POLICY", help="The file's access policy.")
@click.option("--name", "label", default=None, metavar="NAME", help="A name to list it by.")
@click.pass_context
def vault_add(ctx: click.Context, name: str, src: str, public_path: str, policy: str,
              label: str | None) -> None:
    """Encrypt FILE under POLICY here and upload it into VAULT; print its id."""
    store = _client(ctx).vault(name)
    with open(src, "rb") as fin:
        click.echo(store.add(fin, policy, ABE(read_key(public_path, expect="public")), label or src))


@vault.command("put")
@click.argument("name", metavar="VAULT")
@click.argument("file_id", metavar="ID")
@click.argument("src", type=click.Path(dir_okay=False, exists=True), metavar="FILE")
@public_option
@click.option("-p", "--policy", required=True, metavar="POLICY", help="The new content's policy.")
@click.pass_context
def vault_put(ctx: click.Context, name: str, file_id: str, src: str, public_path: str,
              policy: str) -> None:
    """Replace the content of file ID in VAULT with FILE (a new generation, fresh data key)."""
    with open(src, "rb") as fin:
        _client(ctx).vault(name).put(file_id, fin, ABE(read_key(public_path, expect="public")), policy)


@vault.command("list")
@click.argument("name", metavar="VAULT")
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="Also mark (*) headers awaiting a lazy update.")
@click.pass_context
def vault_list(ctx: click.Context, name: str, public_path: str | None) -> None:
    """The files of VAULT: id, body size, name, policy (as the untrusted catalog says)."""
    store = _client(ctx).vault(name)
    pending = set(store.pending(ABE(read_key(public_path, expect="public")))) if public_path else set()
    for file_id, label, policy, size in store.list():
        mark = "*" if file_id in pending else " "
        click.echo(f"{file_id}{mark} {size:>12,}  {printable(label)}  [{printable(policy)}]")


@vault.command("get")
@click.argument("name", metavar="VAULT")
@click.argument("file_id", metavar="ID")
@click.option("-i", "--identity", "key_path", required=True, type=click.Path(dir_okay=False),
              metavar="KEY", help="Your user key.")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              metavar="OUT", help="Output file (default: stdout).")
@click.pass_context
def vault_get(ctx: click.Context, name: str, file_id: str, key_path: str, out_path: str | None) -> None:
    """Download and decrypt file ID of VAULT (written only if the whole file verifies)."""
    check_output_file(out_path)
    store = _client(ctx).vault(name)
    key = read_secret_key(key_path, "user")
    if out_path is None:
        buffer = io.BytesIO()
        store.get(file_id, key, buffer)
        sys.stdout.buffer.write(buffer.getvalue())
        return
    with atomic_output(out_path) as out:
        store.get(file_id, key, out)


@vault.command("delete")
@click.argument("name", metavar="VAULT")
@click.argument("file_id", metavar="ID")
@click.pass_context
def vault_delete(ctx: click.Context, name: str, file_id: str) -> None:
    """Delete file ID of VAULT (only the owner who added it may)."""
    _client(ctx).request("DELETE", f"/v1/vaults/{name}/files/{file_id}")
    note(f"deleted {file_id}")


@vault.command("update")
@click.argument("name", metavar="VAULT")
@master_option
@passphrase_option
@click.pass_context
def vault_update(ctx: click.Context, name: str, master_path: str, passphrase_file: str | None) -> None:
    """Rewrite every pending header of VAULT (finishes a lazy or interrupted revocation)."""
    store, authority = _authority_vault(ctx, name, master_path, passphrase_file)
    done = list(store.update_pending(authority))
    note(f"updated {len(done)} headers")
    _report_failures(store.last_failures)


@vault.command("issue")
@click.argument("name", metavar="VAULT")
@master_option
@click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR",
              help="An attribute of the key (repeatable).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False), metavar="OUT",
              help="The new user key (mode 0600).")
@passphrase_option
@click.pass_context
def vault_issue(ctx: click.Context, name: str, master_path: str, attrs: tuple[str, ...],
                out_path: str, passphrase_file: str | None) -> None:
    """Issue a user key OUT at VAULT's current attribute versions."""
    check_output_file(out_path)
    store, authority = _authority_vault(ctx, name, master_path, passphrase_file)
    key = store.issue_key(authority, list(attrs))
    key.save(out_path)
    assert authority.master_key is not None
    local_action(master_path, authority.master_key, "keygen", str(key.record.meta.get("iid", "")),
                 f"vault {name}")
    note(f"wrote {out_path}: {key.describe()}")


@cloud.command("revoke")
@click.argument("name", metavar="VAULT")
@click.option("--attr", required=True, metavar="ATTR", help="The attribute to take away.")
@click.option("--user", default=None, metavar="WHO", help="Who loses it (recorded in the message).")
@master_option
@click.option("--lazy", is_flag=True, help="Mark headers now, rewrite each at its next read.")
@click.option("--rotate", is_flag=True, help="Also re-encrypt every affected body now.")
@passphrase_option
@click.pass_context
def revoke(ctx: click.Context, name: str, attr: str, user: str | None, master_path: str,
           lazy: bool, rotate: bool, passphrase_file: str | None) -> None:
    """Revoke ATTR in VAULT: headers are re-encapsulated here and switched by the server."""
    if lazy and rotate:
        raise click.UsageError("--rotate re-encrypts now; it does not go with --lazy")
    store, authority = _authority_vault(ctx, name, master_path, passphrase_file)
    report = store.revoke(attr, authority, lazy=lazy, rotate=rotate)
    assert authority.master_key is not None
    local_action(master_path, authority.master_key, "revoke", f"cloud vault {name} {report.label}",
                 f"version {report.version}, {report.files_updated} files")
    who = f" from {user}" if user else ""
    note(f"revoked {report.label}{who}: version {report.version}; {report.files_updated} "
         f"{'files re-encrypted' if rotate else 'headers rewritten'} ({report.bytes_written:,} "
         f"bytes) in {report.seconds:.2f} s{'; the rest at first read' if lazy else ''}")
    _report_failures(report.failed)


# -- indexes and search ---------------------------------------------------------------------------
@cloud.group("index")
def index() -> None:
    """Encrypted search indexes kept by the server."""


@index.command("push")
@click.argument("index_dir", type=click.Path(file_okay=False, exists=True), metavar="INDEX_DIR")
@click.argument("name", metavar="NAME")
@click.pass_context
def index_push(ctx: click.Context, index_dir: str, name: str) -> None:
    """Upload INDEX_DIR, a local index directory (built with `index build`), as index NAME."""
    sent = push_index(_client(ctx), Path(index_dir), name)
    note(f"uploaded {sent} files of {index_dir} as index {name}")


@cloud.command("search")
@click.argument("name", metavar="INDEX")
@click.argument("pattern")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, exists=True), metavar="SEARCH.key",
              help="The search key (the owner's).")
@click.option("-i", "--identity", type=click.Path(dir_okay=False, exists=True), metavar="KEY",
              help="An ABE user key that opens the index's sealed search key.")
@click.option("--owner", "owner_path", type=click.Path(dir_okay=False, exists=True), metavar="OWNER.pub",
              help="The owner's owner.pub (with -i): the sealed key must carry its signature.")
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many documents to list.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def search(ctx: click.Context, name: str, pattern: str, key_path: str | None, identity: str | None,
           owner_path: str | None, top: int, as_json: bool) -> None:
    """Ranked documents of remote INDEX whose keywords contain PATTERN (the server walks the
    tree; your key never leaves this machine)."""
    if bool(key_path) == bool(identity):
        raise click.UsageError("give exactly one of --key SEARCH.key or -i USER.key")
    if identity and not owner_path:
        raise click.UsageError("-i needs --owner OWNER.pub (the owner must have signed the key)")
    client = _client(ctx)
    if key_path:
        key = SearchKey.load(key_path)
    else:
        assert identity is not None and owner_path is not None
        key = open_remote_search_key(client, name, read_secret_key(identity, "user"),
                                     OwnerPublicKey.load(owner_path))
    result = client.search(name, pattern, key, top, require_key=True)
    print_result(pattern, result, as_json)


__all__ = ["CliError", "cloud"]
