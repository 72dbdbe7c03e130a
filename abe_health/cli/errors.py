"""The CLI's one error-mapping point: every exception that leaves a command becomes one line
`error: ...` on stderr, sometimes a line `hint: ...` after it, and an exit status; never a
traceback.

As in age (`cmd/age/tui.go`: `errorf`, `errorWithHint`) and rage (`src/bin/rage/error.rs`: one
`Display` for every failure): commands only raise (`CliError` for the CLI's own refusals),
and `Group.main` alone reports. Library
messages say what went wrong without naming this CLI's flags; the hints that do name flags live
here, in `HINTS`, keyed by error type and case (the `case` attribute a library error may carry).

Exit statuses (documented in the README):

    0    success
    1    error: a refusal of the toolkit (`AbeError`, `SearchError`), a file that cannot be read
         or written (`OSError`), a refusal of the CLI itself (`CliError`)
    2    usage: click's parsing errors and `click.UsageError`
    3    policy not satisfied: `PolicyNotSatisfied`, including `NoIdentityMatched`
    4    busy: another writer holds the store's lock for longer than we wait (`locks.Busy`)
    70   internal error: a bug (anything else; sysexits.h `EX_SOFTWARE`)
    130  interrupted: Ctrl-C (128 + SIGINT), or a prompt abandoned
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from search.errors import InvalidSearchKey, SearchError

from .. import __version__
from ..cloud.errors import Forbidden, RateLimited, Unauthorized
from ..errors import AbeError, BulkError, InvalidCiphertext, InvalidKey, PolicyNotSatisfied, PolicySyntaxError
from ..locks import Busy
from ..register import NotRenewable
from .common import CliError, printable

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_SATISFIED = 3
EXIT_BUSY = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

#: what click (8.2 and later) raises for a group run without a command, after which it shows help
NO_ARGS_IS_HELP: tuple[type[Exception], ...] = tuple(
    e for e in (getattr(click.exceptions, "NoArgsIsHelpError", None),) if e is not None)

#: set to any non-empty value to print the traceback of an internal error (for a bug report)
DEBUG_VARIABLE = "ABE_HEALTH_DEBUG"

#: hints naming this CLI's flags and commands, keyed by (error type, case): the library raises the
#: error with a message in its own words and, where one type covers several situations, a
#: `case` attribute naming which; (type, None) applies to every case of that type.
HINTS: dict[tuple[type[BaseException], str | None], str] = {
    (Busy, None): "another abe-health command is changing it; run this one again when that one "
                  "has finished",
    (InvalidKey, "passphrase"): "give --passphrase-file FILE, or run the command on a terminal to "
                                "be asked for the passphrase",
    (InvalidKey, "expiring-value"): "name the attribute with --expiring NAME and give its last day "
                                    "as its value: -a 'NAME = YYYY-MM-DD'",
    (InvalidKey, "expiring-undated"): "an expiring attribute carries its last day: "
                                      "-a 'NAME = YYYY-MM-DD' --expiring NAME",
    (NotRenewable, "expiring-unrecorded"): "issue a new key naming its expiring attributes "
                                           "(authority keygen ... --expiring NAME) and withdraw "
                                           "this one",
    (NotRenewable, "no-expiring"): "a multi-authority key is renewable only if `authority keygen` "
                                   "named its expiring attributes with --expiring NAME",
    (InvalidSearchKey, "not-sealed"): "search with the owner's search key instead: --key SEARCH.key",
    (Unauthorized, None): "give a valid token with --token-file FILE (or ABE_HEALTH_TOKEN); an "
                          "admin makes one with `abe-health serve token create`",
    (Forbidden, None): "this token's role (or owner) does not allow it; ask the server's admin",
    (RateLimited, None): "the server limits requests per token; run it again in a moment",
    (BulkError, "other-job"): "give --journal FILE for a new job, or finish the other one first",
    (InvalidCiphertext, "phr-v1"): "open it with abe-health 0.1 (phr decrypt ... -o record.json) "
                                   "and encrypt the JSON again with `phr encrypt`",
}


@dataclass(frozen=True)
class Failure:
    """What the CLI prints for an exception, and the status it exits with."""

    message: str
    hint: str | None
    status: int
    #: trusted text printed before the error line (the help of a group run without a command)
    before: str | None = None


def hint_for(exc: BaseException) -> str | None:
    """The hint for `exc`'s type (or a base type) and case, else for its type alone."""
    case = getattr(exc, "case", None)
    keys: Sequence[str | None] = (case, None) if case is not None else (None,)
    for cls in type(exc).__mro__:
        for key in keys:
            if (cls, key) in HINTS:
                return HINTS[(cls, key)]
    return None


def toolkit_message(exc: AbeError | SearchError) -> str:
    """The one line for a toolkit error; a policy that does not parse is quoted before the
    column the message names."""
    if isinstance(exc, PolicySyntaxError) and exc.text:
        return f'policy "{exc.text}": {exc}'
    return str(exc)


def os_message(exc: OSError) -> str:
    """`PATH: reason` (the shell's form, e.g. `out/x.abe: No such file or directory`); both
    paths of a rename; the bare reason when the OS named no path."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    paths = [os.fsdecode(p) if isinstance(p, (str, bytes)) else str(p)
             for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


def failure_of(exc: BaseException) -> Failure:
    """The whole mapping from an exception to what is printed and the exit status."""
    if isinstance(exc, CliError):
        return Failure(exc.message, exc.hint, exc.status)
    if isinstance(exc, NO_ARGS_IS_HELP):  # `abe-health vault`: its help, then what is missing
        assert isinstance(exc, click.UsageError)
        return Failure("missing a command", None, EXIT_USAGE, before=exc.format_message())
    if isinstance(exc, click.UsageError):
        where = exc.ctx.command_path if exc.ctx is not None else "abe-health"
        return Failure(exc.format_message(), f"see '{where} --help'", EXIT_USAGE)
    if isinstance(exc, click.ClickException):
        return Failure(exc.format_message(), None, exc.exit_code)
    if isinstance(exc, click.Abort):  # click's form of Ctrl-C, and of Ctrl-C or EOF at a prompt
        cause = exc.__cause__
        interrupted = cause is None or isinstance(cause, KeyboardInterrupt)
        return Failure("interrupted" if interrupted else "aborted: no input", None, EXIT_INTERRUPTED)
    if isinstance(exc, KeyboardInterrupt):
        return Failure("interrupted", None, EXIT_INTERRUPTED)
    if isinstance(exc, PolicyNotSatisfied):
        return Failure(toolkit_message(exc), hint_for(exc), EXIT_NOT_SATISFIED)
    if isinstance(exc, Busy):
        return Failure(toolkit_message(exc), hint_for(exc), EXIT_BUSY)
    if isinstance(exc, (AbeError, SearchError)):
        return Failure(toolkit_message(exc), hint_for(exc), EXIT_ERROR)
    if isinstance(exc, OSError):
        return Failure(os_message(exc), hint_for(exc), EXIT_ERROR)
    return Failure(f"internal error: {type(exc).__name__}: {exc}",
                   f"this is a bug in abe-health {__version__}: please report it with the command "
                   f"that caused it ({DEBUG_VARIABLE}=1 prints the traceback)", EXIT_INTERNAL)


def report(exc: BaseException) -> int:
    """Print `exc` as one `error:` line (and a `hint:` line) on stderr; return the exit status.
    Every printed character is escaped if it is not printable, so the line stays one line and
    text from a file or a store cannot drive the terminal."""
    failure = failure_of(exc)
    if failure.status == EXIT_INTERNAL and os.environ.get(DEBUG_VARIABLE):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if failure.before:
        click.echo(failure.before, err=True)
    click.echo(f"error: {printable(failure.message)}", err=True)
    if failure.hint:
        click.echo(f"hint: {printable(failure.hint)}", err=True)
    return failure.status


class Group(click.Group):
    """The root `abe-health` group: its `main` is where every failure is reported."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """Run the command line; in standalone mode (the console script, `python -m`, click's
        test runner) exit with the status of `report` for any exception, or 0. With
        `standalone_mode=False` exceptions propagate, as click documents."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False,
                                  windows_expand_args=windows_expand_args, **extra)
        except Exception as exc:  # the one place where every failure is reported
            exit_with(report(exc))
        except KeyboardInterrupt as exc:  # outside a command (click maps those to Abort)
            exit_with(report(exc))
        exit_with(result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK)


def exit_with(status: int) -> NoReturn:
    """Leave with `status` (`sys.exit`; click's runner records it as the exit code)."""
    sys.exit(status)
