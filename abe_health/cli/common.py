"""What every CLI module shares: the CLI's own refusal (`CliError`), escaping of untrusted text,
passphrases and prompts, checks of output paths made before any work, and the progress bar.

Nothing here reports an error: commands raise, and `abe_health.cli.errors` maps every exception
to `error: ...` (+ `hint: ...`) and an exit status.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cbor2
import click

from ..hazmat.records import PROTECTED
from ..keys import MAX_KEY_BYTES, Key, dearmor, read_key

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A refusal of the CLI itself (an output that exists without `--force`, binary output to a
    terminal): printed as `error: MESSAGE` (and `hint: HINT`), exit `status` (1 unless said)."""

    def __init__(self, message: str, hint: str | None = None, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so that text from an untrusted store
    (catalog names, header policies) cannot move the cursor or rewrite a terminal's lines."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def note(text: str) -> None:
    """A line for the person at the terminal (stderr), never mixed into the output."""
    click.echo(text, err=True)


# -- terminals and passphrases -------------------------------------------------------------------
def stdin_is_terminal() -> bool:
    """Whether a person can be asked (a hidden prompt) rather than the command failing."""
    return sys.stdin is not None and sys.stdin.isatty()


def stdout_is_terminal() -> bool:
    """Whether standard output is a terminal (binary ciphertext is not written there)."""
    return sys.stdout is not None and sys.stdout.isatty()


passphrase_option = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False), default=None, metavar="FILE",
    help="Unlock a protected master key with the first line of FILE (on a terminal you are asked "
         "instead).")


def read_passphrase(path: str) -> str:
    """The first line of a passphrase file: a passphrase is never a command-line argument, which
    `ps` would show to every user of the machine."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().rstrip("\r\n")
    except UnicodeDecodeError:
        raise CliError(f"{path}: a passphrase file holds UTF-8 text") from None


def is_protected(path: str | os.PathLike[str]) -> bool:
    """Whether the key file at `path` is protected by a passphrase. False when it cannot be read
    or parsed: loading it then says why."""
    try:
        with open(path, "rb") as handle:
            decoded = cbor2.loads(dearmor(handle.read(MAX_KEY_BYTES + 1)))
    except Exception:  # any file that cannot be parsed is "not protected": read_key says why
        return False
    return isinstance(decoded, dict) and decoded.get("type") == PROTECTED


def _passphrase_hint() -> str:
    """How to give a passphrase to the command being run: its --passphrase-file, if it has one."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and any(p.name == "passphrase_file" for p in ctx.command.params):
        return "give --passphrase-file FILE, or run the command on a terminal to be asked for it"
    return "run the command on a terminal to be asked for the passphrase"


def read_secret_key(path: str | os.PathLike[str], expect: str | None,
                    passphrase_file: str | None = None) -> Key:
    """The master or user key at `path`. A protected key is unlocked with the first line of
    `passphrase_file` or, when stdin is a terminal, a passphrase asked for without echo; with
    neither it is refused with a hint."""
    passphrase = read_passphrase(passphrase_file) if passphrase_file else None
    if passphrase is None and is_protected(path):
        if not stdin_is_terminal():
            raise CliError(f"{path}: this key is protected by a passphrase", _passphrase_hint())
        passphrase = click.prompt(f"passphrase for {path}", hide_input=True, err=True)
    return read_key(path, passphrase, expect=expect)


def new_passphrase(passphrase_file: str | None, prompt: bool) -> str | None:
    """The passphrase to protect a new master key with: the first line of `passphrase_file`, or
    asked twice without echo (`prompt`, on a terminal only); None for an unprotected key."""
    if passphrase_file and prompt:
        raise click.UsageError("give --passphrase-file FILE or --passphrase-prompt, not both")
    if passphrase_file:
        passphrase = read_passphrase(passphrase_file)
        if not passphrase:
            raise CliError(f"{passphrase_file}: the first line is empty; a master key is not "
                           "protected with an empty passphrase")
        return passphrase
    if not prompt:
        return None
    if not stdin_is_terminal():
        raise CliError("cannot ask for a passphrase: standard input is not a terminal",
                       "give --passphrase-file FILE instead")
    text = click.prompt("passphrase for the new master key", hide_input=True,
                        confirmation_prompt=True, err=True)
    return str(text)


# -- outputs -------------------------------------------------------------------------------------
def _probe(directory: str, name: str) -> None:
    """Fail with an OSError naming `name` unless a file can be created in `directory` (an
    unnamed temporary file, gone when closed)."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, name) from None


def check_output_file(path: str | None) -> None:
    """Refuse, before any work is done, an output file that cannot be written: its directory
    missing, not a directory or not writable, or the path itself a directory. The OSError names
    `path` (the write itself would name a temporary file beside it). None and "-" are stdout."""
    if path is None or path == "-":
        return
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    _probe(os.path.dirname(path) or ".", path)


def check_output_dir(path: str) -> None:
    """Refuse, before any work is done, an output directory that cannot be made or written: a
    file in its place, its parent missing (a mistyped parent is an error, not a new tree of
    directories), or no file can be created in it or its parent. OSError names `path`."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    if os.path.isdir(path):
        _probe(path, path)
        return
    parent = os.path.dirname(os.path.normpath(path)) or "."
    if not os.path.isdir(parent):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
    _probe(parent, path)


def make_output_dir(path: str) -> None:
    """`check_output_dir`, then create `path` if it is missing."""
    check_output_dir(path)
    if not os.path.isdir(path):
        os.mkdir(path)


def check_binary_output(out_path: str | None, armor: bool) -> None:
    """Refuse to write binary ciphertext to a terminal (age does the same): without `-o` and
    with stdout a terminal, unless it is armored. `-o -` writes to stdout anyway. Decrypted
    output is the user's own data and is never refused."""
    if out_path is None and not armor and stdout_is_terminal():
        raise CliError("refusing to write binary ciphertext to a terminal",
                       "give -o FILE, pipe the output, or add --armor (-o - writes it anyway)")


def progress_bar(path: str | None, label: str, min_bytes: int) -> Any:
    """A stderr progress bar for a regular file of at least `min_bytes` when stderr is a
    terminal, else None."""
    if path in (None, "-") or not sys.stderr.isatty():
        return None
    size = os.path.getsize(path)
    if size < min_bytes:
        return None
    return click.progressbar(length=size, label=label, file=sys.stderr)


def authority_keys(paths: tuple[str, ...], directory: str | None) -> list[Key]:
    """The authorities' public keys: each --authority file, then DIR/*.pub (`phr`, `fhir`)."""
    files = [Path(p) for p in paths]
    if directory:
        if not Path(directory).is_dir():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), directory)
        files += sorted(Path(directory).glob("*.pub"))
    if not files:
        raise click.UsageError("give the authorities' public keys: --authority FILE (a single "
                               "authority's public.key, or NAME.pub, repeatable) or --authorities DIR")
    return [read_key(f, expect="public") for f in files]
