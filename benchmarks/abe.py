"""Suite `abe`: setup / keygen / encrypt / decrypt of every scheme as policies grow, each beside
an estimate from its operation counts x primitive costs (same run; not a lower bound: it leaves
out savings such as fixed-base tables and small exponents, and costs such as decoding and
hashing to curves, so a ratio below 1 means the estimate misses a saving) and Charm's own
schemes; and the
envelope's throughput against raw AES-256-GCM with peak memory.

Policies over N attributes: `and` (AND of N: every row used), `or` (OR of N: one row used) and
`threshold` (N/2 of N: Lagrange coefficients). CP keys hold all N attributes; KP ciphertexts too.
Primitive costs are re-measured before each (scheme, policy) block: this machine is shared, and an
estimate measured minutes away from its timings would compare different machine states.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from abe_health.hazmat.pairing import get_group
from abe_health.hazmat.schemes import SCHEMES, get_scheme
from abe_health.policy import Policy, parse_attributes

from .counting import count_ops, lower_bound_ms
from .peers import PEERS, PUBLISHED_N50, charm_ops
from .primitives import measure_costs
from .report import Report, median_ms

SHAPES = ("and", "or", "threshold")


def policy_text(shape: str, n: int) -> str:
    names = [f"attr{i}" for i in range(n)]
    if shape == "and":
        return " and ".join(names)
    if shape == "or":
        return " or ".join(names)
    return f"{max(1, n // 2)} of ({', '.join(names)})"


def scheme_ops(name: str, shape: str, n: int) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables for setup, keygen, encrypt, decrypt of one configuration."""
    scheme = get_scheme(name, get_group())
    pk, msk = scheme.setup()
    policy = Policy.parse(policy_text(shape, n))
    attrs = parse_attributes([f"attr{i}" for i in range(n)])
    key_subject, ct_target = (attrs, policy) if scheme.policy_in == "ciphertext" else (policy, attrs)
    key = scheme.keygen(pk, msk, key_subject)
    _, ct = scheme.encapsulate(pk, ct_target)
    return {
        "setup": scheme.setup,
        "keygen": lambda: scheme.keygen(pk, msk, key_subject),
        "encrypt": lambda: scheme.encapsulate(pk, ct_target),
        "decrypt": lambda: scheme.decapsulate(key, ct),
    }


def rw15_ops(n: int, authorities: int) -> dict[str, Callable[[], Any]]:
    """RW15 over `authorities` authorities, an AND of n attributes spread round-robin over them."""
    scheme = get_scheme("rw15", get_group())
    auths = {f"auth{j}": scheme.authority_setup(f"auth{j}") for j in range(authorities)}
    own = {name: [f"attr{i}" for i in range(n) if i % authorities == j]
           for j, name in enumerate(auths)}
    policy = Policy.parse(" and ".join(f"{a}@{name}" for name in auths for a in own[name]))
    pks = {name: pk for name, (pk, _) in auths.items()}

    def keygen() -> list:
        return [scheme.keygen(pk, sk, "alice", parse_attributes(own[name]))
                for name, (pk, sk) in auths.items() if own[name]]

    keys = keygen()
    _, ct = scheme.encapsulate(pks, policy)
    return {
        "setup": lambda: scheme.authority_setup("extra"),
        "keygen": keygen,
        "encrypt": lambda: scheme.encapsulate(pks, policy),
        "decrypt": lambda: scheme.decapsulate(keys, ct),
    }


def _row(report: Report, group: Any, costs: dict[str, float], repeat: int, scheme: str, shape: str,
         n: int, op: str, fn: Callable[[], Any]) -> dict[str, Any]:
    ms = median_ms(fn, repeat)
    with count_ops(group) as counts:
        fn()
    bound = lower_bound_ms(counts, costs)
    row = {"scheme": scheme, "policy": shape, "N": n, "op": op, "median_ms": ms,
           "estimate_ms": bound, "ratio_to_estimate": ms / bound if bound else 0.0,
           "counts": dict(counts)}
    report.add(**row)
    return report.rows[-1]


def _rw15(report: Report, quick: bool, ns: list[int], repeat: int, cost_repeat: int) -> None:
    """RW15 over 2 and 5 authorities, beside Charm's MaabeRW15 (BN254) when installed."""
    group = get_group()
    for authorities in (2, 5):
        costs = measure_costs(group, cost_repeat)
        shape = f"and/{authorities} authorities"
        for n in ns:
            if n < authorities:
                continue
            ops = rw15_ops(n, authorities)
            peer = _measure_peer("maabe_rw15", n, repeat, authorities) if n <= (20 if quick else 50) else None
            for op in ("setup", "keygen", "encrypt", "decrypt"):
                if op == "setup" and n != ns[0]:
                    continue
                row = _row(report, group, costs, repeat, "rw15", shape, n, op, ops[op])
                if peer and op in peer:
                    row["charm_ms"] = peer[op]
                    row["speedup_vs_charm"] = peer[op] / row["median_ms"]


def run(quick: bool) -> Report:
    group = get_group()
    ns = [5, 10, 20, 50] if quick else [5, 10, 20, 50, 100]
    repeat = 3 if quick else 11
    cost_repeat = 30 if quick else 100
    report = Report("abe", ["scheme", "policy", "N", "op", "median_ms", "estimate_ms",
                            "ratio_to_estimate", "charm_ms", "speedup_vs_charm"])
    peer_cache: dict[tuple[str, int], dict[str, float] | None] = {}
    for name in sorted(SCHEMES):
        for shape in SHAPES:
            # per block, so that the bound sees the same machine state as the timings beside it
            costs = measure_costs(group, cost_repeat)
            for n in ns if shape == "and" else ns[:3]:
                ops = scheme_ops(name, shape, n)
                for op in ("setup", "keygen", "encrypt", "decrypt"):
                    if op == "setup" and (shape, n) != ("and", ns[0]):
                        continue
                    ms = median_ms(ops[op], repeat)
                    with count_ops(group) as counts:
                        ops[op]()
                    bound = lower_bound_ms(counts, costs)
                    row = {"scheme": name, "policy": shape, "N": n, "op": op, "median_ms": ms,
                           "estimate_ms": bound, "ratio_to_estimate": ms / bound if bound else 0.0,
                           "counts": dict(counts)}
                    peer = PEERS.get(name)
                    if peer and shape == "and" and op != "setup" and n <= (20 if quick else 100):
                        key = (peer, n)
                        if key not in peer_cache:
                            peer_cache[key] = _measure_peer(peer, n, repeat)
                        if peer_cache[key]:
                            row["charm_ms"] = peer_cache[key][op]
                            row["speedup_vs_charm"] = peer_cache[key][op] / ms
                    report.add(**row)
    _rw15(report, quick, ns, repeat, cost_repeat)
    _published_comparison(report)
    report.extra["costs_ms"] = {group.id: measure_costs(group, cost_repeat)}
    report.extra["envelope"] = envelope_rows(quick)
    for row in report.extra["envelope"]:
        report.notes.append(
            f"envelope {row['size'] >> 20} MiB: encrypt {row['encrypt_gbps']:.2f} GB/s in memory "
            f"({row['encrypt_vs_raw']:.2f}x raw AES-GCM), decrypt {row['decrypt_gbps']:.2f} GB/s; "
            f"to disk {row['encrypt_disk_gbps']:.2f} GB/s (raw {row['raw_disk_gbps']:.2f}); "
            f"peak RSS {row['peak_rss_mb']:.0f} MB"
        )
    for op in ("keygen", "encrypt", "decrypt"):
        report.plots.append({"title": f"{op}: AND of N attributes (median ms)", "x": "N", "y": "median_ms",
                             "series": "scheme", "where": {"op": op, "policy": "and"},
                             "file": f"abe_{op}.png", "log": "1"})
        report.plots.append({"title": f"RW15 {op}: AND of N attributes (median ms)", "x": "N",
                             "y": "median_ms", "series": "policy", "where": {"op": op, "scheme": "rw15"},
                             "file": f"rw15_{op}.png", "log": "1"})
    return report


def _measure_peer(peer: str, n: int, repeat: int, authorities: int = 2) -> dict[str, float] | None:
    ops = charm_ops(peer, n, authorities)
    if ops is None:
        return None
    return {op: median_ms(fn, repeat) for op, fn in ops.items()}


def _published_comparison(report: Report) -> None:
    """Ours at N = 50 against the Charm figures in DESIGN.md, for machines without Charm."""
    for row in report.rows:
        peer = PEERS.get(row["scheme"])
        if peer and row["policy"] in ("and", "and/2 authorities") and row["N"] == 50 \
                and row["op"] in PUBLISHED_N50[peer]:
            published = PUBLISHED_N50[peer][row["op"]]
            report.notes.append(
                f"{row['scheme']} {row['op']} N=50: {row['median_ms']:.1f} ms, "
                f"{published / row['median_ms']:.1f}x faster than Charm {peer}'s published {published:.0f} ms"
            )


def envelope_rows(quick: bool) -> list[dict[str, Any]]:
    """Run the envelope child for each size (its own process, so peak RSS is its own)."""
    sizes = [1 << 20, 64 << 20] if quick else [1 << 20, 64 << 20, 1 << 30]
    rows = []
    with tempfile.TemporaryDirectory(prefix="abe-bench-") as tmp:
        for size in sizes:
            out = subprocess.run([sys.executable, "-m", "benchmarks.envelope", str(size), tmp],  # noqa: S603
                                 capture_output=True, text=True, check=True, timeout=1200)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append({
                "size": size, "ok": r["ok"], "peak_rss_mb": r["peak_rss_mb"],
                "encrypt_gbps": size / r["encrypt_mem_s"] / 1e9,
                "decrypt_gbps": size / r["decrypt_mem_s"] / 1e9,
                "raw_gbps": size / r["raw_mem_s"] / 1e9,
                "encrypt_vs_raw": r["raw_mem_s"] / r["encrypt_mem_s"],
                "encrypt_disk_gbps": size / r["encrypt_disk_s"] / 1e9,
                "decrypt_disk_gbps": size / r["decrypt_disk_s"] / 1e9,
                "raw_disk_gbps": size / r["raw_disk_s"] / 1e9,
            })
    return rows
