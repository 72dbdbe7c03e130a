"""The `abe-health` command line: parses arguments, calls the API, prints, maps errors to exit codes.

Every failure the toolkit raises on purpose (`AbeError`) becomes one line `error: ...` on stderr
and exit status 1; usage errors are click's (exit 2).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from .. import __version__
from ..armor import BEGIN
from ..authority import ABE
from ..encryption import decrypt as decrypt_to
from ..encryption import encrypt as encrypt_to
from ..encryption import inspect as inspect_file
from ..hazmat.schemes import SCHEMES
from ..keys import Key, read_key
from ..policy import Policy, parse_attributes
from ..recipients import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, Recipient
from ..register import Register, register_path_for
from .authority import register as register_ma
from .common import CliError, handle_errors, printable
from .search import register as register_search
from .vault import register as register_vault

PROGRESS_MIN_BYTES = 4 * 1024 * 1024


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abe-health")
def main() -> None:
    """Attribute-based encryption for personal health records."""


@main.group()
def policy() -> None:
    """Inspect access policies."""


@policy.command("check")
@click.argument("text")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="A key attribute (repeatable): test whether these satisfy the policy.")
@click.option("--matrix", is_flag=True, help="Print the LSSS matrix and row labels.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def policy_check(text: str, attrs: tuple[str, ...], matrix: bool, as_json: bool) -> None:
    """Parse POLICY, print its canonical form and LSSS size (and whether -a attributes satisfy it)."""
    parsed = Policy.parse(text)
    lsss = parsed.lsss
    report: dict[str, Any] = {
        "canonical": str(parsed),
        "rows": lsss.n_rows,
        "columns": lsss.n_cols,
        "attributes": len(parsed.attributes),
    }
    if attrs:
        key = parse_attributes(attrs)
        ok = parsed.is_satisfied_by(key)
        report["satisfied"] = ok
        if ok:
            report["rows_used"] = [i + 1 for i in lsss.rows_used(key.labels)]
    if matrix:
        report["matrix"] = lsss.dense()
        report["rho"] = list(lsss.rho)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"canonical: {report['canonical']}")
    click.echo(f"lsss: {lsss.n_rows} rows x {lsss.n_cols} columns, "
               f"{report['attributes']} distinct attributes")
    if attrs:
        used = f" (rows {', '.join(map(str, report['rows_used']))})" if report["satisfied"] else ""
        click.echo(f"satisfied: {'yes' if report['satisfied'] else 'no'}{used}")
    if matrix:
        width = max(len(str(v)) for row in report["matrix"] for v in row)
        for i, (row, label) in enumerate(zip(report["matrix"], report["rho"], strict=True), start=1):
            cells = " ".join(str(v).rjust(width) for v in row)
            click.echo(f"  {i:>4}  [{cells}]  {label}")


def _passphrase(path: str | None) -> str | None:
    """The first line of a passphrase file (never a command-line argument, which `ps` shows)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except OSError as exc:
        raise CliError(f"cannot read passphrase file {path}: {exc.strerror}") from None


def _progress(path: str | None, label: str) -> Any:
    """A stderr progress bar for large regular files when stderr is a terminal, else None."""
    if path in (None, "-") or not sys.stderr.isatty():
        return None
    size = os.path.getsize(path)
    if size < PROGRESS_MIN_BYTES:
        return None
    return click.progressbar(length=size, label=label, file=sys.stderr)


passphrase_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False), default=None,
    help="Protect (setup) or unlock (keygen) the master key with the first line of this file.")


@main.command()
@click.option("--scheme", type=click.Choice(sorted(SCHEMES)), default="fame", show_default=True,
              help="fame (CP-ABE), fame-kp (KP-ABE), or the bsw07 / waters11 CP-ABE baselines.")
@click.option("--backend", type=click.Choice(["mcl", "charm"]), default="mcl", show_default=True)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for public.key and master.key.")
@click.option("--width", "widths", multiple=True, metavar="NAME=BITS",
              help="Bit width of a numeric attribute (default 32), e.g. --width age=8.")
@click.option("--armor", is_flag=True, help="Write ASCII-armored keys.")
@click.option("--force", is_flag=True, help="Overwrite an existing master key.")
@passphrase_option
@handle_errors
def setup(scheme: str, backend: str, out_dir: str, widths: tuple[str, ...], armor: bool, force: bool,
          passphrase_file: str | None) -> None:
    """Create an authority: OUT/public.key and OUT/master.key (mode 0600)."""
    width_map = {}
    for item in widths:
        name, sep, bits = item.partition("=")
        if not sep or not bits.isdigit() or not 1 <= int(bits) <= 64:
            raise click.BadParameter(f"expected NAME=BITS with 1..64 bits, got {item!r}",
                                     param_hint="--width")
        width_map[name.strip()] = int(bits)
    os.makedirs(out_dir, exist_ok=True)
    master_path = os.path.join(out_dir, "master.key")
    if os.path.exists(master_path) and not force:
        raise CliError(f"{master_path} exists; use --force to replace it (old keys stop working)")
    authority = ABE.setup(scheme, backend, width_map)
    assert authority.master_key is not None
    register_path = register_path_for(master_path)
    Register.create(register_path)  # kept on --force: its rows name the authority that wrote them
    authority.master_key.save(master_path, armor=armor, passphrase=_passphrase(passphrase_file))
    authority.public_key.save(os.path.join(out_dir, "public.key"), armor=armor)
    click.echo(f"{scheme} authority over {authority.public_key.scheme.group.id}: "
               f"{out_dir}/public.key, {master_path}, issuance register {register_path}", err=True)


@main.command()
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              help="The authority's master.key.")
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False),
              help="The authority's public key (default: public.key beside the master key).")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="An attribute of the key (CP schemes), repeatable: -a doctor -a 'ward = 3'.")
@click.option("--policy", default=None, help="The key's policy (KP scheme fame-kp).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False))
@click.option("--armor", is_flag=True, help="Write an ASCII-armored key.")
@click.option("--register", "register_path", type=click.Path(dir_okay=False), default=None,
              help="The issuance register (default: register.sqlite beside the master key).")
@passphrase_option
@handle_errors
def keygen(master_path: str, public_path: str | None, attrs: tuple[str, ...], policy: str | None,
           out_path: str, armor: bool, register_path: str | None, passphrase_file: str | None) -> None:
    """Issue a user key (mode 0600) for attributes (CP) or a policy (KP), recorded in the
    authority's issuance register (what `renew` re-issues)."""
    master = read_key(master_path, _passphrase(passphrase_file), expect="master")
    public = read_key(public_path or os.path.join(os.path.dirname(master_path) or ".", "public.key"),
                      expect="public")
    authority = ABE(public, master)  # refuses a mismatched pair before any register is touched
    where = Path(register_path) if register_path else register_path_for(master_path)
    if not where.exists():
        click.echo(f"note: no issuance register at {where}; creating it (keys issued before "
                   "cannot be renewed)", err=True)
    authority.register = Register.create(where)
    key = authority.keygen(attributes=attrs or None, policy=policy)
    key.save(out_path, armor=armor)
    click.echo(f"wrote {out_path}: {key.describe()} (issuance {key.record.meta['iid']})", err=True)


@main.command()
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False),
              help="The authority's public key.")
@click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False),
              help="A multi-authority public key NAME.pub (repeatable), instead of -k.")
@click.option("-p", "--policy", default=None, help="Access policy (CP schemes).")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="Attribute of the file (KP scheme), repeatable.")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Output file (default: stdout).")
@click.option("--armor", is_flag=True, help="ASCII-armored output (-----BEGIN ABE FILE-----).")
@click.argument("src", required=False, default="-")
@handle_errors
def encrypt(public_path: str | None, authority_paths: tuple[str, ...], policy: str | None,
            attrs: tuple[str, ...], out_path: str | None, armor: bool, src: str) -> None:
    """Encrypt IN (default stdin) under a policy (CP) or attributes (KP) into .abe format."""
    if bool(public_path) == bool(authority_paths):
        raise click.UsageError("give either -k PUBLIC.key or one or more --authority NAME.pub")
    if authority_paths and policy is None:
        raise click.UsageError("multi-authority encryption needs -p POLICY")
    recipient: Recipient
    if public_path:
        public = read_key(public_path, expect="public")
        if public.scheme.policy_in == "key":
            if policy is not None or not attrs:
                raise click.UsageError(f"{public.scheme.name} encrypts under attributes: give -a ATTR")
            recipient = AttributesRecipient(public, attrs)
        else:
            if policy is None or attrs:
                raise click.UsageError(f"{public.scheme.name} encrypts under a policy: give -p POLICY")
            recipient = PolicyRecipient(public, policy)
    else:
        recipient = MultiAuthorityRecipient(str(policy), [read_key(p, expect="public")
                                                          for p in authority_paths])
    bar = _progress(src, "encrypting")
    tick = bar.update if bar else None
    fin = sys.stdin.buffer if src == "-" else _open_input(src)
    try:
        sink = sys.stdout.buffer if out_path in (None, "-") else out_path
        encrypt_to(fin, sink, recipient, armor=armor, progress=tick)  # type: ignore[arg-type]
    finally:
        if bar:
            bar.render_finish()
        if fin is not sys.stdin.buffer:
            fin.close()


@main.command()
@click.option("-i", "--identity", "key_paths", required=True, multiple=True,
              type=click.Path(dir_okay=False),
              help="Your user key (repeat for one user's keys from several authorities).")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Output file (default: stdout).")
@click.argument("src", required=False, default="-")
@handle_errors
def decrypt(key_paths: tuple[str, ...], out_path: str | None, src: str) -> None:
    """Decrypt IN (default stdin). Nothing is written unless the whole file verifies."""
    keys = [read_key(p, expect="user") for p in key_paths]
    fin = sys.stdin.buffer if src == "-" else _open_input(src)
    bar = _progress(src, "decrypting")
    tick = bar.update if bar else None
    try:
        if out_path in (None, "-"):
            with tempfile.TemporaryFile() as spool:  # nothing reaches stdout before it all verified
                decrypt_to(fin, spool, *keys, progress=tick)
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
        else:
            decrypt_to(fin, out_path, *keys, progress=tick)
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()
        if bar:
            bar.render_finish()


@main.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def inspect(path: str, as_json: bool) -> None:
    """Show what an .abe file or key says about itself (scheme, policy, sizes); no secrets."""
    _open_input(path).close()
    with open(path, "rb") as handle:
        head = handle.read(len(BEGIN))
    if head[:3] == b"ABE" or head == BEGIN:
        info = inspect_file(path)
    else:
        key = read_key(path)
        info = _key_info(key)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for name, value in info.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        click.echo(f"{name}: {printable(text)}")


def _key_info(key: Key) -> dict[str, Any]:
    meta = key.record.meta
    info: dict[str, Any] = {"kind": f"{key.kind} key", "scheme": key.scheme.name,
                            "group": key.scheme.group.id}
    for field in ("attributes", "policy", "pk", "widths"):
        if meta.get(field):
            info["authority" if field == "pk" else field] = meta[field]
    return info


def _open_input(path: str) -> Any:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


@main.command()
@handle_errors
def demo() -> None:
    """Walk through what the toolkit does today, on a hospital example."""
    from ..demo import run_demo

    run_demo(click.echo)


register_search(main, handle_errors)
register_ma(main, handle_errors)
register_vault(main, handle_errors)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
