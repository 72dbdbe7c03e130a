"""The transformed header (docs/formats.md section 11.3): what the cloud returns for an `.abe`
header, and what a device decrypts, followed by the file's payload bytes unchanged.

```
"ABT2" | u32(n) | core (n bytes of CBOR, n <= 4096)
core = {"v": 2, "scheme": name, "group": group id, "tk": transformation key id (16 hex),
        "header": SHA-256 of the original header ("ABE2" | n | core: its wrap's aad),
        "t": [GT, ...] (one element for FAME, two for RW15), "wrap": the original 92-byte wrap,
        "chunk": C, "salt": S}
```
Version 2 writes each GT element compressed (`PairingGroup.compress_gt`: 288 bytes on BLS12-381,
so an RW15 header fits in 1 KiB); version 1 ("ABT1", "v": 1, full 576-byte elements) is still
read. Nothing here is trusted: the last element of `t` (the one raised to z) must lie in GT, the
others are only multiplied into K; every element is checked by opening the wrap (a wrong `t`
gives a wrong KEK), `header` is the wrap's associated data, `salt` and `chunk` are bound by the
payload's AEAD; the other fields only name things for messages.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import cbor2

from ..errors import BackendUnavailable, InvalidCiphertext, InvalidEncoding
from ..hazmat.envelope import WRAP, Header
from ..hazmat.envelope.header import MAX_CHUNK, MIN_CHUNK, read_exact
from ..hazmat.outsource import SUPPORTED, arity
from ..hazmat.pairing import Element, group_from_id
from ..hazmat.schemes import SchemeBase, get_scheme

MAGIC = b"ABT2"
VERSION = 2
#: magic -> core version: the version written, and version 1 (uncompressed GT), still read
_VERSIONS = {b"ABT1": 1, MAGIC: VERSION}
#: the largest core: two full GT elements (1,152 bytes) and the rest fit in well under this
MAX_CORE = 4096


@dataclass(frozen=True)
class Transformed:
    """A parsed transformed header; `t` still undecoded (decoding checks subgroup membership)."""

    version: int
    scheme: SchemeBase
    tk: str
    header: bytes
    t: tuple[bytes, ...]
    wrap: bytes
    chunk: int
    salt: bytes
    size: int

    def elements(self) -> list[Element]:
        """`t` decoded, or InvalidCiphertext: the last element, which the device raises to z,
        in the order-r subgroup of GT (so that a planted element cannot probe z modulo a small
        factor of the cyclotomic subgroup's order); the one before it (RW15's T1, only multiplied
        into K) of norm 1 in version 2 and in GT in version 1."""
        group = self.scheme.group
        last = len(self.t) - 1
        try:
            if self.version == 1:
                return [group.deserialize("GT", raw) for raw in self.t]
            return [group.decompress_gt(raw, check=i == last) for i, raw in enumerate(self.t)]
        except InvalidEncoding as exc:
            raise InvalidCiphertext(f"transformed header: {exc}") from None


def encode(header: Header, tk_id: str, parts: list[Element]) -> bytes:
    """The transformed header of `header` with the cloud's GT elements `parts`, compressed."""
    group = header.scheme.group
    core = cbor2.dumps({"v": VERSION, "scheme": header.scheme.name, "group": group.id,
                        "tk": tk_id, "header": header.core_digest,
                        "t": [group.compress_gt(p) for p in parts], "wrap": header.wrap,
                        "chunk": header.chunk, "salt": header.salt})
    return MAGIC + struct.pack(">I", len(core)) + core


def read(src: BinaryIO) -> Transformed:
    """Parse a transformed header from `src`, leaving the payload unread; InvalidCiphertext for
    anything malformed (an `.abe` file given instead is named as such)."""
    prefix = read_exact(src, 8)
    version = _VERSIONS.get(prefix[:4])
    if version is None:
        if prefix[:3] == b"ABE":
            raise InvalidCiphertext("this is an .abe file, not a transformed one: have it transformed "
                                    "with the transformation key first")
        raise InvalidCiphertext("not a transformed .abe file (bad magic)")
    (length,) = struct.unpack(">I", prefix[4:])
    if length > MAX_CORE:
        raise InvalidCiphertext(f"transformed header of {length} bytes exceeds {MAX_CORE}")
    raw = read_exact(src, length)
    if len(raw) != length:
        raise InvalidCiphertext("file truncated inside the transformed header")
    try:
        data: Any = cbor2.loads(raw)
    except Exception:  # cbor2 raises several error types for garbage
        raise InvalidCiphertext("transformed header is not valid CBOR") from None
    fields = {"v", "scheme", "group", "tk", "header", "t", "wrap", "chunk", "salt"}
    if not isinstance(data, dict) or set(data) != fields or type(data["v"]) is not int \
            or data["v"] != version:
        raise InvalidCiphertext("unsupported or malformed transformed header")
    name, group_id, tk, t = data["scheme"], data["group"], data["tk"], data["t"]
    if name not in SUPPORTED or not isinstance(group_id, str) or len(group_id) > 256:
        raise InvalidCiphertext("transformed header names an unknown scheme or group")
    try:
        scheme = get_scheme(name, group_from_id(group_id))
    except BackendUnavailable as exc:
        raise InvalidCiphertext(f"transformed header: {exc}") from None
    checks = [isinstance(tk, str) and len(tk) <= 64,
              isinstance(data["header"], bytes) and len(data["header"]) == 32,
              isinstance(t, list) and len(t) == arity(scheme) and all(isinstance(x, bytes) for x in t),
              isinstance(data["wrap"], bytes) and len(data["wrap"]) == WRAP,
              isinstance(data["chunk"], int) and MIN_CHUNK <= data["chunk"] <= MAX_CHUNK,
              isinstance(data["salt"], bytes) and len(data["salt"]) == 32]
    if not all(checks):
        raise InvalidCiphertext("malformed transformed header")
    return Transformed(version, scheme, tk, data["header"], tuple(t), data["wrap"], data["chunk"],
                       data["salt"], 8 + length)
