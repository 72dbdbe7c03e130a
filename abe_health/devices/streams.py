"""Where device recipes read from and write to, as `abe_health.encrypt` does: a path, a binary
stream or bytes in; a path (written atomically: it appears only when complete), a binary stream,
or None (bytes returned) out."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, TypeVar

from ..fileio import atomic_output

Source = str | os.PathLike[str] | bytes | BinaryIO
Sink = str | os.PathLike[str] | BinaryIO | None
T = TypeVar("T")


@contextlib.contextmanager
def opened(src: Source) -> Iterator[BinaryIO]:
    """`src` open for reading; closes only what it opened."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        yield io.BytesIO(bytes(src))
    elif isinstance(src, (str, os.PathLike)):
        with open(src, "rb") as handle:
            yield handle
    else:
        yield src


def deliver(dst: Sink, run: Callable[[Any], T]) -> tuple[T, bytes | None]:
    """Run the writer `run` into `dst`; the bytes written when `dst` is None."""
    if dst is None:
        buffer = io.BytesIO()
        result = run(buffer)
        return result, buffer.getvalue()
    if isinstance(dst, (str, os.PathLike)):
        with atomic_output(dst) as fout:
            return run(fout), None
    return run(dst), None
