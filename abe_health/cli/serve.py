"""`abe-health serve`: run the cloud over a data directory; `serve token ...`: its principals.

Tokens are made from the data directory itself (whoever can read it runs the server anyway), so
the first admin needs no running server: `abe-health serve token create --role admin --data DIR`.
A token is printed once (or written to `-o FILE`, mode 0600) and never stored.
"""

from __future__ import annotations

import datetime as dt
import errno
import getpass
import os
from pathlib import Path

import click

from ..cloud.app import Limits
from ..cloud.auth import ROLES, Principals
from ..cloud.server import open_state
from ..cloud.server import serve as run_server
from ..fileio import write_atomic
from .common import check_output_file, note

DEFAULTS = Limits()
data_option = click.option("--data", "data", required=True, type=click.Path(file_okay=False),
                           metavar="DIR", help="The server's data directory.")


def _data_dir(data: str) -> Path:
    """The data directory; a file in its place is named (an OSError, one `error:` line)."""
    if os.path.exists(data) and not os.path.isdir(data):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), data)
    return Path(data)


@click.group(invoke_without_command=True)
@click.option("--data", "data", type=click.Path(file_okay=False), metavar="DIR",
              help="The data directory (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8750, show_default=True, type=click.IntRange(1, 65535))
@click.option("--max-body", default=DEFAULTS.max_body, show_default=True, type=click.IntRange(1),
              help="Largest uploaded file, in bytes.")
@click.option("--max-document", default=DEFAULTS.max_document, show_default=True,
              type=click.IntRange(1), help="Largest JSON or CBOR request, in bytes.")
@click.option("--rate", default=DEFAULTS.rate, show_default=True, type=click.FloatRange(min=0.001),
              help="Requests per second per token (sustained).")
@click.option("--burst", default=DEFAULTS.burst, show_default=True, type=click.IntRange(1),
              help="Requests per token at once.")
@click.option("--max-uploads", default=DEFAULTS.max_uploads, show_default=True,
              type=click.IntRange(1), help="Uploads streaming at once.")
@click.option("--checkpoint-every", default=DEFAULTS.checkpoint_every, show_default=True,
              type=click.IntRange(1), help="Audit entries between signed checkpoints.")
@click.option("--checkpoint-seconds", default=DEFAULTS.checkpoint_seconds, show_default=True,
              type=click.FloatRange(min=1), help="Longest wait before a checkpoint.")
@click.pass_context
def serve(ctx: click.Context, data: str | None, host: str, port: int, max_body: int,
          max_document: int, rate: float, burst: int, max_uploads: int, checkpoint_every: int,
          checkpoint_seconds: float) -> None:
    """Run the cloud API on HOST:PORT over the data directory DIR (until Ctrl-C)."""
    if ctx.invoked_subcommand is not None:
        return
    if data is None:
        raise click.UsageError("give --data DIR")
    limits = Limits(max_body, max_document, rate, burst, max_uploads, checkpoint_every,
                    checkpoint_seconds)
    note(f"abe-health cloud on http://{host}:{port}/ over {data} (OpenAPI: /openapi.json, audit "
         f"log {Path(data) / 'audit.log'}, checkpoint key {Path(data) / 'audit.pub'})")
    run_server(_data_dir(data), host, port, limits)


@serve.group()
def token() -> None:
    """Create, list and revoke principals' bearer tokens (from the data directory)."""


@token.command("create")
@data_option
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the token may do.")
@click.option("--name", default=None, metavar="NAME", help="Who it is for (default: the role).")
@click.option("--expires-in", "expires_in", default=None, type=click.IntRange(min=1),
              metavar="SECONDS", help="Refuse the token after this many seconds.")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              metavar="FILE", help="Write the token to FILE (mode 0600) instead of stdout.")
def token_create(data: str, role: str, name: str | None, expires_in: int | None,
                 out_path: str | None) -> None:
    """A new principal with ROLE; its token is shown once."""
    check_output_file(out_path)
    state = open_state(_data_dir(data))
    try:
        expires = (dt.datetime.now(dt.timezone.utc).timestamp() + expires_in) if expires_in else None
        principal, secret = state.data.principals.create(name or role, role, expires)
        state.audit.append(f"local:{getpass.getuser()}", "token create", principal.label(), role)
        state.audit.checkpoint()
    finally:
        state.data.close()
    if out_path:
        write_atomic(out_path, (secret + "\n").encode(), secret=True)
        note(f"token {principal.id} ({role}) written to {out_path}")
    else:
        click.echo(secret)


@token.command("list")
@data_option
def token_list(data: str) -> None:
    """The principals (never their tokens)."""
    principals = Principals(_data_dir(data) / "server.sqlite")
    try:
        for p in principals.list():
            state = "revoked" if p["revoked"] else "active"
            click.echo(f"{p['id']}  {p['role']:<9} {state:<7} {p['name']}")
    finally:
        principals.close()


@token.command("revoke")
@data_option
@click.argument("token_id", metavar="ID")
def token_revoke(data: str, token_id: str) -> None:
    """Revoke the token with public id ID (the 16 hex digits after `abeh_`)."""
    state = open_state(_data_dir(data))
    try:
        if not state.data.principals.revoke(token_id):
            raise click.BadParameter(f"no token {token_id[:20]!r}", param_hint="ID")
        state.audit.append(f"local:{getpass.getuser()}", "token revoke", token_id, "ok")
        state.audit.checkpoint()
    finally:
        state.data.close()
    note(f"revoked {token_id}")
