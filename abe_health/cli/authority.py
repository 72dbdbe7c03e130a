"""`abe-health authority setup` and `authority keygen`: multi-authority (RW15) attribute
authorities, each set up on its own, issuing keys to holders named by a global identifier."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ..hazmat.pairing import get_group
from ..keys import read_key
from ..locks import KEY_DIR_LOCK, exclusive
from ..ma import Authority, read_global, write_global
from ..register import Register, register_path_for
from .common import CliError, check_output_file, make_output_dir, note, passphrase_option, read_secret_key
from .keys import noted, open_register


@click.group()
def authority() -> None:
    """Run a multi-authority (RW15) attribute authority."""


@authority.command("setup")
@click.argument("name")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              metavar="DIR", help="Directory of the authorities (created if missing; its parent "
                                  "must exist): NAME.pub, NAME.key, global.params.")
@click.option("--backend", type=click.Choice(["mcl", "charm"]), default="mcl", show_default=True,
              help="The pairing library of a new DIR/global.params (an existing one is kept).")
@click.option("--force", is_flag=True, help="Replace an existing authority of this name.")
def setup(name: str, out_dir: str, backend: str, force: bool) -> None:
    """Create authority NAME: DIR/NAME.pub, DIR/NAME.key (mode 0600) and its issuance register;
    DIR/global.params once, shared by every authority in DIR."""
    make_output_dir(out_dir)
    with exclusive(Path(out_dir) / KEY_DIR_LOCK):  # one writer of global.params and NAME.*
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
        register_path = register_path_for(secret)
        Register.create(register_path)  # kept on --force: rows name the authority that wrote them
        auth.secret_key.save(secret)
        auth.public_key.save(Path(out_dir) / f"{name}.pub")
    note(f"authority {name} over {group_id}: {out_dir}/{name}.pub, {secret}, {register_path}")


@authority.command("keygen")
@click.option("-m", "--master", "secret_path", required=True, type=click.Path(dir_okay=False),
              metavar="NAME.key", help="The authority's secret key.")
@click.option("--gid", required=True, metavar="GID", help="The user's global identifier.")
@click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR",
              help="An attribute of this authority for the key (repeatable): -a doctor.")
@click.option("--expiring", "expiring", multiple=True, metavar="NAME",
              help="An attribute of this key that expires (repeatable). It must be given a "
                   "date, its last day (-a 'emergency = 2026-12-31' --expiring emergency), and "
                   "`renew` moves exactly these to the new day; every other attribute, dated "
                   "or not (born = 1980-04-02), is renewed as issued. A key without one is "
                   "not renewable.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The new user key (mode 0600).")
@click.option("--register", "register_path", type=click.Path(dir_okay=False), default=None,
              metavar="FILE", help="The issuance register (default: NAME.register.sqlite beside "
                                   "NAME.key).")
@passphrase_option
def keygen(secret_path: str, gid: str, attrs: tuple[str, ...], expiring: tuple[str, ...],
           out_path: str, register_path: str | None, passphrase_file: str | None) -> None:
    """Issue user GID a key OUT (mode 0600) for attributes of this authority, recorded in its
    register with the attributes that expire: -a 'emergency = 2026-12-31' --expiring emergency."""
    check_output_file(out_path)
    secret = read_secret_key(secret_path, "master", passphrase_file)
    public = read_key(Path(secret_path).with_suffix(".pub"), expect="public")
    issuer = Authority(public, secret)  # refuses a mismatched pair before any register is touched
    register = noted(open_register(Path(register_path) if register_path
                                   else register_path_for(secret_path)))
    key = dataclasses.replace(issuer, register=register).keygen(gid, attrs, expiring=expiring)
    key.save(out_path)
    recorded = register.lookup(key).expiring or ()
    expires = f"expiring: {', '.join(recorded)}" if recorded else "no expiring attribute: not renewable"
    note(f"wrote {out_path}: {key.describe()} (gid {gid}, issuance {key.record.meta['iid']}, "
         f"{expires})")
