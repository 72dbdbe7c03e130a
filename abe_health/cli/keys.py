"""`abe-health setup`, `keygen`, `renew` and `withdraw`: an authority's keys and the issuance
register that records every key it issues (what `renew` re-issues and `withdraw` marks)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import click

from ..authority import ABE
from ..derived import fingerprint
from ..hazmat.schemes import SCHEMES
from ..keys import read_key
from ..locks import KEY_DIR_LOCK, exclusive
from ..ma import Authority
from ..register import Register, register_path_for
from ..revocation import renew as renew_key
from ..revocation.expiry import renewal_moves
from .audit import local_action
from .common import (
    CliError,
    check_output_file,
    make_output_dir,
    new_passphrase,
    note,
    passphrase_option,
    read_secret_key,
)

register_option = click.option(
    "--register", "register_path", type=click.Path(dir_okay=False), default=None, metavar="FILE",
    help="The issuance register (default: the one beside the master key).")


def noted(register: Register) -> Register:
    """`register`, after a note on stderr if opening it upgraded it from schema 1 (see
    `abe_health.register`): the multi-authority keys it recorded before carry no expiring
    attributes and are not renewed."""
    if register.upgraded_from is not None:
        note(f"note: upgraded issuance register {register.path} from schema "
             f"{register.upgraded_from}; multi-authority keys recorded before name no expiring "
             "attributes and are not renewed: issue new keys with --expiring NAME")
    return register


def open_register(path: Path) -> Register:
    """The register at `path`, created (with a note) if an authority set up before registers
    existed has none: its earlier keys are then unknown to it and are not renewed."""
    if not path.exists():
        check_output_file(str(path))
        note(f"note: no issuance register at {path}; creating it (keys issued before cannot be "
             "renewed)")
    return Register.create(path)


def issuer(master_path: str, register_path: str | None, passphrase_file: str | None = None,
           ) -> ABE | Authority:
    """The authority whose master key is at `master_path` (NAME.key beside NAME.pub for
    multi-authority, master.key beside public.key otherwise), with its issuance register."""
    master = read_secret_key(master_path, "master", passphrase_file)
    register = noted(Register(register_path or register_path_for(master_path)))
    if master.scheme.name == "rw15":
        return Authority(read_key(Path(master_path).with_suffix(".pub"), expect="public"), master,
                         register=register)
    return ABE(read_key(Path(master_path).with_name("public.key"), expect="public"), master,
               register=register)


def _widths(items: tuple[str, ...]) -> dict[str, int]:
    """NAME=BITS pairs as a dict; a malformed one is a usage error."""
    widths = {}
    for item in items:
        name, sep, bits = item.partition("=")
        if not sep or not bits.isdigit() or not 1 <= int(bits) <= 64:
            raise click.BadParameter(f"expected NAME=BITS with 1..64 bits, got {item!r}",
                                     param_hint="--width")
        widths[name.strip()] = int(bits)
    return widths


@click.command()
@click.option("--scheme", type=click.Choice(sorted([*SCHEMES, "rw13"])), default="fame", show_default=True,
              help="fame (CP-ABE), fame-kp (KP-ABE), rw13 (CP-ABE with online encryption from a "
                   "device's pool: docs/devices.md), or the bsw07 / waters11 CP-ABE baselines.")
@click.option("--backend", type=click.Choice(["mcl", "charm"]), default="mcl", show_default=True,
              help="The pairing library: mcl (BLS12-381, included) or charm (BN254, needs PBC).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              metavar="DIR", help="Directory for public.key, master.key and register.sqlite "
                                  "(created if missing; its parent must exist).")
@click.option("--width", "widths", multiple=True, metavar="NAME=BITS",
              help="Bit width of a numeric attribute (default 32), e.g. --width age=8.")
@click.option("--armor", is_flag=True, help="Write ASCII-armored keys.")
@click.option("--force", is_flag=True, help="Overwrite an existing master key.")
@click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Protect the master key with the first line of FILE.")
@click.option("--passphrase-prompt", is_flag=True,
              help="Protect the master key with a passphrase asked twice on the terminal.")
def setup(scheme: str, backend: str, out_dir: str, widths: tuple[str, ...], armor: bool, force: bool,
          passphrase_file: str | None, passphrase_prompt: bool) -> None:
    """Create an authority: DIR/public.key, DIR/master.key (mode 0600) and DIR/register.sqlite."""
    width_map = _widths(widths)
    passphrase = new_passphrase(passphrase_file, passphrase_prompt)
    make_output_dir(out_dir)
    master_path = os.path.join(out_dir, "master.key")
    with exclusive(os.path.join(out_dir, KEY_DIR_LOCK)):  # two setups never mix their halves
        if os.path.exists(master_path) and not force:
            raise CliError(f"{master_path} exists; use --force to replace it (old keys stop working)")
        authority = ABE.setup(scheme, backend, width_map)
        assert authority.master_key is not None
        register_path = register_path_for(master_path)
        Register.create(register_path)  # kept on --force: its rows name the authority that wrote them
        authority.master_key.save(master_path, armor=armor, passphrase=passphrase)
        authority.public_key.save(os.path.join(out_dir, "public.key"), armor=armor)
    local_action(master_path, authority.master_key, "setup", fingerprint(authority.public_key), scheme)
    note(f"{scheme} authority over {authority.public_key.scheme.group.id}: {out_dir}/public.key, "
         f"{master_path}, issuance register {register_path}")


@click.command()
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The authority's master.key.")
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="The authority's public key (default: public.key beside the master key).")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="An attribute of the key (CP schemes), repeatable: -a doctor -a 'ward = 3'.")
@click.option("--policy", default=None, metavar="POLICY", help="The key's policy (KP scheme fame-kp).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The new user key (mode 0600).")
@click.option("--armor", is_flag=True, help="Write an ASCII-armored key.")
@register_option
@passphrase_option
def keygen(master_path: str, public_path: str | None, attrs: tuple[str, ...], policy: str | None,
           out_path: str, armor: bool, register_path: str | None, passphrase_file: str | None) -> None:
    """Issue a user key OUT for attributes (CP) or a policy (KP), recorded in the authority's
    issuance register (what `renew` re-issues)."""
    check_output_file(out_path)
    master = read_secret_key(master_path, "master", passphrase_file)
    public = read_key(public_path or os.path.join(os.path.dirname(master_path) or ".", "public.key"),
                      expect="public")
    authority = ABE(public, master)  # refuses a mismatched pair before any register is touched
    authority.register = open_register(Path(register_path) if register_path
                                       else register_path_for(master_path))
    key = authority.keygen(attributes=attrs or None, policy=policy)
    key.save(out_path, armor=armor)
    local_action(master_path, master, "keygen", str(key.record.meta["iid"]))
    note(f"wrote {out_path}: {key.describe()} (issuance {key.record.meta['iid']})")


@click.command()
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The issuer's master.key (CP) or NAME.key (multi-authority).")
@click.option("-i", "--identity", "old_path", required=True, type=click.Path(dir_okay=False),
              metavar="OLD", help="The key to renew.")
@click.option("--until", "until", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="DATE",
              help="New last day of validity (YYYY-MM-DD).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="NEW", help="The renewed key (mode 0600).")
@register_option
@passphrase_option
def renew(master_path: str, old_path: str, until: dt.datetime, out_path: str,
          register_path: str | None, passphrase_file: str | None) -> None:
    """Re-issue key OLD for a new period as NEW: what the issuance register says was issued
    (never the key file's own metadata), with valid_until (CP) or the attributes recorded as
    expiring at keygen (multi-authority, e.g. emergency = DATE) set to DATE, and every other
    attribute as issued. Keys the register does not know, withdrawn ones, ones already renewed
    and multi-authority keys with no expiring attribute are refused."""
    check_output_file(out_path)
    authority = issuer(master_path, register_path, passphrase_file)
    assert authority.register is not None
    old = read_secret_key(old_path, "user")
    key = renew_key(authority, old, until.date())
    key.save(out_path)
    master = authority.secret_key if isinstance(authority, Authority) else authority.master_key
    assert master is not None
    local_action(master_path, master, "renew", str(key.record.meta.get("iid", "")),
                 f"until {until.date().isoformat()}")
    moves = renewal_moves(authority.register.lookup(old), authority.register.lookup(key))
    moved = ", ".join(f"{subject} {before or '(none)'} -> {after}" for subject, before, after in moves)
    note(f"moved: {moved}; every other attribute as issued")
    note(f"wrote {out_path}: {key.describe()} (issuance {key.record.meta['iid']}, renewing {old_path})")


@click.command()
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The issuer's master.key (CP) or NAME.key (multi-authority).")
@click.option("-i", "--identity", "key_path", type=click.Path(dir_okay=False), default=None,
              metavar="KEY", help="Withdraw the issuance of this key (found by its key parts).")
@click.option("--iid", default=None, metavar="IID", help="Withdraw this issuance id.")
@click.option("--gid", default=None, metavar="GID",
              help="Withdraw every issuance to this holder (multi-authority).")
@click.option("--reason", default="", metavar="TEXT", help="Recorded with the withdrawal.")
@register_option
@passphrase_option
def withdraw(master_path: str, key_path: str | None, iid: str | None, gid: str | None, reason: str,
             register_path: str | None, passphrase_file: str | None) -> None:
    """Mark an issuance (and its renewals) or a holder as not renewable. Keys already issued
    keep working until they expire; they are not renewed."""
    if sum(x is not None for x in (key_path, iid, gid)) != 1:
        raise click.UsageError("give exactly one of -i KEY, --iid IID, --gid GID")
    authority = issuer(master_path, register_path, passphrase_file)
    assert authority.register is not None
    if key_path is not None:
        iid = authority.register.lookup(read_secret_key(key_path, "user")).iid
    row = authority.register.withdraw(fingerprint(authority.public_key), iid=iid, gid=gid, reason=reason)
    what = f"issuance {iid}" if iid else f"holder {gid!r}"
    note(f"withdrew {what} (register row {row.iid})")
