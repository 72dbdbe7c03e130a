"""`abe-health phr encrypt` and `phr decrypt`: personal health records encrypted section by
section under multi-authority policies, every section bound to its record."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..fileio import write_atomic
from ..phr import PolicyMap, encrypt_record, load_record, open_record
from ..phr import record_id as record_id_of
from .common import CliError, authority_keys, check_output_file, note, printable, read_secret_key


@click.group()
def phr() -> None:
    """Encrypt and read personal health records section by section."""


@phr.command("encrypt")
@click.argument("record", type=click.Path(dir_okay=False), metavar="RECORD.json")
@click.option("--policies", "policy_map", required=True, type=click.Path(dir_okay=False),
              metavar="MAP.json", help="JSON policy map: sections, default, emergency sections.")
@click.option("--authority", "authority_paths", multiple=True, type=click.Path(dir_okay=False),
              metavar="NAME.pub", help="An authority's public key (repeatable).")
@click.option("--authorities", "authority_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="A directory of NAME.pub files.")
@click.option("-o", "--out", "out_path", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="The encrypted record (.phr).")
@click.option("--record-id", default=None, metavar="ID",
              help="The record's id, bound into every section (default: random).")
def encrypt(record: str, policy_map: str, authority_paths: tuple[str, ...],
            authority_dir: str | None, out_path: str, record_id: str | None) -> None:
    """Encrypt RECORD.json section by section into a .phr file OUT (version 2: every section is
    bound to the record id and to the record's list of sections)."""
    check_output_file(out_path)
    data = load_record(record)
    pmap = PolicyMap.load(policy_map)
    blob = encrypt_record(data, pmap, authority_keys(authority_paths, authority_dir),
                          record_id=record_id)
    write_atomic(out_path, blob)
    note(f"wrote {out_path}: record {printable(record_id_of(blob))}, {len(data)} sections")


@phr.command("decrypt")
@click.argument("record", type=click.Path(dir_okay=False), metavar="RECORD.phr")
@click.option("-i", "--identity", "key_paths", multiple=True, required=True,
              type=click.Path(dir_okay=False), metavar="KEY",
              help="Your user key (repeat for your keys from several authorities).")
@click.option("-o", "--out", "out_path", default=None, type=click.Path(dir_okay=False, allow_dash=True),
              metavar="OUT", help="The readable sections as JSON (default: stdout).")
@click.option("--expect-id", default=None, metavar="ID", help="Refuse any record but this one.")
def decrypt(record: str, key_paths: tuple[str, ...], out_path: str | None, expect_id: str | None) -> None:
    """Write the sections of RECORD.phr your keys open as JSON; print the record id and list
    the other sections on stderr. A record whose sections were moved, swapped, renamed, added
    or removed is refused."""
    check_output_file(out_path)
    blob = Path(record).read_bytes()
    keys = [read_secret_key(p, "user") for p in key_paths]
    opened = open_record(blob, keys, expect_id)
    visible, closed = opened.visible, opened.closed
    for name, why in closed.items():
        note(f"not readable: {printable(name)}: {printable(why)}")
    if not visible:
        raise CliError(f"none of the {len(closed)} sections opens with these keys")
    # the id is authenticated now: every section that opened was written for it
    note(f"record {printable(opened.record_id)}: {len(visible)} of {len(visible) + len(closed)} "
         "sections readable")
    text = json.dumps(visible, indent=2, ensure_ascii=False) + "\n"
    if out_path in (None, "-"):
        sys.stdout.write(text)
    else:
        write_atomic(out_path, text.encode())
