"""Streaming ASCII armor for `.abe` files: PEM-style base64 in 64-column lines, constant memory.

```
-----BEGIN ABE FILE-----
<base64 of the binary .abe file, 64 characters a line>
-----END ABE FILE-----
```
The reader is strict: anything but base64 lines between the markers, or text after the end
marker, raises InvalidCiphertext (the binary file inside is authenticated anyway).
"""

from __future__ import annotations

import base64
import binascii
from typing import BinaryIO, cast

from .errors import InvalidCiphertext

BEGIN = b"-----BEGIN ABE FILE-----"
END = b"-----END ABE FILE-----"
_LINE = 48  # raw bytes per 64-character line


class ArmorWriter:
    """Write-only stream that armors what it is given; `close()` writes the end marker."""

    def __init__(self, dst: BinaryIO) -> None:
        self.dst = dst
        self.pending = b""
        dst.write(BEGIN + b"\n")

    def write(self, data: bytes) -> int:
        buf = self.pending + bytes(data)
        whole = len(buf) - len(buf) % _LINE
        if whole:
            encoded = base64.b64encode(buf[:whole])
            self.dst.write(b"".join(encoded[i : i + 64] + b"\n" for i in range(0, len(encoded), 64)))
        self.pending = buf[whole:]
        return len(data)

    def close(self) -> None:
        if self.pending:
            self.dst.write(base64.b64encode(self.pending) + b"\n")
            self.pending = b""
        self.dst.write(END + b"\n")


class ArmorReader:
    """Read-only stream of the binary bytes inside an armored file."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        # a bytearray: appending a line and taking a read from the front are amortized O(1)
        # (an immutable bytes buffer was copied on each of the ~20,000 lines of a 1 MiB read)
        self.buffer = bytearray()
        self.done = False
        if src.readline().rstrip(b"\r\n") != BEGIN:
            raise InvalidCiphertext("armored file does not start with the BEGIN ABE FILE line")

    def _fill(self) -> None:
        line = self.src.readline(1024).rstrip(b"\r\n")
        if not line:
            raise InvalidCiphertext("armored file ends without its END ABE FILE line")
        if line == END:
            if self.src.read(1).strip():
                raise InvalidCiphertext("data after the END ABE FILE line")
            self.done = True
            return
        if len(line) > 64:
            raise InvalidCiphertext("armored line longer than 64 characters")
        try:
            self.buffer += base64.b64decode(line, validate=True)
        except binascii.Error:
            raise InvalidCiphertext("armored file holds a line that is not base64") from None

    def read(self, n: int = -1) -> bytes:
        while not self.done and (n < 0 or len(self.buffer) < n):
            self._fill()
        if n < 0:
            n = len(self.buffer)
        out = bytes(self.buffer[:n])
        del self.buffer[:n]
        return out


class _Replay:
    """A stream that first returns `head`, then the rest of `src` (to sniff without seeking)."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        self.head, self.src = head, src

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.src.read(n)
        if n < 0:
            out, self.head = self.head + self.src.read(), b""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out

    def readline(self, limit: int = -1) -> bytes:
        if b"\n" in self.head or (0 <= limit <= len(self.head)):
            end = self.head.index(b"\n") + 1 if b"\n" in self.head else limit
            if 0 <= limit < end:
                end = limit
            out, self.head = self.head[:end], self.head[end:]
            return out
        out, self.head = self.head, b""
        return out + self.src.readline(limit - len(out) if limit >= 0 else -1)


def open_maybe_armored(src: BinaryIO) -> BinaryIO:
    """The binary `.abe` stream of src, de-armoring it when it starts with the BEGIN line."""
    head = src.read(len(BEGIN))
    replay = _Replay(head, src)
    if head == BEGIN:
        return cast(BinaryIO, ArmorReader(cast(BinaryIO, replay)))
    return cast(BinaryIO, replay)
