"""Suite `revocation`: the cost of revoking one attribute from one user, as affected files,
file size and holders grow; header re-encapsulation in the vault beside the naive baseline
(decrypt and re-encrypt every affected file in full), and expiry renewal per period.

Rotation (`revoke(rotate=True)`: every affected body re-encrypted under a fresh data key, so a
data key the revoked reader kept stops working) is measured beside them. All methods re-key
the holders who keep the attribute (one key each), so holders are measured
once and reported for both; what differs is the work on stored files (time, bytes written, and
group operations: pairings, exponentiations and hashes, counted). Caveat: the baseline writes
each file atomically with its own fsync, as `vault add` does; the vault batches one sync per
256 headers, an optimisation a baseline could share (the bytes written would not change).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from abe_health import PolicyRecipient, decrypt, encrypt
from abe_health.authority import CPABE
from abe_health.fileio import atomic_output
from abe_health.hazmat.envelope import read_header
from abe_health.hazmat.subjects import key_attributes_of_labels
from abe_health.keys import Key
from abe_health.policy import Policy
from abe_health.revocation import Vault
from abe_health.revocation.manifest import AuthorityState
from abe_health.revocation.vault import _Chain, _HeadSplitter, file_context
from abe_health.revocation.versions import apply_versions

from .counting import count_ops
from .envelope import PatternReader
from .report import Report

POLICY = "(doctor and cardiology) or nurse"


def naive_revoke(vault: Vault, ids: list[str], authority: CPABE) -> tuple[float, int]:
    """The baseline: decrypt every affected file and encrypt it again under the new policy."""
    start, written = time.perf_counter(), 0
    manifest = vault.manifest(authority.public_key)
    openers: dict[str, object] = {}
    for file_id in ids:
        row = vault.catalog.row(file_id)
        target = str(apply_versions(authority.policy(row.policy), dict(manifest.versions)))
        head, body = vault._head(file_id), vault._body(file_id)
        context = file_context(manifest.vault, file_id, row.gen)
        with open(head, "rb") as h:
            old_policy = read_header(h).ciphertext.meta["policy"]
        if old_policy not in openers:  # a key for the old header, derived by the authority
            labels = Policy.parse(old_policy, internal=True).attributes
            openers[old_policy] = authority.public_key.scheme.keygen(
                authority.public_key.record, authority.master_key.record, key_attributes_of_labels(labels))
        opener = Key(authority.public_key.scheme, openers[old_policy])
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as plain:
            with open(head, "rb") as h, open(body, "rb") as b:
                decrypt(_Chain(h, b), plain, opener, context=context)
            plain.seek(0)
            with atomic_output(body) as out:
                tee = _HeadSplitter(out)
                policy = Policy.parse(target, authority.widths, internal=True)
                encrypt(plain, tee, PolicyRecipient(authority.public_key, policy), context=context)
                written += tee.body_bytes
            with atomic_output(head) as out:
                out.write(tee.head)
                written += len(tee.head)
    return time.perf_counter() - start, written


def _vault(root: Path, name: str, authority: CPABE, files: int, size: int) -> tuple[Vault, list[str]]:
    vault = Vault(root / name, create_for=authority, state=AuthorityState(root / f"{name}.state"))
    ids = [vault.add(PatternReader(size), POLICY, authority) for _ in range(files)]
    return vault, ids


def run(quick: bool) -> Report:
    report = Report("revocation", ["experiment", "files", "file_bytes", "holders", "method", "seconds",
                                   "bytes_written", "group_ops", "per_file_ms", "speedup", "bytes_ratio"])
    authority = CPABE.setup()
    group = authority.public_key.scheme.group
    file_counts = [10, 100] if quick else [10, 100, 1000, 10000]
    sizes = [1 << 10, 1 << 20] if quick else [1 << 10, 1 << 20, 100 << 20]
    holders = [10, 100] if quick else [10, 100, 1000, 10000]
    users = [10, 100] if quick else [10, 100, 1000]
    with tempfile.TemporaryDirectory(prefix="revocation-bench-") as tmp:
        root = Path(tmp)
        sweeps = [("affected files", f, 1 << 20) for f in file_counts] + \
                 [("file size", 10, s) for s in sizes]
        for n, (experiment, files, size) in enumerate(sweeps):
            vault, ids = _vault(root, f"v{n}", authority, files, size)
            with count_ops(group) as ours_ops:
                ours = vault.revoke("doctor", authority)
            with count_ops(group) as rotate_ops:
                rotated = vault.revoke("doctor", authority, rotate=True)
            vault.revoke("doctor", authority, lazy=True)  # the naive run re-encrypts for the same bump
            with count_ops(group) as naive_ops:
                naive_s, naive_bytes = naive_revoke(vault, ids, authority)
            report.add(experiment=experiment, files=files, file_bytes=size, method="header re-encapsulation",
                       seconds=ours.seconds, bytes_written=ours.bytes_written,
                       per_file_ms=1e3 * ours.seconds / files, speedup=naive_s / ours.seconds,
                       bytes_ratio=naive_bytes / max(1, ours.bytes_written),
                       group_ops=sum(ours_ops.values()), ops=dict(ours_ops))
            report.add(experiment=experiment, files=files, file_bytes=size,
                       method="re-encapsulation + body rotation", seconds=rotated.seconds,
                       bytes_written=rotated.bytes_written, per_file_ms=1e3 * rotated.seconds / files,
                       speedup=naive_s / rotated.seconds, group_ops=sum(rotate_ops.values()),
                       bytes_ratio=naive_bytes / max(1, rotated.bytes_written), ops=dict(rotate_ops))
            report.add(experiment=experiment, files=files, file_bytes=size, method="naive re-encryption",
                       seconds=naive_s, bytes_written=naive_bytes, per_file_ms=1e3 * naive_s / files,
                       group_ops=sum(naive_ops.values()), ops=dict(naive_ops))
            vault.close()
            for name in ("files",):
                for f in (root / f"v{n}" / name).iterdir():
                    f.unlink()
        for h in holders:  # re-keying the holders who keep the attribute (both methods)
            start = time.perf_counter()
            for _ in range(h - 1):
                authority.keygen(["doctor", "cardiology", "ward = 3", "staff", "hospitalA"])
            report.add(experiment="holders re-keyed", holders=h, method="both",
                       seconds=time.perf_counter() - start)
        until = (dt.date.today() + dt.timedelta(30)).isoformat()
        for u in users:  # expiry: renewing U users' keys for the next period
            start = time.perf_counter()
            for _ in range(u):
                authority.keygen(["nurse", "ward = 3", f"valid_until = {until}"])
            report.add(experiment="expiry renewal per period", holders=u, method="renew",
                       seconds=time.perf_counter() - start)
    report.plots.append({"title": "revocation time vs affected files (1 MiB each)", "x": "files",
                         "y": "seconds", "series": "method", "where": {"experiment": "affected files"},
                         "file": "revocation_files.png", "log": "1"})
    report.plots.append({"title": "bytes written vs affected files", "x": "files", "y": "bytes_written",
                         "series": "method", "where": {"experiment": "affected files"},
                         "file": "revocation_bytes.png", "log": "1"})
    report.plots.append({"title": "revocation time vs file size (10 files)", "x": "file_bytes",
                         "y": "seconds", "series": "method", "where": {"experiment": "file size"},
                         "file": "revocation_size.png", "log": "1"})
    return report
