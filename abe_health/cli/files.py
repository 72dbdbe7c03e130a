"""`abe-health encrypt`, `decrypt` and `inspect`: `.abe` files, through the one encryption path
(`abe_health.encrypt` to a recipient, `abe_health.decrypt` with identities)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from typing import Any, BinaryIO

import click

from ..armor import BEGIN
from ..devices import retrieve
from ..encryption import decrypt as decrypt_to
from ..encryption import encrypt as encrypt_to
from ..encryption import inspect as inspect_file
from ..keys import Key, read_key
from ..recipients import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, Recipient
from .common import (
    check_binary_output,
    check_output_file,
    is_protected,
    printable,
    progress_bar,
    read_secret_key,
)
from .devices import TRANSFORMED_MAGIC, encrypt_with_pool, inspect_transformed, read_retrieval_key

#: files at least this large get a progress bar (when stderr is a terminal)
PROGRESS_MIN_BYTES = 4 * 1024 * 1024

input_argument = click.argument("src", metavar="[IN]", required=False, default="-",
                                type=click.Path(dir_okay=False, allow_dash=True))
out_option = click.option("-o", "--out", "out_path", default=None, metavar="OUT",
                          type=click.Path(dir_okay=False, allow_dash=True),
                          help="Output file (default: stdout).")


def _recipient(public_path: str | None, authority_paths: tuple[str, ...], policy: str | None,
               attrs: tuple[str, ...]) -> Recipient:
    """Whom the file is for: a policy or attributes under one authority (as its scheme says),
    or a policy over several authorities."""
    if bool(public_path) == bool(authority_paths):
        raise click.UsageError("give either -k PUBLIC.key or one or more --authority NAME.pub")
    if authority_paths:
        if policy is None:
            raise click.UsageError("multi-authority encryption needs -p POLICY")
        return MultiAuthorityRecipient(policy, [read_key(p, expect="public") for p in authority_paths])
    assert public_path is not None
    public = read_key(public_path, expect="public")
    if public.scheme.policy_in == "key":
        if policy is not None or not attrs:
            raise click.UsageError(f"{public.scheme.name} encrypts under attributes: give -a ATTR")
        return AttributesRecipient(public, attrs)
    if policy is None or attrs:
        raise click.UsageError(f"{public.scheme.name} encrypts under a policy: give -p POLICY")
    return PolicyRecipient(public, policy)


def _open_input(src: str) -> BinaryIO:
    """stdin for "-", else the file (an OSError names it)."""
    return sys.stdin.buffer if src == "-" else open(src, "rb")  # closed by the caller


@click.command()
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="The authority's public key.")
@click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False),
              metavar="NAME.pub", help="A multi-authority public key (repeatable), instead of -k.")
@click.option("-p", "--policy", default=None, metavar="POLICY", help="Access policy (CP schemes).")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="Attribute of the file (KP scheme), repeatable.")
@out_option
@click.option("--armor", is_flag=True, help="ASCII-armored output (-----BEGIN ABE FILE-----).")
@click.option("--pool", "pool_path", default=None, type=click.Path(dir_okay=False), metavar="POOL",
              help="Encrypt with precomputed material from POOL (`precompute`) instead of -k.")
@click.option("--pool-key", "pool_key_path", default=None, type=click.Path(dir_okay=False),
              metavar="KEY", help="The key that seals POOL (with --pool).")
@input_argument
def encrypt(public_path: str | None, authority_paths: tuple[str, ...], policy: str | None,
            attrs: tuple[str, ...], out_path: str | None, armor: bool, pool_path: str | None,
            pool_key_path: str | None, src: str) -> None:
    """Encrypt IN (default: stdin) under a policy (CP) or attributes (KP) into .abe format.
    Binary output is not written to a terminal: give -o, pipe it, or add --armor."""
    if pool_path is not None and (public_path or authority_paths or attrs):
        raise click.UsageError(f"--pool {pool_path} encrypts with the pool's own keys: drop -k, "
                               "--authority and -a")
    if pool_key_path is not None and pool_path is None:
        raise click.UsageError(f"--pool-key {pool_key_path} goes with --pool POOL")
    recipient = None if pool_path else _recipient(public_path, authority_paths, policy, attrs)
    check_binary_output(out_path, armor)
    check_output_file(out_path)
    bar = progress_bar(src, "encrypting", PROGRESS_MIN_BYTES)
    fin = _open_input(src)
    try:
        sink: Any = sys.stdout.buffer if out_path in (None, "-") else out_path
        if pool_path is not None:
            encrypt_with_pool(pool_path, pool_key_path, policy, fin, sink, armor)
        else:
            assert recipient is not None
            encrypt_to(fin, sink, recipient, armor=armor, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.render_finish()
        if fin is not sys.stdin.buffer:
            fin.close()


@click.command()
@click.option("-i", "--identity", "key_paths", multiple=True,
              type=click.Path(dir_okay=False), metavar="KEY",
              help="Your user key (repeat for one user's keys from several authorities).")
@click.option("--retrieval-key", "rk_path", default=None, type=click.Path(dir_okay=False),
              metavar="RK", help="Instead of -i: open a transformed file (`transform`) with your "
                                 "retrieval key (`key blind`).")
@out_option
@input_argument
def decrypt(key_paths: tuple[str, ...], rk_path: str | None, out_path: str | None, src: str) -> None:
    """Decrypt IN (default: stdin) into OUT. Nothing is written unless the whole file verifies;
    the output is your own data, so it goes to a terminal too."""
    retrieval_key = read_retrieval_key(rk_path) if rk_path else None
    if bool(key_paths) == bool(rk_path):
        raise click.UsageError("give -i KEY (an .abe file) or --retrieval-key RK (a transformed file)")
    check_output_file(out_path)
    keys = [read_secret_key(p, "user") for p in key_paths]
    fin = _open_input(src)
    bar = progress_bar(src, "decrypting", PROGRESS_MIN_BYTES)
    tick = bar.update if bar else None

    def run(sink: Any) -> None:
        if retrieval_key is not None:
            retrieve(fin, sink, retrieval_key, progress=tick)
        else:
            decrypt_to(fin, sink, *keys, progress=tick)

    try:
        if out_path in (None, "-"):
            with tempfile.TemporaryFile() as spool:  # nothing reaches stdout before it all verified
                run(spool)
                spool.seek(0)
                shutil.copyfileobj(spool, sys.stdout.buffer, 1 << 20)
                sys.stdout.buffer.flush()
        else:
            run(out_path)
    finally:
        if fin is not sys.stdin.buffer:
            fin.close()
        if bar:
            bar.render_finish()


def _key_info(key: Key) -> dict[str, Any]:
    """What `inspect` shows of a key: kind, scheme, group and its public metadata; no secret."""
    meta = key.record.meta
    info: dict[str, Any] = {"kind": f"{key.kind} key", "scheme": key.scheme.name,
                            "group": key.scheme.group.id}
    for field in ("attributes", "policy", "pk", "widths"):
        if meta.get(field):
            info["authority" if field == "pk" else field] = meta[field]
    return info


@click.command()
@click.argument("path", type=click.Path(dir_okay=False), metavar="FILE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def inspect(path: str, as_json: bool) -> None:
    """Show what an .abe FILE or a key file says about itself (scheme, policy, sizes); no
    secrets. A passphrase-protected key is unlocked first (asked for on a terminal)."""
    with open(path, "rb") as handle:
        head = handle.read(len(BEGIN))
    if head[:4] == TRANSFORMED_MAGIC:
        info = inspect_transformed(path)
    elif head[:3] == b"ABE" or head == BEGIN:
        info = inspect_file(path)
    elif is_protected(path):
        info = _key_info(read_secret_key(path, None))
    else:
        info = _key_info(read_key(path))
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    for name, value in info.items():
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        click.echo(f"{name}: {printable(text)}")
