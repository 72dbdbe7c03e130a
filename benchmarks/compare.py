"""Suite `compare`: ours and Charm's schemes side by side, in one process tree, one command:
`python -m benchmarks compare [--quick]` writes results.json, results.md and compare.png.

Every row names who ran (ours on mcl, ours on our Charm backend, Charm itself), the curve with
its kind and security level, the level (`kem`: the scheme alone on in-memory objects; `e2e`: bytes
in, bytes out through the public API, or Charm with every group element decoded from bytes) and
the source: "measured live" for everything this run timed, or "published (...)" for the figures
of ../shared/DESIGN.md, which appear only for peers that did not run here. The notes give each
headline ratio at both levels, and the end-to-end one first: that is the one to quote.

When Charm is not installed, the suite says so at the top of its notes and skips Charm's rows
and the same-curve comparison (ours on the Charm backend beside Charm's AC17, both on BN254:
the algorithmic part of the ratio, without the mcl-versus-PBC library gap).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from abe_health.hazmat.pairing import available_backends, get_group

from .abe import e2e_setup, in_pairings, rw15_ops, scheme_ops
from .peers import (
    CURVES,
    LIVE,
    PEER_CURVE,
    PEERS,
    PUBLISHED_N50,
    PUBLISHED_SOURCE,
    charm_available,
    charm_ops,
    charm_version,
)
from .report import Report, median_ms

OPS = ("keygen", "encrypt", "decrypt")
COLUMNS = ["scheme", "who", "curve", "security", "N", "op", "level", "median_ms", "pairing_times",
           "source"]


def _row(report: Report, scheme: str, who: str, curve: str, n: int, op: str, level: str, ms: float,
         source: str = LIVE, **extra: Any) -> None:
    report.add(scheme=scheme, who=who, curve=curve, security=CURVES[curve][1], N=n, op=op,
               level=level, median_ms=ms, source=source, label=f"{scheme} {op}",
               series=f"{who}, {curve}" + ("" if source == LIVE else " (published)"), **extra)


def _ours(report: Report, scheme: str, n: int, repeat: int, authorities: int = 2) -> None:
    group = get_group()
    kem: dict[str, Callable[[], Any]]
    if scheme == "rw15":
        kem = rw15_ops(n, authorities)
    else:
        kem = scheme_ops(scheme, "and", n)
    e2e = e2e_setup(scheme, n, authorities)
    for op in OPS:
        _row(report, scheme, "abe-health (mcl)", "BLS12-381", n, op, "kem", median_ms(kem[op], repeat))
        if op == "decrypt":
            ms, _pair, times = in_pairings(e2e[op], group, repeat)
            _row(report, scheme, "abe-health (mcl)", "BLS12-381", n, op, "e2e", ms, pairing_times=times)
        else:
            _row(report, scheme, "abe-health (mcl)", "BLS12-381", n, op, "e2e", median_ms(e2e[op], repeat))


def _charm(report: Report, scheme: str, n: int, repeat: int, authorities: int = 2) -> None:
    for peer in PEERS.get(scheme, []):
        ops = charm_ops(peer, n, authorities)
        if ops is None:
            return
        who = f"Charm {peer}"
        for op in OPS:
            _row(report, scheme, who, PEER_CURVE[peer], n, op, "kem", median_ms(ops[op], repeat))
        _row(report, scheme, who, PEER_CURVE[peer], n, "decrypt", "e2e",
             median_ms(ops["decrypt_e2e"], repeat))


def _same_curve(report: Report, n: int, repeat: int) -> None:
    group = get_group("charm", "BN254")
    kem = scheme_ops("fame", "and", n, group)
    e2e = e2e_setup("fame", n, backend="charm")
    for op in OPS:
        _row(report, "fame", "abe-health (charm backend)", "BN254", n, op, "kem", median_ms(kem[op], repeat))
    _row(report, "fame", "abe-health (charm backend)", "BN254", n, "decrypt", "e2e",
         median_ms(e2e["decrypt"], repeat))


def _published(report: Report) -> None:
    for scheme, peers in PEERS.items():
        for peer in peers:
            for op, ms in PUBLISHED_N50.get(peer, {}).items():
                _row(report, scheme, f"Charm {peer}", PEER_CURVE[peer], 50, op, "kem", ms,
                     source=PUBLISHED_SOURCE)


def _ratios(report: Report) -> None:
    """Headline ratios, each with its end-to-end twin, from rows of the same N."""
    def find(scheme: str, who: str, n: int, op: str, level: str) -> dict[str, Any] | None:
        return next((r for r in report.rows if (r["scheme"], r["who"], r["N"], r["op"], r["level"])
                     == (scheme, who, n, op, level)), None)

    for row in list(report.rows):
        if not row["who"].startswith("Charm"):
            continue
        ours_who = "abe-health (charm backend)" if row["curve"] == "BN254" and \
            find(row["scheme"], "abe-health (charm backend)", row["N"], row["op"], row["level"]) \
            and row["who"] == "Charm ac17" else None
        for who in filter(None, ("abe-health (mcl)", ours_who)):
            ours = find(row["scheme"], who, row["N"], row["op"], row["level"])
            if ours is None:
                continue
            ratio = row["median_ms"] / ours["median_ms"]
            words = f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"
            report.notes.append(
                f"{row['scheme']} {row['op']} N={row['N']} ({row['level']}): {who} on {ours['curve']} "
                f"{ours['median_ms']:.2f} ms vs {row['who']} on {row['curve']} {row['median_ms']:.2f} ms "
                f"({row['source']}): {words}")


def run(quick: bool) -> Report:
    repeat = 3 if quick else 9
    ns = [10] if quick else [10, 50]
    report = Report("compare", COLUMNS)
    live = charm_available()
    report.notes.append(
        f"Charm {charm_version()} ran live here" if live else
        "Charm is not installed here: its rows are skipped and only its published figures (N = 50, "
        "KEM level, labelled) are shown; the same-curve comparison is skipped too (install the "
        "peers with `bash benchmarks/install_peers.sh`)")
    for n in ns:
        for scheme in ("fame", "fame-kp", "bsw07", "waters11", "rw15"):
            _ours(report, scheme, n, repeat)
            if live:
                _charm(report, scheme, n, repeat)
        if live and "charm" in available_backends():
            _same_curve(report, n, repeat)
    if not live:
        _published(report)
    _ratios(report)
    for curve, (kind, level) in CURVES.items():
        report.notes.append(f"curve {curve}: {kind}, security {level}")
    shown = max(ns)
    report.plots.append({
        "title": f"decrypt, AND of {shown} attributes: end to end (bytes in, plaintext out)",
        "x": "scheme", "y": "median_ms", "series": "series", "kind": "bar", "file": "compare.png",
        "logy": "1", "where": {"op": "decrypt", "level": "e2e", "N": shown}, "legend": "outside",
        "width": "11", "xlabel": "scheme", "ylabel": "median ms (log scale)"})
    report.plots.append({
        "title": f"keygen / encrypt / decrypt, AND of {shown} (scheme alone, KEM level)",
        "x": "label", "y": "median_ms", "series": "series", "kind": "bar", "file": "compare_kem.png",
        "logy": "1", "where": {"level": "kem", "N": shown}, "legend": "outside", "width": "13",
        "xlabel": "scheme and operation", "ylabel": "median ms (log scale)"})
    return report
