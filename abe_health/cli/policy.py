"""`abe-health policy check`: a policy's canonical form, its LSSS matrix, and whether given
attributes satisfy it (no keys involved)."""

from __future__ import annotations

import json
from typing import Any

import click

from ..policy import Policy, parse_attributes


@click.group()
def policy() -> None:
    """Inspect access policies."""


@policy.command("check")
@click.argument("text", metavar="POLICY")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="A key attribute (repeatable): test whether these satisfy the policy.")
@click.option("--matrix", is_flag=True, help="Print the LSSS matrix and row labels.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(text: str, attrs: tuple[str, ...], matrix: bool, as_json: bool) -> None:
    """Parse POLICY, print its canonical form and LSSS size (and whether -a attributes satisfy it)."""
    parsed = Policy.parse(text)
    lsss = parsed.lsss
    report: dict[str, Any] = {
        "canonical": str(parsed),
        "rows": lsss.n_rows,
        "columns": lsss.n_cols,
        "attributes": len(parsed.attributes),
    }
    if attrs:
        key = parse_attributes(attrs)
        ok = parsed.is_satisfied_by(key)
        report["satisfied"] = ok
        if ok:
            report["rows_used"] = [i + 1 for i in lsss.rows_used(key.labels)]
    if matrix:
        report["matrix"] = lsss.dense()
        report["rho"] = list(lsss.rho)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"canonical: {report['canonical']}")
    click.echo(f"lsss: {lsss.n_rows} rows x {lsss.n_cols} columns, "
               f"{report['attributes']} distinct attributes")
    if attrs:
        used = f" (rows {', '.join(map(str, report['rows_used']))})" if report["satisfied"] else ""
        click.echo(f"satisfied: {'yes' if report['satisfied'] else 'no'}{used}")
    if matrix:
        width = max(len(str(v)) for row in report["matrix"] for v in row)
        for i, (row, label) in enumerate(zip(report["matrix"], report["rho"], strict=True), start=1):
            cells = " ".join(str(v).rjust(width) for v in row)
            click.echo(f"  {i:>4}  [{cells}]  {label}")
