"""`abe-health key blind`, `transform` and `precompute`: small devices (`abe_health.devices`).

The device side of the other two operations are options of the file commands:
`decrypt --retrieval-key RK` opens a transformed file and `encrypt --pool POOL --pool-key KEY`
encrypts with precomputed material (`abe_health.cli.files`).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from ..devices import PoolKey, RetrievalKey, blind, precompute, transform_file, transformed
from ..devices import TransformationKey as TransformationKeyFile
from ..devices.online import Pool
from ..keys import read_key
from ..recipients import AttributesRecipient, MultiAuthorityRecipient, PolicyRecipient, Recipient
from .common import check_binary_output, check_output_file, note, read_secret_key


@click.group("key")
def key() -> None:
    """Derived keys for small devices."""


@key.command("blind")
@click.option("-i", "--identity", "key_paths", required=True, multiple=True,
              type=click.Path(dir_okay=False), metavar="KEY",
              help="Your user key (repeat for one holder's keys from several authorities).")
@click.option("--transformation-key", "tk_path", required=True, type=click.Path(dir_okay=False),
              metavar="TK", help="Output: the transformation key, for the cloud (mode 0600).")
@click.option("--retrieval-key", "rk_path", required=True, type=click.Path(dir_okay=False),
              metavar="RK", help="Output: the retrieval key, kept on the device (mode 0600).")
def blind_key(key_paths: tuple[str, ...], tk_path: str, rk_path: str) -> None:
    """Blind user key(s) with a fresh secret z: TK lets the cloud do every pairing of a
    decryption, RK (z) finishes it on the device with one exponentiation."""
    if os.path.abspath(tk_path) == os.path.abspath(rk_path):
        raise click.UsageError("the transformation key and the retrieval key need two files")
    check_output_file(tk_path)
    check_output_file(rk_path)
    keys = [read_secret_key(p, "user") for p in key_paths]
    tk, rk = blind(*keys)
    tk.save(tk_path)
    rk.save(rk_path)
    note(f"transformation key {tk.id} (for the cloud): {tk_path}; retrieval key (keep it on the "
         f"device): {rk_path}")


@click.command("transform")
@click.option("-t", "--transformation-key", "tk_path", required=True, type=click.Path(dir_okay=False),
              metavar="TK", help="The holder's transformation key.")
@click.option("-o", "--out", "out_path", default=None, metavar="OUT",
              type=click.Path(dir_okay=False, allow_dash=True), help="Output file (default: stdout).")
@click.argument("src", metavar="IN", type=click.Path(dir_okay=False))
def transform(tk_path: str, out_path: str | None, src: str) -> None:
    """What the cloud runs: turn the .abe file IN, whose policy the holder's attributes satisfy,
    into a transformed file (a header under 1 KiB, then the same payload) that only the
    holder's retrieval key opens. Learns nothing of the data key or the plaintext."""
    check_binary_output(out_path, False)
    check_output_file(out_path)
    tk = TransformationKeyFile.read(tk_path)
    sink: Any = sys.stdout.buffer if out_path in (None, "-") else out_path
    transform_file(tk, src, sink)


def _recipient(public_path: str | None, authority_paths: tuple[str, ...], policy: str | None,
               attrs: tuple[str, ...]) -> Recipient | None:
    """The fixed target of an encapsulation pool, or None for an HW14 (rw13) pool."""
    if bool(public_path) == bool(authority_paths):
        raise click.UsageError("give either -k PUBLIC.key or one or more --authority NAME.pub")
    if authority_paths:
        if policy is None:
            raise click.UsageError("a multi-authority pool encapsulates one policy: give -p POLICY")
        return MultiAuthorityRecipient(policy, [read_key(p, expect="public") for p in authority_paths])
    assert public_path is not None
    public = read_key(public_path, expect="public")
    if attrs:
        return AttributesRecipient(public, attrs)
    return PolicyRecipient(public, policy) if policy is not None else None


@click.command("precompute")
@click.option("-k", "--public", "public_path", type=click.Path(dir_okay=False), metavar="PUBLIC",
              help="The authority's public key (an rw13 key: online/offline; any other: with -p).")
@click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False),
              metavar="NAME.pub", help="A multi-authority public key (repeatable), instead of -k.")
@click.option("-p", "--policy", default=None, metavar="POLICY",
              help="Precompute encapsulations of this one policy (the fixed-policy pool).")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="An attribute of a fixed KP target (scheme fame-kp), repeatable.")
@click.option("--count", required=True, type=click.IntRange(1, 1 << 20), metavar="N",
              help="How many files the pool encrypts.")
@click.option("--rows", type=click.IntRange(1, 1 << 20), default=None, metavar="R",
              help="Policy rows precomputed for an rw13 pool (default 8 per file).")
@click.option("--pool-key", "pool_key_path", required=True, type=click.Path(dir_okay=False),
              metavar="KEY", help="The key sealing the pool at rest (created, mode 0600, if missing).")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="POOL", help="The pool file to write (mode 0600; replaces an existing one).")
def precompute_pool(public_path: str | None, authority_paths: tuple[str, ...], policy: str | None,
                    attrs: tuple[str, ...], count: int, rows: int | None, pool_key_path: str,
                    out_path: str) -> None:
    """Offline (while charging): precompute the encryption material of COUNT files into POOL,
    sealed under the pool key. Each piece is used once by `encrypt --pool`."""
    check_output_file(out_path)
    target = _recipient(public_path, authority_paths, policy, attrs)
    if target is None:
        assert public_path is not None
        made: Any = read_key(public_path, expect="public")
    else:
        made = target
    if os.path.exists(pool_key_path):
        pool_key = PoolKey.read(pool_key_path)
    else:
        check_output_file(pool_key_path)
        pool_key = PoolKey.generate()
        pool_key.save(pool_key_path)
        note(f"new pool key {pool_key.id}: {pool_key_path}")
    info = precompute(out_path, pool_key, made, count, rows)
    what = (f"{info.sessions} files and {info.pieces} policy rows (online/offline, {info.header['scheme']})"
            if info.kind == "hw14" else f'{info.sessions} encapsulations of "{info.policy}"')
    note(f"{out_path}: {what}")


def encrypt_with_pool(pool_path: str, pool_key_path: str | None, policy: str | None, src: Any,
                      sink: Any, armor: bool) -> None:
    """`encrypt --pool`: one file from the pool's material (`files.encrypt` calls this)."""
    if pool_key_path is None:
        raise click.UsageError("--pool needs --pool-key KEY")
    Pool(pool_path, PoolKey.read(pool_key_path)).encrypt(src, sink, policy, armor=armor)


def read_retrieval_key(path: str) -> RetrievalKey:
    """The retrieval key of `decrypt --retrieval-key`."""
    return RetrievalKey.read(path)



#: the first bytes of a transformed file (`inspect` tells it from an .abe file)
TRANSFORMED_MAGIC = transformed.MAGIC


def inspect_transformed(path: str) -> dict[str, Any]:
    """What `inspect` shows of a transformed file: its scheme, group, transformation key id,
    the digest naming the original header and sizes; no secret (it holds none)."""
    with open(path, "rb") as handle:
        th = transformed.read(handle)
    return {"kind": "transformed file", "scheme": th.scheme.name, "group": th.scheme.group.id,
            "transformation_key": th.tk, "original_header": th.header.hex(),
            "header_bytes": th.size, "payload_bytes": os.path.getsize(path) - th.size,
            "chunk_size": th.chunk}
