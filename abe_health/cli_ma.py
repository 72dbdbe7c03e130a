"""`abe-health authority ...` and `abe-health phr ...`: multi-authority keys and PHR records."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import click

from .api import ABE
from .cli_common import CliError
from .fileio import write_atomic
from .keys import read_key
from .ma import Authority, read_global, write_global
from .pairing import get_group
from .phr import PolicyMap, decrypt_record, encrypt_record
from .revocation import renew


def _authority_keys(paths: tuple[str, ...], directory: str | None) -> list:
    files = [Path(p) for p in paths]
    if directory:
        files += sorted(Path(directory).glob("*.pub"))
    if not files:
        raise click.UsageError("give the authorities' public keys: --authority NAME.pub or --authorities DIR")
    return [read_key(f, expect="public") for f in files]


def register(main: click.Group, handle_errors) -> None:
    """Add the `authority` and `phr` groups to the CLI."""

    @main.group()
    def authority() -> None:
        """Run a multi-authority (RW15) attribute authority."""

    @authority.command("setup")
    @click.argument("name")
    @click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False))
    @click.option("--backend", type=click.Choice(["mcl", "charm"]), default="mcl", show_default=True)
    @click.option("--force", is_flag=True, help="Replace an existing authority of this name.")
    @handle_errors
    def authority_setup(name: str, out_dir: str, backend: str, force: bool) -> None:
        """Create authority NAME: OUT/NAME.pub and OUT/NAME.key (0600); OUT/global.params once."""
        os.makedirs(out_dir, exist_ok=True)
        params = Path(out_dir) / "global.params"
        if params.exists():
            group_id = read_global(params)
        else:
            group_id = get_group(backend).id
            write_global(params, group_id)
        secret = Path(out_dir) / f"{name}.key"
        if secret.exists() and not force:
            raise CliError(f"{secret} exists; use --force to replace it (its keys stop working)")
        auth = Authority.setup(name, group_id=group_id)
        assert auth.secret_key is not None
        auth.secret_key.save(secret)
        auth.public_key.save(Path(out_dir) / f"{name}.pub")
        click.echo(f"authority {name} over {group_id}: {out_dir}/{name}.pub, {secret}", err=True)

    @authority.command("keygen")
    @click.option("-m", "--master", "secret_path", required=True, type=click.Path(dir_okay=False),
                  help="The authority's NAME.key.")
    @click.option("--gid", required=True, help="The user's global identifier.")
    @click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def authority_keygen(secret_path: str, gid: str, attrs: tuple[str, ...], out_path: str) -> None:
        """Issue user GID a key (0600) for attributes of this authority."""
        secret = read_key(secret_path, expect="master")
        public = read_key(Path(secret_path).with_suffix(".pub"), expect="public")
        key = Authority(public, secret).keygen(gid, attrs)
        key.save(out_path)
        click.echo(f"wrote {out_path}: {key.describe()} (gid {gid})", err=True)

    @main.command("renew")
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
                  help="The issuer's master.key (CP) or NAME.key (multi-authority).")
    @click.option("-i", "--identity", "old_path", required=True, type=click.Path(dir_okay=False),
                  help="The key to renew.")
    @click.option("--until", "until", required=True, type=click.DateTime(["%Y-%m-%d"]),
                  help="New last day of validity (YYYY-MM-DD).")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def renew_cmd(master_path: str, old_path: str, until: dt.datetime, out_path: str) -> None:
        """Re-issue a key with the same attributes and a new valid_until (expiring access)."""
        master = read_key(master_path, expect="master")
        old = read_key(old_path, expect="user")
        if master.scheme.name == "rw15":
            issuer: ABE | Authority = Authority(
                read_key(Path(master_path).with_suffix(".pub"), expect="public"), master)
        else:
            issuer = ABE(read_key(Path(master_path).with_name("public.key"), expect="public"), master)
        key = renew(issuer, old, until.date())
        key.save(out_path)
        click.echo(f"wrote {out_path}: {key.describe()}", err=True)

    @main.group()
    def phr() -> None:
        """Encrypt and read personal health records section by section."""

    @phr.command("encrypt")
    @click.argument("record", type=click.Path(dir_okay=False))
    @click.option("--policies", "policy_map", required=True, type=click.Path(dir_okay=False),
                  help="JSON policy map: sections, default, emergency sections.")
    @click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False))
    @click.option("--authorities", "authority_dir", type=click.Path(file_okay=False),
                  help="A directory of NAME.pub files.")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @handle_errors
    def phr_encrypt(record: str, policy_map: str, authority_paths: tuple[str, ...],
                    authority_dir: str | None, out_path: str) -> None:
        """Encrypt RECORD.json section by section into a .phr file."""
        try:
            data = json.loads(Path(record).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CliError(f"cannot read {record} as JSON: {exc}") from None
        blob = encrypt_record(data, PolicyMap.load(policy_map),
                              _authority_keys(authority_paths, authority_dir))
        write_atomic(out_path, blob)
        click.echo(f"wrote {out_path}: {len(data)} sections", err=True)

    @phr.command("decrypt")
    @click.argument("record", type=click.Path(dir_okay=False))
    @click.option("-i", "--identity", "key_paths", multiple=True, required=True,
                  type=click.Path(dir_okay=False))
    @click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False))
    @handle_errors
    def phr_decrypt(record: str, key_paths: tuple[str, ...], out_path: str | None) -> None:
        """Write the sections your keys open as JSON; list the others on stderr."""
        try:
            blob = Path(record).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {record}: {exc.strerror}") from None
        visible, closed = decrypt_record(blob, [read_key(p, expect="user") for p in key_paths])
        for name, why in closed.items():
            click.echo(f"not readable: {name}: {why}", err=True)
        if not visible:
            raise CliError(f"none of the {len(closed)} sections opens with these keys")
        text = json.dumps(visible, indent=2, ensure_ascii=False) + "\n"
        if out_path in (None, "-"):
            sys.stdout.write(text)
        else:
            write_atomic(out_path, text.encode())
