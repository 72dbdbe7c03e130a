"""`abe-health bulk ...`: encryption, revocation, indexing and key issuance on a Dask cluster.

Each command checks its inputs and outputs, connects to a cluster (`--scheduler ADDRESS`, or a
local one of `--workers N` processes), runs the job of `abe_health.bulk` and prints a summary on
stderr. A killed command resumes when run again (its journal is beside its output unless
`--journal` names one). Needs the `scale` extra (dask.distributed).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import bulk as api
from ..bulk.runner import BulkReport
from ..keys import read_key
from .audit import local_action
from .common import (
    CliError,
    check_output_dir,
    check_output_file,
    note,
    passphrase_option,
    printable,
    read_secret_key,
)

F = TypeVar("F", bound=Callable[..., Any])


def cluster_options(command: F) -> F:
    """--scheduler, --workers and --journal, shared by every bulk command."""
    command = click.option("--journal", "journal", type=click.Path(dir_okay=False), default=None,
                           metavar="FILE", help="The job's journal (default: beside the output); "
                                                "running the command again resumes from it.")(command)
    command = click.option("--workers", "workers", type=click.IntRange(min=0), default=None, metavar="N",
                           help="Run on a local cluster of N worker processes (default: one per "
                                "CPU; 0: threads of this process).")(command)
    command = click.option("--scheduler", "scheduler", default=None, metavar="ADDRESS",
                           help="Run on the Dask cluster at ADDRESS (tcp://host:8786) instead.")(command)
    return command


def _prepare(scheduler: str | None, workers: int | None, journal: str | None) -> None:
    """The checks every bulk command makes before any work: Dask installed, one kind of
    cluster, a journal path that can be written."""
    api.require_dask()
    if scheduler is not None and workers is not None:
        raise click.UsageError("give --scheduler ADDRESS or --workers N, not both")
    check_output_file(journal)


def _finish(report: BulkReport, what: str) -> None:
    """Print the summary; every failed item on its own `error:` line, then one refusal."""
    for name, why in report.failed:
        click.echo(f"error: {printable(name)}: {printable(why)}", err=True)
    before = f", {report.resumed} done before" if report.resumed else ""
    note(f"{what}: {report.committed} of {report.items} in {report.tasks} task(s) on "
         f"{report.workers} worker(s), {report.seconds:.1f} s{before}")
    if report.failed:
        raise CliError(f"{len(report.failed)} item(s) failed (listed above); the others were "
                       "committed: run the command again to retry them")


def _directory(path: str | None) -> None:
    """Refuse a path that must be a directory and is not (naming it)."""
    if path is not None and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)


@click.group()
def bulk() -> None:
    """Bulk work on a Dask cluster: encrypt, revoke, update, index, keygen (resumable)."""


@bulk.command("encrypt")
@click.argument("src", type=click.Path(exists=True), metavar="SRC_DIR|MANIFEST")
@click.option("-k", "--public", "public_path", required=True, type=click.Path(dir_okay=False),
              metavar="PUBLIC", help="The authority's public key (pinned for the whole job).")
@click.option("--policy-map", "policy_map", type=click.Path(dir_okay=False), metavar="MAP",
              help="JSON rules giving each file its policy by name (see docs/scale.md).")
@click.option("-p", "--policy", default=None, metavar="POLICY", help="One policy for every file "
                                                                      "(instead of --policy-map).")
@click.option("-o", "--out", "out", required=True, type=click.Path(file_okay=False), metavar="VAULT|DIR",
              help="A vault (files are added to it) or a directory (NAME.abe files are written).")
@cluster_options
def encrypt(src: str, public_path: str, policy_map: str | None, policy: str | None, out: str,
            scheduler: str | None, workers: int | None, journal: str | None) -> None:
    """Encrypt every file of SRC_DIR|MANIFEST (a directory, or a file listing paths) into a vault
    or a directory, each under the policy the map gives it."""
    rules = api.PolicyMap.load(policy_map) if policy_map is not None else None
    if (rules is None) == (policy is None):
        raise click.UsageError("give --policy-map MAP or --policy POLICY (one of them)")
    read_key(public_path, expect="public")
    if not (Path(out) / "catalog.sqlite").is_file():
        check_output_dir(out)
    _prepare(scheduler, workers, journal)
    pmap = rules if rules is not None else api.PolicyMap((), policy)
    with api.connect(scheduler, workers) as client:
        report = api.encrypt_files(client, src, public_path, pmap, out, journal)
    _finish(report, f"encrypted into {out}")


@bulk.command("revoke")
@click.argument("vault", type=click.Path(file_okay=False), metavar="VAULT")
@click.option("--attr", "attr", required=True, metavar="ATTR", help="The attribute to take away.")
@click.option("--user", default=None, metavar="WHO", help="Who loses it (recorded in the audit log only).")
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The vault authority's master.key (workers read it from this "
                                     "path: a file system of the authority's own).")
@passphrase_option
@cluster_options
def revoke(vault: str, attr: str, user: str | None, master_path: str, passphrase_file: str | None,
           scheduler: str | None, workers: int | None, journal: str | None) -> None:
    """Revoke ATTR in VAULT and re-encapsulate every header that mentions it on the cluster."""
    master = read_secret_key(master_path, "master", passphrase_file)
    _directory(vault)
    _prepare(scheduler, workers, journal)
    with api.connect(scheduler, workers) as client:
        report = api.revoke(client, vault, attr, master_path, passphrase_file, journal)
    local_action(master_path, master, "revoke", f"vault {vault} {attr}" + (f" from {user}" if user else ""),
                 "ok" if not report.failed else f"{len(report.failed)} failed")
    _finish(report, f"revoked {attr} in {vault}: {report.extra.get('rewritten', 0)} header(s) rewritten")


@bulk.command("update")
@click.argument("vault", type=click.Path(file_okay=False), metavar="VAULT")
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The vault authority's master.key (read by the workers too).")
@passphrase_option
@cluster_options
def update(vault: str, master_path: str, passphrase_file: str | None, scheduler: str | None,
           workers: int | None, journal: str | None) -> None:
    """Rewrite every header of VAULT that is behind its current versions, on the cluster."""
    read_secret_key(master_path, "master", passphrase_file)
    _directory(vault)
    _prepare(scheduler, workers, journal)
    with api.connect(scheduler, workers) as client:
        report = api.update(client, vault, master_path, passphrase_file, journal)
    _finish(report, f"updated {vault}: {report.extra.get('rewritten', 0)} header(s) rewritten")


@bulk.command("index")
@click.argument("docs", nargs=-1, required=True, type=click.Path(exists=True), metavar="DOC_OR_DIR...")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False), metavar="SEARCH.key",
              help="The search key (index keygen); workers read it from this path.")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="INDEX",
              help="The new index directory (missing or empty; its parent must exist).")
@click.option("--root", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Document ids are paths relative to DIR (default: the current directory).")
@click.option("--segments", type=click.IntRange(min=1, max=4096), default=None, metavar="N",
              help="Build N segments in parallel (default: one per worker).")
@cluster_options
def index(docs: tuple[str, ...], key_path: str, out_dir: str, root: str | None, segments: int | None,
          scheduler: str | None, workers: int | None, journal: str | None) -> None:
    """Index DOC_OR_DIR... into a new INDEX, segments built in parallel; every query is answered
    exactly as after `index build`."""
    from search.keys import SearchKey

    SearchKey.load(key_path)
    _directory(root)
    check_output_dir(out_dir)
    _prepare(scheduler, workers, journal)
    with api.connect(scheduler, workers) as client:
        report = api.build_index(client, list(docs), key_path, out_dir, root, segments, journal)
    _finish(report, f"indexed {report.extra.get('documents', 0)} documents, "
                    f"{report.extra.get('keywords', 0)} keywords into {out_dir} "
                    f"({report.extra.get('segments', 0)} segments)")


@bulk.command("keygen")
@click.option("-m", "--master", "master_path", required=True, type=click.Path(dir_okay=False),
              metavar="MASTER", help="The authority's master.key (its register beside it records "
                                     "every key; workers read the key from this path).")
@click.option("--holders", "holders_path", type=click.Path(dir_okay=False), metavar="FILE",
              help='JSON lines {"holder": NAME, "attributes": [ATTR, ...]}: NAME.key each.')
@click.option("--holder", "holder", multiple=True, metavar="'NAME: ATTR, ...'",
              help="One holder and its attributes (repeatable; instead of --holders).")
@click.option("--vault", "vault", type=click.Path(file_okay=False), default=None, metavar="VAULT",
              help="Issue keys at this vault's current attribute versions (after a revocation).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Where NAME.key files are written (created if missing; its parent must exist).")
@passphrase_option
@cluster_options
def keygen(master_path: str, holders_path: str | None, holder: tuple[str, ...], vault: str | None,
           out_dir: str, passphrase_file: str | None, scheduler: str | None, workers: int | None,
           journal: str | None) -> None:
    """Issue user keys to many holders in parallel, each recorded in the issuance register."""
    people = api.read_holders(holders_path) if holders_path is not None else None
    if (people is None) == (not holder):
        raise click.UsageError("give --holders FILE or --holder 'NAME: ATTR, ...' (one of them)")
    if people is None:
        people = [_holder(text) for text in holder]
    read_secret_key(master_path, "master", passphrase_file)
    _directory(vault)
    check_output_dir(out_dir)
    _prepare(scheduler, workers, journal)
    with api.connect(scheduler, workers) as client:
        report = api.issue_keys(client, master_path, people, out_dir, vault, passphrase_file, journal)
    _finish(report, f"issued keys into {out_dir}")


def _holder(text: str) -> dict[str, Any]:
    name, sep, attrs = text.partition(":")
    parts = [a.strip() for a in attrs.split(",") if a.strip()]
    if not sep or not api.issue.HOLDER.match(name.strip()) or not parts:
        raise click.UsageError(f"--holder {text!r}: expected 'NAME: ATTR, ATTR, ...'")
    return {"name": name.strip(), "attributes": parts}
