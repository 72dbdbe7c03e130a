"""`abe-health authority ...` and `abe-health phr ...`: multi-authority keys and PHR records."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from pathlib import Path

import click

from ..authority import ABE
from ..derived import fingerprint
from ..fileio import write_atomic
from ..hazmat.pairing import get_group
from ..keys import read_key
from ..ma import Authority, read_global, write_global
from ..phr import PolicyMap, encrypt_record, load_record, open_record
from ..phr import record_id as record_id_of
from ..register import Register, register_path_for
from ..revocation import renew
from ..revocation.expiry import renewal_moves
from .common import CliError


def _read_passphrase(path: str | None) -> str | None:
    """The first line of a passphrase file (never a command-line argument, which `ps` shows)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read passphrase file {path}: {getattr(exc, 'strerror', None) or exc}"
                       ) from None


def _issuer(master_path: str, register_path: str | None, passphrase_file: str | None = None,
            ) -> ABE | Authority:
    """The authority whose master key is at `master_path` (NAME.key beside NAME.pub for
    multi-authority, master.key beside public.key otherwise), with its issuance register."""
    master = read_key(master_path, _read_passphrase(passphrase_file), expect="master")
    register = _noted(Register(register_path or register_path_for(master_path)))
    if master.scheme.name == "rw15":
        return Authority(read_key(Path(master_path).with_suffix(".pub"), expect="public"), master,
                         register=register)
    return ABE(read_key(Path(master_path).with_name("public.key"), expect="public"), master,
               register=register)


def _noted(register: Register) -> Register:
    """`register`, after a note on stderr if opening it upgraded it from schema 1 (see
    `abe_health.register`): the multi-authority keys it recorded before carry no expiring
    attributes and are not renewed."""
    if register.upgraded_from is not None:
        click.echo(f"note: upgraded issuance register {register.path} from schema "
                   f"{register.upgraded_from}; multi-authority keys recorded before name no expiring "
                   "attributes and are not renewed: issue new keys with --expiring NAME", err=True)
    return register


def _open_register(path: Path) -> Register:
    """The register at `path`, created (with a note) if an authority set up before registers
    existed has none: its earlier keys are then unknown to it and are not renewed."""
    if not path.exists():
        click.echo(f"note: no issuance register at {path}; creating it (keys issued before "
                   "cannot be renewed)", err=True)
    return _noted(Register.create(path))


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
        register_path = register_path_for(secret)
        Register.create(register_path)  # kept on --force: rows name the authority that wrote them
        auth.secret_key.save(secret)
        auth.public_key.save(Path(out_dir) / f"{name}.pub")
        click.echo(f"authority {name} over {group_id}: {out_dir}/{name}.pub, {secret}, "
                   f"{register_path}", err=True)

    @authority.command("keygen")
    @click.option("-m", "--master", "secret_path", required=True, type=click.Path(dir_okay=False),
                  help="The authority's NAME.key.")
    @click.option("--gid", required=True, help="The user's global identifier.")
    @click.option("-a", "--attr", "attrs", multiple=True, required=True, metavar="ATTR")
    @click.option("--expiring", "expiring", multiple=True, metavar="NAME",
                  help="An attribute of this key that expires (repeatable). It must be given a "
                       "date, its last day (-a 'emergency = 2026-12-31' --expiring emergency), and "
                       "`renew` moves exactly these to the new day; every other attribute, dated "
                       "or not (born = 1980-04-02), is renewed as issued. A key without one is "
                       "not renewable.")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @click.option("--register", "register_path", type=click.Path(dir_okay=False), default=None,
                  help="The issuance register (default: NAME.register.sqlite beside NAME.key).")
    @handle_errors
    def authority_keygen(secret_path: str, gid: str, attrs: tuple[str, ...],
                         expiring: tuple[str, ...], out_path: str, register_path: str | None) -> None:
        """Issue user GID a key (0600) for attributes of this authority, recorded in its register
        with the attributes that expire: -a 'emergency = 2026-12-31' --expiring emergency."""
        secret = read_key(secret_path, expect="master")
        public = read_key(Path(secret_path).with_suffix(".pub"), expect="public")
        issuer = Authority(public, secret)  # refuses a mismatched pair before any register is touched
        register = _open_register(Path(register_path) if register_path else register_path_for(secret_path))
        key = dataclasses.replace(issuer, register=register).keygen(gid, attrs, expiring=expiring)
        key.save(out_path)
        recorded = register.lookup(key).expiring or ()
        expires = (f"expiring: {', '.join(recorded)}" if recorded
                   else "no expiring attribute: not renewable")
        click.echo(f"wrote {out_path}: {key.describe()} (gid {gid}, issuance "
                   f"{key.record.meta['iid']}, {expires})", err=True)

    @main.command("renew")
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
                  help="The issuer's master.key (CP) or NAME.key (multi-authority).")
    @click.option("-i", "--identity", "old_path", required=True, type=click.Path(dir_okay=False),
                  help="The key to renew.")
    @click.option("--until", "until", required=True, type=click.DateTime(["%Y-%m-%d"]),
                  help="New last day of validity (YYYY-MM-DD).")
    @click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
    @click.option("--register", "register_path", type=click.Path(dir_okay=False), default=None,
                  help="The issuance register (default: the one beside the master key).")
    @click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
                  help="Unlock a protected master key with the first line of this file.")
    @handle_errors
    def renew_cmd(master_path: str, old_path: str, until: dt.datetime, out_path: str,
                  register_path: str | None, passphrase_file: str | None) -> None:
        """Re-issue a key for a new period: what the issuance register says was issued (never the
        key file's own metadata), with valid_until (CP) or the attributes recorded as expiring at
        keygen (multi-authority, e.g. emergency = DATE) set to --until, and every other attribute
        as issued. Keys the register does not know, withdrawn ones, ones already renewed and
        multi-authority keys with no expiring attribute are refused."""
        issuer = _issuer(master_path, register_path, passphrase_file)
        assert issuer.register is not None
        old = read_key(old_path, expect="user")
        key = renew(issuer, old, until.date())
        key.save(out_path)
        moves = renewal_moves(issuer.register.lookup(old), issuer.register.lookup(key))
        moved = ", ".join(f"{subject} {before or '(none)'} -> {after}"
                          for subject, before, after in moves)
        click.echo(f"moved: {moved}; every other attribute as issued", err=True)
        click.echo(f"wrote {out_path}: {key.describe()} (issuance {key.record.meta['iid']}, "
                   f"renewing {old_path})", err=True)

    @main.command("withdraw")
    @click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
                  help="The issuer's master.key (CP) or NAME.key (multi-authority).")
    @click.option("-i", "--identity", "key_path", type=click.Path(dir_okay=False), default=None,
                  help="Withdraw the issuance of this key (found by its key parts).")
    @click.option("--iid", default=None, help="Withdraw this issuance id.")
    @click.option("--gid", default=None, help="Withdraw every issuance to this holder (multi-authority).")
    @click.option("--reason", default="", help="Recorded with the withdrawal.")
    @click.option("--register", "register_path", type=click.Path(dir_okay=False), default=None,
                  help="The issuance register (default: the one beside the master key).")
    @click.option("--passphrase-file", type=click.Path(dir_okay=False), default=None,
                  help="Unlock a protected master key with the first line of this file.")
    @handle_errors
    def withdraw_cmd(master_path: str, key_path: str | None, iid: str | None, gid: str | None,
                     reason: str, register_path: str | None, passphrase_file: str | None) -> None:
        """Mark an issuance (and its renewals) or a holder as not renewable. Keys already issued
        keep working until they expire; they are not renewed."""
        if sum(x is not None for x in (key_path, iid, gid)) != 1:
            raise click.UsageError("give exactly one of -i KEY, --iid IID, --gid GID")
        issuer = _issuer(master_path, register_path, passphrase_file)
        assert issuer.register is not None
        if key_path is not None:
            iid = issuer.register.lookup(read_key(key_path, expect="user")).iid
        row = issuer.register.withdraw(fingerprint(issuer.public_key), iid=iid, gid=gid, reason=reason)
        what = f"issuance {iid}" if iid else f"holder {gid!r}"
        click.echo(f"withdrew {what} (register row {row.iid})", err=True)

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
    @click.option("--record-id", default=None,
                  help="The record's id, bound into every section (default: random).")
    @handle_errors
    def phr_encrypt(record: str, policy_map: str, authority_paths: tuple[str, ...],
                    authority_dir: str | None, out_path: str, record_id: str | None) -> None:
        """Encrypt RECORD.json section by section into a .phr file (version 2: every section is
        bound to the record id and to the record's list of sections)."""
        data = load_record(record)
        pmap = PolicyMap.load(policy_map)
        blob = encrypt_record(data, pmap, _authority_keys(authority_paths, authority_dir),
                              record_id=record_id)
        write_atomic(out_path, blob)
        click.echo(f"wrote {out_path}: record {record_id_of(blob)}, {len(data)} sections", err=True)

    @phr.command("decrypt")
    @click.argument("record", type=click.Path(dir_okay=False))
    @click.option("-i", "--identity", "key_paths", multiple=True, required=True,
                  type=click.Path(dir_okay=False))
    @click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False))
    @click.option("--expect-id", default=None, help="Refuse any record but this one.")
    @handle_errors
    def phr_decrypt(record: str, key_paths: tuple[str, ...], out_path: str | None,
                    expect_id: str | None) -> None:
        """Write the sections your keys open as JSON; print the record id and list the other
        sections on stderr. A record whose sections were moved, swapped, renamed, added or
        removed is refused."""
        try:
            blob = Path(record).read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {record}: {exc.strerror}") from None
        keys = [read_key(p, expect="user") for p in key_paths]
        opened = open_record(blob, keys, expect_id)
        visible, closed = opened.visible, opened.closed
        for name, why in closed.items():
            click.echo(f"not readable: {name}: {why}", err=True)
        if not visible:
            raise CliError(f"none of the {len(closed)} sections opens with these keys")
        # the id is authenticated now: every section that opened was written for it
        click.echo(f"record {opened.record_id}: {len(visible)} of {len(visible) + len(closed)} "
                   "sections readable", err=True)
        text = json.dumps(visible, indent=2, ensure_ascii=False) + "\n"
        if out_path in (None, "-"):
            sys.stdout.write(text)
        else:
            write_atomic(out_path, text.encode())
