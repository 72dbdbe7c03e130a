"""The `abe-health` command line: parses arguments, calls the API, prints, maps errors to exit codes.

Every failure the toolkit raises on purpose (`AbeError`) becomes one line `error: ...` on stderr
and exit status 1; usage errors are click's (exit 2).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from . import __version__
from .errors import AbeError, PolicySyntaxError
from .policy import Policy, parse_attributes

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A user-facing failure: printed as one `error:` line, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def describe(exc: AbeError) -> str:
    """One readable line for a toolkit error."""
    if isinstance(exc, PolicySyntaxError) and exc.text:
        return f'policy "{exc.text}": {exc}'
    return str(exc)


def handle_errors(func: F) -> F:
    """Turn AbeError into CliError so that no traceback reaches the user."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AbeError as exc:
            raise CliError(describe(exc)) from exc

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="abe-health")
def main() -> None:
    """Attribute-based encryption for personal health records."""


@main.group()
def policy() -> None:
    """Inspect access policies."""


@policy.command("check")
@click.argument("text")
@click.option("-a", "--attr", "attrs", multiple=True, metavar="ATTR",
              help="A key attribute (repeatable): test whether these satisfy the policy.")
@click.option("--matrix", is_flag=True, help="Print the LSSS matrix and row labels.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def policy_check(text: str, attrs: tuple[str, ...], matrix: bool, as_json: bool) -> None:
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


@main.command()
@handle_errors
def demo() -> None:
    """Walk through what the toolkit does today, on a hospital example."""
    from .demo import run_demo

    run_demo(click.echo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
