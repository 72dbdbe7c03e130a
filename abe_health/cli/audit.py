"""`abe-health audit verify` and `audit show`, and the audit trail of local authority actions.

`local_action` appends what an authority did on this machine (setup, keygen, renew, revoke) to
`audit.log` beside its master key and signs a checkpoint after it with the authority's own
Ed25519 key (derived from the master key; `vk` in public.key verifies it):
`abe-health audit verify DIR/audit.log --public-key DIR/public.key`.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from ..cloud.audit import AuditLog, entries, load_verify_key, verify
from ..derived import signing_key
from ..keys import Key
from .common import CliError, printable

LOG_NAME = "audit.log"


def local_action(master_path: str | Path, master: Key, action: str, obj: str,
                 result: str = "ok") -> None:
    """Record an authority action in the log beside its master key, then a signed checkpoint."""
    log = AuditLog(Path(master_path).with_name(LOG_NAME), signing_key(master))
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    log.append(f"local:{user}", action, obj, result)
    log.checkpoint()


@click.group()
def audit() -> None:
    """Check and read hash-chained audit logs (the server's, or an authority's own)."""


@audit.command("verify")
@click.argument("log", type=click.Path(dir_okay=False, exists=True), metavar="LOG")
@click.option("--public-key", "key_path", type=click.Path(dir_okay=False), metavar="K",
              help="Also verify every checkpoint's signature: the server's audit.pub, or an "
                   "authority's public.key for its local log.")
def audit_verify(log: str, key_path: str | None) -> None:
    """Check LOG's hash chain (and checkpoint signatures); name the first altered, deleted or
    reordered entry."""
    key = load_verify_key(key_path) if key_path else None
    verdict = verify(log, key)
    if not verdict.ok:
        raise CliError(f"{log}: line {verdict.line}: {verdict.problem}",
                       f"the {verdict.entries} entries before it are intact")
    signed = (f"; the last signed checkpoint is entry {verdict.checkpoint}"
              if verdict.checkpoint >= 0 else
              "; no checkpoint verified" + ("" if key else " (give --public-key)"))
    click.echo(f"ok: {verdict.entries} entries, chain intact{signed}")


@audit.command("show")
@click.argument("log", type=click.Path(dir_okay=False, exists=True), metavar="LOG")
@click.option("--principal", default=None, metavar="WHO", help="Only entries of this principal "
              "(NAME#ID as the log names it, its name, or its token id).")
@click.option("--object", "obj", default=None, metavar="TEXT",
              help="Only entries whose object contains TEXT.")
@click.option("--since", default=None, metavar="TIME", help="Only entries at or after TIME "
              "(ISO 8601, e.g. 2026-05-01 or 2026-05-01T12:00).")
@click.option("--until", default=None, metavar="TIME", help="Only entries before TIME.")
@click.option("--json", "as_json", is_flag=True, help="One JSON entry per line.")
def audit_show(log: str, principal: str | None, obj: str | None, since: str | None,
               until: str | None, as_json: bool) -> None:
    """List LOG's entries, filtered (run `audit verify` to know whether to trust them)."""

    def keep(entry: dict[str, object]) -> bool:
        who = str(entry["principal"])
        when = str(entry["time"])
        name, _, token_id = who.partition("#")
        return ((principal is None or principal in (who, name, token_id))
                and (obj is None or obj in str(entry["object"]))
                and (since is None or when >= since) and (until is None or when < until))

    for entry in entries(log, keep):
        if as_json:
            click.echo(json.dumps(entry, sort_keys=True))
        else:
            click.echo(printable(f"{entry['seq']:>6} {entry['time']} {entry['principal']} "
                                 f"{entry['action']} {entry['object']} -> {entry['result']} "
                                 f"({entry['bytes']} bytes)"))
