"""Bulk work on a Dask cluster: encryption, revocation, indexing and key issuance past one machine.

Each operation is a function that takes a `distributed.Client` (your own, or one from
`connect`) and runs as a job: planned into batches in a durable journal, one task per batch on
the cluster, each result committed by this process (the driver, the single writer of every
target: vault catalog, output directory, index manifest, issuance register) and then marked done.
A killed job resumes when run again, encrypting, rewriting or issuing nothing twice and losing
nothing. The operations:

- `encrypt_files`: files of a directory or manifest, under a policy map, into a vault or a
  directory of `.abe` files (one encapsulation per policy per batch);
- `revoke` / `update`: a vault's headers re-encapsulated at new attribute versions;
- `build_index`: a search index built as segments in parallel, then joined under one manifest;
- `issue_keys`: user keys for many holders, recorded in the authority's issuance register.

Trust model (docs/scale.md has the whole statement): the driver and the workers of an
encryption job are the writer's; the workers of `revoke`, `update` and `issue_keys` hold the
authority's master key and see data keys and user keys, so they run inside the authority's
domain, on a cluster it controls. No task argument or result holds a secret: keys are named by
path and fingerprint and read by each worker from a file system the authority shares with it
(`keycache`), and results carry headers, sealed escrows, public register rows and the names of
temporaries. Dask pickles what crosses to workers; keys refuse pickling, so a mistake there
fails loudly instead of leaking. Dask itself is optional (`pip install "abe-health[scale]"`):
importing this package does not import it.
"""

from __future__ import annotations

from .cluster import connect, require_dask
from .encrypt import encrypt_files
from .issue import issue_keys, read_holders
from .revoke import revoke, update
from .runner import BulkReport
from .segments import build_index
from .sources import PolicyMap

__all__ = ["BulkReport", "PolicyMap", "build_index", "connect", "encrypt_files", "issue_keys",
           "read_holders", "require_dask", "revoke", "update"]
