"""What every CLI module shares: one-line errors and the mapping of typed errors to exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from search.errors import SearchError

from ..errors import AbeError, PolicySyntaxError

F = TypeVar("F", bound=Callable[..., Any])


class CliError(click.ClickException):
    """A user-facing failure: printed as one `error:` line, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so that text from an untrusted store
    (catalog names, header policies) cannot move the cursor or rewrite a terminal's lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def describe(exc: AbeError | SearchError) -> str:
    """One readable line for a toolkit error."""
    if isinstance(exc, PolicySyntaxError) and exc.text:
        return printable(f'policy "{exc.text}": {exc}')
    return printable(str(exc))


def handle_errors(func: F) -> F:
    """Turn AbeError into CliError so that no traceback reaches the user."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (AbeError, SearchError) as exc:
            raise CliError(describe(exc)) from exc

    return wrapper  # type: ignore[return-value]
