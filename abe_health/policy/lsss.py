"""Policy trees as linear secret-sharing schemes (monotone span programs) over Zr.

Construction (Lewko-Waters, Eurocrypt 2011, appendix G, generalized to thresholds): the root gets
the vector (1); with c columns used so far,
- an OR gate passes its vector v to every child;
- an AND gate of n children gives child 1 the vector v + e_{c+1}, child i the vector
  -e_{c+i-1} + e_{c+i}, and child n the vector -e_{c+n-1} (the children sum to v), using n-1 new columns;
- a threshold gate k of n (1 < k < n) gives child j (j = 1..n) the vector
  v + sum_{t=1}^{k-1} j^t e_{c+t}: a fresh Shamir polynomial of degree k-1 whose value at 0 is
  v's share, so any k children recover it with Lagrange coefficients at 0 and fewer learn nothing.
Each leaf is one row, labelled (rho) by its attribute; attributes may repeat. Rows with shares
lambda_i = M_i . (s, y_2, ..., y_c) reconstruct s as sum omega_i lambda_i for the omega that
`coefficients` returns: 1 on every row of an AND/OR policy, so decryption needs no exponentiation
there. The rows chosen are a minimum-size satisfying set for the tree (dynamic programming).

Limits (the parser enforces them while reading, before any tree is built; `compile_lsss` checks
them again for trees built in code). Decryption compiles whatever policy a header carries, so:
- MAX_ROWS = 2,048 rows (leaves after comparisons expand to prefix labels);
- MAX_COLUMNS = 1,024 columns (an AND of n adds n - 1, a threshold k of n adds k - 1);
- MAX_ENTRIES = 65,536 non-zero entries: every row carries the columns of the gates above it,
  so thresholds nested in thresholds make rows long even when rows and columns are few;
- MAX_THRESHOLD_ENTRY_BITS = 128: a threshold k of n (1 < k < n) has entries up to n^(k-1),
  refused when that exceeds 128 bits (half a 255-bit scalar; `1499 of (1500)` would need 2 KB
  per entry and gigabytes in all).
With these, compiling any accepted policy takes well under 0.5 s and 50 MiB.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import PolicyNotSatisfied, PolicySyntaxError
from .ast import Attribute, Comparison, Node, threshold_of

#: rows of the expanded policy
MAX_ROWS = 2_048
#: columns of the share matrix (the secret's included)
MAX_COLUMNS = 1_024
#: non-zero entries of the share matrix
MAX_ENTRIES = 65_536
#: bits of the largest entry n^(k-1) of a threshold k of n
MAX_THRESHOLD_ENTRY_BITS = 128
_INF = float("inf")

#: a sparse row: (column, coefficient) pairs with non-zero small integer coefficients
Row = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Gate:
    """Reconstruction plan of one gate: 'and', 'or' or 'threshold' (Lagrange at x = 1..n)."""

    kind: str
    k: int
    children: tuple[_Gate | int, ...]  # int = row index of a leaf


@dataclass(frozen=True)
class LSSS:
    """Share matrix M (sparse rows), row labels rho, and the tree plan used to reconstruct."""

    rows: tuple[Row, ...]
    rho: tuple[str, ...]
    n_cols: int
    plan: _Gate | int = field(repr=False)

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    def dense(self) -> list[list[int]]:
        """M as a dense list of rows (small integers, not reduced)."""
        out = []
        for row in self.rows:
            dense_row = [0] * self.n_cols
            for col, coeff in row:
                dense_row[col] = coeff
            out.append(dense_row)
        return out

    def shares(self, secret: int, order: int, randomness: Iterable[int] | None = None) -> list[int]:
        """lambda_i = M_i . (secret, y_2..y_c) mod order, with the y drawn from the OS CSPRNG."""
        ys = list(randomness) if randomness is not None else [
            secrets.randbelow(order) for _ in range(self.n_cols - 1)
        ]
        if len(ys) != self.n_cols - 1:
            raise ValueError(f"need {self.n_cols - 1} random values, got {len(ys)}")
        v = [secret % order, *ys]
        return [sum(coeff * v[col] for col, coeff in row) % order for row in self.rows]

    def coefficients(self, labels: Iterable[str], order: int) -> dict[int, int]:
        """{row: omega} over a minimum satisfying row set, or PolicyNotSatisfied."""
        held = set(labels)
        cost_memo: dict[int, tuple[float, tuple[int, ...]]] = {}
        if _cost(self.plan, self.rho, held, cost_memo) == _INF:
            raise PolicyNotSatisfied("attributes do not satisfy the policy")
        omega: dict[int, int] = {}
        _assign(self.plan, 1, order, cost_memo, omega)
        return omega

    def rows_used(self, labels: Iterable[str]) -> list[int]:
        """Indexes of a minimum satisfying row set, or PolicyNotSatisfied."""
        memo: dict[int, tuple[float, tuple[int, ...]]] = {}
        if _cost(self.plan, self.rho, set(labels), memo) == _INF:
            raise PolicyNotSatisfied("attributes do not satisfy the policy")
        out: list[int] = []
        _collect(self.plan, memo, out)
        return sorted(out)

    def satisfied_by(self, labels: Iterable[str]) -> bool:
        """Whether the labels can reconstruct the secret."""
        return _cost(self.plan, self.rho, set(labels), {}) != _INF


def _cost(plan: _Gate | int, rho: tuple[str, ...], held: set[str],
          memo: dict[int, tuple[float, tuple[int, ...]]]) -> float:
    """Fewest rows needed under `plan`; memo[id(gate)] = (cost, chosen child indexes)."""
    if isinstance(plan, int):
        return 1 if rho[plan] in held else _INF
    costs = [_cost(c, rho, held, memo) for c in plan.children]
    order = sorted(range(len(costs)), key=lambda j: (costs[j], j))
    chosen = tuple(sorted(order[: plan.k]))
    total = sum(costs[j] for j in chosen)
    memo[id(plan)] = (total, chosen)
    return total


def _collect(plan: _Gate | int, memo: dict[int, tuple[float, tuple[int, ...]]], out: list[int]) -> None:
    if isinstance(plan, int):
        out.append(plan)
        return
    for j in memo[id(plan)][1]:
        _collect(plan.children[j], memo, out)


def _assign(plan: _Gate | int, weight: int, order: int,
            memo: dict[int, tuple[float, tuple[int, ...]]], omega: dict[int, int]) -> None:
    if isinstance(plan, int):
        omega[plan] = weight % order
        return
    chosen = memo[id(plan)][1]
    if plan.kind == "threshold":
        xs = [j + 1 for j in chosen]
        for j, x in zip(chosen, xs, strict=True):
            lagrange = 1
            for other in xs:
                if other != x:
                    lagrange = lagrange * other * pow(other - x, -1, order) % order
            _assign(plan.children[j], weight * lagrange % order, order, memo, omega)
    else:
        for j in chosen:
            _assign(plan.children[j], weight, order, memo, omega)


def threshold_entries_fit(k: int, n: int) -> bool:
    """Whether the entries of a threshold k of n, up to n^(k-1) when 1 < k < n, fit in
    MAX_THRESHOLD_ENTRY_BITS bits (decided without computing huge powers)."""
    if not 1 < k < n:
        return True
    if (k - 1) * (n.bit_length() - 1) > MAX_THRESHOLD_ENTRY_BITS:  # n^(k-1) >= 2^((k-1)(bl-1))
        return False
    largest: int = n ** (k - 1)
    return largest.bit_length() <= MAX_THRESHOLD_ENTRY_BITS


def compile_lsss(tree: Node) -> LSSS:
    """Build the LSSS of a tree whose leaves are all attributes (expand comparisons first);
    PolicySyntaxError past MAX_ROWS, MAX_COLUMNS, MAX_ENTRIES or MAX_THRESHOLD_ENTRY_BITS."""
    rows: list[Row] = []
    rho: list[str] = []
    n_cols = 1
    n_entries = 0

    def build(node: Node, vec: dict[int, int]) -> _Gate | int:
        nonlocal n_cols, n_entries
        if isinstance(node, Attribute):
            if len(rows) >= MAX_ROWS:
                raise PolicySyntaxError(f"policy expands to more than MAX_ROWS = {MAX_ROWS} LSSS rows")
            row = tuple(sorted((c, v) for c, v in vec.items() if v))
            n_entries += len(row)
            if n_entries > MAX_ENTRIES:
                raise PolicySyntaxError(
                    f"policy's LSSS has more than MAX_ENTRIES = {MAX_ENTRIES} non-zero entries")
            rows.append(row)
            rho.append(node.label)
            return len(rows) - 1
        if isinstance(node, Comparison):
            raise TypeError("expand comparisons before compiling an LSSS")
        n = len(node.children)
        k = threshold_of(node)
        if k == 1:
            return _Gate("or", 1, tuple(build(c, vec) for c in node.children))
        if not threshold_entries_fit(k, n):
            raise PolicySyntaxError(f"threshold {k} of {n} has LSSS entries up to {n}^{k - 1}, over "
                                    f"MAX_THRESHOLD_ENTRY_BITS = {MAX_THRESHOLD_ENTRY_BITS} bits")
        base = n_cols
        n_cols += (n if k == n else k) - 1
        if n_cols > MAX_COLUMNS:
            raise PolicySyntaxError(f"policy needs more than MAX_COLUMNS = {MAX_COLUMNS} LSSS columns")
        if k == n:
            vectors = []
            for i in range(n):
                v = dict(vec) if i == 0 else {}
                if i > 0:
                    v[base + i - 1] = -1
                if i < n - 1:
                    v[base + i] = 1
                vectors.append(v)
            return _Gate("and", n, tuple(build(c, v) for c, v in zip(node.children, vectors, strict=True)))
        children = []
        for j, child in enumerate(node.children, start=1):
            v = dict(vec)
            for t in range(1, k):
                v[base + t - 1] = j**t
            children.append(build(child, v))
        return _Gate("threshold", k, tuple(children))

    plan = build(tree, {0: 1})
    return LSSS(tuple(rows), tuple(rho), n_cols, plan)
