"""Suite `abe`: every scheme as a KEM and end to end, beside Charm's own schemes when installed.

Rows, each labelled with its curve (and the peer's curve) so that like is compared with like:
- **KEM** rows (`op` keygen / encrypt / decrypt): the scheme alone, warm (attribute hashes cached,
  as in a long-running process) and, for keygen and encrypt, **cold** (`cold_ms`: the scheme's
  hash-to-group cache emptied before every call, as in a fresh CLI process). Each has an
  `estimate_ms` from its operation counts x primitive costs (counting.py: not a lower bound).
- **End-to-end** rows (`op` "... e2e"): the public API, bytes in and bytes out: `decrypt(blob,
  None, key)` parses the `.abe` header (decoding and validating every element), decapsulates,
  unwraps and opens the payload; `encrypt(data, None, recipient)` and keygen with the key's bytes.
  Decrypt rows give `pairing_times`: the decryption's time over one pairing's, measured side by
  side (alternating calls, median of the per-round ratios: the machine is shared and noisy), and
  `floor_pairings`, the pairings the scheme computes, so `ratio_to_floor` says how far from its
  own pairing floor a decryption is; `header_bytes` is the file's header (magic, length, core,
  key wrap), which FAME's uncompressed G1 points make larger (docs/speed.md). These are the
  figures the README quotes.
- Charm's peer of each row (peers.py) is "measured live" when Charm is installed; otherwise the
  suite says so in its notes and prints the published figures, labelled as published, beside the
  KEM rows at N = 50 only. With Charm, a **same-curve** row runs our FAME on our Charm backend
  (BN254) beside Charm's AC17 on BN254: the algorithmic part of the ratio without the library's.

Policies over N attributes: `and` (AND of N: every row used), `or` (OR of N: one row used) and
`threshold` (N/2 of N: Lagrange coefficients). CP keys hold all N attributes; KP ciphertexts too.
Primitive costs are re-measured before each block (the machine is shared). The envelope's
throughput against raw AES-256-GCM, with peak memory, closes the suite.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from abe_health import (
    CPABE,
    KPABE,
    AttributesRecipient,
    Authority,
    MultiAuthorityRecipient,
    PolicyRecipient,
    decrypt,
    encrypt,
)
from abe_health.hazmat.pairing import PairingGroup, available_backends, get_group
from abe_health.hazmat.schemes import SCHEMES, get_scheme
from abe_health.policy import Policy, parse_attributes

from .counting import count_ops, estimate_ms
from .peers import (
    LIVE,
    PEER_CURVE,
    PEERS,
    PUBLISHED_N50,
    PUBLISHED_SOURCE,
    charm_available,
    charm_ops,
    charm_version,
    curve_label,
)
from .primitives import measure_costs
from .report import Report, median_ms

SHAPES = ("and", "or", "threshold")
OURS = "BLS12-381"
COLUMNS = ["scheme", "curve", "policy", "N", "op", "median_ms", "cold_ms", "pairing_times",
           "floor_pairings", "ratio_to_floor", "header_bytes", "estimate_ms", "ratio_to_estimate", "peer",
           "peer_curve", "peer_source", "charm_ms", "speedup_vs_charm"]
PAYLOAD = b'{"patient": "P-17", "bp": "120/80"}'


def policy_text(shape: str, n: int) -> str:
    names = [f"attr{i}" for i in range(n)]
    if shape == "and":
        return " and ".join(names)
    if shape == "or":
        return " or ".join(names)
    return f"{max(1, n // 2)} of ({', '.join(names)})"


def _cold(scheme: Any, fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn with the scheme's hash-to-group cache emptied first (a fresh process's state)."""
    def run() -> Any:
        scheme._hash_cache.clear()
        return fn()

    return run


def scheme_ops(name: str, shape: str, n: int, group: PairingGroup | None = None
               ) -> dict[str, Callable[[], Any]]:
    """Zero-argument callables for setup, keygen, encrypt, decrypt of one configuration, and
    keygen_cold / encrypt_cold with an empty hash cache."""
    scheme = get_scheme(name, group or get_group())
    pk, msk = scheme.setup()
    policy = Policy.parse(policy_text(shape, n))
    attrs = parse_attributes([f"attr{i}" for i in range(n)])
    key_subject, ct_target = (attrs, policy) if scheme.policy_in == "ciphertext" else (policy, attrs)
    key = scheme.keygen(pk, msk, key_subject)
    _, ct = scheme.encapsulate(pk, ct_target)
    ops: dict[str, Callable[[], Any]] = {
        "setup": scheme.setup,
        "keygen": lambda: scheme.keygen(pk, msk, key_subject),
        "encrypt": lambda: scheme.encapsulate(pk, ct_target),
        "decrypt": lambda: scheme.decapsulate(key, ct),
    }
    ops["keygen_cold"] = _cold(scheme, ops["keygen"])
    ops["encrypt_cold"] = _cold(scheme, ops["encrypt"])
    return ops


def rw15_ops(n: int, authorities: int) -> dict[str, Callable[[], Any]]:
    """RW15 over `authorities` authorities, an AND of n attributes spread round-robin over them."""
    scheme = get_scheme("rw15", get_group())
    auths = {f"auth{j}": scheme.authority_setup(f"auth{j}") for j in range(authorities)}
    own = {name: [f"attr{i}" for i in range(n) if i % authorities == j]
           for j, name in enumerate(auths)}
    policy = Policy.parse(" and ".join(f"{a}@{name}" for name in auths for a in own[name]))
    pks = {name: pk for name, (pk, _) in auths.items()}

    def keygen() -> list[Any]:
        return [scheme.keygen(pk, sk, "alice", parse_attributes(own[name]))
                for name, (pk, sk) in auths.items() if own[name]]

    keys = keygen()
    _, ct = scheme.encapsulate(pks, policy)
    ops: dict[str, Callable[[], Any]] = {
        "setup": lambda: scheme.authority_setup("extra"),
        "keygen": keygen,
        "encrypt": lambda: scheme.encapsulate(pks, policy),
        "decrypt": lambda: scheme.decapsulate(keys, ct),
    }
    ops["keygen_cold"] = _cold(scheme, keygen)
    ops["encrypt_cold"] = _cold(scheme, ops["encrypt"])
    return ops


# -- end to end ---------------------------------------------------------------------------------

def e2e_setup(name: str, n: int, authorities: int = 2, backend: str = "mcl"
              ) -> dict[str, Callable[[], Any]]:
    """Through the public API, an AND of n attributes: keygen (with the key's bytes), encrypt
    (bytes out), decrypt (an `.abe` file's bytes in, plaintext out)."""
    names = [f"attr{i}" for i in range(n)]
    if name == "rw15":
        auths = [Authority.setup(f"auth{j}", backend=backend) for j in range(authorities)]
        own = [[a for i, a in enumerate(names) if i % authorities == j] for j in range(authorities)]
        text = " and ".join(f"{a}@{auth.name}" for auth, mine in zip(auths, own, strict=True)
                            for a in mine)
        recipient: Any = MultiAuthorityRecipient(text, [a.public_key for a in auths])

        def keygen() -> list[bytes]:
            return [auth.keygen("alice", mine).to_bytes()
                    for auth, mine in zip(auths, own, strict=True) if mine]

        keys = [auth.keygen("alice", mine) for auth, mine in zip(auths, own, strict=True) if mine]
    elif name == "fame-kp":
        kp = KPABE.setup(backend=backend)
        recipient = AttributesRecipient(kp.public_key, names)
        keys = [kp.keygen(policy=" and ".join(names))]

        def keygen() -> list[bytes]:
            return [kp.keygen(policy=" and ".join(names)).to_bytes()]
    else:
        cp = CPABE.setup(scheme=name, backend=backend)
        recipient = PolicyRecipient(cp.public_key, " and ".join(names))
        keys = [cp.keygen(names)]

        def keygen() -> list[bytes]:
            return [cp.keygen(names).to_bytes()]

    blob = encrypt(PAYLOAD, None, recipient)
    header = 8 + int.from_bytes(blob[4:8], "big") + 92  # magic, length, core, key wrap
    return {"keygen": keygen, "encrypt": lambda: encrypt(PAYLOAD, None, recipient),
            "decrypt": lambda: decrypt(blob, None, *keys), "header_bytes": lambda: header}


def in_pairings(fn: Callable[[], Any], group: PairingGroup, rounds: int) -> tuple[float, float, float]:
    """(median ms of fn, median ms of one pairing, median of the per-round ratios), fn and a block
    of 8 pairings alternating round by round so that both see the same machine state."""
    a, b = group.random("G1"), group.random("G2")
    fn()
    group.pair(a, b)
    times, pairs, ratios = [], [], []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        t = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(8):
            group.pair(a, b)
        p = (time.perf_counter() - start) / 8
        times.append(t)
        pairs.append(p)
        ratios.append(t / p)
    return statistics.median(times) * 1e3, statistics.median(pairs) * 1e3, statistics.median(ratios)


def _floor(group: PairingGroup, fn: Callable[[], Any]) -> tuple[int, dict[str, int]]:
    """Pairings (Miller loops) the call computes, and all its counted operations."""
    with count_ops(group, decodes=True) as counts:
        fn()
    return counts["pair"] + counts["miller_loop"], dict(counts)


def _e2e_rows(report: Report, quick: bool, rounds: int) -> None:
    group = get_group()
    ns = [10, 50] if quick else [10, 50, 100]
    configs: list[tuple[str, str, int]] = [(s, "and", 2) for s in ("fame", "fame-kp", "bsw07", "waters11")]
    configs += [("rw15", f"and/{k} authorities", k) for k in (2, 5)]
    for name, shape, authorities in configs:
        costs = measure_costs(group, 20 if quick else 60)
        for n in ns:
            ops = e2e_setup(name, n, authorities)
            floor, counts = _floor(group, ops["decrypt"])
            ms, pair_ms, times = in_pairings(ops["decrypt"], group, rounds)
            est = estimate_ms(counts, costs)
            row = {"scheme": name, "curve": OURS, "policy": shape, "N": n, "op": "decrypt e2e",
                   "series": name if name != "rw15" else f"rw15, {shape.split('/')[1]}",
                   "median_ms": ms, "pairing_ms": pair_ms, "pairing_times": times,
                   "floor_pairings": floor, "ratio_to_floor": times / floor if floor else 0.0,
                   "header_bytes": ops["header_bytes"](),
                   "estimate_ms": est, "ratio_to_estimate": ms / est if est else 0.0,
                   "counts": counts}
            _peer_e2e(row, name, n, authorities, rounds, "decrypt", quick)
            report.add(**row)
            for op in ("keygen", "encrypt"):
                ms = median_ms(ops[op], max(3, rounds // 3))
                row = {"scheme": name, "curve": OURS, "policy": shape, "N": n, "op": f"{op} e2e",
                       "median_ms": ms}
                _peer_e2e(row, name, n, authorities, rounds, op, quick)
                report.add(**row)


_PEER_CACHE: dict[tuple[str, int, int], dict[str, Callable[[], Any]] | None] = {}


def _peer(peer: str, n: int, authorities: int) -> dict[str, Callable[[], Any]] | None:
    key = (peer, n, authorities)
    if key not in _PEER_CACHE:
        _PEER_CACHE[key] = charm_ops(peer, n, authorities)
    return _PEER_CACHE[key]


def _peer_e2e(row: dict[str, Any], name: str, n: int, authorities: int, rounds: int, op: str,
              quick: bool) -> None:
    peers = PEERS.get(name)
    if not peers or (quick and n > 10) or not charm_available():
        return
    ops = _peer(peers[0], n, authorities)
    if ops is None:
        return
    fn = ops["decrypt_e2e"] if op == "decrypt" else ops[op]
    theirs = median_ms(fn, max(3, rounds // 3))
    row.update(peer=peers[0], peer_curve=PEER_CURVE[peers[0]], peer_source=LIVE, charm_ms=theirs,
               speedup_vs_charm=theirs / row["median_ms"])


# -- KEM level ----------------------------------------------------------------------------------

def _kem_row(report: Report, group: PairingGroup, costs: dict[str, float], repeat: int, scheme: str,
             shape: str, n: int, op: str, ops: dict[str, Callable[[], Any]],
             peer: tuple[str, dict[str, float]] | None) -> None:
    ms = median_ms(ops[op], repeat)
    with count_ops(group) as counts:
        ops[op]()
    est = estimate_ms(counts, costs)
    row: dict[str, Any] = {"scheme": scheme, "curve": group.curve, "policy": shape, "N": n, "op": op,
                           "median_ms": ms, "estimate_ms": est,
                           "ratio_to_estimate": ms / est if est else 0.0, "counts": dict(counts)}
    if op in ("keygen", "encrypt"):
        row["cold_ms"] = median_ms(ops[f"{op}_cold"], repeat)
    if peer and op in peer[1]:
        row.update(peer=peer[0], peer_curve=PEER_CURVE[peer[0]], peer_source=LIVE,
                   charm_ms=peer[1][op], speedup_vs_charm=peer[1][op] / ms)
    report.add(**row)


def _measure_peer(peer: str, n: int, repeat: int, authorities: int = 2) -> dict[str, float] | None:
    ops = _peer(peer, n, authorities)
    if ops is None:
        return None
    return {op: median_ms(fn, repeat) for op, fn in ops.items()}


def _kem_rows(report: Report, quick: bool, ns: list[int], repeat: int, cost_repeat: int) -> None:
    group = get_group()
    for name in sorted(SCHEMES):
        for shape in SHAPES:
            costs = measure_costs(group, cost_repeat)  # per block: the same machine state
            for n in ns if shape == "and" else ns[:3]:
                ops = scheme_ops(name, shape, n)
                peers = PEERS.get(name)
                peer = None
                if peers and shape == "and" and n <= (20 if quick else 100):
                    measured = _measure_peer(peers[0], n, repeat)
                    peer = (peers[0], measured) if measured else None
                for op in ("setup", "keygen", "encrypt", "decrypt"):
                    if op == "setup" and (shape, n) != ("and", ns[0]):
                        continue
                    _kem_row(report, group, costs, repeat, name, shape, n, op, ops, peer)
    for authorities in (2, 5):
        costs = measure_costs(group, cost_repeat)
        shape = f"and/{authorities} authorities"
        for n in ns:
            if n < authorities:
                continue
            ops = rw15_ops(n, authorities)
            measured = _measure_peer("maabe_rw15", n, repeat, authorities) \
                if n <= (20 if quick else 50) else None
            for op in ("setup", "keygen", "encrypt", "decrypt"):
                if op == "setup" and n != ns[0]:
                    continue
                _kem_row(report, group, costs, repeat, "rw15", shape, n, op, ops,
                         ("maabe_rw15", measured) if measured else None)


def _same_curve(report: Report, quick: bool, repeat: int, rounds: int) -> None:
    """Ours on the Charm backend (BN254) beside Charm's AC17 on BN254: same curve, same library."""
    if "charm" not in available_backends():
        return
    charm_group = get_group("charm", "BN254")
    for n in [10] if quick else [10, 50]:
        ours = scheme_ops("fame", "and", n, charm_group)
        theirs = _measure_peer("ac17", n, repeat)
        e2e = e2e_setup("fame", n, backend="charm")
        for op in ("keygen", "encrypt", "decrypt"):
            ms = median_ms(ours[op], repeat)
            row: dict[str, Any] = {"scheme": "fame (charm backend)", "curve": "BN254", "policy": "and",
                                   "N": n, "op": op, "median_ms": ms}
            if theirs:
                row.update(peer="ac17", peer_curve="BN254", peer_source=LIVE, charm_ms=theirs[op],
                           speedup_vs_charm=theirs[op] / ms)
            report.add(**row)
        ms, _pair_ms, times = in_pairings(e2e["decrypt"], charm_group, max(3, rounds // 3))
        row = {"scheme": "fame (charm backend)", "curve": "BN254", "policy": "and", "N": n,
               "op": "decrypt e2e", "median_ms": ms, "pairing_times": times}
        if theirs:
            row.update(peer="ac17", peer_curve="BN254", peer_source=LIVE,
                       charm_ms=theirs["decrypt_e2e"], speedup_vs_charm=theirs["decrypt_e2e"] / ms)
        report.add(**row)


def _peer_notes(report: Report) -> None:
    """Say where the peers' figures come from; published ones only when Charm did not run."""
    live = {row["peer"] for row in report.rows if row.get("peer_source") == LIVE}
    if not charm_available():
        report.notes.append(
            "Charm is not installed here: its live rows are skipped, and so is the same-curve "
            "comparison (install the peers with `bash benchmarks/install_peers.sh`)")
    else:
        report.notes.append(f"Charm {charm_version()} ran live in this process tree (its symmetric "
                            "SS512 peers run in `python -m benchmarks compare`)")
        return  # no published figure beside live ones
    for row in report.rows:
        peers = PEERS.get(row["scheme"], [])
        peer = next((p for p in peers if p in PUBLISHED_N50), None)
        if peer is None or peer in live or row["N"] != 50 or row["op"] not in PUBLISHED_N50[peer] \
                or row["policy"] not in ("and", "and/2 authorities"):
            continue
        published = PUBLISHED_N50[peer][row["op"]]
        report.notes.append(
            f"{row['scheme']} {row['op']} N=50 (KEM, {curve_label(OURS)}): {row['median_ms']:.1f} ms, "
            f"{published / row['median_ms']:.1f}x faster than Charm {peer} on "
            f"{curve_label(PEER_CURVE[peer])}: {published:.0f} ms, {PUBLISHED_SOURCE}, not measured "
            "in this run")


def _e2e_notes(report: Report) -> None:
    for row in report.rows:
        if row["op"] == "decrypt e2e" and row["curve"] == OURS:
            report.notes.append(
                f"{row['scheme']} {row['policy']} N={row['N']}: end-to-end decrypt "
                f"{row['median_ms']:.2f} ms = {row['pairing_times']:.1f} pairing-times "
                f"(one pairing {row['pairing_ms']:.3f} ms side by side); the scheme computes "
                f"{row['floor_pairings']} pairings: {row['ratio_to_floor']:.2f}x its pairing floor; "
                f"header {row['header_bytes']:,} bytes")
    for row in report.rows:
        if row.get("cold_ms") and row["N"] == 50 and row["policy"] in ("and", "and/2 authorities"):
            report.notes.append(f"{row['scheme']} {row['op']} N=50: cold {row['cold_ms']:.1f} ms "
                                f"(empty hash cache, as a fresh CLI process), warm "
                                f"{row['median_ms']:.1f} ms")


def run(quick: bool) -> Report:
    group = get_group()
    ns = [5, 10, 20, 50] if quick else [5, 10, 20, 50, 100]
    repeat = 3 if quick else 11
    rounds = 9 if quick else 31
    cost_repeat = 30 if quick else 100
    report = Report("abe", COLUMNS)
    _e2e_rows(report, quick, rounds)
    _kem_rows(report, quick, ns, repeat, cost_repeat)
    _same_curve(report, quick, repeat, rounds)
    _peer_notes(report)
    _e2e_notes(report)
    report.extra["curves"] = {c: curve_label(c) for c in ("BLS12-381", "BN254", "SS512")}
    report.extra["charm"] = charm_version()
    report.extra["costs_ms"] = {group.id: measure_costs(group, cost_repeat)}
    report.extra["envelope"] = envelope_rows(quick)
    for row in report.extra["envelope"]:
        report.notes.append(
            f"envelope {row['size'] >> 20} MiB: encrypt {row['encrypt_gbps']:.2f} GB/s in memory "
            f"({row['encrypt_vs_raw']:.2f}x raw AES-GCM), decrypt {row['decrypt_gbps']:.2f} GB/s; "
            f"to disk {row['encrypt_disk_gbps']:.2f} GB/s (raw {row['raw_disk_gbps']:.2f}); "
            f"peak RSS {row['peak_rss_mb']:.0f} MB"
        )
    report.plots.append({"title": "end-to-end decrypt, AND of N (pairing-times, BLS12-381)", "x": "N",
                         "y": "pairing_times", "series": "series", "where": {"op": "decrypt e2e",
                                                                              "curve": OURS},
                         "file": "abe_decrypt_e2e.png", "logy": "1", "xlabel": "N (attributes)",
                         "ylabel": "decryption time / one pairing's time (log)"})
    for op in ("keygen", "encrypt", "decrypt"):
        report.plots.append({"title": f"{op} (KEM): AND of N attributes (median ms)", "x": "N",
                             "y": "median_ms", "series": "scheme",
                             "where": {"op": op, "policy": "and", "curve": OURS},
                             "file": f"abe_{op}.png", "log": "1", "xlabel": "N (attributes)",
                             "ylabel": "median ms (log)"})
        report.plots.append({"title": f"RW15 {op} (KEM): AND of N attributes (median ms)", "x": "N",
                             "y": "median_ms", "series": "policy", "where": {"op": op, "scheme": "rw15"},
                             "file": f"rw15_{op}.png", "log": "1", "xlabel": "N (attributes)",
                             "ylabel": "median ms (log)"})
    return report


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
