"""HAZARDOUS MATERIALS: use `abe_health.encrypt` / `abe_health.decrypt` instead.

The header of an `.abe` file, version 2 (docs/formats.md):

```
"ABE2" | uint32 n | core (n bytes of CBOR) | wrap (92 bytes, see wrap.py)
core = {"v": 2, "ct": ABE ciphertext record map, "chunk": 1024..16 MiB, "salt": 32 random bytes}
aad of the wrap = SHA-256("ABE2" | n | core)
```
Parsing validates every field and group element before anything uses it; a version-1 file
("ABE1": zero nonce, KEK without salt or context) is refused with a message that says how to
migrate.

Bounded work. A header may be planted by whoever stores the file, and decoding a group element
costs a subgroup check (1 ms for a GT element of BLS12-381), so the work is bounded by the
header's size before anything is decoded: the core is at most MAX_HEADER = 2 MiB (2,097,152
bytes), refused from its length field before it is read; its CBOR is then decoded, and the
ciphertext record's shape is checked against its policy (`schemes.base.check_rows`: per-row
lists of one length, at most MAX_ROWS = 2,048, and a length the policy can compile to) before
any element is. The largest honest cores, measured with 2,048 rows (66 `x > 1` of 31 rows and 2
attributes) and the longest policy text (16,384 characters, 63,322 bytes of 4-byte UTF-8): RW15
1,753,120 bytes (per row one GT, two G2 and one G1 element, 825 bytes of CBOR), FAME 668,374
(three uncompressed G1 points a row), BSW07 367,127, Waters11 367,130 bytes; 2 MiB leaves RW15 a
margin of 344 KB (20 %) for its list of authorities. Reading that largest RW15 header takes
about 3.4 s (2,048 GT checks), and no header, honest or planted, costs more: a planted one is
refused in well under 0.5 s and 50 MiB unless its policy has as many rows as its lists
(tests/test_header_limits.py).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import cbor2

from ...errors import InvalidCiphertext, InvalidKey
from ..pairing import Element
from ..records import from_map, to_map
from ..schemes import Record, SchemeBase
from .wrap import WRAP, unwrap_dek, wrap_dek

MAGIC = b"ABE2"
VERSION = 2
CHUNK = 64 * 1024
MIN_CHUNK, MAX_CHUNK = 1024, 16 * 1024 * 1024
#: bytes of a header's core (CBOR); the largest honest one is 1,753,120 (see above)
MAX_HEADER = 2 * 1024 * 1024
#: what an `.abe` file of version 1 gets told
V1_MESSAGE = ("this is a version-1 .abe file (abe-health 0.1), whose key wrap is no longer accepted "
              "(see docs/security.md); decrypt it with abe-health 0.1 and encrypt it again")


@dataclass(frozen=True)
class Header:
    """The parsed header of an `.abe` file: the ABE ciphertext and the payload parameters."""

    scheme: SchemeBase
    ciphertext: Record
    chunk: int
    salt: bytes
    core_digest: bytes  # the wrap's associated data
    wrap: bytes
    size: int  # bytes of magic, length, core and wrap: where the payload starts

    @property
    def target(self) -> str:
        """The policy (CP) or the attribute list (KP) the file is encrypted under."""
        meta = self.ciphertext.meta
        return str(meta.get("policy") or ", ".join(meta.get("attributes", [])))

    def unwrap(self, gt_key: Element, context: bytes = b"") -> bytes:
        """The data key, if `gt_key` is this header's KEM key and it was written for `context`."""
        return unwrap_dek(self.wrap, gt_key, self.core_digest, context)


def write_header(dst: BinaryIO, scheme: SchemeBase, ct: Record | dict[str, Any], gt_key: Element,
                 dek: bytes, salt: bytes, chunk: int = CHUNK, context: bytes = b"") -> None:
    """Write magic, length, core and the DEK wrapped under the KEM key `gt_key` with a fresh wrap
    salt and nonce (`ct` may be given already encoded by `to_map`, to share one encapsulation
    between many headers: each header still gets its own KEK)."""
    ct_map = ct if isinstance(ct, dict) else to_map(scheme, ct)
    core = cbor2.dumps({"v": VERSION, "ct": ct_map, "chunk": chunk, "salt": salt})
    if len(core) > MAX_HEADER:  # never write what no reader accepts
        raise InvalidCiphertext(f"header of {len(core)} bytes exceeds the {MAX_HEADER} byte limit "
                                "(a KP ciphertext with too many attributes?)")
    prefix = MAGIC + struct.pack(">I", len(core))
    dst.write(prefix + core + wrap_dek(gt_key, dek, hashlib.sha256(prefix + core).digest(), context))


def read_exact(src: BinaryIO, n: int) -> bytes:
    """Read up to n bytes, looping over short reads (pipes); fewer only at end of file."""
    parts, got = [], 0
    while got < n:
        block = src.read(n - got)
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def read_header(src: BinaryIO) -> Header:
    """Parse and validate the header; the payload is left unread. InvalidCiphertext for anything
    malformed, past MAX_HEADER, or with per-row lists its policy cannot have (checked before any
    group element is decoded)."""
    prefix = read_exact(src, 8)
    if len(prefix) < 8 or prefix[:4] != MAGIC:
        if prefix[:4] == b"ABE1":
            raise InvalidCiphertext(V1_MESSAGE)
        if prefix[:3] == MAGIC[:3]:
            raise InvalidCiphertext(f"unsupported .abe version {prefix[3:4]!r}")
        raise InvalidCiphertext("not an .abe file (bad magic)")
    (length,) = struct.unpack(">I", prefix[4:])
    if length > MAX_HEADER:
        raise InvalidCiphertext(f"header of {length} bytes exceeds the {MAX_HEADER} byte limit")
    raw = read_exact(src, length)
    wrap = read_exact(src, WRAP)
    if len(raw) != length or len(wrap) != WRAP:
        raise InvalidCiphertext("file truncated inside the header")
    try:
        data: Any = cbor2.loads(raw)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("header is not valid CBOR") from None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise InvalidCiphertext("unsupported or malformed header")
    chunk, salt = data.get("chunk"), data.get("salt")
    if not isinstance(chunk, int) or not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise InvalidCiphertext("header has an invalid chunk size")
    if not isinstance(salt, bytes) or len(salt) != 32:
        raise InvalidCiphertext("header has an invalid salt")
    try:
        scheme, ct = from_map(data.get("ct"))
    except (InvalidKey, InvalidCiphertext) as exc:
        raise InvalidCiphertext(f"header: {exc}") from None
    if ct.kind != "ciphertext":
        raise InvalidCiphertext("header does not hold an ABE ciphertext")
    return Header(scheme, ct, chunk, salt, hashlib.sha256(prefix + raw).digest(), wrap, 8 + length + WRAP)
