"""The `abe-health` command line: the root group and where each command group is registered.

Commands are plain functions, one module per group: `keys` (setup, keygen, renew, withdraw),
`files` (encrypt, decrypt, inspect), `authority` (multi-authority), `phr`, `fhir`, `vault` (vault and
revoke), `devices` (key blind, transform, precompute), `search` (owner, index, search),
`policy`, `serve` (the cloud server and its tokens), `cloud` (the same work against a server)
and `audit` (hash-chained logs). Each parses,
calls the API and prints; none catches an error to report it. `main` is an `errors.Group`,
whose `main()` is the one place where an exception becomes `error: ...` (+ `hint: ...`) on
stderr and an exit status (`abe_health.cli.errors` lists them). The console script is
`abe-health=abe_health.cli:main`; `python -m abe_health.cli` runs the same.
"""

from __future__ import annotations

import click

from .. import __version__
from . import (
    audit,
    authority,
    bulk,
    cloud,
    collection,
    devices,
    fhir,
    files,
    keys,
    phr,
    policy,
    search,
    serve,
    vault,
)
from .errors import Group

__all__ = ["main"]


@click.group("abe-health", cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abe-health")
def main() -> None:
    """Attribute-based encryption for personal health records.

    Exit status: 0 success, 1 error, 2 usage, 3 policy not satisfied, 4 busy (another writer
    holds the store's lock), 70 internal error (a bug: please report it), 130 interrupted.
    """


@click.command()
def demo() -> None:
    """Walk through what the toolkit does today, on a hospital example."""
    from ..demo import run_demo

    run_demo(click.echo)


#: every top-level command and group, by module
COMMANDS: tuple[click.Command, ...] = (
    keys.setup, keys.keygen, keys.renew, keys.withdraw, files.encrypt, files.decrypt, files.inspect,
    authority.authority, phr.phr, fhir.fhir, vault.vault, vault.revoke, search.owner, search.index,
    search.search, collection.collection, policy.policy, serve.serve, cloud.cloud, audit.audit,
    devices.key, devices.transform, devices.precompute_pool, bulk.bulk, demo,
)
for _command in COMMANDS:
    main.add_command(_command)
