"""Suite `primitives`: the median cost of each group operation on every installed backend.

These per-operation costs are what later suites multiply by operation counts to get a scheme's
lower bound, measured in the same run so that the ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from abe_health.hazmat.pairing import BACKENDS, PairingGroup, available_backends, get_group

from .report import Report, median_ms

#: operation -> human description, in table order
OPERATIONS = {
    "pair": "pairing e(G1, G2)",
    "exp_g1": "exponentiation in G1",
    "exp_g2": "exponentiation in G2",
    "exp_gt": "exponentiation in GT",
    "hash_g1": "hash to G1",
    "hash_g2": "hash to G2",
    "hash_zr": "hash to Zr",
    "mul_g1": "group law in G1",
    "mul_g2": "group law in G2",
    "mul_gt": "group law in GT",
    "decode_g1": "validated decode of G1",
    "decode_g2": "validated decode of G2",
    "decode_gt": "validated decode of GT",
    "decode_g1_for_pairing": "decode of a G1 point for pairings (on the curve; batch subgroup test)",
    "decode_g1_for_pairing_uncompressed": "the same from x | y (FAME's rows): the curve equation, "
                                          "no square root",
    "miller_loop": "one Miller loop of a multi-pairing (8 pairs / 8, final exponentiation apart)",
    "final_exp": "final exponentiation of a multi-pairing",
}


def _cycle(values: list) -> Callable[[], object]:
    it = itertools.cycle(values)
    return lambda: next(it)


def operations(group: PairingGroup, pool: int = 16) -> dict[str, Callable[[], object]]:
    """A zero-argument callable per operation, cycling through pre-drawn random inputs."""
    g1s = [group.random("G1") for _ in range(pool)]
    g2s = [group.random("G2") for _ in range(pool)]
    gts = [group.random("GT") for _ in range(pool)]
    exps = [group.random_zr() for _ in range(pool)]
    msgs = [f"attribute-{i}".encode() for i in range(pool)]
    nxt_g1, nxt_g2, nxt_gt = _cycle(g1s), _cycle(g2s), _cycle(gts)
    nxt_e, nxt_m = _cycle(exps), _cycle(msgs)
    enc = {k: _cycle([x.to_bytes() for x in xs]) for k, xs in (("G1", g1s), ("G2", g2s), ("GT", gts))}
    long_g1 = _cycle([group.encode_for_pairing(x) for x in g1s])
    return {
        "pair": lambda: group.pair(nxt_g1(), nxt_g2()),
        "exp_g1": lambda: nxt_g1() ** nxt_e(),
        "exp_g2": lambda: nxt_g2() ** nxt_e(),
        "exp_gt": lambda: nxt_gt() ** nxt_e(),
        "hash_g1": lambda: group.hash_to_g1(b"bench", nxt_m()),
        "hash_g2": lambda: group.hash_to_g2(b"bench", nxt_m()),
        "hash_zr": lambda: group.hash_to_zr(b"bench", nxt_m()),
        "mul_g1": lambda: nxt_g1() * nxt_g1(),
        "mul_g2": lambda: nxt_g2() * nxt_g2(),
        "mul_gt": lambda: nxt_gt() * nxt_gt(),
        "decode_g1": lambda: group.deserialize("G1", enc["G1"]()),
        "decode_g2": lambda: group.deserialize("G2", enc["G2"]()),
        "decode_gt": lambda: group.deserialize("GT", enc["GT"]()),
        "decode_g1_for_pairing": lambda: group.decode_many_for_pairing("G1", [enc["G1"]()]),
        "decode_g1_for_pairing_uncompressed": lambda: group.decode_many_for_pairing("G1", [long_g1()]),
        "pair_prod_1": lambda: group.pair_prod([(nxt_g1(), nxt_g2())]),
        "pair_prod_9": lambda: group.pair_prod([(nxt_g1(), nxt_g2()) for _ in range(9)]),
    }


def measure_costs(group: PairingGroup, repeat: int) -> dict[str, float]:
    """Median milliseconds of every operation on `group`; a multi-pairing of 1 and of 9 pairs give
    the cost of one Miller loop, (t9 - t1) / 8, and of the final exponentiation, t1 - loop."""
    costs = {name: median_ms(fn, repeat) for name, fn in operations(group).items()}
    one, nine = costs.pop("pair_prod_1"), costs.pop("pair_prod_9")
    costs["miller_loop"] = max(0.0, (nine - one) / 8)
    costs["final_exp"] = max(0.0, one - costs["miller_loop"])
    return costs


def run(quick: bool) -> Report:
    """Measure every operation on every installed backend."""
    repeat = 30 if quick else 300
    report = Report("primitives", ["group", "operation", "what", "median_ms", "per_second"])
    costs: dict[str, dict[str, float]] = {}
    for backend in available_backends():
        group = get_group(backend)
        costs[group.id] = measure_costs(group, repeat)
        for name, ms in costs[group.id].items():
            report.add(backend=backend, group=group.id, operation=name, what=OPERATIONS[name],
                       median_ms=ms,
                       per_second=1000 / ms if ms else float("inf"))
    missing = sorted(set(BACKENDS) - set(available_backends()))
    if missing:
        report.notes.append(f"backends not installed here, so not measured: {', '.join(missing)}")
    report.notes.append(f"median of {repeat} calls each after one warm-up call; inputs drawn beforehand")
    report.extra["costs_ms"] = costs
    report.plots.append({"title": "group operations (median ms)", "x": "operation", "y": "median_ms",
                         "series": "group", "kind": "bar", "file": "primitives.png", "logy": "1"})
    return report
